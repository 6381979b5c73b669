/* AVX-512 kernels: 16 f32 lanes, and for bf16 weights the BF16 dot product
 * (vdpbf16ps: 32 bf16 pairs per instruction) on the input split into bf16
 * hi and lo halves (kernels.h). Tails use masked loads. Called only when the
 * CPU reports avx512f/bw/vl/bf16 (kernels.c). */
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma,f16c")))
#define INL TGT static inline __attribute__((always_inline))
/* Tile loops must unroll fully so that accumulators live in registers. */
#define UNROLL _Pragma("GCC unroll 8")
/* Tiles, 16 accumulators each (bf16 keeps two per output): one weight row
 * by up to NT inputs, or in batches of more than NT inputs NR rows by NT2. */
#define NT  8
#define NR  2
#define NT2 4

/* Elements of w per step: 32 bf16 pairs, or 16 f32/f16. */
#define STEP(dt) ((dt) == S1_DTYPE_BF16 ? 32 : 16)
/* Tiles of at least PREFETCH_INPUTS inputs prefetch their weights this far
 * ahead (placed rows are contiguous, so it runs on into the next rows): with
 * the arithmetic of several inputs per weight the core issues its loads too
 * late for the hardware prefetcher alone (batch 8 decode +25%, measured);
 * one input's stream is left to the hardware, which keeps up with it. */
#define PREFETCH_BYTES  4096
#define PREFETCH_INPUTS 4

/* One step of weights from row[k]: as bf16 pairs (bf16) or f32, masked. */
INL __m512 load_w(const char *row, int64_t k, __mmask32 mask, s1_dtype dt)
{
    if (dt == S1_DTYPE_BF16)
        return _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mask, row + 2 * k));
    if (dt == S1_DTYPE_F16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16((__mmask16)mask, row + 2 * k));
    return _mm512_maskz_loadu_ps((__mmask16)mask, (const float *)row + k);
}

/* One step of w·x into the accumulators: f32/f16 into acc; bf16 w·hi into
 * acc and w·lo into lo_acc, two chains so that neither waits on the other
 * (a single chain would halve the rate at batch 1). */
INL void madd(__m512 *acc, __m512 *lo_acc, __m512 w, const char *x, int64_t k, int64_t K,
              __mmask32 mask, s1_dtype dt)
{
    if (dt != S1_DTYPE_BF16) {
        __m512 xv = _mm512_maskz_loadu_ps((__mmask16)mask, (const float *)x + k);
        *acc = _mm512_fmadd_ps(w, xv, *acc);
        return;
    }
    const uint16_t *h = (const uint16_t *)x;
    __m512bh wb = (__m512bh)_mm512_castps_si512(w);
    *acc = _mm512_dpbf16_ps(*acc, wb, (__m512bh)_mm512_maskz_loadu_epi16(mask, h + k));
    *lo_acc = _mm512_dpbf16_ps(*lo_acc, wb, (__m512bh)_mm512_maskz_loadu_epi16(mask, h + K + k));
}

/* One step at k (lanes of mask) for the tile's nr rows and nt inputs. */
INL void tile_step(__m512 acc[NR][NT], __m512 lo_acc[NR][NT], const char *const *wr,
                   const char *const *xr, int64_t k, int64_t K, __mmask32 mask, int nr, int nt,
                   s1_dtype dt)
{
    __m512 wv[NR];
    UNROLL
    for (int i = 0; i < nr; i++) {
        if (nt >= PREFETCH_INPUTS)
            _mm_prefetch(wr[i] + k * (dt == S1_DTYPE_F32 ? 4 : 2) + PREFETCH_BYTES, _MM_HINT_T0);
        wv[i] = load_w(wr[i], k, mask, dt);
    }
    UNROLL
    for (int j = 0; j < nt; j++) {
        UNROLL
        for (int i = 0; i < nr; i++)
            madd(&acc[i][j], &lo_acc[i][j], wv[i], xr[j], k, K, mask, dt);
    }
}

/* Elements of w's first row before a 64-byte boundary (32 for f16, whose
 * steps are 32 bytes): where the whole steps start. Whole steps from an
 * aligned address never straddle cache lines, and only they run unmasked:
 * masked loads of weights streaming from memory, or loads split over two
 * lines, cost AMD Zen cores up to two thirds of the rate (measured). The
 * split depends on the tensor alone, so each output is summed the same way
 * in any tile, whatever the batch. */
INL int64_t head_len(const s1_tensor *w, s1_dtype dt)
{
    int64_t size = dt == S1_DTYPE_F32 ? 4 : 2, line = dt == S1_DTYPE_F16 ? 32 : 64;
    int64_t mis = (int64_t)((uintptr_t)w->data % (uintptr_t)line) / size;
    return mis ? STEP(dt) - mis : 0;
}

/* The lanes [from, to) of a step, 0 <= from < to <= STEP. */
INL __mmask32 lanes_between(int64_t from, int64_t to)
{
    return (__mmask32)((to >= 32 ? ~0u : (1u << to) - 1) & ~((1u << from) - 1));
}

/* out[t..t+nt, r..r+nr]; nr and nt are constants where it is inlined. */
INL void tile(const s1_cpu_mm *m, int64_t r, int t, int nr, int nt, s1_dtype dt)
{
    const s1_tensor *w = m->w;
    const int64_t K = w->cols;
    const char *wr[NR];
    const char *xr[NT];
    __m512 acc[NR][NT], lo_acc[NR][NT];
    UNROLL
    for (int i = 0; i < nr; i++)
        wr[i] = s1_tensor_row(w, r + i);
    UNROLL
    for (int j = 0; j < nt; j++)
        xr[j] = (const char *)m->x + (size_t)((t + j) * K) * 4; /* f32, or bf16 hi+lo */
    UNROLL
    for (int i = 0; i < nr; i++) {
        UNROLL
        for (int j = 0; j < nt; j++)
            acc[i][j] = lo_acc[i][j] = _mm512_setzero_ps();
    }
    int64_t k = head_len(w, dt);
    if (k) { /* the step ending at the boundary, its lanes before element 0 masked off */
        int64_t before = STEP(dt) - k;
        tile_step(acc, lo_acc, wr, xr, -before, K,
                  lanes_between(before, K + before < STEP(dt) ? K + before : STEP(dt)), nr, nt, dt);
    }
    for (; k + STEP(dt) <= K; k += STEP(dt))
        tile_step(acc, lo_acc, wr, xr, k, K, (__mmask32)~0u, nr, nt, dt);
    if (k < K) tile_step(acc, lo_acc, wr, xr, k, K, lanes_between(0, K - k), nr, nt, dt);
    UNROLL
    for (int i = 0; i < nr; i++) {
        UNROLL
        for (int j = 0; j < nt; j++) {
            __m512 sum = dt == S1_DTYPE_BF16 ? _mm512_add_ps(acc[i][j], lo_acc[i][j]) : acc[i][j];
            m->out[(t + j) * m->ldo + r + i] =
                _mm512_reduce_add_ps(sum) + (m->bias ? m->bias[r + i] : 0);
        }
    }
}

/* One row of w against inputs [t, t+nt), nt < NT, in tiles of 4, 2, 1. */
INL void row_rest(const s1_cpu_mm *m, int64_t r, int t, int nt, s1_dtype dt)
{
    for (int e = t + nt; t < e;) {
        if (e - t >= 4)
            tile(m, r, t, 1, 4, dt), t += 4;
        else if (e - t >= 2)
            tile(m, r, t, 1, 2, dt), t += 2;
        else
            tile(m, r, t, 1, 1, dt), t += 1;
    }
}

/* Rows [r0, r1) in L2-sized blocks; each block meets every input row.
 * Up to NT inputs (decode, memory-bound) a tile is one weight row against
 * them all: one sequential stream, which the hardware prefetcher follows at
 * full speed, where interleaved rows lose a third to half of the bandwidth
 * (measured). Past NT inputs (prefill, compute-bound) tiles of NR rows by
 * NT2 inputs reuse each input load (+40% measured). An output's sum is the
 * same in any tile. */
INL void mm_rows(const s1_cpu_mm *m, int64_t r0, int64_t r1, s1_dtype dt)
{
    for (int64_t rb = r0; rb < r1; rb += S1_MM_ROW_BLOCK) {
        int64_t re = rb + S1_MM_ROW_BLOCK < r1 ? rb + S1_MM_ROW_BLOCK : r1;
        if (m->n <= NT) {
            for (int64_t r = rb; r < re; r++)
                if (m->n == NT)
                    tile(m, r, 0, 1, NT, dt);
                else
                    row_rest(m, r, 0, m->n, dt);
            continue;
        }
        int t = 0;
        for (; t + NT2 <= m->n; t += NT2) {
            int64_t r = rb;
            for (; r + NR <= re; r += NR)
                tile(m, r, t, NR, NT2, dt);
            for (; r < re; r++)
                tile(m, r, t, 1, NT2, dt);
        }
        for (int64_t r = rb; t < m->n && r < re; r++)
            row_rest(m, r, t, m->n - t, dt);
    }
}

TGT static void matmul_avx512(const s1_cpu_mm *m, int64_t r0, int64_t r1)
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

/* The first n (< 16) lanes, or all. */
INL __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

/* 16 floats at p, the lanes of m: unmasked when m is full, since masked
 * loads and stores cost more on some cores (AMD Zen) and K/V stream from
 * memory. */
INL __m512 load16(const float *p, __mmask16 m)
{
    return m == 0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

INL void store16(float *p, __mmask16 m, __m512 v)
{
    if (m == 0xffff)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, m, v);
}

/* Scores of gn (constant where inlined) query heads from g, for 16 slots. */
INL void qk_tile(float *s, int lds, const float *q, int g, int gn, int hd, const float *kt, int ldk,
                 __mmask16 m)
{
    __m512 acc[8];
    UNROLL
    for (int j = 0; j < gn; j++)
        acc[j] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m512 kv = load16(kt + d * ldk, m);
        UNROLL
        for (int j = 0; j < gn; j++)
            acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(q[(g + j) * hd + d]), kv, acc[j]);
    }
    UNROLL
    for (int j = 0; j < gn; j++)
        store16(s + (g + j) * lds, m, acc[j]);
}

TGT static void qk_avx512(float *s, int lds, const float *q, int G, int hd, const float *kt,
                          int ldk, int n)
{
    for (int i = 0; i < n; i += 16)
        for (int g = 0, gn; g < G; g += gn) {
            /* all of a group's heads in one tile: a chain of sums each */
            gn = G - g >= 8 ? 8 : G - g;
            switch (gn) {
            case 8:
                qk_tile(s + i, lds, q, g, 8, hd, kt + i, ldk, lanes(n - i));
                break;
            case 7:
                qk_tile(s + i, lds, q, g, 7, hd, kt + i, ldk, lanes(n - i));
                break;
            case 6:
                qk_tile(s + i, lds, q, g, 6, hd, kt + i, ldk, lanes(n - i));
                break;
            case 5:
                qk_tile(s + i, lds, q, g, 5, hd, kt + i, ldk, lanes(n - i));
                break;
            case 4:
                qk_tile(s + i, lds, q, g, 4, hd, kt + i, ldk, lanes(n - i));
                break;
            case 3:
                qk_tile(s + i, lds, q, g, 3, hd, kt + i, ldk, lanes(n - i));
                break;
            case 2:
                qk_tile(s + i, lds, q, g, 2, hd, kt + i, ldk, lanes(n - i));
                break;
            default:
                qk_tile(s + i, lds, q, g, 1, hd, kt + i, ldk, lanes(n - i));
            }
        }
}

/* The output stays in registers over the block's slots, 64 lanes at a time. */
TGT static void pv_avx512(float *out, const float *p, const float *v, int hd, int n)
{
    for (int c = 0; c < hd; c += 64) {
        __m512 acc[4];
        __mmask16 m[4];
        UNROLL
        for (int u = 0; u < 4; u++) {
            m[u] = lanes(hd - c - 16 * u > 0 ? hd - c - 16 * u : 0);
            acc[u] = load16(out + c + 16 * u, m[u]);
        }
        for (int i = 0; i < n; i++) {
            __m512 pi = _mm512_set1_ps(p[i]);
            UNROLL
            for (int u = 0; u < 4; u++)
                acc[u] = _mm512_fmadd_ps(pi, load16(v + i * hd + c + 16 * u, m[u]), acc[u]);
        }
        UNROLL
        for (int u = 0; u < 4; u++)
            store16(out + c + 16 * u, m[u], acc[u]);
    }
}

/* e^x for x <= 88: 2^k * P(r), k = round(x / ln 2), r = x - k ln 2 (ln 2 in
 * two parts), P the degree-6 Taylor polynomial (|r| <= 0.35: error 1e-7). */
INL __m512 exp16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145752f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

TGT static void softmax_avx512(float *p, int n, float scale)
{
    __m512 max = _mm512_set1_ps(-INFINITY), sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16)
        max =
            _mm512_mask_max_ps(max, lanes(n - i), max, _mm512_maskz_loadu_ps(lanes(n - i), p + i));
    __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(max)), sc = _mm512_set1_ps(scale);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = lanes(n - i);
        __m512 e = exp16(_mm512_mul_ps(_mm512_sub_ps(load16(p + i, k), m), sc));
        e = _mm512_maskz_mov_ps(k, e);
        sum = _mm512_add_ps(sum, e);
        store16(p + i, k, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int i = 0; i < n; i += 16)
        store16(p + i, lanes(n - i), _mm512_mul_ps(load16(p + i, lanes(n - i)), inv));
}

const s1_cpu_kernels s1_cpu_kernels_avx512bf16 = {
    .name = "avx512bf16",
    .matmul = matmul_avx512,
    .packs_bf16 = true,
    .qk = qk_avx512,
    .pv = pv_avx512,
    .softmax = softmax_avx512,
};
#else
/* Not an x86 build: the table exists but is never supported (kernels.c). */
const s1_cpu_kernels s1_cpu_kernels_avx512bf16 = {.name = "avx512bf16"};
#endif
