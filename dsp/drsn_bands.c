/*
 * drsn_bands.c: triangular band weights, band energies and features
 * (docs/design.md, Features and Gains).
 */
#include "drsn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Keeps ln() finite for silent bands (design.md). */
#define DRSN_ENERGY_FLOOR 1e-9f
/* Roll-off above the host's Nyquist frequency: the response of an
 * 8th-order Butterworth low-pass, the kind that band-limits the training
 * mixtures, at 0.95 times that frequency. Its level is the mean power of
 * the top 500 Hz of bins. */
#define DRSN_ROLLOFF_EDGE 0.95
#define DRSN_ROLLOFF_ORDER 8
#define DRSN_ROLLOFF_REFERENCE_HZ 500.0

/**
 * Finds the triangular band weights of a bin at f_hz (design.md, Features):
 * weight lo_weight in band lo and hi_weight in band lo + 1. band is a search
 * position that only moves up, so bins must come in rising order.
 */
static void place_bin(const float *c, uint32_t B, double f_hz, uint32_t *band,
                      uint32_t *lo, float *lo_weight, float *hi_weight)
{
  if (f_hz <= c[0] || f_hz >= c[B - 1]) {
    *lo = f_hz <= c[0] ? 0 : B - 1;
    *lo_weight = 1.0f;
    *hi_weight = 0.0f;
    return;
  }
  while (*band + 1 < B - 1 && f_hz >= c[*band + 1])
    (*band)++;
  const double t = (f_hz - c[*band]) / ((double)c[*band + 1] - (double)c[*band]);
  *lo = *band;
  *lo_weight = (float)(1.0 - t);
  *hi_weight = (float)t;
}

/**
 * Sets up the roll-off for a host whose Nyquist frequency lies below the
 * top band centre. Without it the bands above would have no energy at all,
 * which the network never met in training, because band-limited training
 * mixtures fall off gradually. Speech in noise then lost 6 to 9 dB at 8 to
 * 12 kHz.
 */
static int rolloff_init(drsn_bands *bands, const drsn_model *model,
                        double sample_rate_hz, uint32_t window)
{
  const uint32_t B = bands->band_count;
  const float *c = model->band_centres_hz;
  const double nyquist = sample_rate_hz / 2.0;
  if (nyquist >= c[B - 1])
    return 1;
  bands->rolloff = calloc(B, sizeof(float));
  if (!bands->rolloff)
    return 0;

  const double spacing = sample_rate_hz / (double)window;
  const double edge = DRSN_ROLLOFF_EDGE * nyquist;
  const double reference = nyquist - DRSN_ROLLOFF_REFERENCE_HZ;
  bands->reference_bin =
      reference > 0.0 ? (uint32_t)floor(reference / spacing) + 1 : 0;
  if (bands->reference_bin >= bands->bins)
    bands->reference_bin = bands->bins - 1;

  /* Bins past the host's last one, at the same spacing, up to the model's
   * Nyquist frequency, weighted as drsn_bands_init weights real bins. */
  const double top = model->rate_hz / 2.0;
  uint32_t band = 0;
  for (uint32_t k = bands->bins; k * spacing <= top; k++) {
    const double f_hz = k * spacing;
    const double response = 1.0 / (1.0 + pow(f_hz / edge, 2 * DRSN_ROLLOFF_ORDER));
    uint32_t lo;
    float lo_weight, hi_weight;
    place_bin(c, B, f_hz, &band, &lo, &lo_weight, &hi_weight);
    bands->rolloff[lo] += (float)(lo_weight * response);
    if (lo + 1 < B)
      bands->rolloff[lo + 1] += (float)(hi_weight * response);
  }
  return 1;
}

drsn_status drsn_bands_init(drsn_bands *bands, const drsn_model *model,
                            double sample_rate_hz, uint32_t window,
                            drsn_error *err)
{
  memset(bands, 0, sizeof *bands);
  const uint32_t B = model->band_count;
  const float *c = model->band_centres_hz;
  bands->band_count = B;
  bands->bins = window / 2 + 1;
  bands->lo_band = malloc(bands->bins * sizeof *bands->lo_band);
  bands->lo_weight = malloc(bands->bins * sizeof *bands->lo_weight);
  bands->hi_weight = malloc(bands->bins * sizeof *bands->hi_weight);
  if (!bands->lo_band || !bands->lo_weight || !bands->hi_weight) {
    drsn_bands_free(bands);
    return drsn_error_set(err, DRSN_ERR_NO_MEMORY,
                          "engine: out of memory for %u band weights",
                          window / 2 + 1);
  }

  const double ratio = (double)model->window_samples / (double)window;
  bands->energy_scale = (float)(ratio * ratio);
  bands->feature_mean = model->feature_mean;
  bands->feature_scale = model->feature_scale;
  bands->running_mean = model->running_mean_ms > 0;
  bands->running_mean_decay = model->running_mean_decay;

  if (!rolloff_init(bands, model, sample_rate_hz, window)) {
    drsn_bands_free(bands);
    return drsn_error_set(err, DRSN_ERR_NO_MEMORY,
                          "engine: out of memory for %u band weights", B);
  }

  uint32_t band = 0;
  for (uint32_t k = 0; k < bands->bins; k++) {
    const double f_hz = (double)k * sample_rate_hz / (double)window;
    place_bin(c, B, f_hz, &band, &bands->lo_band[k], &bands->lo_weight[k],
              &bands->hi_weight[k]);
  }
  return DRSN_OK;
}

void drsn_bands_free(drsn_bands *bands)
{
  free(bands->lo_band);
  free(bands->lo_weight);
  free(bands->hi_weight);
  free(bands->rolloff);
  memset(bands, 0, sizeof *bands);
}

float drsn_bands_weight(const drsn_bands *bands, uint32_t band, uint32_t bin)
{
  if (bin >= bands->bins || band >= bands->band_count)
    return 0.0f;
  if (bands->lo_band[bin] == band)
    return bands->lo_weight[bin];
  if (bands->lo_band[bin] + 1 == band)
    return bands->hi_weight[bin];
  return 0.0f;
}

void drsn_bands_energy(const drsn_bands *bands, const float *spectrum,
                       float *energy)
{
  const uint32_t B = bands->band_count;
  for (uint32_t b = 0; b < B; b++)
    energy[b] = 0.0f;

  /* hi_weight is 0 for the last band, so reading energy[B] is avoided by
   * clamping the index; the product adds nothing there. */
  for (uint32_t k = 0; k < bands->bins; k++) {
    const float re = spectrum[2 * k], im = spectrum[2 * k + 1];
    const float power = re * re + im * im;
    const uint32_t lo = bands->lo_band[k];
    const uint32_t hi = lo + 1 < B ? lo + 1 : lo;
    energy[lo] += bands->lo_weight[k] * power;
    energy[hi] += bands->hi_weight[k] * power;
  }

  if (bands->rolloff) {
    float reference = 0.0f;
    for (uint32_t k = bands->reference_bin; k < bands->bins; k++) {
      const float re = spectrum[2 * k], im = spectrum[2 * k + 1];
      reference += re * re + im * im;
    }
    reference /= (float)(bands->bins - bands->reference_bin);
    for (uint32_t b = 0; b < B; b++)
      energy[b] += bands->rolloff[b] * reference;
  }

  for (uint32_t b = 0; b < B; b++)
    energy[b] *= bands->energy_scale;
}

void drsn_bands_reset_running_mean(const drsn_bands *bands,
                                   float *running_mean)
{
  for (uint32_t b = 0; b < bands->band_count; b++)
    running_mean[b] = bands->feature_mean[b];
}

void drsn_bands_features(const drsn_bands *bands, const float *energy,
                         float *running_mean, float *features)
{
  const uint32_t B = bands->band_count;
  const float decay = bands->running_mean_decay;
  for (uint32_t b = 0; b < B; b++) {
    const float log_energy = logf(energy[b] + DRSN_ENERGY_FLOOR);
    features[b] = (log_energy - bands->feature_mean[b]) * bands->feature_scale[b];
    if (bands->running_mean) {
      running_mean[b] = decay * running_mean[b] + (1.0f - decay) * log_energy;
      features[B + b] = (log_energy - running_mean[b]) * bands->feature_scale[b];
    }
  }
}

void drsn_bands_apply_gains(const drsn_bands *bands, const float *gains,
                            fftwf_complex *spectrum)
{
  const uint32_t B = bands->band_count;
  for (uint32_t k = 0; k < bands->bins; k++) {
    const uint32_t lo = bands->lo_band[k];
    const uint32_t hi = lo + 1 < B ? lo + 1 : lo;
    const float g =
        bands->lo_weight[k] * gains[lo] + bands->hi_weight[k] * gains[hi];
    spectrum[k][0] *= g;
    spectrum[k][1] *= g;
  }
}
