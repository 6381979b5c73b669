#include "membw.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BW_BYTES (1ull << 30)

typedef struct {
    const uint8_t *p;
    size_t n;
    uint64_t sink;
    pthread_t th;
} part;

struct s1_membw {
    uint8_t *buf; /* owned */
    part *parts;  /* [threads], owned */
    int threads;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sums the part 128 bytes at a time, four independent chains: the loads,
 * not the adds, are what limits it. */
__attribute__((target("avx2"))) static void *read_part(void *arg)
{
    part *b = arg;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= b->n; i += 128) {
        const __m256i *v = (const __m256i *)(b->p + i);
        a0 = _mm256_add_epi64(a0, _mm256_load_si256(v));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256(v + 1));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256(v + 2));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256(v + 3));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, s);
    b->sink = out[0] + out[1] + out[2] + out[3];
    return NULL;
}

s1_membw *s1_membw_new(int threads)
{
    s1_membw *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->threads = threads < 1 ? 1 : threads;
    b->buf = aligned_alloc(64, BW_BYTES);
    b->parts = calloc((size_t)b->threads, sizeof *b->parts);
    if (!b->buf || !b->parts) {
        s1_membw_free(b);
        return NULL;
    }
    memset(b->buf, 1, BW_BYTES);
    for (int i = 0; i < b->threads; i++) {
        b->parts[i].n = BW_BYTES / (size_t)b->threads / 128 * 128;
        b->parts[i].p = b->buf + b->parts[i].n * (size_t)i;
    }
    return b;
}

double s1_membw_pass(s1_membw *b)
{
    if (!__builtin_cpu_supports("avx2")) return 0;
    double t0 = now();
    for (int i = 0; i < b->threads; i++)
        pthread_create(&b->parts[i].th, NULL, read_part, &b->parts[i]);
    for (int i = 0; i < b->threads; i++)
        pthread_join(b->parts[i].th, NULL);
    return (double)BW_BYTES / (now() - t0) / 1e9;
}

void s1_membw_free(s1_membw *b)
{
    if (!b) return;
    free(b->buf);
    free(b->parts);
    free(b);
}
