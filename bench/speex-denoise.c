/*
 * speex-denoise: the speexdsp noise suppressor as a file-to-file program, for
 * comparison with drsn-denoise on the same files.
 *
 *   speex-denoise [-f] IN OUT
 *
 * It runs libspeexdsp's preprocessor with 10 ms frames at the file's rate,
 * noise suppression on at its default depth of -15 dB, and automatic gain
 * control, voice activity detection and dereverberation off. The
 * preprocessor works on 16-bit integer samples, so the input is quantised to
 * 16 bits (with clipping) before processing. The preprocessor delays its
 * output by one frame (10 ms), which is removed here, so the output has the
 * input's length and is aligned with it sample for sample
 * (tests/tools/test_renderer.py checks this with a click). Mono files only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <sndfile.h>
#include <speex/speex_preprocess.h>

#include "denoise_cli.h"

static const char program_name[] = "speex-denoise";

/* speexdsp's default suppression depth, set explicitly so that a change of
 * library default cannot change the benchmark silently. */
enum { NOISE_SUPPRESS_DB = -15 };

static void print_help(FILE *stream) {
  fprintf(stream,
          "Usage: %s [OPTION]... IN OUT\n"
          "Denoise a mono sound file with the speexdsp preprocessor (10 ms frames,\n"
          "noise suppression %d dB, no AGC, VAD or dereverberation).\n"
          "\n"
          "  -f, --force  overwrite OUT if it exists (never IN)\n"
          "  -q, --quiet  accepted for compatibility with drsn-denoise; no effect\n"
          "  -h, --help   show this help and exit\n"
          "\n"
          "Exit status: 0 on success, 1 when the file failed, 2 on usage errors.\n",
          program_name, NOISE_SUPPRESS_DB);
}

static short to_int16(float value) {
  float scaled = value * 32768.0f;
  if (!(scaled > -32768.0f)) {
    return -32768;
  }
  if (scaled > 32767.0f) {
    return 32767;
  }
  return (short)lrintf(scaled);
}

static SpeexPreprocessState *create_preprocessor(int frame_size, int rate_hz) {
  SpeexPreprocessState *state = speex_preprocess_state_init(frame_size, rate_hz);
  if (!state) {
    return NULL;
  }
  spx_int32_t on = 1;
  spx_int32_t off = 0;
  spx_int32_t suppress_db = NOISE_SUPPRESS_DB;
  speex_preprocess_ctl(state, SPEEX_PREPROCESS_SET_DENOISE, &on);
  speex_preprocess_ctl(state, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &suppress_db);
  speex_preprocess_ctl(state, SPEEX_PREPROCESS_SET_AGC, &off);
  speex_preprocess_ctl(state, SPEEX_PREPROCESS_SET_DEREVERB, &off);
  /* VAD is off by default; SPEEX_PREPROCESS_SET_VAD would print a warning
   * about its implementation even when switching it off, so it is only read. */
  spx_int32_t vad = 1;
  speex_preprocess_ctl(state, SPEEX_PREPROCESS_GET_VAD, &vad);
  if (vad != 0) {
    speex_preprocess_state_destroy(state);
    return NULL;
  }
  return state;
}

/*
 * Denoises in into out frame by frame; returns 0 or -1 with a message.
 * The preprocessor returns each frame one frame late (it overlap-adds two
 * half-overlapped analysis windows), so the first frame_size output samples
 * are dropped and the tail is flushed with silence.
 */
static int run(SNDFILE *in, SNDFILE *out, int rate_hz, const char *in_path,
               const char *out_path) {
  int frame_size = (int)lround(rate_hz / 100.0);
  SpeexPreprocessState *state = create_preprocessor(frame_size, rate_hz);
  float *samples = calloc((size_t)frame_size, sizeof *samples);
  short *pcm = calloc((size_t)frame_size, sizeof *pcm);
  if (!state || !samples || !pcm) {
    fprintf(stderr, "%s: %s: cannot create the preprocessor\n", program_name, in_path);
    if (state) {
      speex_preprocess_state_destroy(state);
    }
    free(samples);
    free(pcm);
    return -1;
  }

  sf_count_t frames_read = 0;
  sf_count_t frames_written = 0;
  sf_count_t frames_to_drop = frame_size;
  int end_of_input = 0;
  int status = 0;
  while (status == 0) {
    sf_count_t frames = 0;
    if (!end_of_input) {
      frames = sf_readf_float(in, samples, frame_size);
      if (frames <= 0) {
        end_of_input = 1;
        frames = 0;
      }
      frames_read += frames;
    }
    if (end_of_input && frames_written >= frames_read) {
      break;
    }
    /* Past the end of the input the preprocessor gets silence. */
    for (int i = 0; i < frame_size; i++) {
      pcm[i] = i < frames ? to_int16(samples[i]) : 0;
    }
    speex_preprocess_run(state, pcm);

    sf_count_t count = 0;
    for (int i = 0; i < frame_size; i++) {
      if (frames_to_drop > 0) {
        frames_to_drop--;
      } else if (frames_written + count < frames_read) {
        samples[count++] = (float)pcm[i] / 32768.0f;
      }
    }
    if (count > 0 && sf_writef_float(out, samples, count) != count) {
      fprintf(stderr, "%s: cannot write %s: %s\n", program_name, out_path,
              sf_strerror(out));
      status = -1;
    }
    frames_written += count;
  }
  if (status == 0 && sf_error(in) != SF_ERR_NO_ERROR) {
    fprintf(stderr, "%s: %s: read error: %s\n", program_name, in_path, sf_strerror(in));
    status = -1;
  }

  speex_preprocess_state_destroy(state);
  free(samples);
  free(pcm);
  return status;
}

int main(int argc, char **argv) {
  static const denoise_cli cli = {program_name, print_help, 0, run};
  return denoise_cli_main(&cli, argc, argv);
}
