/* engine/cpu/place.h — the CPU backend's own copies of the weights it
 * multiplies by. The model's files are mapped, and matmuls could read the
 * mapping in place; a private copy is better on three counts: every row
 * starts on a cache line (the kernels' whole-line loads need no masked head
 * step), a tensor-parallel rank's column slice becomes one sequential
 * stream, and the reads do not depend on how the OS keeps the page cache
 * mapped (on some virtual machines reading a mapped file ran at a quarter
 * of the rate of private memory, with steps 2-10x slower than the best;
 * measured in bench/engine). The cost: the copy at open (memory-bound, a
 * fraction of reading the files), and the weights resident twice until the
 * page cache gives back the file's pages, which it may at any time. */
#ifndef S1_CPU_PLACE_H
#define S1_CPU_PLACE_H

#include <stddef.h>

#include "err.h"
#include "model.h"

/* Bytes a copy of t takes: its rows, each padded to a whole cache line. */
size_t s1_cpu_placed_bytes(const s1_tensor *t);

/* Copies t to dst (64-byte aligned, s1_cpu_placed_bytes(t) long) and
 * returns the copy's view: same shape and dtype, rows on cache lines. */
s1_tensor s1_cpu_place(const s1_tensor *t, void *dst);

/* Memory for placed weights: n bytes of private pages, advised to be huge
 * pages (fewer TLB misses on a stream of gigabytes); NULL with err set when
 * there is not enough. Freed with s1_cpu_place_free(p, n). */
void *s1_cpu_place_alloc(size_t n, s1_err *err);
void s1_cpu_place_free(void *p, size_t n);

#endif
