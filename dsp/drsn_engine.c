/*
 * drsn_engine.c: streaming glue between host buffers, the STFT, the band
 * features, the network and the gains (docs/design.md, Streaming).
 */
#include "drsn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

#define DRSN_MIN_RATE_HZ 8000.0
#define DRSN_MAX_RATE_HZ 192000.0
#define DRSN_DEFAULT_LIMIT_DB 30.0f
#define DRSN_MAX_LIMIT_DB 100.0f
/* Input at or beyond this magnitude is clamped. Like non-finite input, it
 * pauses the network (see the hold field of drsn_channel). */
#define DRSN_MAX_INPUT 1000.0f
/* Magnitudes below this are flushed to zero in the audio path. */
#define DRSN_TINY 1e-30f
/* Hops over which the DC offset estimate averages (1 s with 10 ms hops),
 * and the shortest run of zero samples that counts as digital silence,
 * which has no offset. train/drsn/model.py (dc_offsets) has the same
 * constants. */
#define DRSN_DC_HOPS 100u
#define DRSN_DC_SILENT_RUN 32u

/** Turns on flush-to-zero (and denormals-are-zero) and returns the old
 * floating-point control state. */
static uint64_t denormals_off(void)
{
#if defined(__SSE__) || defined(__x86_64__)
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u); /* FTZ | DAZ */
  return csr;
#elif defined(__aarch64__)
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (UINT64_C(1) << 24)));
  return fpcr;
#else
  return 0; /* the audio path flushes tiny values itself */
#endif
}

static void denormals_restore(uint64_t saved)
{
#if defined(__SSE__) || defined(__x86_64__)
  _mm_setcsr((unsigned int)saved);
#elif defined(__aarch64__)
  __asm__ volatile("msr fpcr, %0" : : "r"(saved));
#else
  (void)saved;
#endif
}

/** Audio state of one channel. */
typedef struct {
  float *input;            /**< [history + window] last samples, oldest first */
  float *ola;              /**< [window] overlap-add accumulator */
  float *queue;            /**< [hop] finished output samples */
  fftwf_complex *spectrum; /**< [bins] spectrum of the current frame */
  float *energy;           /**< [B] band energies of the current frame */
  /* With the pitch input: the spectrum one period earlier and the band
   * sums of the pitch correlation, kept for the pitch filter. */
  fftwf_complex *pitch_spectrum; /**< [bins] */
  float *pitch_sums;             /**< [3][B] */
  /* Hops still to come whose window contains a replaced (non-finite or
   * clamped) sample of this channel. They keep the last gains and leave the
   * running mean and the network state as they were before the bad input. */
  uint32_t hold;
  /* DC offset estimate, subtracted from the samples of each hop that are
   * not digital silence, and the number of hops it averages (up to
   * DRSN_DC_HOPS). dc_sent keeps what was subtracted from each sample of the
   * last window, hop by hop (indexed by hop count modulo the overlap), to
   * add back to the output that comes from it. dc_zero_run counts the zero
   * samples that end the last hop. */
  double dc;
  uint32_t dc_hops;
  uint32_t dc_zero_run;
  float *dc_sent; /**< [window] */
} drsn_channel;

struct drsn_engine {
  const drsn_model *model;
  uint32_t channels;
  drsn_stft stft;
  drsn_bands bands;
  drsn_pitch pitch;
  /* Samples each channel keeps before its analysis window: the pitch
   * search's longest period, or 0. */
  uint32_t history;
  drsn_channel ch[DRSN_MAX_CHANNELS];

  /* One network per channel; linked mode uses the first only. */
  drsn_net *nets[DRSN_MAX_CHANNELS];
  float *features[DRSN_MAX_CHANNELS]; /**< [I][B] per net */
  float *running_mean[DRSN_MAX_CHANNELS]; /**< [B] per net, log energy */
  float *gains[DRSN_MAX_CHANNELS];    /**< [B] raw sigmoid gains per net */
  float voice[DRSN_MAX_CHANNELS];
  float *limited;     /**< [B] gains after the reduction limit */
  unsigned char *silent; /**< [hop] digital silence marks of track_dc */
  float *energy_mean; /**< [B] linked mode */

  /* Controls, written by the setters. */
  int linked;
  float limit_db;
  float min_gain; /**< 10^(-limit_db / 20) */

  /* Streaming position and meters. */
  uint32_t fill; /**< samples of the current hop already received */
  uint64_t frames;
  uint64_t replaced; /**< input samples replaced since the last reset */
  float voice_probability;
  float reduction_db;
};

static void channel_free(drsn_channel *c)
{
  fftwf_free(c->input);
  fftwf_free(c->ola);
  fftwf_free(c->queue);
  free(c->dc_sent);
  fftwf_free(c->spectrum);
  free(c->energy);
  fftwf_free(c->pitch_spectrum);
  free(c->pitch_sums);
  memset(c, 0, sizeof *c);
}

void drsn_engine_destroy(drsn_engine *e)
{
  if (!e)
    return;
  for (uint32_t c = 0; c < DRSN_MAX_CHANNELS; c++) {
    channel_free(&e->ch[c]);
    drsn_net_destroy(e->nets[c]);
    free(e->features[c]);
    free(e->running_mean[c]);
    free(e->gains[c]);
  }
  free(e->limited);
  free(e->silent);
  free(e->energy_mean);
  drsn_pitch_free(&e->pitch);
  drsn_bands_free(&e->bands);
  drsn_stft_free(&e->stft);
  free(e);
}

drsn_status drsn_engine_create(const drsn_model *model, double sample_rate_hz,
                               uint32_t channels, drsn_engine **out,
                               drsn_error *err)
{
  if (out)
    *out = NULL;
  if (!model || !out)
    return drsn_error_set(err, DRSN_ERR_INVALID_ARGUMENT,
                          "engine: NULL model or output pointer");
  if (!(sample_rate_hz >= DRSN_MIN_RATE_HZ &&
        sample_rate_hz <= DRSN_MAX_RATE_HZ))
    return drsn_error_set(err, DRSN_ERR_SAMPLE_RATE,
                          "engine: sample rate %.10g Hz is outside "
                          "8000..192000 Hz",
                          sample_rate_hz);
  if (channels < 1 || channels > DRSN_MAX_CHANNELS)
    return drsn_error_set(err, DRSN_ERR_CHANNELS,
                          "engine: channel count %u is outside 1..%d",
                          channels, DRSN_MAX_CHANNELS);

  drsn_engine *e = calloc(1, sizeof *e);
  if (!e)
    return drsn_error_set(err, DRSN_ERR_NO_MEMORY,
                          "engine: out of memory for the engine");
  e->model = model;
  e->channels = channels;

  drsn_status status = drsn_stft_init(&e->stft, model, sample_rate_hz, err);
  if (status != DRSN_OK) {
    drsn_engine_destroy(e);
    return status;
  }
  status = drsn_bands_init(&e->bands, model, sample_rate_hz, e->stft.window,
                           err);
  if (status != DRSN_OK) {
    drsn_engine_destroy(e);
    return status;
  }

  status = drsn_pitch_init(&e->pitch, model, sample_rate_hz, &e->stft, err);
  if (status != DRSN_OK) {
    drsn_engine_destroy(e);
    return status;
  }
  e->history = e->pitch.max_lag;

  const uint32_t W = e->stft.window, hop = e->stft.hop, B = model->band_count;
  int ok = 1;
  for (uint32_t c = 0; ok && c < channels; c++) {
    drsn_channel *ch = &e->ch[c];
    ch->input = fftwf_malloc((e->history + W) * sizeof(float));
    ch->ola = fftwf_malloc(W * sizeof(float));
    ch->queue = fftwf_malloc(hop * sizeof(float));
    ch->dc_sent = calloc(W, sizeof(float));
    ch->spectrum = fftwf_malloc(e->stft.bins * sizeof(fftwf_complex));
    ch->energy = calloc(B, sizeof(float));
    if (model->pitch) {
      ch->pitch_spectrum = fftwf_malloc(e->stft.bins * sizeof(fftwf_complex));
      ch->pitch_sums = calloc(3 * (size_t)B, sizeof(float));
      ok = ch->pitch_spectrum && ch->pitch_sums;
    }
    e->features[c] = calloc((size_t)model->input_channels * B, sizeof(float));
    e->running_mean[c] = calloc(B, sizeof(float));
    e->gains[c] = calloc(B, sizeof(float));
    ok = ok && ch->input && ch->ola && ch->queue && ch->dc_sent &&
         ch->spectrum && ch->energy &&
         e->features[c] && e->running_mean[c] && e->gains[c];
    if (ok) {
      status = drsn_net_create(model, &e->nets[c], err);
      if (status != DRSN_OK) {
        drsn_engine_destroy(e);
        return status;
      }
    }
  }
  e->limited = calloc(B, sizeof(float));
  e->silent = calloc(hop, 1);
  e->energy_mean = calloc(B, sizeof(float));
  if (!ok || !e->limited || !e->silent || !e->energy_mean) {
    drsn_engine_destroy(e);
    return drsn_error_set(err, DRSN_ERR_NO_MEMORY,
                          "engine: out of memory for %u channels of %u "
                          "samples",
                          channels, W);
  }

  e->linked = 1;
  drsn_engine_set_reduction_limit_db(e, DRSN_DEFAULT_LIMIT_DB);
  drsn_engine_reset(e);
  *out = e;
  drsn_error_set(err, DRSN_OK, NULL);
  return DRSN_OK;
}

void drsn_engine_reset(drsn_engine *e)
{
  if (!e)
    return;
  const uint32_t W = e->stft.window, hop = e->stft.hop;
  for (uint32_t c = 0; c < e->channels; c++) {
    memset(e->ch[c].input, 0, (e->history + W) * sizeof(float));
    memset(e->ch[c].ola, 0, W * sizeof(float));
    memset(e->ch[c].queue, 0, hop * sizeof(float));
    drsn_net_reset(e->nets[c]);
    drsn_bands_reset_running_mean(&e->bands, e->running_mean[c]);
    memset(e->features[c], 0,
           (size_t)e->model->input_channels * e->model->band_count * sizeof(float));
    /* Unity gains until the network has run: hops held from the start pass
     * the input through instead of attenuating it to the limit. */
    for (uint32_t b = 0; b < e->model->band_count; b++)
      e->gains[c][b] = 1.0f;
    e->voice[c] = 0.0f;
    e->ch[c].hold = 0;
    e->ch[c].dc = 0.0;
    e->ch[c].dc_hops = 0;
    e->ch[c].dc_zero_run = 0;
    memset(e->ch[c].dc_sent, 0, W * sizeof(float));
  }
  e->fill = 0;
  e->frames = 0;
  e->replaced = 0;
  e->voice_probability = 0.0f;
  e->reduction_db = 0.0f;
}

uint32_t drsn_engine_latency_samples(const drsn_engine *e)
{
  return e ? e->stft.window : 0;
}

uint32_t drsn_engine_hop_samples(const drsn_engine *e)
{
  return e ? e->stft.hop : 0;
}

void drsn_engine_set_reduction_limit_db(drsn_engine *e, float limit_db)
{
  if (!e || isnan(limit_db))
    return;
  if (limit_db < 0.0f)
    limit_db = 0.0f;
  if (limit_db > DRSN_MAX_LIMIT_DB)
    limit_db = DRSN_MAX_LIMIT_DB;
  e->limit_db = limit_db;
  e->min_gain = limit_db == 0.0f ? 1.0f : powf(10.0f, -limit_db / 20.0f);
}

void drsn_engine_set_linked(drsn_engine *e, int linked)
{
  if (!e)
    return;
  linked = linked != 0;
  if (linked == e->linked)
    return;

  /* The nets now see different features; stale history would mislead them. */
  for (uint32_t c = 0; c < e->channels; c++) {
    drsn_net_reset(e->nets[c]);
    drsn_bands_reset_running_mean(&e->bands, e->running_mean[c]);
  }
  e->linked = linked;
}

float drsn_engine_voice_probability(const drsn_engine *e)
{
  return e ? e->voice_probability : 0.0f;
}

float drsn_engine_reduction_db(const drsn_engine *e)
{
  return e ? e->reduction_db : 0.0f;
}

uint64_t drsn_engine_replaced_samples(const drsn_engine *e)
{
  return e ? e->replaced : 0;
}

/** Runs one network and keeps its outputs sane. */
static void run_net(drsn_engine *e, uint32_t index)
{
  const uint32_t B = e->model->band_count;
  float *gains = e->gains[index];
  float v = drsn_net_forward(e->nets[index], e->features[index], gains);

  /* Only a pathological model gets here; its poisoned history is dropped. */
  float check = v;
  for (uint32_t b = 0; b < B; b++)
    check += gains[b];
  if (!isfinite(check)) {
    drsn_net_reset(e->nets[index]);
    for (uint32_t b = 0; b < B; b++)
      gains[b] = 1.0f;
    v = 0.0f;
  }
  e->voice[index] = v;
}

/** Adds channel c's band sums to the pitch correlation being built. */
static void pitch_accumulate(drsn_engine *e, uint32_t c)
{
  drsn_pitch_accumulate(&e->pitch, &e->stft, &e->bands, e->ch[c].input,
                        (const float *)e->ch[c].spectrum,
                        e->ch[c].pitch_spectrum, e->ch[c].pitch_sums);
}

/** Marks in silent[] the samples of the newest hop that are digital
 * silence: zeros in a run of at least DRSN_DC_SILENT_RUN, counting the zeros
 * that ended the last hop, or in a run that reaches the end of the hop.
 * Returns how many samples are not silent. */
static uint32_t mark_silence(drsn_channel *ch, const float *samples,
                             uint32_t hop, unsigned char *silent)
{
  uint32_t sound = 0;
  uint32_t i = 0;
  while (i < hop) {
    if (samples[i] != 0.0f) {
      silent[i++] = 0;
      sound++;
      continue;
    }
    const uint32_t start = i;
    uint32_t end = start;
    while (end < hop && samples[end] == 0.0f)
      end++;
    const uint32_t run = end - start + (start == 0 ? ch->dc_zero_run : 0);
    const unsigned char mark = run >= DRSN_DC_SILENT_RUN || end == hop;
    for (i = start; i < end; i++)
      silent[i] = mark;
    if (!mark)
      sound += end - start;
  }
  /* The zeros that end this hop, for the run test of the next one. Only
   * runs up to DRSN_DC_SILENT_RUN matter, so the count stops there and
   * cannot wrap in a long silence. */
  uint32_t tail = 0;
  while (tail < hop && samples[hop - 1 - tail] == 0.0f)
    tail++;
  if (tail == hop)
    tail += ch->dc_zero_run;
  ch->dc_zero_run = tail < DRSN_DC_SILENT_RUN ? tail : DRSN_DC_SILENT_RUN;
  return sound;
}

/** Moves the channel's DC offset estimate towards the mean of the newest
 * hop's samples that are not digital silence, subtracts it from those
 * samples and records what each sample lost in the hop's part of dc_sent.
 * A hop of digital silence has no offset and clears the estimate, so that
 * silence in gives silence out. A channel whose window contains a replaced
 * sample keeps its estimate. */
static void track_dc(drsn_channel *ch, float *samples, uint32_t hop,
                     float *sent, unsigned char *silent)
{
  const uint32_t sound = mark_silence(ch, samples, hop, silent);
  if (ch->hold == 0) {
    if (sound == 0) {
      ch->dc = 0.0;
      ch->dc_hops = 0;
    } else {
      double sum = 0.0;
      for (uint32_t i = 0; i < hop; i++)
        sum += silent[i] ? 0.0 : (double)samples[i];
      if (ch->dc_hops < DRSN_DC_HOPS)
        ch->dc_hops++;
      ch->dc += (sum / (double)sound - ch->dc) / (double)ch->dc_hops;
      if (fabs(ch->dc) < DRSN_TINY)
        ch->dc = 0.0;
    }
  }
  const float dc = (float)ch->dc;
  for (uint32_t i = 0; i < hop; i++) {
    sent[i] = silent[i] ? 0.0f : dc;
    samples[i] -= sent[i];
  }
}

/** Analyses the last window, runs the network and emits one hop. */
static void process_hop(drsn_engine *e)
{
  const uint32_t C = e->channels, B = e->model->band_count;
  const uint32_t W = e->stft.window, hop = e->stft.hop;
  const uint32_t pitch_offset = (e->model->input_channels - 1) * B;
  const uint32_t overlap = W / hop;

  for (uint32_t c = 0; c < C; c++) {
    drsn_channel *ch = &e->ch[c];
    track_dc(ch, ch->input + e->history + (W - hop), hop,
             ch->dc_sent + (e->frames % overlap) * hop, e->silent);
    drsn_stft_analyse(&e->stft, ch->input + e->history, ch->spectrum);
    drsn_bands_energy(&e->bands, (const float *)ch->spectrum, ch->energy);
  }

  const uint32_t nets = e->linked ? 1 : C;
  /* Held hops keep the last gains and skip the pitch search, and with it
   * the pitch filter. A linked network is held while any channel is. */
  int held[DRSN_MAX_CHANNELS];
  int any_held = 0;
  for (uint32_t c = 0; c < C; c++) {
    held[c] = e->ch[c].hold > 0;
    any_held |= held[c];
    if (held[c])
      e->ch[c].hold--;
  }
  if (e->linked)
    for (uint32_t c = 0; c < C; c++)
      held[c] = any_held;

  if (e->linked && !any_held) {
    for (uint32_t b = 0; b < B; b++) {
      float sum = 0.0f;
      for (uint32_t c = 0; c < C; c++)
        sum += e->ch[c].energy[b];
      e->energy_mean[b] = sum / (float)C;
    }
    drsn_bands_features(&e->bands, e->energy_mean, e->running_mean[0],
                        e->features[0]);
    if (e->model->pitch) {
      /* The band sums of all channels together, so that each channel
       * counts by its energy and a silent one changes nothing. */
      drsn_pitch_clear(&e->pitch, B);
      for (uint32_t c = 0; c < C; c++)
        pitch_accumulate(e, c);
      drsn_pitch_finish(&e->pitch, B, C, e->features[0] + pitch_offset);
    }
    run_net(e, 0);
  } else if (!e->linked) {
    for (uint32_t c = 0; c < C; c++) {
      if (held[c])
        continue;
      drsn_bands_features(&e->bands, e->ch[c].energy, e->running_mean[c],
                          e->features[c]);
      if (e->model->pitch) {
        drsn_pitch_clear(&e->pitch, B);
        pitch_accumulate(e, c);
        drsn_pitch_finish(&e->pitch, B, 1, e->features[c] + pitch_offset);
      }
      run_net(e, c);
    }
  }

  float voice_sum = 0.0f, reduction_sum = 0.0f;
  const float min_gain = e->min_gain;
  for (uint32_t c = 0; c < C; c++) {
    drsn_channel *ch = &e->ch[c];
    const uint32_t n = e->linked ? 0 : c;
    memmove(ch->input, ch->input + hop,
            (e->history + W - hop) * sizeof(float));

    /* With a 0 dB limit every gain is 1: skip the multiply so the output
     * is the input delayed, up to FFT rounding. */
    if (min_gain < 1.0f) {
      const float *g = e->gains[n];
      for (uint32_t b = 0; b < B; b++) {
        const float v = g[b] < 1.0f ? g[b] : 1.0f;
        e->limited[b] = v >= min_gain ? v : min_gain;
      }
      if (e->model->pitch && !held[c])
        drsn_pitch_filter(&e->pitch, &e->bands, ch->pitch_sums, e->limited,
                          (const float *)ch->pitch_spectrum, ch->spectrum);
      drsn_bands_apply_gains(&e->bands, e->limited, ch->spectrum);
      if (c < nets)
        for (uint32_t b = 0; b < B; b++)
          reduction_sum += -20.0f * log10f(e->limited[b]);
    }
    if (c < nets)
      voice_sum += e->voice[n];

    drsn_stft_synthesise(&e->stft, ch->spectrum, ch->ola);
    /* The next hop of output comes from the input hop overlap - 1 hops
     * back: give it back the offset taken from that hop. */
    const float *dc = ch->dc_sent + ((e->frames + 1) % overlap) * hop;
    if (e->frames + 1 < overlap) {
      /* That hop is output from before the first input sample, within the
       * reported latency: it is silence by definition. The synthesis would
       * leave a little of the first hops' gains spread back in time. */
      memset(ch->queue, 0, hop * sizeof(float));
    } else {
      for (uint32_t i = 0; i < hop; i++)
        ch->queue[i] = ch->ola[i] + dc[i];
    }
    memmove(ch->ola, ch->ola + hop, (W - hop) * sizeof(float));
    memset(ch->ola + (W - hop), 0, hop * sizeof(float));
  }

  e->voice_probability = voice_sum / (float)nets;
  e->reduction_db = reduction_sum / (float)(nets * B);
  e->frames++;
}

/** Copies input into the channel's window, replacing unusable samples.
 * Returns the number of non-finite or out-of-range samples it replaced. */
static uint32_t take_input(float *restrict dst, const float *restrict src,
                           uint32_t n)
{
  if (!src) {
    memset(dst, 0, n * sizeof(float));
    return 0;
  }
  uint32_t replaced = 0;
  for (uint32_t i = 0; i < n; i++) {
    float v = src[i];
    const float mag = fabsf(v);
    const int out_of_range = !(mag < DRSN_MAX_INPUT);
    if (out_of_range)
      v = isfinite(v) ? copysignf(DRSN_MAX_INPUT, v) : 0.0f;
    else if (mag < DRSN_TINY)
      v = 0.0f;
    replaced += (uint32_t)out_of_range;
    dst[i] = v;
  }
  return replaced;
}

void drsn_engine_process(drsn_engine *e, const float *const *in,
                         float *const *out, uint32_t frames)
{
  if (!e || !in || !out)
    return;

  const uint64_t saved_fp_state = denormals_off();

  const uint32_t C = e->channels, W = e->stft.window, hop = e->stft.hop;
  uint32_t done = 0;
  while (done < frames) {
    uint32_t n = hop - e->fill;
    if (n > frames - done)
      n = frames - done;

    /* All inputs are read before any output is written: in[c] may be
     * out[c]. */
    for (uint32_t c = 0; c < C; c++) {
      const uint32_t replaced =
          take_input(e->ch[c].input + e->history + (W - hop) + e->fill,
                     in[c] ? in[c] + done : NULL, n);
      if (replaced) {
        e->replaced += replaced;
        e->ch[c].hold = (W + hop - 1) / hop; /* hops whose window contains it */
      }
    }
    for (uint32_t c = 0; c < C; c++)
      if (out[c])
        memcpy(out[c] + done, e->ch[c].queue + e->fill, n * sizeof(float));

    e->fill += n;
    done += n;
    if (e->fill == hop) {
      process_hop(e);
      e->fill = 0;
    }
  }

  denormals_restore(saved_fp_state);
}

/* ------------------------------------------------------------------------ */
/* Internals for tests and the bench                                        */

uint32_t drsn_engine_net_count(const drsn_engine *e)
{
  return e->linked ? 1 : e->channels;
}

const drsn_net *drsn_engine_net(const drsn_engine *e, uint32_t index)
{
  return index < e->channels ? e->nets[index] : NULL;
}

const float *drsn_engine_features(const drsn_engine *e, uint32_t index)
{
  return index < e->channels ? e->features[index] : NULL;
}

const float *drsn_engine_gains(const drsn_engine *e, uint32_t index)
{
  return index < e->channels ? e->gains[index] : NULL;
}

float drsn_engine_net_voice(const drsn_engine *e, uint32_t index)
{
  return index < e->channels ? e->voice[index] : 0.0f;
}

uint64_t drsn_engine_frames(const drsn_engine *e)
{
  return e->frames;
}

const drsn_bands *drsn_engine_bands(const drsn_engine *e)
{
  return &e->bands;
}
