/*
 * render.h: denoising of one sound file for drsn-denoise.
 */
#ifndef DRSN_TOOLS_RENDER_H
#define DRSN_TOOLS_RENDER_H

#include <stddef.h>
#include <sys/stat.h>

#include "drsn.h"

/** Called with the fraction of the input processed so far, 0..1. */
typedef void (*render_progress_fn)(void *context, double fraction);

/** An output container as named by --format or a file extension. */
typedef struct {
  /** The name, which is also the file extension ("wav", "opus", ...). */
  const char *name;
  /** libsndfile major format (SF_FORMAT_WAV, ...). */
  int major_format;
  /** Subtype the name implies (SF_FORMAT_OPUS for "opus"), or 0. */
  int subtype;
} render_container;

/** Settings shared by every file of a run. */
typedef struct {
  const drsn_model *model;
  /** Model name for error messages: "default", "low-latency" or a path. */
  const char *model_name;
  float limit_db;
  int linked;
  int force;
  /** Output container, or NULL to keep the input's. */
  const render_container *container;
  /** libsndfile subtype (SF_FORMAT_PCM_16, ...), or 0 for the one the
   * container implies, else the input's. */
  int subtype;
  /** Identities of every input of the run, which are never overwritten. */
  const struct stat *input_stats;
  const char *const *input_paths;
  size_t input_count;
  render_progress_fn progress;
  void *progress_context;
  /** If not NULL, receives the number of input samples the engine replaced
   * because they were not finite or at least 1000 in magnitude. */
  long long *replaced_samples;
} render_options;

/**
 * Denoises in_path into out_path. Output has the input's sample rate,
 * channel count and exact length, aligned sample for sample with the input.
 * Returns 0 on success. On failure returns -1 and writes a sentence into
 * error without the input's name. Nothing is left under out_path on failure,
 * and an existing out_path is replaced only after success, only with force
 * and only when it is a regular file.
 */
int render_file(const char *in_path, const char *out_path,
                const render_options *options, char *error, size_t error_size);

/**
 * Returns the container named name, which is also its usual file extension
 * without the dot ("wav", "flac", "ogg", "opus", ...; any case), or NULL.
 */
const render_container *render_container_from_name(const char *name);

/** Space-separated list of the names that render_container_from_name
 * accepts. */
const char *render_container_names(void);

/** Returns the subtype named name ("pcm16", "float", ...), or 0. */
int render_subtype_from_name(const char *name);

/** Space-separated list of the names that render_subtype_from_name accepts. */
const char *render_subtype_names(void);

#endif /* DRSN_TOOLS_RENDER_H */
