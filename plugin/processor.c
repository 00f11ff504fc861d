/*
 * processor.c: dry/wet mix, residual listen, bypass and model crossfades
 * around a drsn engine. See processor.h for the threading contract.
 */
#include "processor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits of the dry path, equal to the ones drsn_engine_process applies to
 * its input (DRSN_MAX_INPUT and DRSN_TINY in dsp/drsn_engine.c), so that
 * the dry and wet signals are cleaned alike. */
#define DRY_MAX 1000.0f
#define DRY_TINY 1e-30f

struct fe_stage {
  drsn_model *model;
  drsn_engine *engine;
  char *path;
  uint32_t channels;
  uint32_t latency;
  uint32_t chunk;

  /* Dry delay line of `latency` samples per channel, so that the dry signal
   * lines up with the engine output. */
  float *ring[DRSN_MAX_CHANNELS];
  uint32_t ring_pos;

  /* Per-chunk results of fe_stage_run. */
  float *wet[DRSN_MAX_CHANNELS];
  float *dry[DRSN_MAX_CHANNELS];

  float *memory;
};

struct fe_processor {
  uint32_t channels;
  uint32_t chunk;
  float fade_step;     /* linear ramp increment per sample */
  float smooth_coeff;  /* one-pole coefficient per sample */
  double sample_rate;

  fe_stage *active;
  fe_stage *offered;
  fe_stage *retired;

  /* Crossfade position in samples: negative while the offered stage is
   * still filling its latency, fade_frames when it is complete. */
  int64_t swap_pos;
  uint32_t fade_frames;

  /* Smoothed control values. */
  int snap;
  float enabled;
  float mix;
  float residual;
  float limit_db;

  /* Scratch, chunk samples each. */
  float *input[DRSN_MAX_CHANNELS];
  float *out_a[DRSN_MAX_CHANNELS];
  float *env_enabled;
  float *env_mix;
  float *env_residual;
  float *memory;
};

static void set_error(drsn_error *err, drsn_status status, const char *text)
{
  if (err) {
    err->status = status;
    strncpy(err->message, text, sizeof err->message - 1);
    err->message[sizeof err->message - 1] = '\0';
  }
}

drsn_status fe_stage_create(drsn_model *model, const char *path,
                            double sample_rate_hz, uint32_t channels,
                            uint32_t chunk_frames, fe_stage **out,
                            drsn_error *err)
{
  *out = NULL;
  if (!model || channels < 1 || channels > DRSN_MAX_CHANNELS ||
      chunk_frames == 0) {
    drsn_model_free(model);
    set_error(err, DRSN_ERR_INVALID_ARGUMENT,
              "invalid stage arguments (model, channel count or chunk size)");
    return DRSN_ERR_INVALID_ARGUMENT;
  }

  fe_stage *stage = calloc(1, sizeof *stage);
  if (!stage) {
    drsn_model_free(model);
    set_error(err, DRSN_ERR_NO_MEMORY, "out of memory creating a stage");
    return DRSN_ERR_NO_MEMORY;
  }
  stage->model = model;
  stage->channels = channels;
  stage->chunk = chunk_frames;

  drsn_status status = drsn_engine_create(model, sample_rate_hz, channels,
                                          &stage->engine, err);
  if (status != DRSN_OK) {
    fe_stage_destroy(stage);
    return status;
  }
  stage->latency = drsn_engine_latency_samples(stage->engine);

  const char *name = path ? path : "";
  stage->path = malloc(strlen(name) + 1);
  size_t per_channel = (size_t)stage->latency + 2 * (size_t)chunk_frames;
  stage->memory = calloc(per_channel * channels, sizeof(float));
  if (!stage->path || !stage->memory) {
    fe_stage_destroy(stage);
    set_error(err, DRSN_ERR_NO_MEMORY, "out of memory creating a stage");
    return DRSN_ERR_NO_MEMORY;
  }
  strcpy(stage->path, name);

  for (uint32_t c = 0; c < channels; ++c) {
    float *base = stage->memory + per_channel * c;
    stage->wet[c] = base;
    stage->dry[c] = base + chunk_frames;
    stage->ring[c] = base + 2 * (size_t)chunk_frames;
  }
  *out = stage;
  return DRSN_OK;
}

drsn_status fe_stage_load(const char *path, double sample_rate_hz,
                          uint32_t channels, uint32_t chunk_frames,
                          fe_stage **out, drsn_error *err)
{
  drsn_model *model = NULL;
  drsn_status status;
  int builtin = !path || path[0] == '\0';

  *out = NULL;
  if (builtin) {
    status = drsn_model_load_default(&model, err);
  } else {
    status = drsn_model_load_file(path, &model, err);
  }
  if (status != DRSN_OK) {
    return status;
  }
  status = fe_stage_create(model, builtin ? NULL : path, sample_rate_hz,
                           channels, chunk_frames, out, err);
  if (status != DRSN_OK && !builtin && err) {
    /* Engine errors do not name the model; add the file the way the
     * loader's messages do. */
    char reason[sizeof err->message];
    memcpy(reason, err->message, sizeof reason);
    snprintf(err->message, sizeof err->message, "model '%.200s': %s", path,
             reason[0] ? reason : drsn_strerror(status));
  }
  return status;
}

drsn_status fe_stage_load_builtin(const char *name, double sample_rate_hz,
                                  uint32_t channels, uint32_t chunk_frames,
                                  fe_stage **out, drsn_error *err)
{
  drsn_model *model = NULL;

  *out = NULL;
  drsn_status status = drsn_model_load_builtin(name, &model, err);
  if (status != DRSN_OK) {
    return status;
  }
  return fe_stage_create(model, NULL, sample_rate_hz, channels, chunk_frames,
                         out, err);
}

void fe_stage_destroy(fe_stage *stage)
{
  if (!stage) {
    return;
  }
  drsn_engine_destroy(stage->engine);
  drsn_model_free(stage->model);
  free(stage->path);
  free(stage->memory);
  free(stage);
}

const char *fe_stage_path(const fe_stage *stage) { return stage->path; }

uint32_t fe_stage_latency(const fe_stage *stage) { return stage->latency; }

static void stage_reset(fe_stage *stage)
{
  drsn_engine_reset(stage->engine);
  for (uint32_t c = 0; c < stage->channels; ++c) {
    memset(stage->ring[c], 0, stage->latency * sizeof(float));
  }
  stage->ring_pos = 0;
}

/* Runs the engine over frames <= chunk samples of input and fills the wet
 * and dry scratch buffers. */
static void stage_run(fe_stage *stage, const fe_controls *controls,
                      float limit_db, float *const *input, uint32_t frames)
{
  drsn_engine_set_reduction_limit_db(stage->engine, limit_db);
  drsn_engine_set_linked(stage->engine, controls->linked);
  drsn_engine_process(stage->engine, (const float *const *)input, stage->wet,
                      frames);

  const uint32_t length = stage->latency;
  uint32_t pos = stage->ring_pos;
  for (uint32_t c = 0; c < stage->channels; ++c) {
    float *ring = stage->ring[c];
    float *dry = stage->dry[c];
    const float *x = input[c];
    if (length == 0) {
      memcpy(dry, x, frames * sizeof(float));
      continue;
    }
    pos = stage->ring_pos;
    for (uint32_t i = 0; i < frames; ++i) {
      dry[i] = ring[pos];
      ring[pos] = x[i];
      if (++pos == length) {
        pos = 0;
      }
    }
  }
  stage->ring_pos = pos;
}

drsn_status fe_processor_create(fe_stage *stage, double sample_rate_hz,
                                uint32_t channels, uint32_t chunk_frames,
                                fe_processor **out, drsn_error *err)
{
  *out = NULL;
  if (!stage || stage->channels != channels || stage->chunk != chunk_frames ||
      !(sample_rate_hz > 0.0)) {
    fe_stage_destroy(stage);
    set_error(err, DRSN_ERR_INVALID_ARGUMENT,
              "stage does not match the processor's channels or chunk size");
    return DRSN_ERR_INVALID_ARGUMENT;
  }

  fe_processor *p = calloc(1, sizeof *p);
  size_t scratch = (size_t)chunk_frames * (2 * channels + 3);
  float *memory = calloc(scratch, sizeof(float));
  if (!p || !memory) {
    free(p);
    free(memory);
    fe_stage_destroy(stage);
    set_error(err, DRSN_ERR_NO_MEMORY, "out of memory creating a processor");
    return DRSN_ERR_NO_MEMORY;
  }

  p->memory = memory;
  for (uint32_t c = 0; c < channels; ++c) {
    p->input[c] = memory + (size_t)chunk_frames * c;
    p->out_a[c] = memory + (size_t)chunk_frames * (channels + c);
  }
  p->env_enabled = memory + (size_t)chunk_frames * (2 * channels);
  p->env_mix = p->env_enabled + chunk_frames;
  p->env_residual = p->env_mix + chunk_frames;

  p->channels = channels;
  p->chunk = chunk_frames;
  p->sample_rate = sample_rate_hz;
  p->fade_frames = (uint32_t)lround(FE_FADE_SECONDS * sample_rate_hz);
  if (p->fade_frames < 1) {
    p->fade_frames = 1;
  }
  p->fade_step = 1.0f / (float)p->fade_frames;
  p->smooth_coeff =
      (float)(1.0 - exp(-1.0 / (FE_SMOOTH_SECONDS * sample_rate_hz)));
  p->active = stage;
  p->snap = 1;
  *out = p;
  return DRSN_OK;
}

void fe_processor_destroy(fe_processor *processor)
{
  if (!processor) {
    return;
  }
  fe_stage_destroy(processor->active);
  fe_stage_destroy(processor->offered);
  fe_stage_destroy(processor->retired);
  free(processor->memory);
  free(processor);
}

void fe_processor_reset(fe_processor *processor)
{
  stage_reset(processor->active);
  if (processor->offered) {
    stage_reset(processor->offered);
    processor->swap_pos = -(int64_t)processor->offered->latency;
  }
  processor->snap = 1;
}

static float move_linear(float value, float target, float step)
{
  if (value < target) {
    value += step;
    return value > target ? target : value;
  }
  value -= step;
  return value < target ? target : value;
}

/* Fills the per-sample envelopes of one chunk and advances the smoothers. */
static void advance_controls(fe_processor *p, const fe_controls *controls,
                             uint32_t frames)
{
  const float enabled = controls->enabled;
  const float residual = controls->residual;
  const float mix = controls->mix;
  const float step = p->fade_step;
  const float coeff = p->smooth_coeff;

  if (p->snap) {
    p->enabled = enabled;
    p->residual = residual;
    p->mix = mix;
    p->limit_db = controls->limit_db;
    p->snap = 0;
  }

  float e = p->enabled;
  float r = p->residual;
  float m = p->mix;
  for (uint32_t i = 0; i < frames; ++i) {
    e = move_linear(e, enabled, step);
    r = move_linear(r, residual, step);
    m += coeff * (mix - m);
    p->env_enabled[i] = e;
    p->env_residual[i] = r;
    p->env_mix[i] = m;
  }
  /* Land exactly on the target once within float resolution, so that a
   * settled mix of 1 gives the pure engine output. */
  if (fabsf(mix - m) < 1e-6f) {
    m = mix;
  }
  p->enabled = e;
  p->residual = r;
  p->mix = m;

  /* The engine applies the limit once per hop, so a per-chunk one-pole is
   * as smooth as a per-sample one. */
  const float chunk_coeff =
      1.0f - expf(-(float)frames / (float)(FE_SMOOTH_SECONDS * p->sample_rate));
  p->limit_db += chunk_coeff * (controls->limit_db - p->limit_db);
  if (fabsf(controls->limit_db - p->limit_db) < 1e-4f) {
    p->limit_db = controls->limit_db;
  }
}

/* Replaces a dry sample the way drsn_engine_process treats its input:
 * non-finite values become silence, magnitudes beyond DRY_MAX are clamped
 * and magnitudes below DRY_TINY, denormals included, become 0. */
static float sanitize_dry(float value)
{
  const float magnitude = fabsf(value);
  if (!(magnitude <= DRY_MAX)) {
    return isfinite(value) ? copysignf(DRY_MAX, value) : 0.0f;
  }
  return magnitude < DRY_TINY ? 0.0f : value;
}

/* Flushes results below DRY_TINY to 0. The mixing runs outside the
 * engine's flush-to-zero mode, so products of tiny samples and ramp values
 * can be denormal. */
static float flush_tiny(float value)
{
  return fabsf(value) < DRY_TINY ? 0.0f : value;
}

/* Mixes one stage's wet and dry chunk into out under the envelopes. */
static void mix_stage(const fe_processor *p, const fe_stage *stage,
                      float *const *out, uint32_t frames)
{
  for (uint32_t c = 0; c < p->channels; ++c) {
    const float *wet = stage->wet[c];
    const float *dry = stage->dry[c];
    float *y = out[c];
    for (uint32_t i = 0; i < frames; ++i) {
      const float e = p->env_enabled[i];
      if (e == 0.0f) {
        /* Full bypass passes the delayed input bit for bit, NaN and
         * denormals included. */
        y[i] = dry[i];
        continue;
      }
      const float m = p->env_mix[i];
      const float r = p->env_residual[i];
      const float d = sanitize_dry(dry[i]);
      /* Written as weighted sums so that settled controls (0 or 1) give
       * the wet, dry or residual signal bit for bit. */
      const float mixed = m * wet[i] + (1.0f - m) * d;
      const float processed = (1.0f - r) * mixed + r * (d - mixed);
      y[i] = flush_tiny(e * processed + (1.0f - e) * d);
    }
  }
}

static void process_chunk(fe_processor *p, const fe_controls *controls,
                          const float *const *in, float *const *out,
                          uint32_t offset, uint32_t frames)
{
  for (uint32_t c = 0; c < p->channels; ++c) {
    memcpy(p->input[c], in[c] + offset, frames * sizeof(float));
  }
  advance_controls(p, controls, frames);

  stage_run(p->active, controls, p->limit_db, p->input, frames);
  if (!p->offered) {
    float *dest[DRSN_MAX_CHANNELS];
    for (uint32_t c = 0; c < p->channels; ++c) {
      dest[c] = out[c] + offset;
    }
    mix_stage(p, p->active, dest, frames);
    return;
  }

  /* Model change: the offered stage runs alongside and takes over with a
   * linear crossfade once it has produced `latency` samples. */
  stage_run(p->offered, controls, p->limit_db, p->input, frames);
  mix_stage(p, p->active, p->out_a, frames);
  float *dest[DRSN_MAX_CHANNELS];
  for (uint32_t c = 0; c < p->channels; ++c) {
    dest[c] = out[c] + offset;
  }
  mix_stage(p, p->offered, dest, frames);

  const int64_t start = p->swap_pos;
  const float step = p->fade_step;
  for (uint32_t c = 0; c < p->channels; ++c) {
    const float *a = p->out_a[c];
    float *y = dest[c];
    int64_t pos = start;
    for (uint32_t i = 0; i < frames; ++i, ++pos) {
      float t = pos <= 0 ? 0.0f : (float)pos * step;
      if (t > 1.0f) {
        t = 1.0f;
      }
      y[i] = flush_tiny(t * y[i] + (1.0f - t) * a[i]);
    }
  }
  p->swap_pos = start + frames;

  if (p->swap_pos >= (int64_t)p->fade_frames && !p->retired) {
    p->retired = p->active;
    p->active = p->offered;
    p->offered = NULL;
  }
}

void fe_processor_process(fe_processor *processor, const fe_controls *controls,
                          const float *const *in, float *const *out,
                          uint32_t frames)
{
  uint32_t done = 0;
  while (done < frames) {
    uint32_t n = frames - done;
    if (n > processor->chunk) {
      n = processor->chunk;
    }
    process_chunk(processor, controls, in, out, done, n);
    done += n;
  }
}

fe_stage *fe_processor_offer(fe_processor *processor, fe_stage *next)
{
  if (processor->retired) {
    return next;
  }
  fe_stage *displaced = NULL;
  if (processor->offered) {
    if (processor->swap_pos > 0) {
      return next;
    }
    displaced = processor->offered;
  }
  stage_reset(next);
  processor->offered = next;
  processor->swap_pos = -(int64_t)next->latency;
  return displaced;
}

fe_stage *fe_processor_take_retired(fe_processor *processor)
{
  fe_stage *stage = processor->retired;
  processor->retired = NULL;
  return stage;
}

fe_stage *fe_processor_install(fe_processor *processor, fe_stage *stage)
{
  fe_stage *old = processor->active;
  processor->active = stage;
  stage_reset(stage);
  return old;
}

fe_stage *fe_processor_take_offered(fe_processor *processor)
{
  fe_stage *stage = processor->offered;
  processor->offered = NULL;
  return stage;
}

fe_stage *fe_processor_withdraw(fe_processor *processor)
{
  if (!processor->offered || processor->swap_pos > 0) {
    return NULL;
  }
  return fe_processor_take_offered(processor);
}

const fe_stage *fe_processor_active(const fe_processor *processor)
{
  return processor->active;
}

const fe_stage *fe_processor_offered(const fe_processor *processor)
{
  return processor->offered;
}

uint32_t fe_processor_latency(const fe_processor *processor)
{
  return processor->active->latency;
}

float fe_processor_voice_probability(const fe_processor *processor)
{
  return drsn_engine_voice_probability(processor->active->engine);
}

float fe_processor_reduction_db(const fe_processor *processor)
{
  return processor->enabled *
         drsn_engine_reduction_db(processor->active->engine);
}
