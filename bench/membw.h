/* bench/membw.h — this machine's memory read bandwidth, measured by
 * streaming a buffer far larger than the caches on a number of threads:
 * the limit a memory-bound decode step is compared with. */
#ifndef S1_BENCH_MEMBW_H
#define S1_BENCH_MEMBW_H

typedef struct s1_membw s1_membw;

/* A 1 GiB buffer, filled (so its pages exist), for `threads` readers. */
s1_membw *s1_membw_new(int threads);
/* One pass over the buffer: GB/s, or 0 when it cannot be measured here. */
double s1_membw_pass(s1_membw *b);
void s1_membw_free(s1_membw *b);

#endif
