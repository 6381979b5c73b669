/* AVX2 + FMA (+ F16C) kernels: 8 f32 lanes; weights widened to f32 as they
 * are loaded. Compiled with a target attribute so the build needs no -march;
 * called only when the CPU reports these features (kernels.c). */
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INL TGT static inline __attribute__((always_inline))
/* Tile loops must unroll fully so that accumulators live in registers. */
#define UNROLL _Pragma("GCC unroll 8")
#define NT     4 /* input rows per tile: 2 x 4 accumulators of 16 registers */

INL __m256 load_w8(const char *row, int64_t k, s1_dtype dt)
{
    if (dt == S1_DTYPE_BF16) {
        __m128i h = _mm_loadu_si128((const __m128i *)(row + 2 * k));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    if (dt == S1_DTYPE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * k)));
    return _mm256_loadu_ps((const float *)row + k);
}

INL float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* out[t..t+nt, r] for one weight row r; nt is a constant where it is
 * inlined. One row at a time, as one sequential stream (kernels_avx512.c
 * says why). Two chains of sums per output, over alternate 8-lane steps, so
 * that batch 1 is not held to one FMA latency per step. */
INL void tile(const s1_cpu_mm *m, int64_t r, int t, int nt, s1_dtype dt)
{
    const int64_t K = m->w->cols;
    const char *wr = s1_tensor_row(m->w, r);
    const float *xr[NT];
    __m256 acc[2][NT];
    UNROLL
    for (int j = 0; j < nt; j++) {
        xr[j] = (const float *)m->x + (t + j) * K;
        acc[0][j] = acc[1][j] = _mm256_setzero_ps();
    }
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 wv = load_w8(wr, k, dt);
        UNROLL
        for (int j = 0; j < nt; j++)
            acc[0][j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xr[j] + k), acc[0][j]);
        if ((k += 8) + 8 > K) break;
        wv = load_w8(wr, k, dt);
        UNROLL
        for (int j = 0; j < nt; j++)
            acc[1][j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xr[j] + k), acc[1][j]);
    }
    UNROLL
    for (int j = 0; j < nt; j++) {
        float s = hsum8(_mm256_add_ps(acc[0][j], acc[1][j]));
        for (int64_t kk = k; kk < K; kk++)
            s += xr[j][kk] * s1_row_at(wr, kk, dt);
        m->out[(t + j) * m->ldo + r] = s + (m->bias ? m->bias[r] : 0);
    }
}

/* Rows [r0, r1) in L2-sized blocks; each block meets every input row, in
 * tiles of NT inputs (then 2, 1 for the rest). */
INL void mm_rows(const s1_cpu_mm *m, int64_t r0, int64_t r1, s1_dtype dt)
{
    for (int64_t rb = r0; rb < r1; rb += S1_MM_ROW_BLOCK) {
        int64_t re = rb + S1_MM_ROW_BLOCK < r1 ? rb + S1_MM_ROW_BLOCK : r1;
        for (int t = 0; t < m->n;) {
            int left = m->n - t, nt = left >= NT ? NT : left >= 2 ? 2 : 1;
            for (int64_t r = rb; r < re; r++) {
                if (nt == NT)
                    tile(m, r, t, NT, dt);
                else if (nt == 2)
                    tile(m, r, t, 2, dt);
                else
                    tile(m, r, t, 1, dt);
            }
            t += nt;
        }
    }
}

TGT static void matmul_avx2(const s1_cpu_mm *m, int64_t r0, int64_t r1)
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

/* The mask of the first n (< 8) lanes, or all. */
INL __m256i lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Scores of gn (constant where inlined) query heads from g, for 8 slots. */
INL void qk_tile(float *s, int lds, const float *q, int g, int gn, int hd, const float *kt, int ldk,
                 __m256i m)
{
    __m256 acc[4];
    UNROLL
    for (int j = 0; j < gn; j++)
        acc[j] = _mm256_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m256 kv = _mm256_maskload_ps(kt + d * ldk, m);
        UNROLL
        for (int j = 0; j < gn; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(q[(g + j) * hd + d]), kv, acc[j]);
    }
    UNROLL
    for (int j = 0; j < gn; j++)
        _mm256_maskstore_ps(s + (g + j) * lds, m, acc[j]);
}

TGT static void qk_avx2(float *s, int lds, const float *q, int G, int hd, const float *kt, int ldk,
                        int n)
{
    for (int i = 0; i < n; i += 8) {
        int g = 0;
        for (; g + 4 <= G; g += 4)
            qk_tile(s + i, lds, q, g, 4, hd, kt + i, ldk, lanes(n - i));
        for (; g < G; g++)
            qk_tile(s + i, lds, q, g, 1, hd, kt + i, ldk, lanes(n - i));
    }
}

/* The output stays in registers over the block's slots, 32 lanes at a time. */
TGT static void pv_avx2(float *out, const float *p, const float *v, int hd, int n)
{
    for (int c = 0; c < hd; c += 32) {
        __m256 acc[4];
        __m256i m[4];
        UNROLL
        for (int u = 0; u < 4; u++) {
            m[u] = lanes(hd - c - 8 * u);
            acc[u] = _mm256_maskload_ps(out + c + 8 * u, m[u]);
        }
        for (int i = 0; i < n; i++) {
            __m256 pi = _mm256_set1_ps(p[i]);
            UNROLL
            for (int u = 0; u < 4; u++)
                acc[u] =
                    _mm256_fmadd_ps(pi, _mm256_maskload_ps(v + i * hd + c + 8 * u, m[u]), acc[u]);
        }
        UNROLL
        for (int u = 0; u < 4; u++)
            _mm256_maskstore_ps(out + c + 8 * u, m[u], acc[u]);
    }
}

/* e^x as exp16 in kernels_avx512.c, 8 lanes; 2^k built in the exponent. */
INL __m256 exp8(__m256 x)
{
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145752f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.42860677e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

TGT static void softmax_avx2(float *p, int n, float scale)
{
    __m256 max = _mm256_set1_ps(-INFINITY), sum = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256i k = lanes(n - i);
        max = _mm256_blendv_ps(max, _mm256_max_ps(max, _mm256_maskload_ps(p + i, k)),
                               _mm256_castsi256_ps(k));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(max), _mm256_extractf128_ps(max, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    __m256 m = _mm256_set1_ps(_mm_cvtss_f32(m4)), sc = _mm256_set1_ps(scale);
    for (int i = 0; i < n; i += 8) {
        __m256i k = lanes(n - i);
        __m256 e = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(p + i, k), m), sc));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(k));
        sum = _mm256_add_ps(sum, e);
        _mm256_maskstore_ps(p + i, k, e);
    }
    __m256 inv = _mm256_set1_ps(1.0f / hsum8(sum));
    for (int i = 0; i < n; i += 8)
        _mm256_maskstore_ps(p + i, lanes(n - i),
                            _mm256_mul_ps(_mm256_maskload_ps(p + i, lanes(n - i)), inv));
}

const s1_cpu_kernels s1_cpu_kernels_avx2 = {
    .name = "avx2",
    .matmul = matmul_avx2,
    .packs_bf16 = false,
    .qk = qk_avx2,
    .pv = pv_avx2,
    .softmax = softmax_avx2,
};
#else
/* Not an x86 build: the table exists but is never supported (kernels.c). */
const s1_cpu_kernels s1_cpu_kernels_avx2 = {.name = "avx2"};
#endif
