/*
 * output_file.h: safe creation of output files for drsn-denoise.
 *
 * Output is written to a hidden temporary file in the destination directory
 * and renamed over the final name only after it is complete, so a failed or
 * interrupted run never leaves a partial file under the final name. The
 * temporary file is removed on failure and on every signal that ends the
 * process by default and can be caught.
 */
#ifndef DRSN_TOOLS_OUTPUT_FILE_H
#define DRSN_TOOLS_OUTPUT_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/** A file being written under a temporary name. */
typedef struct {
  char *final_path;
  char *temp_path;
  int fd;
} output_file;

/**
 * Installs the signal handlers that remove the active temporary file and
 * then end the process by the same signal. Only signals that still have
 * their default action are handled, so ignored ones stay ignored.
 */
void output_file_install_signal_handlers(void);

/** Returns nonzero when two stat results name the same file. */
int output_file_same(const struct stat *a, const struct stat *b);

/**
 * Creates a temporary file beside final_path, open for reading and writing.
 * Its name is ".<base name>.XXXXXX", or ".drsn-XXXXXX" when the base name is
 * too long for that. Returns 0 on success; on failure returns -1 and writes
 * a message into error (which has error_size bytes). Only one file may be
 * open at a time.
 */
int output_file_open(output_file *file, const char *final_path, char *error,
                     size_t error_size);

/**
 * Gives the temporary file the permission bits of the file it replaces (and
 * its owner and group where permitted) or, for a new file, mode 0666 less
 * the umask. Then flushes it to disk and renames it to the final path,
 * unless the final path has become something other than a regular file.
 * The descriptor is closed in every case. Returns 0 on success, -1 with a
 * message otherwise, in which case the temporary file has been removed.
 */
int output_file_commit(output_file *file, char *error, size_t error_size);

/** Closes and removes the temporary file. Safe to call after a commit. */
void output_file_discard(output_file *file);

#endif /* DRSN_TOOLS_OUTPUT_FILE_H */
