/* engine/cpu/pool.h — a persistent pool of worker threads for the CPU
 * backend. Each forward runs a few hundred short parallel steps, so the
 * workers stay alive and spin briefly before sleeping: waking a thread per
 * step would cost more than a small matmul. */
#ifndef S1_CPU_POOL_H
#define S1_CPU_POOL_H

#include "err.h"

typedef struct s1_pool s1_pool;

/* Called on every thread of the pool: tid in [0, n_threads). */
typedef void s1_pool_fn(void *ctx, int tid, int n_threads);

/* A pool of n_threads in all: the caller of s1_pool_run is thread 0. */
s1_pool *s1_pool_new(int n_threads, s1_err *err);
/* Runs fn on every thread and returns when all have finished. */
void s1_pool_run(s1_pool *p, s1_pool_fn *fn, void *ctx);
int s1_pool_size(const s1_pool *p);
void s1_pool_free(s1_pool *p);

#endif
