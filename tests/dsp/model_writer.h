/*
 * model_writer.h: test helper that writes drsn model files in memory, with
 * random weights, chosen shapes and optional faults for loader tests.
 */
#ifndef DRSN_TEST_MODEL_WRITER_H
#define DRSN_TEST_MODEL_WRITER_H

#include <stddef.h>
#include <stdint.h>

/** Header values and weight statistics of a model to write. */
typedef struct {
  uint32_t rate_hz;
  uint32_t window_samples;
  uint32_t hop_samples;
  uint32_t band_count;
  uint32_t channels;
  uint32_t block_count;
  uint32_t kernel_time;
  uint32_t kernel_freq;
  uint32_t attention_hidden;
  uint32_t running_mean_ms; /**< 0: one input channel, else two */
  uint32_t recurrent_hidden; /**< 0: no GRU, format version 1; else 2 */
  uint32_t pitch;            /**< 1: pitch-correlation input, version 3 */
  uint32_t dilations[64];
  float band_centres_hz[256];
  uint32_t seed;
  float weight_scale;  /**< weights uniform in +-weight_scale/sqrt(fan_in) */
  float gain_bias;     /**< value of gain.bias */
  float feature_mean;  /**< value of every feature_mean entry */
  float feature_scale; /**< value of every feature_scale entry */
} mw_spec;

typedef enum {
  MW_FAULT_NONE,
  MW_FAULT_OMIT,      /**< leave the named tensor out */
  MW_FAULT_DUPLICATE, /**< write the named tensor twice */
  MW_FAULT_RESHAPE,   /**< write the named tensor with reshape_dims */
  MW_FAULT_NAN,       /**< put a NaN into the named tensor */
  MW_FAULT_INF,       /**< put an Inf into the named tensor */
  MW_FAULT_RENAME,    /**< write the named tensor under rename_to */
} mw_fault_kind;

/** Deliberate defects; a zeroed struct writes a valid file. */
typedef struct {
  const char *magic;          /**< 8 bytes instead of "DRSNMODL" */
  uint32_t version;           /**< 0: 3 with pitch, 2 with a GRU, else 1 */
  mw_fault_kind fault;
  const char *tensor;         /**< tensor the fault applies to */
  uint32_t reshape_ndim;
  uint32_t reshape_dims[4];
  const char *rename_to;
  uint32_t crc_xor;           /**< flips CRC bits */
  uint32_t trailing_bytes;    /**< zero bytes between tensors and CRC */
  int reverse_order;          /**< write tensors last to first */
} mw_faults;

/** The default model's shapes (48 kHz, 32 bands, C 16, 4 blocks, running mean 1 s). */
void mw_default_spec(mw_spec *spec);

/** A small model for fast tests (C 4, H 3, 2 blocks, KT 3, KF 3). */
void mw_small_spec(mw_spec *spec);

/**
 * Writes a model into a malloc'd buffer; faults may be NULL.
 * Returns 0 on success, -1 if out of memory.
 */
int mw_build(const mw_spec *spec, const mw_faults *faults,
             unsigned char **data, size_t *size);

/** CRC-32 (zlib) of data, independent of the library's. */
uint32_t mw_crc32(const unsigned char *data, size_t size);

#endif
