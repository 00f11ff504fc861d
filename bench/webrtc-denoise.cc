/*
 * webrtc-denoise: the WebRTC noise suppressor as a file-to-file program, for
 * comparison with drsn-denoise on the same files.
 *
 *   webrtc-denoise [-f] IN OUT
 *
 * It runs webrtc::AudioProcessing from Debian's webrtc-audio-processing 0.3
 * with only the noise suppressor on, at level kHigh, on 10 ms frames of 48 kHz
 * mono audio through the float interface. Echo cancellation, gain control
 * (including the experimental AGC, which the default Config turns on), the
 * high-pass filter, level estimation, voice detection and the transient
 * suppressor are off. At 48 kHz the library splits each frame into three
 * 8 kHz wide bands sampled at 16 kHz. It suppresses noise in the lowest band
 * in the frequency domain and scales the two others by one gain per frame
 * derived from it. Nothing is resampled, so other rates are rejected.
 *
 * NOTE: the three-band filter bank alone does not reconstruct its input
 * exactly. With only the high-pass filter on, its gain measured on white
 * noise is 0.48 at 8 kHz and 0.43 at 16 kHz, so SI-SDR stays low even where
 * little noise is removed.
 *
 * The library delays its output by 334 samples (DELAY_SAMPLES below), which
 * is removed here, so the output has the input's length and is aligned with
 * it sample for sample. Mono files only.
 */
#include <stdio.h>

#include <memory>
#include <vector>

#include <sndfile.h>
#include <webrtc/common.h>
#include <webrtc/modules/audio_processing/include/audio_processing.h>

#include "denoise_cli.h"

static const char program_name[] = "webrtc-denoise";

enum {
  SAMPLE_RATE_HZ = 48000,
  FRAME_SIZE = SAMPLE_RATE_HZ / 100,
  /*
   * Delay of the output behind the input at 48 kHz: 334 samples (6.96 ms).
   * Measured with webrtc-audio-processing 0.3-1+b1 (Debian 12) as the output
   * peak for a 0.9 impulse in quiet noise, at three impulse positions. The
   * same probe gives 96 samples for the suppressor alone at 16 kHz (288 at
   * 48 kHz), and 46 samples at 48 kHz with only the high-pass filter on,
   * which is the three-band filter bank's share.
   */
  DELAY_SAMPLES = 334,
};

static void print_help(FILE *stream) {
  fprintf(stream,
          "Usage: %s [OPTION]... IN OUT\n"
          "Denoise a 48 kHz mono sound file with the WebRTC noise suppressor (10 ms\n"
          "frames, level high, no echo cancellation, gain control or high-pass filter).\n"
          "\n"
          "  -f, --force  overwrite OUT if it exists (never IN)\n"
          "  -q, --quiet  accepted for compatibility with drsn-denoise; no effect\n"
          "  -h, --help   show this help and exit\n"
          "\n"
          "Exit status: 0 on success, 1 when the file failed, 2 on usage errors.\n",
          program_name);
}

/*
 * Creates an AudioProcessing instance with only the noise suppressor on and
 * checks that every other component is off; returns NULL on failure.
 */
static webrtc::AudioProcessing *create_processor() {
  webrtc::Config config;
  config.Set<webrtc::ExperimentalAgc>(new webrtc::ExperimentalAgc(false));
  config.Set<webrtc::ExperimentalNs>(new webrtc::ExperimentalNs(false));
  std::unique_ptr<webrtc::AudioProcessing> processor(webrtc::AudioProcessing::Create(config));
  if (!processor) {
    return NULL;
  }

  webrtc::StreamConfig stream(SAMPLE_RATE_HZ, 1);
  webrtc::ProcessingConfig processing = {{stream, stream, stream, stream}};
  const int no_error = webrtc::AudioProcessing::kNoError;
  if (processor->Initialize(processing) != no_error ||
      processor->echo_cancellation()->Enable(false) != no_error ||
      processor->echo_control_mobile()->Enable(false) != no_error ||
      processor->gain_control()->Enable(false) != no_error ||
      processor->high_pass_filter()->Enable(false) != no_error ||
      processor->level_estimator()->Enable(false) != no_error ||
      processor->voice_detection()->Enable(false) != no_error ||
      processor->noise_suppression()->set_level(webrtc::NoiseSuppression::kHigh) != no_error ||
      processor->noise_suppression()->Enable(true) != no_error) {
    return NULL;
  }
  return processor.release();
}

/*
 * Denoises in into out frame by frame; returns 0 or -1 with a message.
 * The first DELAY_SAMPLES output samples are dropped and the tail is flushed
 * with silence.
 */
static int run(SNDFILE *in, SNDFILE *out, int rate_hz, const char *in_path,
               const char *out_path) {
  (void)rate_hz; /* denoise_cli_main has checked that it is SAMPLE_RATE_HZ. */
  std::unique_ptr<webrtc::AudioProcessing> processor(create_processor());
  if (!processor) {
    fprintf(stderr, "%s: %s: cannot create the noise suppressor\n", program_name, in_path);
    return -1;
  }
  const webrtc::StreamConfig stream(SAMPLE_RATE_HZ, 1);
  std::vector<float> samples(FRAME_SIZE);
  std::vector<float> denoised(FRAME_SIZE);
  const float *source = samples.data();
  float *destination = denoised.data();

  sf_count_t frames_read = 0;
  sf_count_t frames_written = 0;
  sf_count_t frames_to_drop = DELAY_SAMPLES;
  bool end_of_input = false;
  int status = 0;
  while (status == 0) {
    sf_count_t frames = 0;
    if (!end_of_input) {
      frames = sf_readf_float(in, samples.data(), FRAME_SIZE);
      if (frames <= 0) {
        end_of_input = true;
        frames = 0;
      }
      frames_read += frames;
    }
    if (end_of_input && frames_written >= frames_read) {
      break;
    }
    /* Past the end of the input the suppressor gets silence. */
    for (sf_count_t i = frames; i < FRAME_SIZE; i++) {
      samples[i] = 0.0f;
    }
    int error = processor->ProcessStream(&source, stream, stream, &destination);
    if (error != webrtc::AudioProcessing::kNoError) {
      fprintf(stderr, "%s: %s: the noise suppressor failed with error %d\n", program_name,
              in_path, error);
      status = -1;
      break;
    }

    sf_count_t count = 0;
    for (int i = 0; i < FRAME_SIZE; i++) {
      if (frames_to_drop > 0) {
        frames_to_drop--;
      } else if (frames_written + count < frames_read) {
        samples[count++] = denoised[i];
      }
    }
    if (count > 0 && sf_writef_float(out, samples.data(), count) != count) {
      fprintf(stderr, "%s: cannot write %s: %s\n", program_name, out_path, sf_strerror(out));
      status = -1;
    }
    frames_written += count;
  }
  if (status == 0 && sf_error(in) != SF_ERR_NO_ERROR) {
    fprintf(stderr, "%s: %s: read error: %s\n", program_name, in_path, sf_strerror(in));
    status = -1;
  }
  return status;
}

int main(int argc, char **argv) {
  static const denoise_cli cli = {program_name, print_help, SAMPLE_RATE_HZ, run};
  return denoise_cli_main(&cli, argc, argv);
}
