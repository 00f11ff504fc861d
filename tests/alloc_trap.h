/*
 * alloc_trap.h: counts heap calls made by the calling thread while armed.
 *
 * alloc_trap.c defines malloc, calloc, realloc, free, posix_memalign,
 * aligned_alloc and memalign, which forward to glibc's own entry points. A
 * test executable that links it counts every heap call made by its code, the
 * engine, FFTW and any module it dlopens (link with export_dynamic for
 * those). free(NULL) is not counted because it touches no heap.
 */
#ifndef DRSN_TEST_ALLOC_TRAP_H
#define DRSN_TEST_ALLOC_TRAP_H

/** Clears the count and starts counting this thread's heap calls. */
void alloc_trap_arm(void);

/** Stops counting. */
void alloc_trap_disarm(void);

/** Heap calls counted since the last arm. */
int alloc_trap_calls(void);

#endif
