/*
 * drsn_pitch.c: the pitch-correlation input channel (docs/design.md,
 * Features): a pitch period per frame, then how well each band of the
 * frame's spectrum matches the spectrum one period earlier.
 */
#include "drsn_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Period search range in ms and the score terms; train/drsn/model.py has
 * the same constants. */
#define DRSN_PITCH_MIN_MS 2.5
#define DRSN_PITCH_MAX_MS 16.0
#define DRSN_PITCH_EPSILON 1e-9
#define DRSN_PITCH_LAG_PENALTY 0.1
/* A window one lag back with less than this fraction of the frame's energy
 * (60 dB less) cannot match it. Its score is 0: the correlation there is
 * FFT rounding noise, and dividing it by the tiny energy would inflate it. */
#define DRSN_PITCH_MIN_ENERGY_RATIO 1e-6
/* Pitch filter: floors of the squared strength and of the band energies it
 * divides by. */
#define DRSN_PITCH_FILTER_FLOOR 1e-12f
#define DRSN_PITCH_FILTER_EPSILON 1e-8f
/* Above 1.5 times this rate the search runs on a decimated copy of the
 * segment. */
#define DRSN_PITCH_SEARCH_RATE 48000.0

/* Returns a band's normalised correlation from its sums of Re(X conj P),
 * |X|^2 and |P|^2. */
static inline float band_correlation(float cross, float px, float pp)
{
  return cross / sqrtf(px * pp + (float)DRSN_PITCH_EPSILON);
}

drsn_status drsn_pitch_init(drsn_pitch *p, const drsn_model *model,
                            double sample_rate_hz, const drsn_stft *stft,
                            drsn_error *err)
{
  memset(p, 0, sizeof *p);
  if (!model->pitch)
    return DRSN_OK;
  p->window = stft->window;
  p->min_lag = (uint32_t)lround(DRSN_PITCH_MIN_MS * sample_rate_hz / 1000.0);
  p->max_lag = (uint32_t)lround(DRSN_PITCH_MAX_MS * sample_rate_hz / 1000.0);
  if (p->min_lag < 1)
    p->min_lag = 1;
  if (p->max_lag <= p->min_lag)
    p->max_lag = p->min_lag + 1;
  /* The decimated lag range lies within the host-rate one: factor *
   * search_min >= min_lag and factor * search_max <= max_lag. At 72 kHz and
   * above, max_lag / factor is several hundred, far above search_min. */
  p->factor = 1;
  if (sample_rate_hz > 1.5 * DRSN_PITCH_SEARCH_RATE)
    p->factor = (uint32_t)lround(sample_rate_hz / DRSN_PITCH_SEARCH_RATE);
  const uint32_t f = p->factor;
  p->search_window = p->window / f;
  p->search_min = (p->min_lag + f - 1) / f;
  p->search_max = p->max_lag / f;
  /* Smallest power of two that contains the searched segment: the
   * correlation at lags 0 .. search_max then has no circular wrap. */
  const uint32_t span = p->search_max + p->search_window;
  p->size = 1;
  while (p->size < span)
    p->size <<= 1;

  const uint32_t half = p->size / 2 + 1, B = model->band_count;
  if (f > 1) {
    p->decimated = malloc(span * sizeof(float));
    if (!p->decimated) {
      drsn_pitch_free(p);
      return drsn_error_set(err, DRSN_ERR_NO_MEMORY,
                            "engine: out of memory for the pitch search");
    }
  }
  p->buffer = fftwf_malloc(p->size * sizeof(float));
  p->corr = fftwf_malloc(p->size * sizeof(float));
  p->segment_spectrum = fftwf_malloc(half * sizeof(fftwf_complex));
  p->frame_spectrum = fftwf_malloc(half * sizeof(fftwf_complex));
  p->delayed = fftwf_malloc(p->window * sizeof(float));
  p->delayed_spectrum = fftwf_malloc(stft->bins * sizeof(fftwf_complex));
  p->sums = calloc(6 * (size_t)B, sizeof(float));
  p->scratch = calloc(2 * (size_t)B, sizeof(float));
  if (!p->buffer || !p->corr || !p->segment_spectrum || !p->frame_spectrum ||
      !p->delayed || !p->delayed_spectrum || !p->sums || !p->scratch) {
    drsn_pitch_free(p);
    return drsn_error_set(err, DRSN_ERR_NO_MEMORY,
                          "engine: out of memory for the pitch search");
  }

  drsn_fftw_lock();
  p->forward = fftwf_plan_dft_r2c_1d((int)p->size, p->buffer,
                                     p->segment_spectrum, FFTW_ESTIMATE);
  p->inverse = fftwf_plan_dft_c2r_1d((int)p->size, p->segment_spectrum,
                                     p->corr, FFTW_ESTIMATE);
  drsn_fftw_unlock();
  if (!p->forward || !p->inverse) {
    drsn_pitch_free(p);
    return drsn_error_set(err, DRSN_ERR_FFT_PLAN,
                          "engine: FFTW could not plan a %u-point transform",
                          p->size);
  }
  return DRSN_OK;
}

void drsn_pitch_free(drsn_pitch *p)
{
  if (p->forward || p->inverse) {
    drsn_fftw_lock();
    if (p->forward)
      fftwf_destroy_plan(p->forward);
    if (p->inverse)
      fftwf_destroy_plan(p->inverse);
    drsn_fftw_unlock();
  }
  fftwf_free(p->buffer);
  fftwf_free(p->corr);
  fftwf_free(p->segment_spectrum);
  fftwf_free(p->frame_spectrum);
  fftwf_free(p->delayed);
  fftwf_free(p->delayed_spectrum);
  free(p->decimated);
  free(p->sums);
  free(p->scratch);
  memset(p, 0, sizeof *p);
}

/* Returns the score of a lag from lo .. hi whose window of delayed_energy
 * correlates with the frame by cross: the normalised correlation, 0 for a
 * window 60 dB or more below the frame, less the penalty on long lags. */
static double lag_score(double cross, double frame_energy,
                        double delayed_energy, uint32_t lag, uint32_t lo,
                        uint32_t hi)
{
  double score = 0.0;
  if (delayed_energy > DRSN_PITCH_MIN_ENERGY_RATIO * frame_energy)
    score = cross / sqrt(frame_energy * delayed_energy + DRSN_PITCH_EPSILON);
  return score -
         DRSN_PITCH_LAG_PENALTY * (double)(lag - lo) / (double)(hi - lo);
}

/* Returns the period in samples of segment[hi + W], whose last W samples are
 * the frame, searched over lags lo .. hi. */
static uint32_t search(drsn_pitch *p, const float *segment, uint32_t W,
                       uint32_t lo, uint32_t hi)
{
  const uint32_t n = p->size, half = n / 2 + 1;

  /* Spectra of the frame and of the whole segment, both zero-padded. */
  memcpy(p->buffer, segment + hi, W * sizeof(float));
  memset(p->buffer + W, 0, (n - W) * sizeof(float));
  fftwf_execute_dft_r2c(p->forward, p->buffer, p->frame_spectrum);
  memcpy(p->buffer, segment, (hi + W) * sizeof(float));
  memset(p->buffer + hi + W, 0, (n - hi - W) * sizeof(float));
  fftwf_execute_dft_r2c(p->forward, p->buffer, p->segment_spectrum);

  /* conj(frame) * segment: corr[m] = sum_k frame[k] * segment[k + m]. */
  fftwf_complex *s = p->segment_spectrum;
  fftwf_complex *f = p->frame_spectrum;
  for (uint32_t k = 0; k < half; k++) {
    const float re = f[k][0] * s[k][0] + f[k][1] * s[k][1];
    const float im = f[k][0] * s[k][1] - f[k][1] * s[k][0];
    s[k][0] = re;
    s[k][1] = im;
  }
  fftwf_execute_dft_c2r(p->inverse, s, p->corr);

  /* Energies of the frame and of the W samples at offset m, in double. */
  double frame_energy = 0.0, delayed_energy = 0.0;
  for (uint32_t i = 0; i < W; i++) {
    frame_energy += (double)segment[hi + i] * segment[hi + i];
    delayed_energy += (double)segment[hi - lo + i] * segment[hi - lo + i];
  }

  /* Offset m = hi - lag, from the shortest lag down; a later lag must
   * score strictly higher, so ties go to the shortest. */
  uint32_t best_m = hi - lo;
  double best = -INFINITY;
  for (uint32_t m = hi - lo + 1; m-- > 0;) {
    if (m < hi - lo) /* slide the window one sample back */
      delayed_energy += (double)segment[m] * segment[m] -
                        (double)segment[m + W] * segment[m + W];
    const double corr = (double)(p->corr[m] / (float)n);
    const double score =
        lag_score(corr, frame_energy, delayed_energy, hi - m, lo, hi);
    if (score > best) {
      best = score;
      best_m = m;
    }
  }
  return hi - best_m;
}

/* Fills p->decimated with the means of factor consecutive samples of the
 * segment, the last mean ending on its last sample. A mean is a crude
 * low-pass filter. It is enough because the search only has to land within
 * factor - 1 samples of the period, and refine() does the rest. */
static void decimate(drsn_pitch *p, const float *segment)
{
  const uint32_t f = p->factor;
  const uint32_t count = p->search_max + p->search_window;
  const uint32_t last = p->max_lag + p->window - 1;
  const float scale = 1.0f / (float)f;
  for (uint32_t j = 0; j < count; j++) {
    /* The first mean starts at sample 0 or later: count * f <= max_lag +
     * window. */
    const float *x = segment + last + 1 - (count - j) * f;
    float sum = 0.0f;
    for (uint32_t t = 0; t < f; t++)
      sum += x[t];
    p->decimated[j] = sum * scale;
  }
}

/* Lags that refine() correlates in one pass over the frame. */
#define DRSN_PITCH_REFINE_GROUP 8

/* Returns the best host-rate lag within factor - 1 samples of factor *
 * coarse, scored by lag_score() as in search(), the shortest on a tie. */
static uint32_t refine(const drsn_pitch *p, const float *segment,
                       uint32_t coarse)
{
  enum { G = DRSN_PITCH_REFINE_GROUP };
  const uint32_t W = p->window, lo = p->min_lag, hi = p->max_lag;
  const uint32_t f = p->factor, centre = coarse * f;
  const uint32_t first = centre >= lo + (f - 1) ? centre - (f - 1) : lo;
  const uint32_t last = centre + (f - 1) <= hi ? centre + (f - 1) : hi;
  const float *frame = segment + hi;
  double frame_energy = 0.0;
  for (uint32_t i = 0; i < W; i++)
    frame_energy += (double)frame[i] * frame[i];

  uint32_t best_lag = first;
  double best = -INFINITY;
  for (uint32_t group = first; group <= last; group += G) {
    /* Always G lags, so that the inner loop has a fixed length. Near
     * max_lag the group starts earlier and scores only its new lags. With
     * a factor of 4 or less, one group covers all the candidates. */
    const uint32_t start = group + (G - 1) <= hi ? group : hi - (G - 1);
    /* cross[j] belongs to the lag start + G - 1 - j, so that the inner
     * loop reads forwards and vectorises. */
    float cross[G] = {0};
    const float *base = frame - (start + (G - 1));
    for (uint32_t i = 0; i < W; i++) {
      const float v = frame[i];
      const float *x = base + i;
      for (uint32_t j = 0; j < G; j++)
        cross[j] += v * x[j];
    }
    /* The energy of the window at lag start, then updated as the window
     * moves one sample back per lag. */
    const float *window = frame - start;
    double energy = 0.0;
    for (uint32_t i = 0; i < W; i++)
      energy += (double)window[i] * window[i];
    for (uint32_t l = 0; l < G; l++) {
      const uint32_t lag = start + l;
      if (l > 0) {
        const float in = frame[-(ptrdiff_t)lag];
        const float out = frame[(ptrdiff_t)W - (ptrdiff_t)lag];
        energy += (double)in * in - (double)out * out;
      }
      if (lag < group || lag > last)
        continue;
      const double score =
          lag_score(cross[G - 1 - l], frame_energy, energy, lag, lo, hi);
      if (score > best) {
        best = score;
        best_lag = lag;
      }
    }
  }
  return best_lag;
}

uint32_t drsn_pitch_period(drsn_pitch *p, const float *segment)
{
  if (p->factor == 1)
    return search(p, segment, p->window, p->min_lag, p->max_lag);
  decimate(p, segment);
  const uint32_t coarse = search(p, p->decimated, p->search_window,
                                 p->search_min, p->search_max);
  return refine(p, segment, coarse);
}

void drsn_pitch_clear(drsn_pitch *p, uint32_t band_count)
{
  memset(p->sums + 3 * (size_t)band_count, 0,
         3 * (size_t)band_count * sizeof(float));
}

void drsn_pitch_accumulate(drsn_pitch *p, const drsn_stft *stft,
                           const drsn_bands *bands, const float *segment,
                           const float *spectrum,
                           fftwf_complex *delayed_spectrum, float *sums)
{
  const uint32_t W = p->window, B = bands->band_count;
  const uint32_t lag = drsn_pitch_period(p, segment);

  const float *restrict w = stft->analysis;
  const float *restrict x = segment + p->max_lag - lag;
  for (uint32_t i = 0; i < W; i++)
    p->delayed[i] = x[i] * w[i];
  fftwf_execute_dft_r2c(stft->forward, p->delayed, delayed_spectrum);

  /* This channel's sums first; adding them to the totals as a whole keeps
   * the totals of identical channels exact multiples of one's. */
  float *cross = sums, *px = sums + B, *pp = sums + 2 * B;
  memset(sums, 0, 3 * (size_t)B * sizeof(float));
  fftwf_complex *d = delayed_spectrum;
  for (uint32_t k = 0; k < bands->bins; k++) {
    const float xr = spectrum[2 * k], xi = spectrum[2 * k + 1];
    const float dr = d[k][0], di = d[k][1];
    const float c = xr * dr + xi * di, ex = xr * xr + xi * xi,
                ed = dr * dr + di * di;
    const uint32_t lo = bands->lo_band[k];
    const uint32_t hi = lo + 1 < B ? lo + 1 : lo;
    const float wl = bands->lo_weight[k], wh = bands->hi_weight[k];
    cross[lo] += wl * c;
    cross[hi] += wh * c;
    px[lo] += wl * ex;
    px[hi] += wh * ex;
    pp[lo] += wl * ed;
    pp[hi] += wh * ed;
  }
  float *total = p->sums + 3 * (size_t)B;
  for (uint32_t i = 0; i < 3 * B; i++)
    total[i] += sums[i];
}

void drsn_pitch_finish(const drsn_pitch *p, uint32_t band_count,
                       uint32_t channels, float *out)
{
  const uint32_t B = band_count;
  const float *total = p->sums + 3 * (size_t)B;
  const float *cross = total, *px = total + B, *pp = total + 2 * B;
  /* Means over the channels, so that identical channels give exactly the
   * value of one (for two channels the division is exact). */
  const float scale = 1.0f / (float)channels;
  for (uint32_t b = 0; b < B; b++) {
    const float c = cross[b] * scale, x = px[b] * scale, d = pp[b] * scale;
    out[b] = band_correlation(c, x, d);
  }
}

void drsn_pitch_correlation(drsn_pitch *p, const drsn_stft *stft,
                            const drsn_bands *bands, const float *segment,
                            const float *spectrum, float *out)
{
  drsn_pitch_clear(p, bands->band_count);
  drsn_pitch_accumulate(p, stft, bands, segment, spectrum, p->delayed_spectrum,
                        p->sums);
  drsn_pitch_finish(p, bands->band_count, 1, out);
}

void drsn_pitch_filter(const drsn_pitch *p, const drsn_bands *bands,
                       const float *sums, const float *gains,
                       const float *delayed_spectrum,
                       fftwf_complex *spectrum)
{
  const uint32_t B = bands->band_count;
  const float *cross = sums, *px = sums + B, *pp = sums + 2 * B;
  float *alpha = p->scratch, *mixed = p->scratch + B;

  /* Strength per band: full where the band is more periodic than its gain
   * allows for, else rho^2 (1 - g^2) / (g^2 (1 - rho^2)), capped at 1. */
  for (uint32_t b = 0; b < B; b++) {
    float rho = band_correlation(cross[b], px[b], pp[b]);
    rho = rho > 0.0f ? rho : 0.0f;
    const float g = gains[b], g2 = g * g;
    float r;
    if (rho > g) {
      r = 1.0f;
    } else {
      float r2 = rho * rho * (1.0f - g2) / (g2 * (1.0f - rho * rho) + 1e-3f);
      r2 = r2 < DRSN_PITCH_FILTER_FLOOR ? DRSN_PITCH_FILTER_FLOOR
                                         : (r2 > 1.0f ? 1.0f : r2);
      r = sqrtf(r2);
    }
    /* The strength is scaled by g (1 - g^2). Where the network removes most
     * of a band, mixing would only reshuffle the residual noise from frame
     * to frame. Where it keeps nearly all of the band, there is little noise
     * to take out. */
    alpha[b] = r * g * (1.0f - g2) *
               sqrtf(px[b] / (pp[b] + DRSN_PITCH_FILTER_EPSILON));
    mixed[b] = 0.0f;
  }

  for (uint32_t k = 0; k < bands->bins; k++) {
    const uint32_t lo = bands->lo_band[k];
    const uint32_t hi = lo + 1 < B ? lo + 1 : lo;
    const float wl = bands->lo_weight[k], wh = bands->hi_weight[k];
    const float a = wl * alpha[lo] + wh * alpha[hi];
    const float re = spectrum[k][0] + a * delayed_spectrum[2 * k];
    const float im = spectrum[k][1] + a * delayed_spectrum[2 * k + 1];
    spectrum[k][0] = re;
    spectrum[k][1] = im;
    const float e = re * re + im * im;
    mixed[lo] += wl * e;
    mixed[hi] += wh * e;
  }

  /* Each band back to its energy before the mixing, with the norms
   * interpolated to bins as gains are. */
  for (uint32_t b = 0; b < B; b++)
    mixed[b] = sqrtf((px[b] + DRSN_PITCH_FILTER_EPSILON) /
                     (mixed[b] + DRSN_PITCH_FILTER_EPSILON));
  drsn_bands_apply_gains(bands, mixed, spectrum);
}
