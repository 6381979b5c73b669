/* Portable kernels, the run-time choice between instruction sets, and the
 * preparation of matmul inputs shared by all of them. */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <string.h>

float s1_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man) { /* subnormal: normalise */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    } else {
        u = sign;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Lanes of the portable dot product: independent partial sums, as a vector
 * unit would keep them, which the compiler can vectorise. */
#define LANES 8

/* x[k] · row[k] */
static inline __attribute__((always_inline)) float dot_row(const float *x, const void *row,
                                                           int64_t n, s1_dtype dt)
{
    float acc[LANES] = {0};
    int64_t k = 0;
    for (; k + LANES <= n; k += LANES)
        for (int l = 0; l < LANES; l++)
            acc[l] += x[k + l] * s1_row_at(row, k + l, dt);
    float s = 0;
    for (int l = 0; l < LANES; l++)
        s += acc[l];
    for (; k < n; k++)
        s += x[k] * s1_row_at(row, k, dt);
    return s;
}

static inline __attribute__((always_inline)) void mm_rows(const s1_cpu_mm *m, int64_t r0,
                                                          int64_t r1, s1_dtype dt)
{
    const s1_tensor *w = m->w;
    const float *x = m->x;
    for (int64_t r = r0; r < r1; r++) {
        const void *row = s1_tensor_row(w, r);
        for (int t = 0; t < m->n; t++)
            m->out[t * m->ldo + r] =
                dot_row(x + t * w->cols, row, w->cols, dt) + (m->bias ? m->bias[r] : 0);
    }
}

static void matmul_portable(const s1_cpu_mm *m, int64_t r0, int64_t r1)
{
    switch (m->w->dtype) {
    case S1_DTYPE_BF16:
        mm_rows(m, r0, r1, S1_DTYPE_BF16);
        break;
    case S1_DTYPE_F16:
        mm_rows(m, r0, r1, S1_DTYPE_F16);
        break;
    case S1_DTYPE_F32:
        mm_rows(m, r0, r1, S1_DTYPE_F32);
        break;
    }
}

static void qk_portable(float *s, int lds, const float *q, int G, int hd, const float *kt, int ldk,
                        int n)
{
    for (int g = 0; g < G; g++)
        for (int i = 0; i < n; i++) {
            float acc = 0;
            for (int d = 0; d < hd; d++)
                acc += q[g * hd + d] * kt[d * ldk + i];
            s[g * lds + i] = acc;
        }
}

static void pv_portable(float *out, const float *p, const float *v, int hd, int n)
{
    for (int i = 0; i < n; i++)
        for (int d = 0; d < hd; d++)
            out[d] += p[i] * v[i * hd + d];
}

static void softmax_portable(float *p, int n, float scale)
{
    float max = p[0], sum = 0;
    for (int i = 1; i < n; i++)
        max = p[i] > max ? p[i] : max;
    for (int i = 0; i < n; i++) {
        p[i] = expf((p[i] - max) * scale);
        sum += p[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++)
        p[i] *= inv;
}

const s1_cpu_kernels s1_cpu_kernels_portable = {
    .name = "portable",
    .matmul = matmul_portable,
    .packs_bf16 = false,
    .qk = qk_portable,
    .pv = pv_portable,
    .softmax = softmax_portable,
};

#if defined(__x86_64__) && defined(__GNUC__)
/* CPUID.1:ECX.F16C; clang's __builtin_cpu_supports does not know "f16c". */
static bool has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

static bool supported(const s1_cpu_kernels *k)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (k == &s1_cpu_kernels_avx512bf16)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
    if (k == &s1_cpu_kernels_avx2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
#endif
    return k == &s1_cpu_kernels_portable;
}

static const s1_cpu_kernels *const all_kernels[] = {
    &s1_cpu_kernels_avx512bf16,
    &s1_cpu_kernels_avx2,
    &s1_cpu_kernels_portable,
};

const s1_cpu_kernels *s1_cpu_kernels_get(const char *name)
{
    for (size_t i = 0; i < sizeof all_kernels / sizeof *all_kernels; i++)
        if (!strcmp(all_kernels[i]->name, name))
            return supported(all_kernels[i]) ? all_kernels[i] : NULL;
    return NULL;
}

bool s1_cpu_kernels_known(const char *name)
{
    for (size_t i = 0; i < sizeof all_kernels / sizeof *all_kernels; i++)
        if (!strcmp(all_kernels[i]->name, name)) return true;
    return false;
}

int s1_cpu_kernels_supported(const s1_cpu_kernels **out, int cap)
{
    int n = 0;
    for (size_t i = 0; i < sizeof all_kernels / sizeof *all_kernels && n < cap; i++)
        if (supported(all_kernels[i])) out[n++] = all_kernels[i];
    return n;
}

const s1_cpu_kernels *s1_cpu_kernels_best(void)
{
    const s1_cpu_kernels *k = &s1_cpu_kernels_portable;
    s1_cpu_kernels_supported(&k, 1);
    return k;
}

const void *s1_cpu_prep_x(const s1_cpu_kernels *k, s1_dtype dt, const float *x, int n, int64_t cols,
                          void *buf)
{
    if (dt != S1_DTYPE_BF16 || !k->packs_bf16) return x;
    uint16_t *o = buf;
    for (int t = 0; t < n; t++, o += 2 * cols)
        for (int64_t c = 0; c < cols; c++) {
            float v = x[t * cols + c];
            o[c] = s1_f32_to_bf16(v);
            o[cols + c] = s1_f32_to_bf16(v - s1_bf16_to_f32(o[c]));
        }
    return buf;
}
