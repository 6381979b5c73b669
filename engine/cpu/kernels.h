/* engine/cpu/kernels.h — the CPU backend's inner loops, one table per
 * instruction set: AVX-512 with BF16 dot products, AVX2+FMA (+F16C), or
 * portable C, each available where the CPU has the features; which one runs
 * is measured at load (engine/cpu/choose.h).
 *
 * Numerics: activations and sums are f32 on every path. AVX-512 BF16
 * multiplies bf16 pairs only, so for bf16 weights its input x is split into
 * two bf16 halves, hi = bf16(x) and lo = bf16(x - hi), and w·x is summed as
 * w·hi + w·lo: x keeps 16 bits of mantissa (error < 2^-17 |x|) and each
 * product is exact in f32. Rounding x to bf16 alone would be twice as fast,
 * but an input one f32 ulp from a bf16 boundary would then move by a bf16
 * ulp (2^-8), so a change in the order of a sum (tensor parallelism) would
 * change logits by ~1% on deep models instead of ~1e-6.
 * Each output element is summed in the same order whatever the batch around
 * it and whatever the threads, so a sequence's logits do not depend on the
 * batch it ran in. */
#ifndef S1_CPU_KERNELS_H
#define S1_CPU_KERNELS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "model.h"

/* out[t, r] = x[t, :] · w[r, :] + bias[r], for t < n and rows r of w. */
typedef struct {
    float *out;
    int64_t ldo;   /* out row stride */
    const void *x; /* prepared by s1_cpu_prep_x: [n, w->cols], contiguous */
    int n;
    const s1_tensor *w;
    const float *bias; /* [w->rows] or NULL */
} s1_cpu_mm;

typedef struct {
    const char *name; /* "avx512bf16", "avx2" or "portable" */
    /* Computes output rows [r0, r1) of m for all n inputs. */
    void (*matmul)(const s1_cpu_mm *m, int64_t r0, int64_t r1);
    /* For bf16 weights: true when each row of x is packed as bf16 hi[cols]
     * then lo[cols] (see above), else x is f32. */
    bool packs_bf16;
    /* Attention scores against one KV block, K stored transposed:
     * s[g * lds + i] = q[g * hd + :] · kt[: * ldk + i] for g < G, i < n.
     * A block's K is read once for the G query heads of its kv head, and
     * the scores come out 8 or 16 at a time, with no horizontal sums. */
    void (*qk)(float *s, int lds, const float *q, int G, int hd, const float *kt, int ldk, int n);
    /* out[:hd] += sum over i < n of p[i] * v[i * hd + :], in order of i. */
    void (*pv)(float *out, const float *p, const float *v, int hd, int n);
    /* p[:n] = softmax(scale * p[:n]); the SIMD paths with their own exp
     * (within 2 ulp of expf): at long context attention computes millions
     * of them per token. */
    void (*softmax)(float *p, int n, float scale);
} s1_cpu_kernels;

/* The first table of the feature order (AVX-512 BF16, AVX2, portable)
 * that this CPU supports; engine/cpu/choose.h picks by measurement. */
const s1_cpu_kernels *s1_cpu_kernels_best(void);
/* The table called name, or NULL when this CPU (or build) cannot run it. */
const s1_cpu_kernels *s1_cpu_kernels_get(const char *name);
/* Whether name is a table of this build, whether or not this CPU runs it. */
bool s1_cpu_kernels_known(const char *name);
/* The tables this CPU runs, in feature order: writes up to cap of them to
 * out and returns how many. */
int s1_cpu_kernels_supported(const s1_cpu_kernels **out, int cap);

extern const s1_cpu_kernels s1_cpu_kernels_portable;
extern const s1_cpu_kernels s1_cpu_kernels_avx2;
extern const s1_cpu_kernels s1_cpu_kernels_avx512bf16;

/* Prepares x[n, cols] as the input of a matmul with dtype dt weights, in buf
 * (n * cols * 4 bytes) when it needs converting; returns what to put in
 * s1_cpu_mm.x. */
const void *s1_cpu_prep_x(const s1_cpu_kernels *k, s1_dtype dt, const float *x, int n, int64_t cols,
                          void *buf);

static inline float s1_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even, as the hardware conversions do; NaN stays NaN. */
static inline uint16_t s1_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float s1_f16_to_f32(uint16_t h);

/* Element k of a weight row of dtype dt, as f32; inlined with a constant
 * dtype so that each loop has one conversion. */
static inline __attribute__((always_inline)) float s1_row_at(const void *row, int64_t k,
                                                             s1_dtype dt)
{
    if (dt == S1_DTYPE_BF16) return s1_bf16_to_f32(((const uint16_t *)row)[k]);
    if (dt == S1_DTYPE_F16) return s1_f16_to_f32(((const uint16_t *)row)[k]);
    return ((const float *)row)[k];
}

/* Row r of t. */
static inline const void *s1_tensor_row(const s1_tensor *t, int64_t r)
{
    return (const char *)t->data + (size_t)(r * t->row_stride) * s1_dtype_size(t->dtype);
}

/* Output rows per block: a block's weights stay in L2 while every input row
 * passes over them (prefill); at batch 1 it is one sequential stream. */
#define S1_MM_ROW_BLOCK 32

#endif
