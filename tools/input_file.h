/*
 * input_file.h: opening sound files for drsn-denoise and checking, after
 * reading them, that they were complete.
 */
#ifndef DRSN_TOOLS_INPUT_FILE_H
#define DRSN_TOOLS_INPUT_FILE_H

#include <stddef.h>

#include <sndfile.h>

#include "audio_header.h"

/** An open input file and what its header declares about its length. */
typedef struct {
  SNDFILE *file;
  SF_INFO info;
  /** Size in bytes, or -1 when the input is not a regular file. */
  long long file_size;
  audio_header_layout layout;
} input_file;

/**
 * Opens path for reading (a file named "-" too, not standard input) and
 * rejects a file whose header declares more audio data than it contains.
 * Returns 0, or -1 with a message in error (error_size bytes), in which
 * case nothing is left open.
 */
int input_file_open(input_file *input, const char *path, char *error,
                    size_t error_size);

/**
 * Checks, after reading to the end, that the input delivered every frame
 * its header declares. Returns 0, or -1 with a message.
 */
int input_file_check_complete(const input_file *input, sf_count_t frames_read,
                              char *error, size_t error_size);

#endif /* DRSN_TOOLS_INPUT_FILE_H */
