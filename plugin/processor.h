/*
 * processor.h: the signal chain shared by the LV2 plugin and drsn-jack.
 *
 * A stage is one engine with everything that depends on its model and rate:
 * the dry delay line that matches the engine latency and the scratch
 * buffers. A processor runs one active stage and mixes its output with the
 * delayed dry signal under smoothed controls. When a new stage is offered
 * (another model), the processor runs both stages until the new one has
 * filled its latency, crossfades to it and hands the old one back for
 * freeing outside the audio thread.
 *
 * Threading: create and destroy functions allocate and are not real-time
 * safe. Every other function is real-time safe and must be called from the
 * one thread that runs the processor.
 */
#ifndef DRSN_PROCESSOR_H
#define DRSN_PROCESSOR_H

#include "drsn.h"

#include <stdint.h>

/** Length of the bypass, residual-listen and model-change crossfades. */
#define FE_FADE_SECONDS 0.020

/** Time constant of the mix and reduction-limit smoothing. */
#define FE_SMOOTH_SECONDS 0.010

/** Frames processed per internal chunk when the caller has no preference. */
#define FE_DEFAULT_CHUNK 512

typedef struct fe_stage fe_stage;
typedef struct fe_processor fe_processor;

/** Control values, read once per block by the caller. */
typedef struct {
  float enabled;  /**< 1 processes, 0 bypasses (output = delayed input) */
  float limit_db; /**< deepest attenuation, 0..100 dB */
  float mix;      /**< share of denoised signal, 0..1 */
  float residual; /**< 1 outputs delayed input minus the mixed output */
  int linked;     /**< 1 shares one set of gains across channels */
} fe_controls;

/**
 * Creates a stage. The stage takes ownership of model even on failure.
 * path names the model file (copied) or is NULL for the built-in model.
 * chunk_frames is the largest chunk the processor will pass (> 0).
 */
drsn_status fe_stage_create(drsn_model *model, const char *path,
                            double sample_rate_hz, uint32_t channels,
                            uint32_t chunk_frames, fe_stage **out,
                            drsn_error *err);

/**
 * Loads a model file, or the built-in model when path is NULL or empty, and
 * creates a stage for it. Not real-time safe. For a model file, every error
 * message starts with "model '<path>': " as the loader's messages do.
 */
drsn_status fe_stage_load(const char *path, double sample_rate_hz,
                          uint32_t channels, uint32_t chunk_frames,
                          fe_stage **out, drsn_error *err);

/**
 * Loads a built-in model by its name in drsn_model_builtin_names() and
 * creates a stage for it, whose path is "". Not real-time safe.
 */
drsn_status fe_stage_load_builtin(const char *name, double sample_rate_hz,
                                  uint32_t channels, uint32_t chunk_frames,
                                  fe_stage **out, drsn_error *err);

/** Frees a stage, its engine and its model; NULL is ignored. */
void fe_stage_destroy(fe_stage *stage);

/** Model file path of the stage, "" for the built-in model. */
const char *fe_stage_path(const fe_stage *stage);

/** Engine latency of the stage in samples. */
uint32_t fe_stage_latency(const fe_stage *stage);

/**
 * Creates a processor that owns stage from now on (also on failure).
 * chunk_frames must equal the value the stage was created with.
 */
drsn_status fe_processor_create(fe_stage *stage, double sample_rate_hz,
                                uint32_t channels, uint32_t chunk_frames,
                                fe_processor **out, drsn_error *err);

/** Frees a processor and every stage it still holds; NULL is ignored. */
void fe_processor_destroy(fe_processor *processor);

/**
 * Clears audio state and makes the next process call jump to its control
 * values without ramps.
 */
void fe_processor_reset(fe_processor *processor);

/**
 * Processes frames samples per channel. out[c] may equal in[c]. Any frame
 * count works; the processor splits it into chunks. While enabled (also
 * during the bypass ramp) the output is finite and free of denormals: the
 * dry signal is cleaned as the engine cleans its input. Only a settled
 * bypass outputs the delayed input bit for bit, except during a model
 * crossfade.
 */
void fe_processor_process(fe_processor *processor, const fe_controls *controls,
                          const float *const *in, float *const *out,
                          uint32_t frames);

/**
 * Offers a stage to crossfade to. Returns the stage it displaces: an earlier
 * offer that had not started its crossfade yet, or next itself when a
 * crossfade is already running or a retired stage waits to be taken. The
 * caller frees the returned stage outside the audio thread.
 */
fe_stage *fe_processor_offer(fe_processor *processor, fe_stage *next);

/** Takes the stage left over from a finished crossfade, or NULL. */
fe_stage *fe_processor_take_retired(fe_processor *processor);

/**
 * Replaces the active stage at once, without crossfade, and returns the old
 * one. Meant for times when there is no output to crossfade from, such as
 * before the first block after activation; any offered stage stays offered.
 */
fe_stage *fe_processor_install(fe_processor *processor, fe_stage *stage);

/** Takes the offered stage back (for example to free it), or NULL. */
fe_stage *fe_processor_take_offered(fe_processor *processor);

/**
 * Takes the offered stage back if its crossfade has not started, so that
 * the output continues without a jump. Returns NULL when nothing is offered
 * or the crossfade is running.
 */
fe_stage *fe_processor_withdraw(fe_processor *processor);

/** Active stage, whose latency the front end reports. */
const fe_stage *fe_processor_active(const fe_processor *processor);

/** Offered stage that has not become active yet, or NULL. */
const fe_stage *fe_processor_offered(const fe_processor *processor);

/** Latency of the active stage in samples. */
uint32_t fe_processor_latency(const fe_processor *processor);

/** Speech-presence probability of the last hop, 0..1. */
float fe_processor_voice_probability(const fe_processor *processor);

/** Mean gain reduction of the last hop in dB, scaled to 0 while bypassed. */
float fe_processor_reduction_db(const fe_processor *processor);

#endif /* DRSN_PROCESSOR_H */
