/*
 * blocking_open.c: LD_PRELOAD library for the drsn-jack tests. Its open()
 * and open64() never return for a path that contains "blocking-model",
 * the way a read from a hung network file system never returns, and pass
 * every other path on to the C library.
 */
/* meson defines _FILE_OFFSET_BITS=64, which renames open to open64 in the
 * headers; this file defines both under their own names. */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

typedef int (*open_function)(const char *, int, ...);

static void block_if_requested(const char *path)
{
  if (path && strstr(path, "blocking-model")) {
    for (;;) {
      pause();
    }
  }
}

/* Blocks for the marked path, else forwards to the next definition of
 * name, with the mode argument that O_CREAT and O_TMPFILE take. */
static int open_or_block(const char *name, const char *path, int flags,
                         va_list args)
{
  const mode_t mode =
      (flags & (O_CREAT | O_TMPFILE)) ? va_arg(args, mode_t) : 0;
  block_if_requested(path);
  open_function next = (open_function)(uintptr_t)dlsym(RTLD_NEXT, name);
  return next(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
  va_list args;
  va_start(args, flags);
  const int fd = open_or_block("open", path, flags, args);
  va_end(args);
  return fd;
}

int open64(const char *path, int flags, ...)
{
  va_list args;
  va_start(args, flags);
  const int fd = open_or_block("open64", path, flags, args);
  va_end(args);
  return fd;
}
