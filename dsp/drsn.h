/*
 * drsn.h: public API of the drsn-denoise engine.
 *
 * The engine turns noisy speech into cleaned speech with a causal Deep
 * Residual Shrinkage Network that runs on STFT frames. It has no LV2, JACK or
 * file code: front ends feed it planar float buffers.
 *
 * Threading: a model is immutable once loaded and may be shared by any number
 * of engines and threads. An engine is used by one thread at a time. Functions
 * marked "real-time safe" never allocate, lock, do I/O or loop without bound.
 */
#ifndef DRSN_H
#define DRSN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status codes returned by every fallible call. */
typedef enum {
  DRSN_OK = 0,
  DRSN_ERR_INVALID_ARGUMENT, /**< a NULL pointer or an out-of-range value */
  DRSN_ERR_SAMPLE_RATE,      /**< sample rate outside 8000..192000 Hz */
  DRSN_ERR_CHANNELS,         /**< channel count outside 1..DRSN_MAX_CHANNELS */
  DRSN_ERR_NO_MEMORY,        /**< an allocation failed */
  DRSN_ERR_FFT_PLAN,         /**< FFTW could not make a plan */
  DRSN_ERR_MODEL_IO,         /**< the model file could not be opened or read */
  DRSN_ERR_MODEL_MAGIC,      /**< the data is not a drsn model */
  DRSN_ERR_MODEL_VERSION,    /**< unsupported model format version */
  DRSN_ERR_MODEL_TRUNCATED,  /**< the data ends before the model does */
  DRSN_ERR_MODEL_CHECKSUM,   /**< the CRC-32 at the end does not match */
  DRSN_ERR_MODEL_HEADER,     /**< a header field is out of range */
  DRSN_ERR_MODEL_TENSOR,     /**< a tensor is missing, unknown or misshapen */
} drsn_status;

/** Largest channel count an engine accepts. */
#define DRSN_MAX_CHANNELS 8

/** Status plus a sentence that names the value that was wrong. */
typedef struct {
  drsn_status status;
  char message[320];
} drsn_error;

/** Returns a static sentence describing a status code. */
const char *drsn_strerror(drsn_status status);

/* ------------------------------------------------------------------------ */
/* Models                                                                   */

typedef struct drsn_model drsn_model;

/**
 * Loads a model file. Not real-time safe (allocates, reads the file).
 * On failure *out is NULL and err (if not NULL) names the file and the fault.
 */
drsn_status drsn_model_load_file(const char *path, drsn_model **out,
                                 drsn_error *err);

/**
 * Parses a model from memory; name is used in error messages.
 * The data is copied, so the caller may free it afterwards.
 */
drsn_status drsn_model_load_memory(const void *data, size_t size,
                                   const char *name, drsn_model **out,
                                   drsn_error *err);

/** Loads the default model compiled into the library. */
drsn_status drsn_model_load_default(drsn_model **out, drsn_error *err);

/**
 * Names of the models compiled into the library, ending with NULL:
 * "default" (20 ms latency at 48 kHz), then "low-latency" (10 ms).
 */
const char *const *drsn_model_builtin_names(void);

/** Returns 1 if name is one of drsn_model_builtin_names(), else 0. */
int drsn_model_is_builtin(const char *name);

/**
 * Loads a built-in model by name. An unknown name gives
 * DRSN_ERR_INVALID_ARGUMENT and a message that lists the built-in names.
 */
drsn_status drsn_model_load_builtin(const char *name, drsn_model **out,
                                    drsn_error *err);

/** Frees a model. Every engine made from it must be destroyed first. */
void drsn_model_free(drsn_model *model);

/** Network multiply-accumulates per second of audio at the model's rate. */
double drsn_model_macs_per_second(const drsn_model *model);

/** Reference sample rate of the model in Hz (48000 for the default). */
uint32_t drsn_model_rate_hz(const drsn_model *model);

/* ------------------------------------------------------------------------ */
/* Engines                                                                  */

typedef struct drsn_engine drsn_engine;

/**
 * Creates an engine for a sample rate and channel count. The model must stay
 * alive until the engine is destroyed. Not real-time safe.
 */
drsn_status drsn_engine_create(const drsn_model *model, double sample_rate_hz,
                               uint32_t channels, drsn_engine **out,
                               drsn_error *err);

/** Frees an engine; NULL is ignored. */
void drsn_engine_destroy(drsn_engine *engine);

/** Clears all audio and network state, as if just created. Real-time safe. */
void drsn_engine_reset(drsn_engine *engine);

/** Total algorithmic latency in samples at the host rate. */
uint32_t drsn_engine_latency_samples(const drsn_engine *engine);

/** Samples per STFT hop at the host rate. */
uint32_t drsn_engine_hop_samples(const drsn_engine *engine);

/**
 * Sets the deepest attenuation in dB, as a positive number (0 disables
 * suppression, so the output is the input delayed by the latency).
 * Values are clamped to 0..100 dB. Real-time safe.
 */
void drsn_engine_set_reduction_limit_db(drsn_engine *engine, float limit_db);

/**
 * Sets whether channels share one set of gains computed from their mean band
 * power (1, the default) or are processed independently (0). Switching
 * clears the network history (not the audio). Real-time safe.
 */
void drsn_engine_set_linked(drsn_engine *engine, int linked);

/**
 * Processes frames samples of every channel. in and out are arrays of
 * channel pointers; out[c] may equal in[c]. A NULL in[c] reads as silence
 * and a NULL out[c] is not written. Non-finite input is treated as silence,
 * input at or beyond +-1000 is clamped, and the output is always finite with
 * denormals flushed to zero. Hops whose window contains such samples keep the
 * last gains and leave the network state untouched (docs/design.md,
 * Streaming). Real-time safe: at most ceil(frames / hop) network evaluations
 * per channel per call.
 */
void drsn_engine_process(drsn_engine *engine, const float *const *in,
                         float *const *out, uint32_t frames);

/**
 * Speech-presence estimate of the last hop, 0..1 (the mean over channels
 * when they are independent). Real-time safe.
 */
float drsn_engine_voice_probability(const drsn_engine *engine);

/**
 * Gain reduction of the last hop in dB (>= 0): the mean over bands (and
 * independent channels) of -20 log10 of the limited band gain. Real-time
 * safe.
 */
float drsn_engine_reduction_db(const drsn_engine *engine);

/**
 * Returns the number of input samples replaced since creation or the last
 * reset, because they were not finite or at least 1000 in magnitude.
 * Real-time safe.
 */
uint64_t drsn_engine_replaced_samples(const drsn_engine *engine);

#ifdef __cplusplus
}
#endif

#endif /* DRSN_H */
