/* alloc_trap.c: heap-call counter for the real-time tests (alloc_trap.h). */
#include "alloc_trap.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* glibc's own entry points, which the interposers forward to. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *ptr);

static _Thread_local bool trap_armed;
static atomic_int trapped_calls;

void alloc_trap_arm(void)
{
  atomic_store(&trapped_calls, 0);
  trap_armed = true;
}

void alloc_trap_disarm(void)
{
  trap_armed = false;
}

int alloc_trap_calls(void)
{
  return atomic_load(&trapped_calls);
}

static void note_call(void)
{
  if (trap_armed)
    atomic_fetch_add(&trapped_calls, 1);
}

void *malloc(size_t size)
{
  note_call();
  return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
  note_call();
  return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size)
{
  note_call();
  return __libc_realloc(ptr, size);
}

void free(void *ptr)
{
  if (ptr)
    note_call();
  __libc_free(ptr);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
  note_call();
  void *ptr = __libc_memalign(alignment, size);
  if (!ptr)
    return ENOMEM;
  *out = ptr;
  return 0;
}

void *aligned_alloc(size_t alignment, size_t size)
{
  note_call();
  return __libc_memalign(alignment, size);
}

void *memalign(size_t alignment, size_t size)
{
  note_call();
  return __libc_memalign(alignment, size);
}
