/*
 * drsn_stft.c: framing at the host rate, sqrt-Hann windows and the FFTW
 * plans (docs/design.md, Framing).
 */
#include "drsn_internal.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* FFTW's planner is not thread-safe, and hosts may create engines
 * concurrently, so every plan is made and destroyed under this lock. */
#define DRSN_PI 3.14159265358979323846

static pthread_mutex_t drsn_fftw_planner_lock = PTHREAD_MUTEX_INITIALIZER;

void drsn_fftw_lock(void)
{
  pthread_mutex_lock(&drsn_fftw_planner_lock);
}

void drsn_fftw_unlock(void)
{
  pthread_mutex_unlock(&drsn_fftw_planner_lock);
}

uint32_t drsn_stft_hop_for_rate(const drsn_model *model, double sample_rate_hz)
{
  const double hop = round(model->hop_samples * sample_rate_hz /
                           model->rate_hz);
  return hop < 1.0 ? 1u : (uint32_t)hop;
}

drsn_status drsn_stft_init(drsn_stft *stft, const drsn_model *model,
                           double sample_rate_hz, drsn_error *err)
{
  memset(stft, 0, sizeof *stft);
  stft->hop = drsn_stft_hop_for_rate(model, sample_rate_hz);
  const uint32_t overlap = model->window_samples / model->hop_samples;
  stft->window = stft->hop * overlap;
  stft->bins = stft->window / 2 + 1;
  const uint32_t n = stft->window;

  stft->analysis = fftwf_malloc(n * sizeof(float));
  stft->synthesis = fftwf_malloc(n * sizeof(float));
  stft->frame = fftwf_malloc(n * sizeof(float));
  stft->spectrum = fftwf_malloc(stft->bins * sizeof(fftwf_complex));
  if (!stft->analysis || !stft->synthesis || !stft->frame || !stft->spectrum) {
    drsn_stft_free(stft);
    return drsn_error_set(err, DRSN_ERR_NO_MEMORY,
                          "engine: out of memory for a %u-sample window", n);
  }

  /* Periodic sqrt-Hann; computed in double so every rate gets the same
   * rounding as a float32 cast of the exact value. */
  for (uint32_t i = 0; i < n; i++)
    stft->analysis[i] =
        (float)sqrt(0.5 - 0.5 * cos(2.0 * DRSN_PI * (double)i / (double)n));

  /* Synthesis: divide by the overlap of the squared windows, and by n for
   * FFTW's unnormalised inverse. */
  for (uint32_t i = 0; i < n; i++) {
    double overlap_sum = 0.0;
    for (uint32_t j = i % stft->hop; j < n; j += stft->hop) {
      const double w = stft->analysis[j];
      overlap_sum += w * w;
    }
    stft->synthesis[i] =
        (float)((double)stft->analysis[i] / (overlap_sum * (double)n));
  }

  pthread_mutex_lock(&drsn_fftw_planner_lock);
  stft->forward = fftwf_plan_dft_r2c_1d((int)n, stft->frame, stft->spectrum,
                                        FFTW_ESTIMATE);
  stft->inverse = fftwf_plan_dft_c2r_1d((int)n, stft->spectrum, stft->frame,
                                        FFTW_ESTIMATE);
  pthread_mutex_unlock(&drsn_fftw_planner_lock);
  if (!stft->forward || !stft->inverse) {
    drsn_stft_free(stft);
    return drsn_error_set(err, DRSN_ERR_FFT_PLAN,
                          "engine: FFTW could not plan a %u-point transform",
                          n);
  }
  return DRSN_OK;
}

void drsn_stft_free(drsn_stft *stft)
{
  if (stft->forward || stft->inverse) {
    pthread_mutex_lock(&drsn_fftw_planner_lock);
    if (stft->forward)
      fftwf_destroy_plan(stft->forward);
    if (stft->inverse)
      fftwf_destroy_plan(stft->inverse);
    pthread_mutex_unlock(&drsn_fftw_planner_lock);
  }
  fftwf_free(stft->analysis);
  fftwf_free(stft->synthesis);
  fftwf_free(stft->frame);
  fftwf_free(stft->spectrum);
  memset(stft, 0, sizeof *stft);
}

void drsn_stft_analyse(const drsn_stft *stft, const float *input,
                       fftwf_complex *spectrum)
{
  float *restrict frame = stft->frame;
  const float *restrict w = stft->analysis;
  const uint32_t n = stft->window;
  for (uint32_t i = 0; i < n; i++)
    frame[i] = input[i] * w[i];
  fftwf_execute_dft_r2c(stft->forward, frame, spectrum);
}

void drsn_stft_synthesise(const drsn_stft *stft, fftwf_complex *spectrum,
                          float *ola)
{
  float *restrict frame = stft->frame;
  float *restrict acc = ola;
  const float *restrict w = stft->synthesis;
  const uint32_t n = stft->window;
  fftwf_execute_dft_c2r(stft->inverse, spectrum, frame);

  /* Flushing tiny sums keeps denormals out where FTZ is not available. */
  for (uint32_t i = 0; i < n; i++) {
    const float v = acc[i] + frame[i] * w[i];
    acc[i] = fabsf(v) < 1e-30f ? 0.0f : v;
  }
}
