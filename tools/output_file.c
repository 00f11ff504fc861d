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
/* Maximum length of one path component, which POSIX lets <limits.h> omit. */
#ifndef NAME_MAX
#define NAME_MAX 255
#endif

/*
 * The signal handler may only call async-signal-safe functions, so it reads
 * the temporary path from a static buffer. Every change to the buffer and to
 * signal_temp_active happens with the handled signals blocked.
 */
static char signal_temp_path[PATH_MAX];
static volatile sig_atomic_t signal_temp_active;

/* Signals whose default action ends the process and that can be caught.
 * The real-time signals, which also end it by default, are added at run
 * time because SIGRTMIN and SIGRTMAX are not constants. */
static const int terminating_signals[] = {
    SIGHUP,  SIGINT,  SIGQUIT,   SIGILL,  SIGTRAP, SIGABRT, SIGBUS,
    SIGFPE,  SIGUSR1, SIGSEGV,   SIGUSR2, SIGPIPE, SIGALRM, SIGTERM,
    SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGSYS,
#ifdef SIGSTKFLT
    SIGSTKFLT,
#endif
#ifdef SIGIO
    SIGIO,
#endif
#ifdef SIGPWR
    SIGPWR,
#endif
};

/* The signals whose handler removes the temporary file. */
static sigset_t handled_signals;

static void remove_temp_and_reraise(int signal_number) {
  if (signal_temp_active) {
    unlink(signal_temp_path);
    signal_temp_active = 0;
  }
  /* SA_RESETHAND restored the default action, which ends the process once
   * the handler returns and the signal is unblocked. The parent's wait()
   * then reports this signal, and a shell reports status 128 + its number. */
  raise(signal_number);
}

static void install_handler(int signal_number, struct sigaction *action) {
  struct sigaction previous;
  if (sigaction(signal_number, NULL, &previous) != 0) {
    return;
  }
  /* A signal ignored by the parent (nohup ignores SIGHUP) stays ignored,
   * and a handler installed before main (a sanitizer's) stays in place. */
  if ((previous.sa_flags & SA_SIGINFO) || previous.sa_handler != SIG_DFL) {
    return;
  }
  if (sigaction(signal_number, action, NULL) == 0) {
    sigaddset(&handled_signals, signal_number);
  }
}

void output_file_install_signal_handlers(void) {
  sigset_t all_terminating;
  sigemptyset(&all_terminating);
  for (size_t i = 0; i < sizeof terminating_signals / sizeof terminating_signals[0];
       i++) {
    sigaddset(&all_terminating, terminating_signals[i]);
  }
#if defined(SIGRTMIN) && defined(SIGRTMAX)
  for (int signal_number = SIGRTMIN; signal_number <= SIGRTMAX; signal_number++) {
    sigaddset(&all_terminating, signal_number);
  }
#endif

  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = remove_temp_and_reraise;
  action.sa_flags = SA_RESETHAND;
  action.sa_mask = all_terminating;
  sigemptyset(&handled_signals);
  for (size_t i = 0; i < sizeof terminating_signals / sizeof terminating_signals[0];
       i++) {
    install_handler(terminating_signals[i], &action);
  }
#if defined(SIGRTMIN) && defined(SIGRTMAX)
  for (int signal_number = SIGRTMIN; signal_number <= SIGRTMAX; signal_number++) {
    install_handler(signal_number, &action);
  }
#endif
}

static void block_handled_signals(sigset_t *previous) {
  sigprocmask(SIG_BLOCK, &handled_signals, previous);
}

static void restore_signals(const sigset_t *previous) {
  sigprocmask(SIG_SETMASK, previous, NULL);
}

int output_file_same(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/*
 * Builds the mkstemp template "<directory>/.<base name>.XXXXXX", or
 * "<directory>/.drsn-XXXXXX" when that name would exceed NAME_MAX.
 */
static char *make_temp_template(const char *final_path) {
  static const char short_name[] = ".drsn-XXXXXX";
  const char *slash = strrchr(final_path, '/');
  size_t directory_length = slash ? (size_t)(slash - final_path) + 1 : 0;
  const char *base = final_path + directory_length;
  size_t long_name_length = 1 + strlen(base) + strlen(".XXXXXX");
  int use_short_name = long_name_length > NAME_MAX;
  size_t size =
      directory_length + (use_short_name ? sizeof short_name : long_name_length + 1);
  char *template_path = malloc(size);
  if (!template_path) {
    return NULL;
  }
  memcpy(template_path, final_path, directory_length);
  if (use_short_name) {
    memcpy(template_path + directory_length, short_name, sizeof short_name);
  } else {
    snprintf(template_path + directory_length, size - directory_length, ".%s.XXXXXX",
             base);
  }
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

/*
 * Gives the temporary file the owner, group and permission bits of the file
 * it replaces, or the mode open() with 0666 gives under the umask when there
 * is none (mkstemp creates 0600). Returns 0, or -1 with a message.
 */
static int set_final_attributes(output_file *file, char *error, size_t error_size) {
  struct stat old_stat;
  if (stat(file->final_path, &old_stat) != 0) {
    if (errno != ENOENT) {
      snprintf(error, error_size, "cannot check %s: %s", file->final_path,
               strerror(errno));
      return -1;
    }
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(file->fd, 0666 & ~mask) != 0) {
      snprintf(error, error_size, "cannot set the mode of %s: %s", file->temp_path,
               strerror(errno));
      return -1;
    }
    return 0;
  }

  if (!S_ISREG(old_stat.st_mode)) {
    snprintf(error, error_size,
             "%s is no longer a regular file; only regular files are replaced",
             file->final_path);
    return -1;
  }
  /* Only root can give a file away; other users keep at least the group
   * when they belong to it. EPERM leaves the current owner in place. */
  if (fchown(file->fd, old_stat.st_uid, old_stat.st_gid) != 0 &&
      (errno != EPERM ||
       (fchown(file->fd, (uid_t)-1, old_stat.st_gid) != 0 && errno != EPERM))) {
    snprintf(error, error_size, "cannot set the owner of %s: %s", file->temp_path,
             strerror(errno));
    return -1;
  }
  /* After fchown, which may clear the set-user-ID and set-group-ID bits. */
  if (fchmod(file->fd, old_stat.st_mode & 07777) != 0) {
    snprintf(error, error_size, "cannot set the mode of %s: %s", file->temp_path,
             strerror(errno));
    return -1;
  }
  return 0;
}

int output_file_commit(output_file *file, char *error, size_t error_size) {
  if (set_final_attributes(file, error, error_size) != 0) {
    output_file_discard(file);
    return -1;
  }
  if (fsync(file->fd) != 0) {
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
