/*
 * render.c: denoising of one sound file through libsndfile and the engine.
 */
#include "render.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <sndfile.h>

#include "output_file.h"

/* Frames per read, engine call and write. Any size gives the same output. */
enum { BLOCK_FRAMES = 4096 };

typedef struct {
  const char *name;
  int format;
} named_format;

/* The first entry of each major format names its output extension. */
static const named_format major_formats[] = {
    {"wav", SF_FORMAT_WAV},   {"flac", SF_FORMAT_FLAC}, {"ogg", SF_FORMAT_OGG},
    {"oga", SF_FORMAT_OGG},   {"aiff", SF_FORMAT_AIFF},
    {"aif", SF_FORMAT_AIFF},  {"caf", SF_FORMAT_CAF},   {"w64", SF_FORMAT_W64},
    {"rf64", SF_FORMAT_RF64}, {"au", SF_FORMAT_AU},     {"mp3", SF_FORMAT_MPEG},
};

static const named_format subtypes[] = {
    {"pcm8", SF_FORMAT_PCM_S8},   {"pcm16", SF_FORMAT_PCM_16},
    {"pcm24", SF_FORMAT_PCM_24},  {"pcm32", SF_FORMAT_PCM_32},
    {"float", SF_FORMAT_FLOAT},   {"double", SF_FORMAT_DOUBLE},
    {"ulaw", SF_FORMAT_ULAW},     {"alaw", SF_FORMAT_ALAW},
    {"vorbis", SF_FORMAT_VORBIS}, {"opus", SF_FORMAT_OPUS},
    {"mp3", SF_FORMAT_MPEG_LAYER_III},
};

/* Subtypes tried in order when the input's subtype does not fit the output
 * format and none was requested: the first that libsndfile accepts wins. */
static const int fallback_subtypes[] = {
    SF_FORMAT_FLOAT,  SF_FORMAT_PCM_24, SF_FORMAT_PCM_16,
    SF_FORMAT_VORBIS, SF_FORMAT_OPUS,   SF_FORMAT_MPEG_LAYER_III,
};

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

int render_format_from_name(const char *name) {
  for (size_t i = 0; i < COUNT(major_formats); i++) {
    if (strcasecmp(name, major_formats[i].name) == 0) {
      return major_formats[i].format;
    }
  }
  return 0;
}

const char *render_format_extension(int major_format) {
  for (size_t i = 0; i < COUNT(major_formats); i++) {
    if (major_formats[i].format == major_format) {
      return major_formats[i].name;
    }
  }
  return NULL;
}

const char *render_format_names(void) {
  return "wav flac ogg (also oga) aiff (also aif) caf w64 rf64 au mp3";
}

int render_subtype_from_name(const char *name) {
  for (size_t i = 0; i < COUNT(subtypes); i++) {
    if (strcasecmp(name, subtypes[i].name) == 0) {
      return subtypes[i].format;
    }
  }
  return 0;
}

const char *render_subtype_names(void) {
  return "pcm8 pcm16 pcm24 pcm32 float double ulaw alaw vorbis opus mp3";
}

static void set_error(char *error, size_t error_size, const char *format, ...) {
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(error, error_size, format, arguments);
  va_end(arguments);
}

/*
 * Rejects an output path that is a directory, is one of the run's inputs
 * (also through a hard or symbolic link) or exists without --force.
 */
static int check_output_path(const char *out_path, const render_options *options,
                             char *error, size_t error_size) {
  struct stat out_stat;
  if (stat(out_path, &out_stat) != 0) {
    if (errno == ENOENT) {
      return 0;
    }
    set_error(error, error_size, "cannot check output %s: %s", out_path,
              strerror(errno));
    return -1;
  }
  for (size_t i = 0; i < options->input_count; i++) {
    if (output_file_same(&out_stat, &options->input_stats[i])) {
      set_error(error, error_size,
                "output %s is the same file as input %s; an input is never "
                "overwritten",
                out_path, options->input_paths[i]);
      return -1;
    }
  }
  if (S_ISDIR(out_stat.st_mode)) {
    set_error(error, error_size, "output %s is a directory", out_path);
    return -1;
  }
  if (!options->force) {
    set_error(error, error_size,
              "output %s already exists; use --force to overwrite it", out_path);
    return -1;
  }
  return 0;
}

static int is_plain_sample_subtype(int subtype) {
  switch (subtype) {
  case SF_FORMAT_PCM_S8:
  case SF_FORMAT_PCM_U8:
  case SF_FORMAT_PCM_16:
  case SF_FORMAT_PCM_24:
  case SF_FORMAT_PCM_32:
  case SF_FORMAT_FLOAT:
  case SF_FORMAT_DOUBLE:
    return 1;
  default:
    return 0;
  }
}

/* Chooses the output format; returns 0, or -1 when the request cannot work. */
static int choose_output_format(const SF_INFO *in_info, const render_options *options,
                                SF_INFO *out_info, char *error, size_t error_size) {
  int in_major = in_info->format & SF_FORMAT_TYPEMASK;
  int in_subtype = in_info->format & SF_FORMAT_SUBMASK;
  int major = options->major_format ? options->major_format : in_major;
  int subtype = options->subtype ? options->subtype : in_subtype;
  /* A codec such as Vorbis or MP3 moves to another container only on
   * request: sf_format_check accepts some pairs (MP3 in WAV) that libsndfile
   * 1.2 cannot write. Plain PCM and float fit every container that has them. */
  if (!options->subtype && major != in_major && !is_plain_sample_subtype(in_subtype)) {
    subtype = 0;
  }
  /* The byte order is kept only where the container is kept. */
  int endian = major == in_major ? in_info->format & SF_FORMAT_ENDMASK : 0;

  memset(out_info, 0, sizeof *out_info);
  out_info->samplerate = in_info->samplerate;
  out_info->channels = in_info->channels;
  if (subtype) {
    out_info->format = major | subtype | endian;
    if (sf_format_check(out_info)) {
      return 0;
    }
    out_info->format = major | subtype;
    if (sf_format_check(out_info)) {
      return 0;
    }
  }
  if (options->subtype) {
    set_error(error, error_size,
              "the requested subtype cannot be written in the %s format at %d Hz "
              "with %d channels",
              render_format_extension(major) ? render_format_extension(major) : "output",
              in_info->samplerate, in_info->channels);
    return -1;
  }
  for (size_t i = 0; i < COUNT(fallback_subtypes); i++) {
    out_info->format = major | fallback_subtypes[i];
    if (sf_format_check(out_info)) {
      return 0;
    }
  }
  set_error(error, error_size,
            "libsndfile cannot write this format at %d Hz with %d channels; "
            "choose another with --format",
            in_info->samplerate, in_info->channels);
  return -1;
}

static void copy_strings(SNDFILE *in, SNDFILE *out) {
  for (int type = SF_STR_FIRST; type <= SF_STR_LAST; type++) {
    const char *text = sf_get_string(in, type);
    if (text) {
      /* Formats without a slot for this string reject it; that is fine. */
      sf_set_string(out, type, text);
    }
  }
}

/*
 * Looks for the line of libsndfile's parser log that shows a cut-off file.
 * libsndfile 1.2 reads what is there without an error. It logs a short audio
 * chunk of WAV or AIFF as "data : 96000 (should be 56)" (or "SSND : ...") and
 * an Ogg stream without its end as "File ended unexpectedly ...". Returns 1
 * and copies the line into note when one is found.
 */
static int find_truncation_note(SNDFILE *in, char *note, size_t note_size) {
  char log[8192];
  memset(log, 0, sizeof log);
  sf_command(in, SFC_GET_LOG_INFO, log, (int)sizeof log);
  for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
    while (*line == ' ') {
      line++;
    }
    int cut_chunk = (strncmp(line, "data ", 5) == 0 || strncmp(line, "SSND ", 5) == 0) &&
                    strstr(line, "(should be") != NULL;
    int cut_stream = strstr(line, "ended unexpectedly") != NULL;
    if (cut_chunk || cut_stream) {
      snprintf(note, note_size, "%s", line);
      return 1;
    }
  }
  return 0;
}

/* Buffers of one file: interleaved for libsndfile, planar for the engine. */
typedef struct {
  int channels;
  float *interleaved;
  float *planar_in[DRSN_MAX_CHANNELS];
  float *planar_out[DRSN_MAX_CHANNELS];
} block_buffers;

static int allocate_buffers(block_buffers *buffers, int channels) {
  memset(buffers, 0, sizeof *buffers);
  buffers->channels = channels;
  buffers->interleaved = calloc((size_t)BLOCK_FRAMES * (size_t)channels, sizeof(float));
  if (!buffers->interleaved) {
    return -1;
  }
  for (int c = 0; c < channels; c++) {
    buffers->planar_in[c] = calloc(BLOCK_FRAMES, sizeof(float));
    buffers->planar_out[c] = calloc(BLOCK_FRAMES, sizeof(float));
    if (!buffers->planar_in[c] || !buffers->planar_out[c]) {
      return -1;
    }
  }
  return 0;
}

static void free_buffers(block_buffers *buffers) {
  free(buffers->interleaved);
  for (int c = 0; c < DRSN_MAX_CHANNELS; c++) {
    free(buffers->planar_in[c]);
    free(buffers->planar_out[c]);
  }
  memset(buffers, 0, sizeof *buffers);
}

/* State of the sample-exact alignment: the engine delays by latency frames,
 * so the first latency output frames are dropped and latency zero frames are
 * fed at the end to push the tail out. */
typedef struct {
  drsn_engine *engine;
  SNDFILE *out;
  block_buffers *buffers;
  sf_count_t frames_to_drop;
  sf_count_t frames_written;
} render_stream;

/*
 * Runs frames frames of buffers->interleaved (or silence when silent is
 * nonzero) through the engine and writes what is left after dropping the
 * leading latency frames. Returns 0, or -1 when writing failed.
 */
static int process_block(render_stream *stream, sf_count_t frames, int silent) {
  block_buffers *buffers = stream->buffers;
  int channels = buffers->channels;

  for (int c = 0; c < channels; c++) {
    float *planar = buffers->planar_in[c];
    for (sf_count_t i = 0; i < frames; i++) {
      planar[i] = silent ? 0.0f : buffers->interleaved[i * channels + c];
    }
  }
  drsn_engine_process(stream->engine, (const float *const *)buffers->planar_in,
                      buffers->planar_out, (uint32_t)frames);

  sf_count_t drop = stream->frames_to_drop < frames ? stream->frames_to_drop : frames;
  stream->frames_to_drop -= drop;
  sf_count_t keep = frames - drop;
  for (int c = 0; c < channels; c++) {
    const float *planar = buffers->planar_out[c] + drop;
    for (sf_count_t i = 0; i < keep; i++) {
      buffers->interleaved[i * channels + c] = planar[i];
    }
  }
  if (keep > 0 && sf_writef_float(stream->out, buffers->interleaved, keep) != keep) {
    return -1;
  }
  stream->frames_written += keep;
  return 0;
}

/*
 * Streams the whole input through the engine into out. Returns 0, or -1 with
 * a message naming the failing side.
 */
static int run_engine(SNDFILE *in, const SF_INFO *in_info, SNDFILE *out,
                      const char *out_path, drsn_engine *engine,
                      const render_options *options, char *error, size_t error_size) {
  block_buffers buffers;
  if (allocate_buffers(&buffers, in_info->channels) != 0) {
    free_buffers(&buffers);
    set_error(error, error_size, "out of memory");
    return -1;
  }

  uint32_t latency = drsn_engine_latency_samples(engine);
  render_stream stream = {engine, out, &buffers, latency, 0};
  sf_count_t frames_read = 0;
  int status = 0;
  for (;;) {
    sf_count_t frames = sf_readf_float(in, buffers.interleaved, BLOCK_FRAMES);
    if (frames <= 0) {
      break;
    }
    frames_read += frames;
    if (process_block(&stream, frames, 0) != 0) {
      set_error(error, error_size, "cannot write %s: %s", out_path, sf_strerror(out));
      status = -1;
      break;
    }
    if (options->progress && in_info->frames > 0) {
      options->progress(options->progress_context,
                        (double)frames_read / (double)in_info->frames);
    }
  }

  if (status == 0 && sf_error(in) != SF_ERR_NO_ERROR) {
    set_error(error, error_size, "read error after %lld frames: %s",
              (long long)frames_read, sf_strerror(in));
    status = -1;
  }
  char truncation_note[160];
  if (status == 0 && find_truncation_note(in, truncation_note, sizeof truncation_note)) {
    set_error(error, error_size, "the file is truncated (libsndfile reports \"%s\")",
              truncation_note);
    status = -1;
  }
  if (status == 0 && in_info->frames > 0 && in_info->frames != SF_COUNT_MAX &&
      frames_read < in_info->frames) {
    set_error(error, error_size,
              "the file is truncated: it ends after %lld of the %lld frames "
              "its header declares",
              (long long)frames_read, (long long)in_info->frames);
    status = -1;
  }
  if (status == 0 && frames_read == 0) {
    set_error(error, error_size, "the file contains no audio frames");
    status = -1;
  }

  sf_count_t flush_remaining = latency;
  while (status == 0 && flush_remaining > 0) {
    sf_count_t frames = flush_remaining < BLOCK_FRAMES ? flush_remaining : BLOCK_FRAMES;
    flush_remaining -= frames;
    if (process_block(&stream, frames, 1) != 0) {
      set_error(error, error_size, "cannot write %s: %s", out_path, sf_strerror(out));
      status = -1;
    }
  }
  if (status == 0 && stream.frames_written != frames_read) {
    /* Only a broken latency report from the engine can get here. */
    set_error(error, error_size, "internal error: wrote %lld frames for %lld read",
              (long long)stream.frames_written, (long long)frames_read);
    status = -1;
  }

  free_buffers(&buffers);
  return status;
}

static int create_engine(const SF_INFO *in_info, const render_options *options,
                         drsn_engine **engine, char *error, size_t error_size) {
  if (in_info->channels < 1 || in_info->channels > DRSN_MAX_CHANNELS) {
    set_error(error, error_size, "%d channels are not supported (1 to %d)",
              in_info->channels, DRSN_MAX_CHANNELS);
    return -1;
  }
  drsn_error engine_error;
  memset(&engine_error, 0, sizeof engine_error);
  drsn_status status = drsn_engine_create(options->model, (double)in_info->samplerate,
                                          (uint32_t)in_info->channels, engine,
                                          &engine_error);
  if (status != DRSN_OK) {
    set_error(error, error_size, "cannot create the engine: %s",
              engine_error.message[0] ? engine_error.message : drsn_strerror(status));
    return -1;
  }
  drsn_engine_set_reduction_limit_db(*engine, options->limit_db);
  drsn_engine_set_linked(*engine, options->linked);
  return 0;
}

int render_file(const char *in_path, const char *out_path,
                const render_options *options, char *error, size_t error_size) {
  if (check_output_path(out_path, options, error, error_size) != 0) {
    return -1;
  }

  SF_INFO in_info;
  memset(&in_info, 0, sizeof in_info);
  SNDFILE *in = sf_open(in_path, SFM_READ, &in_info);
  if (!in) {
    set_error(error, error_size, "cannot open: %s", sf_strerror(NULL));
    return -1;
  }

  SF_INFO out_info;
  drsn_engine *engine = NULL;
  if (choose_output_format(&in_info, options, &out_info, error, error_size) != 0 ||
      create_engine(&in_info, options, &engine, error, error_size) != 0) {
    sf_close(in);
    return -1;
  }

  output_file file;
  char file_error[512];
  if (output_file_open(&file, out_path, file_error, sizeof file_error) != 0) {
    set_error(error, error_size, "cannot write %s: %s", out_path, file_error);
    drsn_engine_destroy(engine);
    sf_close(in);
    return -1;
  }

  int status = -1;
  /* libsndfile must not close the descriptor: output_file owns it. */
  SNDFILE *out = sf_open_fd(file.fd, SFM_WRITE, &out_info, SF_FALSE);
  if (!out) {
    set_error(error, error_size, "cannot write %s: %s", out_path, sf_strerror(NULL));
  } else {
    /* Integer subtypes clip instead of wrapping around on overshoot. */
    sf_command(out, SFC_SET_CLIPPING, NULL, SF_TRUE);
    copy_strings(in, out);
    status = run_engine(in, &in_info, out, out_path, engine, options, error, error_size);
    int close_error = sf_close(out);
    if (status == 0 && close_error != SF_ERR_NO_ERROR) {
      set_error(error, error_size, "cannot finish %s: %s", out_path,
                sf_error_number(close_error));
      status = -1;
    }
  }

  if (status == 0) {
    status = output_file_commit(&file, file_error, sizeof file_error);
    if (status != 0) {
      set_error(error, error_size, "cannot write %s: %s", out_path, file_error);
    }
  } else {
    output_file_discard(&file);
  }
  drsn_engine_destroy(engine);
  sf_close(in);
  return status;
}
