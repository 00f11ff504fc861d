/*
 * render.c: denoising of one sound file through libsndfile and the engine.
 */
#include "render.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sndfile.h>

#include "input_file.h"
#include "output_file.h"

/* Frames per read, engine call and write. Any size gives the same output. */
enum { BLOCK_FRAMES = 4096 };

/* The sample rates drsn_engine_create accepts (see DRSN_ERR_SAMPLE_RATE). */
enum { ENGINE_MIN_RATE_HZ = 8000, ENGINE_MAX_RATE_HZ = 192000 };

static const render_container containers[] = {
    {"wav", SF_FORMAT_WAV, 0},   {"flac", SF_FORMAT_FLAC, 0},
    {"ogg", SF_FORMAT_OGG, 0},   {"oga", SF_FORMAT_OGG, 0},
    {"opus", SF_FORMAT_OGG, SF_FORMAT_OPUS},
    {"aiff", SF_FORMAT_AIFF, 0}, {"aif", SF_FORMAT_AIFF, 0},
    {"caf", SF_FORMAT_CAF, 0},   {"w64", SF_FORMAT_W64, 0},
    {"rf64", SF_FORMAT_RF64, 0}, {"au", SF_FORMAT_AU, 0},
    {"mp3", SF_FORMAT_MPEG, 0},
};

typedef struct {
  const char *name;
  int format;
} named_subtype;

/* "pcm8" maps to signed 8-bit PCM, and choose_output_format switches to
 * unsigned where the container stores that instead (WAV, W64, RF64). */
static const named_subtype subtypes[] = {
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

const render_container *render_container_from_name(const char *name) {
  for (size_t i = 0; i < COUNT(containers); i++) {
    if (strcasecmp(name, containers[i].name) == 0) {
      return &containers[i];
    }
  }
  return NULL;
}

const char *render_container_names(void) {
  return "wav flac ogg oga opus aiff aif caf w64 rf64 au mp3";
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

/* Returns the plural ending for count things. */
static const char *plural(long long count) {
  return count == 1 ? "" : "s";
}

/* Returns libsndfile's name of a major format, such as "WAV (Microsoft)". */
static const char *format_name(int major_format) {
  static SF_FORMAT_INFO info;
  memset(&info, 0, sizeof info);
  info.format = major_format;
  if (sf_command(NULL, SFC_GET_FORMAT_INFO, &info, (int)sizeof info) != 0 || !info.name) {
    return "this";
  }
  return info.name;
}

static const char *file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) {
    return "a directory";
  }
  if (S_ISFIFO(mode)) {
    return "a FIFO";
  }
  if (S_ISSOCK(mode)) {
    return "a socket";
  }
  if (S_ISCHR(mode)) {
    return "a character device";
  }
  if (S_ISBLK(mode)) {
    return "a block device";
  }
  return "not a regular file";
}

/*
 * Rejects an output path that is one of the run's inputs (also through a
 * hard or symbolic link), is not a regular file (renaming over a device or
 * FIFO would replace it) or exists without --force.
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
  if (!S_ISREG(out_stat.st_mode)) {
    set_error(error, error_size,
              "output %s is %s; only a regular file can be replaced, so choose "
              "another output name",
              out_path, file_type_name(out_stat.st_mode));
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

/* Returns the other 8-bit PCM subtype, or 0 for any other subtype. */
static int other_8_bit_subtype(int subtype) {
  if (subtype == SF_FORMAT_PCM_S8) {
    return SF_FORMAT_PCM_U8;
  }
  if (subtype == SF_FORMAT_PCM_U8) {
    return SF_FORMAT_PCM_S8;
  }
  return 0;
}

/*
 * Sets out_info->format to major with subtype, or with the container's other
 * 8-bit PCM type, keeping the byte order endian where the format allows it.
 * Returns nonzero when libsndfile accepts one of them.
 */
static int try_subtype(SF_INFO *out_info, int major, int subtype, int endian) {
  const int candidates[] = {subtype, other_8_bit_subtype(subtype)};
  for (size_t i = 0; i < COUNT(candidates) && candidates[i]; i++) {
    out_info->format = major | candidates[i] | endian;
    if (endian && sf_format_check(out_info)) {
      return 1;
    }
    out_info->format = major | candidates[i];
    if (sf_format_check(out_info)) {
      return 1;
    }
  }
  return 0;
}

/* Chooses the output format; returns 0, or -1 when the request cannot work. */
static int choose_output_format(const SF_INFO *in_info, const render_options *options,
                                SF_INFO *out_info, char *error, size_t error_size) {
  int in_major = in_info->format & SF_FORMAT_TYPEMASK;
  int in_subtype = in_info->format & SF_FORMAT_SUBMASK;
  int major = options->container ? options->container->major_format : in_major;
  /* The .wav extension names both forms, and only WAVEX has a channel mask. */
  if (major == SF_FORMAT_WAV && in_major == SF_FORMAT_WAVEX) {
    major = SF_FORMAT_WAVEX;
  }
  int requested_subtype = options->subtype;
  if (!requested_subtype && options->container) {
    requested_subtype = options->container->subtype;
  }
  int subtype = requested_subtype ? requested_subtype : in_subtype;
  /* A codec such as Vorbis or MP3 moves to another container only on
   * request: sf_format_check accepts some pairs (MP3 in WAV) that libsndfile
   * 1.2 cannot write. Plain PCM and float fit every container that has them. */
  if (!requested_subtype && major != in_major && !is_plain_sample_subtype(in_subtype)) {
    subtype = 0;
  }
  /* The byte order is kept only where the container is kept. */
  int endian = major == in_major ? in_info->format & SF_FORMAT_ENDMASK : 0;

  if (major == SF_FORMAT_SD2) {
    set_error(error, error_size,
              "cannot write the SD2 format: libsndfile needs the final file name "
              "to create its resource fork, but the output is written through a "
              "temporary file; choose another output format, e.g. -F wav");
    return -1;
  }

  memset(out_info, 0, sizeof *out_info);
  out_info->samplerate = in_info->samplerate;
  out_info->channels = in_info->channels;
  if (subtype && try_subtype(out_info, major, subtype, endian)) {
    return 0;
  }
  if (requested_subtype) {
    set_error(error, error_size,
              "the requested subtype cannot be written in the %s format at %d Hz "
              "with %d channel%s; choose another --subtype or --format",
              format_name(major), in_info->samplerate, in_info->channels,
              plural(in_info->channels));
    return -1;
  }
  for (size_t i = 0; i < COUNT(fallback_subtypes); i++) {
    out_info->format = major | fallback_subtypes[i];
    if (sf_format_check(out_info)) {
      return 0;
    }
  }
  set_error(error, error_size,
            "libsndfile cannot write the %s format at %d Hz with %d channel%s; "
            "choose another with --format",
            format_name(major), in_info->samplerate, in_info->channels,
            plural(in_info->channels));
  return -1;
}

/*
 * Copies the metadata that libsndfile reads and writes: the text strings,
 * the Broadcast WAV "bext" chunk (its time reference places the file on a
 * timeline), cue points and the channel map. The output is aligned sample
 * for sample with the input, so positions stay valid. Formats without a
 * place for an item reject it, and the item is then dropped.
 */
static void copy_metadata(SNDFILE *in, SNDFILE *out, int channels) {
  for (int type = SF_STR_FIRST; type <= SF_STR_LAST; type++) {
    const char *text = sf_get_string(in, type);
    if (text) {
      sf_set_string(out, type, text);
    }
  }

  SF_BROADCAST_INFO bext;
  memset(&bext, 0, sizeof bext);
  if (sf_command(in, SFC_GET_BROADCAST_INFO, &bext, sizeof bext) == SF_TRUE) {
    sf_command(out, SFC_SET_BROADCAST_INFO, &bext, sizeof bext);
  }

  SF_CUES *cues = calloc(1, sizeof *cues);
  if (cues && sf_command(in, SFC_GET_CUE, cues, sizeof *cues) == SF_TRUE &&
      cues->cue_count > 0) {
    sf_command(out, SFC_SET_CUE, cues, sizeof *cues);
  }
  free(cues);

  int map[DRSN_MAX_CHANNELS];
  if (channels <= DRSN_MAX_CHANNELS &&
      sf_command(in, SFC_GET_CHANNEL_MAP_INFO, map, channels * (int)sizeof map[0]) ==
          SF_TRUE) {
    sf_command(out, SFC_SET_CHANNEL_MAP_INFO, map, channels * (int)sizeof map[0]);
  }
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

/*
 * Returns the number of integer steps per unit of a full-scale float sample
 * for integer PCM subtypes, or 0 for others. libsndfile 1.2.0 converts float
 * to integer PCM under SFC_SET_CLIPPING by rounding toward minus infinity,
 * not to the nearest step. Samples already on a step convert exactly.
 */
static float integer_steps(int subtype) {
  switch (subtype) {
  case SF_FORMAT_PCM_S8:
  case SF_FORMAT_PCM_U8:
    return 128.0f;
  case SF_FORMAT_PCM_16:
    return 32768.0f;
  case SF_FORMAT_PCM_24:
    return 8388608.0f;
  case SF_FORMAT_PCM_32:
    return 2147483648.0f;
  default:
    return 0.0f;
  }
}

/* State of the sample-exact alignment: the engine delays by latency frames,
 * so the first latency output frames are dropped and latency zero frames are
 * fed at the end to push the tail out. */
typedef struct {
  drsn_engine *engine;
  SNDFILE *out;
  block_buffers *buffers;
  /** integer_steps of the output subtype, or 0 to write samples unrounded. */
  float steps;
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
  float steps = stream->steps;
  for (int c = 0; c < channels; c++) {
    const float *planar = buffers->planar_out[c] + drop;
    for (sf_count_t i = 0; i < keep; i++) {
      float sample = planar[i];
      if (steps > 0.0f) {
        /* Exact: steps is a power of two. */
        sample = rintf(sample * steps) / steps;
      }
      buffers->interleaved[i * channels + c] = sample;
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
static int run_engine(const input_file *input, SNDFILE *out, int out_subtype,
                      const char *out_path, drsn_engine *engine,
                      const render_options *options, char *error, size_t error_size) {
  block_buffers buffers;
  if (allocate_buffers(&buffers, input->info.channels) != 0) {
    free_buffers(&buffers);
    set_error(error, error_size, "out of memory");
    return -1;
  }

  uint32_t latency = drsn_engine_latency_samples(engine);
  render_stream stream = {engine, out, &buffers, integer_steps(out_subtype), latency, 0};
  const uint64_t replaced_before = drsn_engine_replaced_samples(engine);
  sf_count_t expected_frames = input->info.frames;
  int show_progress =
      options->progress && expected_frames > 0 && expected_frames != SF_COUNT_MAX;
  sf_count_t frames_read = 0;
  int status = 0;
  for (;;) {
    sf_count_t frames = sf_readf_float(input->file, buffers.interleaved, BLOCK_FRAMES);
    if (frames <= 0) {
      break;
    }
    frames_read += frames;
    if (process_block(&stream, frames, 0) != 0) {
      set_error(error, error_size, "cannot write %s: %s", out_path, sf_strerror(out));
      status = -1;
      break;
    }
    if (show_progress) {
      options->progress(options->progress_context,
                        (double)frames_read / (double)expected_frames);
    }
  }
  if (status == 0) {
    status = input_file_check_complete(input, frames_read, error, error_size);
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

  if (options->replaced_samples) {
    *options->replaced_samples = (long long)(drsn_engine_replaced_samples(engine) - replaced_before);
  }
  free_buffers(&buffers);
  return status;
}

static int create_engine(const SF_INFO *in_info, const render_options *options,
                         drsn_engine **engine, char *error, size_t error_size) {
  if (in_info->channels < 1 || in_info->channels > DRSN_MAX_CHANNELS) {
    set_error(error, error_size, "%d channel%s not supported (1 to %d)",
              in_info->channels, in_info->channels == 1 ? " is" : "s are",
              DRSN_MAX_CHANNELS);
    return -1;
  }
  drsn_error engine_error;
  memset(&engine_error, 0, sizeof engine_error);
  drsn_status status = drsn_engine_create(options->model, (double)in_info->samplerate,
                                          (uint32_t)in_info->channels, engine,
                                          &engine_error);
  if (status == DRSN_ERR_SAMPLE_RATE) {
    set_error(error, error_size, "a sample rate of %d Hz is not supported (%d to %d Hz)",
              in_info->samplerate, ENGINE_MIN_RATE_HZ, ENGINE_MAX_RATE_HZ);
    return -1;
  }
  if (status != DRSN_OK) {
    /* Engine messages start with "engine: ", which would repeat the
     * words before them. */
    const char *message = engine_error.message[0] ? engine_error.message
                                                  : drsn_strerror(status);
    if (strncmp(message, "engine: ", 8) == 0) {
      message += 8;
    }
    set_error(error, error_size, "cannot create the engine for model %.200s: %s",
              options->model_name ? options->model_name : "default", message);
    return -1;
  }
  drsn_engine_set_reduction_limit_db(*engine, options->limit_db);
  drsn_engine_set_linked(*engine, options->linked);
  return 0;
}

/** Checks that libsndfile can read the finished output on fd, through a
 * second descriptor. Returns 1 if it can, or 0 with a message. */
static int output_readable(int fd, const char *out_path, int format, char *error,
                           size_t error_size) {
  int copy = dup(fd);
  if (copy < 0 || lseek(copy, 0, SEEK_SET) != 0) {
    set_error(error, error_size, "cannot read back %s: %s", out_path, strerror(errno));
    if (copy >= 0) {
      close(copy);
    }
    return 0;
  }
  SF_INFO info;
  memset(&info, 0, sizeof info);
  SNDFILE *check = sf_open_fd(copy, SFM_READ, &info, SF_TRUE);
  if (!check) {
    set_error(error, error_size,
              "libsndfile cannot read back the %s file it wrote (%s); choose "
              "another format, e.g. -F wav",
              format_name(format & SF_FORMAT_TYPEMASK), sf_strerror(NULL));
    return 0;
  }
  sf_close(check);
  return 1;
}

int render_file(const char *in_path, const char *out_path,
                const render_options *options, char *error, size_t error_size) {
  if (check_output_path(out_path, options, error, error_size) != 0) {
    return -1;
  }

  input_file input;
  if (input_file_open(&input, in_path, error, error_size) != 0) {
    return -1;
  }

  SF_INFO out_info;
  drsn_engine *engine = NULL;
  if (choose_output_format(&input.info, options, &out_info, error, error_size) != 0 ||
      create_engine(&input.info, options, &engine, error, error_size) != 0) {
    sf_close(input.file);
    return -1;
  }

  output_file file;
  char file_error[512];
  if (output_file_open(&file, out_path, file_error, sizeof file_error) != 0) {
    set_error(error, error_size, "cannot write %s: %s", out_path, file_error);
    drsn_engine_destroy(engine);
    sf_close(input.file);
    return -1;
  }

  int status = -1;
  /* libsndfile must not close the descriptor: output_file owns it. */
  SNDFILE *out = sf_open_fd(file.fd, SFM_WRITE, &out_info, SF_FALSE);
  if (!out) {
    set_error(error, error_size,
              "cannot write %s in the %s format: %s; choose another format with "
              "--format, e.g. -F wav",
              out_path, format_name(out_info.format & SF_FORMAT_TYPEMASK),
              sf_strerror(NULL));
  } else {
    /* Integer subtypes clip instead of wrapping around on overshoot. */
    sf_command(out, SFC_SET_CLIPPING, NULL, SF_TRUE);
    /* The PEAK chunk of float files contains the time of writing; without it
     * the same input always gives the same bytes. */
    sf_command(out, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
    copy_metadata(input.file, out, input.info.channels);
    status = run_engine(&input, out, out_info.format & SF_FORMAT_SUBMASK, out_path,
                        engine, options, error, error_size);
    int close_error = sf_close(out);
    if (status == 0 && close_error != SF_ERR_NO_ERROR) {
      set_error(error, error_size, "cannot finish %s: %s", out_path,
                sf_error_number(close_error));
      status = -1;
    }
    /* libsndfile 1.2.0 writes nothing at all for a FLAC file without
     * frames, which no reader accepts. */
    struct stat out_stat;
    if (status == 0 && fstat(file.fd, &out_stat) == 0 && out_stat.st_size == 0) {
      set_error(error, error_size,
                "libsndfile wrote an empty file for an input without audio "
                "frames in the %s format; choose another format, e.g. -F wav",
                format_name(out_info.format & SF_FORMAT_TYPEMASK));
      status = -1;
    }
    /* libsndfile 1.2.0 writes an Ogg Opus file without frames that it
     * calls malformed itself, so every output is opened again before it
     * replaces anything. */
    if (status == 0 &&
        !output_readable(file.fd, out_path, out_info.format, error, error_size)) {
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
  sf_close(input.file);
  return status;
}
