/*
 * output_file.c: temporary output files that are renamed into place.
 */
#include "output_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/*
 * The signal handler may only call async-signal-safe functions, so it reads
 * the temporary path from a static buffer. Every change to the buffer and to
 * signal_temp_active happens with the handled signals blocked.
 */
static char signal_temp_path[PATH_MAX];
static volatile sig_atomic_t signal_temp_active;

static const int handled_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void remove_temp_and_reraise(int signal_number) {
  if (signal_temp_active) {
    unlink(signal_temp_path);
    signal_temp_active = 0;
  }
  /* SA_RESETHAND restored the default action, which ends the process once
   * the handler returns and the signal is unblocked. */
  raise(signal_number);
}

void output_file_install_signal_handlers(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = remove_temp_and_reraise;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (size_t i = 0; i < sizeof handled_signals / sizeof handled_signals[0]; i++) {
    sigaddset(&action.sa_mask, handled_signals[i]);
  }
  for (size_t i = 0; i < sizeof handled_signals / sizeof handled_signals[0]; i++) {
    sigaction(handled_signals[i], &action, NULL);
  }
}

static void block_handled_signals(sigset_t *previous) {
  sigset_t set;
  sigemptyset(&set);
  for (size_t i = 0; i < sizeof handled_signals / sizeof handled_signals[0]; i++) {
    sigaddset(&set, handled_signals[i]);
  }
  sigprocmask(SIG_BLOCK, &set, previous);
}

static void restore_signals(const sigset_t *previous) {
  sigprocmask(SIG_SETMASK, previous, NULL);
}

int output_file_same(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Builds "<directory of final_path>/.<base name>.XXXXXX" for mkstemp. */
static char *make_temp_template(const char *final_path) {
  const char *slash = strrchr(final_path, '/');
  size_t directory_length = slash ? (size_t)(slash - final_path) + 1 : 0;
  const char *base = final_path + directory_length;
  size_t size = directory_length + 1 + strlen(base) + sizeof ".XXXXXX";
  char *template_path = malloc(size);
  if (!template_path) {
    return NULL;
  }
  memcpy(template_path, final_path, directory_length);
  snprintf(template_path + directory_length, size - directory_length, ".%s.XXXXXX",
           base);
  return template_path;
}

int output_file_open(output_file *file, const char *final_path, char *error,
                     size_t error_size) {
  memset(file, 0, sizeof *file);
  file->fd = -1;
  file->final_path = strdup(final_path);
  file->temp_path = make_temp_template(final_path);
  if (!file->final_path || !file->temp_path) {
    snprintf(error, error_size, "out of memory");
    output_file_discard(file);
    return -1;
  }
  if (strlen(file->temp_path) >= sizeof signal_temp_path) {
    snprintf(error, error_size, "path is too long");
    output_file_discard(file);
    return -1;
  }

  sigset_t previous;
  block_handled_signals(&previous);
  file->fd = mkstemp(file->temp_path);
  int saved_errno = errno;
  if (file->fd >= 0) {
    memcpy(signal_temp_path, file->temp_path, strlen(file->temp_path) + 1);
    signal_temp_active = 1;
  }
  restore_signals(&previous);

  if (file->fd < 0) {
    snprintf(error, error_size, "cannot create a temporary file beside it: %s",
             strerror(saved_errno));
    output_file_discard(file);
    return -1;
  }
  return 0;
}

int output_file_commit(output_file *file, char *error, size_t error_size) {
  /* mkstemp creates mode 0600; give the result the mode that open() with
   * 0666 would have given under the current umask. */
  mode_t mask = umask(0);
  umask(mask);
  if (fchmod(file->fd, 0666 & ~mask) != 0 || fsync(file->fd) != 0) {
    snprintf(error, error_size, "cannot finish the temporary file %s: %s",
             file->temp_path, strerror(errno));
    output_file_discard(file);
    return -1;
  }
  if (close(file->fd) != 0) {
    file->fd = -1;
    snprintf(error, error_size, "cannot close the temporary file %s: %s",
             file->temp_path, strerror(errno));
    output_file_discard(file);
    return -1;
  }
  file->fd = -1;

  sigset_t previous;
  block_handled_signals(&previous);
  int renamed = rename(file->temp_path, file->final_path) == 0;
  int saved_errno = errno;
  if (renamed) {
    signal_temp_active = 0;
  }
  restore_signals(&previous);

  if (!renamed) {
    snprintf(error, error_size, "cannot rename %s to the output name: %s",
             file->temp_path, strerror(saved_errno));
    output_file_discard(file);
    return -1;
  }
  free(file->temp_path);
  file->temp_path = NULL;
  free(file->final_path);
  file->final_path = NULL;
  return 0;
}

void output_file_discard(output_file *file) {
  sigset_t previous;
  block_handled_signals(&previous);
  if (file->fd >= 0) {
    close(file->fd);
    file->fd = -1;
  }
  if (file->temp_path && signal_temp_active) {
    unlink(file->temp_path);
    signal_temp_active = 0;
  }
  restore_signals(&previous);
  free(file->temp_path);
  file->temp_path = NULL;
  free(file->final_path);
  file->final_path = NULL;
}
