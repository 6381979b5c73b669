/* The CPU backend's kernels (every instruction set this CPU runs, every
 * weight dtype, strided views, ragged shapes) and layer ops against plain
 * double-precision references. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "cpu/pool.h"

#define ROWS   37 /* not a multiple of any tile or row block */
#define COLS   83 /* not a multiple of 8, 16 or 32 lanes */
#define STRIDE 97 /* a view: rows longer than the columns used */
#define N      13 /* inputs: tiles of 8, 4 and 1 */

static const char *const kernel_names[] = {"portable", "avx2", "avx512bf16"};

static float rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* A ROWS x COLS view (row stride STRIDE) of random weights of dtype dt. */
static s1_tensor make_weights(s1_dtype dt, void *buf, unsigned seed)
{
    for (int i = 0; i < ROWS * STRIDE; i++) {
        float v = rnd(&seed);
        if (dt == S1_DTYPE_F32)
            ((float *)buf)[i] = v;
        else if (dt == S1_DTYPE_BF16)
            ((uint16_t *)buf)[i] = s1_f32_to_bf16(v);
        else
            ((uint16_t *)buf)[i] = (uint16_t)(0x3800 + (seed >> 20) % 0x800) | (v < 0 ? 0x8000 : 0);
    }
    return (s1_tensor){.data = buf, .dtype = dt, .rows = ROWS, .cols = COLS, .row_stride = STRIDE};
}

/* out[t, r] in double; scale[t, r] = sum |x w|, the size of the rounding
 * error (the bf16 hi+lo split of x included: < 2^-17 relative). */
static void reference(const s1_tensor *w, const float *x, const float *bias, double *out,
                      double *scale)
{
    for (int t = 0; t < N; t++)
        for (int r = 0; r < ROWS; r++) {
            double s = bias[r], a = fabs(bias[r]);
            for (int k = 0; k < COLS; k++) {
                double xv = x[t * COLS + k];
                s += xv * s1_row_at(s1_tensor_row(w, r), k, w->dtype);
                a += fabs(xv * s1_row_at(s1_tensor_row(w, r), k, w->dtype));
            }
            out[t * ROWS + r] = s;
            scale[t * ROWS + r] = a;
        }
}

/* Weights start `offset` bytes past a cache line: kernels that align their
 * loads split each row differently for each offset. */
static void check_matmul(const s1_cpu_kernels *k, s1_dtype dt, size_t offset)
{
    static float wbuf[ROWS * STRIDE + 16] __attribute__((aligned(64)));
    static float x[N * COLS], bias[ROWS], out[N * ROWS], one[ROWS];
    static float xbuf[N * COLS]; /* 4 bytes per input element */
    static double ref[N * ROWS], scale[N * ROWS];
    unsigned seed = 7 + (unsigned)dt;
    s1_tensor w = make_weights(dt, (char *)wbuf + offset, 99);
    for (int i = 0; i < N * COLS; i++)
        x[i] = rnd(&seed);
    for (int i = 0; i < ROWS; i++)
        bias[i] = rnd(&seed);
    reference(&w, x, bias, ref, scale);
    s1_cpu_mm m = {.out = out,
                   .ldo = ROWS,
                   .n = N,
                   .w = &w,
                   .bias = bias,
                   .x = s1_cpu_prep_x(k, dt, x, N, COLS, xbuf)};
    k->matmul(&m, 0, ROWS);
    for (int i = 0; i < N * ROWS; i++)
        if (fabs(out[i] - ref[i]) > 1e-5 * scale[i] + 1e-6)
            fail_msg("%s %s at +%zu: out[%d] = %.9g, reference %.9g", k->name, s1_dtype_name(dt),
                     offset, i, out[i], ref[i]);
    /* each row alone gives the same bits as within the batch */
    for (int t = 0; t < N; t++) {
        s1_cpu_mm m1 = {.out = one,
                        .ldo = ROWS,
                        .n = 1,
                        .w = &w,
                        .bias = bias,
                        .x = s1_cpu_prep_x(k, dt, x + t * COLS, 1, COLS, xbuf)};
        k->matmul(&m1, 0, ROWS);
        assert_memory_equal(one, out + t * ROWS, sizeof one);
    }
}

static void test_matmul_matches_the_reference_on_every_kernel_set_dtype_and_alignment(void **state)
{
    (void)state;
    int ran = 0;
    for (size_t i = 0; i < sizeof kernel_names / sizeof *kernel_names; i++) {
        const s1_cpu_kernels *k = s1_cpu_kernels_get(kernel_names[i]);
        if (!k) continue;
        ran++;
        for (size_t offset = 0; offset < 64; offset += 4) {
            check_matmul(k, S1_DTYPE_F32, offset);
            check_matmul(k, S1_DTYPE_F16, offset);
            check_matmul(k, S1_DTYPE_BF16, offset);
        }
        check_matmul(k, S1_DTYPE_F16, 2);
        check_matmul(k, S1_DTYPE_BF16, 34);
    }
    assert_true(ran >= 1);
    assert_non_null(s1_cpu_kernels_get("portable"));
    assert_null(s1_cpu_kernels_get("sse9"));
}

static void test_parallel_projections_give_the_bits_of_one_thread(void **state)
{
    (void)state;
    static uint16_t wa[ROWS * STRIDE], wb[ROWS * STRIDE];
    static float x[N * COLS], xbuf[N * COLS], o1[2][N * ROWS], o3[2][N * ROWS];
    unsigned seed = 3;
    for (int i = 0; i < N * COLS; i++)
        x[i] = rnd(&seed);
    s1_tensor a = make_weights(S1_DTYPE_BF16, wa, 1), b = make_weights(S1_DTYPE_BF16, wb, 2);
    s1_err err;
    s1_pool *p1 = s1_pool_new(1, &err), *p3 = s1_pool_new(3, &err);
    assert_non_null(p1);
    assert_non_null(p3);
    const s1_cpu_kernels *k = s1_cpu_kernels_best();
    s1_cpu_proj one[] = {{o1[0], ROWS, &a, NULL}, {o1[1], ROWS, &b, NULL}};
    s1_cpu_proj three[] = {{o3[0], ROWS, &a, NULL}, {o3[1], ROWS, &b, NULL}};
    s1_cpu_matmul(p1, k, x, N, xbuf, one, 2);
    s1_cpu_matmul(p3, k, x, N, xbuf, three, 2);
    assert_memory_equal(o1, o3, sizeof o1);
    s1_pool_free(p1);
    s1_pool_free(p3);
}

/* Scores of G heads against a transposed K block of n slots (a view: row
 * stride ldk), and a weighted sum of V rows, for odd sizes. */
static void test_attention_kernels_match_the_reference_on_every_kernel_set(void **state)
{
    (void)state;
    enum { G = 5, HD = 20, LDK = 19, LDS = 23 };
    float q[G * HD], kt[HD * LDK], v[LDK * HD], p[LDK], s[G * LDS], out[HD], out0[HD];
    unsigned seed = 5;
    for (int i = 0; i < G * HD; i++)
        q[i] = rnd(&seed);
    for (int i = 0; i < HD * LDK; i++)
        kt[i] = rnd(&seed), v[i] = rnd(&seed);
    for (int i = 0; i < LDK; i++)
        p[i] = rnd(&seed);
    for (int i = 0; i < HD; i++)
        out0[i] = rnd(&seed);
    for (size_t ki = 0; ki < sizeof kernel_names / sizeof *kernel_names; ki++) {
        const s1_cpu_kernels *k = s1_cpu_kernels_get(kernel_names[ki]);
        if (!k) continue;
        for (int n = 1; n <= LDK; n += 3) {
            memset(s, 0, sizeof s);
            k->qk(s, LDS, q, G, HD, kt, LDK, n);
            for (int g = 0; g < G; g++)
                for (int i = 0; i < LDS; i++) {
                    double ref = 0;
                    for (int d = 0; d < HD && i < n; d++)
                        ref += (double)q[g * HD + d] * kt[d * LDK + i];
                    assert_float_equal(s[g * LDS + i], ref, 1e-5);
                }
            memcpy(out, out0, sizeof out);
            k->pv(out, p, v, HD, n);
            for (int d = 0; d < HD; d++) {
                double ref = out0[d];
                for (int i = 0; i < n; i++)
                    ref += (double)p[i] * v[i * HD + d];
                assert_float_equal(out[d], ref, 1e-5);
            }
        }
    }
}

static void test_softmax_matches_the_reference_on_every_kernel_set(void **state)
{
    (void)state;
    enum { LEN = 37 };
    float x[LEN], p[LEN];
    unsigned seed = 11;
    for (int i = 0; i < LEN; i++)
        x[i] = 40 * rnd(&seed);
    x[3] = -1e30f; /* a masked-out score */
    for (size_t ki = 0; ki < sizeof kernel_names / sizeof *kernel_names; ki++) {
        const s1_cpu_kernels *k = s1_cpu_kernels_get(kernel_names[ki]);
        if (!k) continue;
        for (int n = 1; n <= LEN; n += 6) {
            double max = x[0], sum = 0;
            for (int i = 1; i < n; i++)
                max = x[i] > max ? x[i] : max;
            for (int i = 0; i < n; i++)
                sum += exp((x[i] - max) * 0.3);
            memcpy(p, x, sizeof p);
            k->softmax(p, n, 0.3f);
            for (int i = 0; i < n; i++)
                assert_float_equal(p[i], exp((x[i] - max) * 0.3) / sum, 1e-6 + 1e-6 * p[i]);
            assert_memory_equal(p + n, x + n, (LEN - n) * sizeof(float));
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) static float hw_f16(uint16_t h)
{
    return _cvtsh_ss(h);
}
#endif

static void test_f16_and_bf16_conversions_are_exact(void **state)
{
    (void)state;
    assert_float_equal(s1_f16_to_f32(0x3c00), 1.0, 0);
    assert_float_equal(s1_f16_to_f32(0xc000), -2.0, 0);
    assert_float_equal(s1_f16_to_f32(0x7bff), 65504.0, 0);
    assert_float_equal(s1_f16_to_f32(0x0001), ldexp(1, -24), 0);
    assert_true(isinf(s1_f16_to_f32(0x7c00)) && isnan(s1_f16_to_f32(0x7e00)));
#if defined(__x86_64__)
    if (s1_cpu_kernels_get("avx2")) /* implies F16C: every f16 against the hardware */
        for (uint32_t h = 0; h < 0x10000; h++) {
            float a = s1_f16_to_f32((uint16_t)h), b = hw_f16((uint16_t)h);
            if (!(isnan(a) && isnan(b))) assert_memory_equal(&a, &b, 4);
        }
#endif
    /* bf16 rounds to nearest, ties to even */
    assert_int_equal(s1_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    assert_int_equal(s1_f32_to_bf16(1.0f + 0x3p-8f), 0x3f82);
    assert_int_equal(s1_f32_to_bf16(1.0f + 0x1.2p-8f), 0x3f81);
    assert_true(isnan(s1_bf16_to_f32(s1_f32_to_bf16(NAN))));
}

static void test_rmsnorm_swiglu_and_add_match_their_formulas(void **state)
{
    (void)state;
    float x[2 * 5] = {1, 2, 3, 4, 5, -1, 0, 0, 0, 1}, w[5] = {1, 0.5f, 2, 1, 1}, out[10];
    s1_cpu_rmsnorm(out, x, w, 2, 5, 1e-6f);
    double rms = sqrt((1 + 4 + 9 + 16 + 25) / 5.0 + 1e-6);
    assert_float_equal(out[1], 2 * 0.5 / rms, 1e-6);
    assert_float_equal(out[5], -1 / sqrt(2 / 5.0 + 1e-6), 1e-6);
    float g[3] = {0, 2, -3}, u[3] = {1, 3, 2};
    s1_cpu_swiglu(g, u, 3);
    assert_float_equal(g[0], 0, 0);
    assert_float_equal(g[1], 2 / (1 + exp(-2)) * 3, 1e-6);
    assert_float_equal(g[2], -3 / (1 + exp(3)) * 2, 1e-6);
    s1_cpu_add(u, g, 3);
    assert_float_equal(u[0], 1, 0);
}

static void test_rope_rotates_the_pairs_of_each_half_by_position(void **state)
{
    (void)state;
    enum { HD = 8, HALF = HD / 2 };
    int32_t pos[2] = {0, 1000};
    float c[2 * HALF], s[2 * HALF], v[2 * 2 * HD];
    s1_cpu_rope_tables(c, s, pos, 2, HD, 10000.0f);
    for (int i = 0; i < 2 * 2 * HD; i++)
        v[i] = (float)(i % HD + 1);
    s1_cpu_rope(v, 2, 2, HD, c, s);
    for (int j = 0; j < HD; j++) /* position 0 turns by nothing */
        assert_float_equal(v[j], j + 1, 0);
    for (int j = 0; j < HALF; j++) { /* pair (j, j + hd/2) of token 1, head 1 */
        double a = 1000.0 * pow(10000.0, -2.0 * j / HD), x1 = j + 1, x2 = j + 1 + HALF;
        float *h = v + 3 * HD;
        assert_float_equal(h[j], x1 * cos(a) - x2 * sin(a), 1e-4);
        assert_float_equal(h[j + HALF], x2 * cos(a) + x1 * sin(a), 1e-4);
    }
}

static void test_embed_gathers_rows_of_any_dtype(void **state)
{
    (void)state;
    uint16_t e[3 * 4];
    for (int i = 0; i < 12; i++)
        e[i] = s1_f32_to_bf16((float)i);
    s1_tensor t = {.data = e, .dtype = S1_DTYPE_BF16, .rows = 3, .cols = 4, .row_stride = 4};
    int32_t tok[2] = {2, 0};
    float x[8];
    s1_cpu_embed(x, &t, tok, 2);
    assert_float_equal(x[0], 8, 0);
    assert_float_equal(x[7], 3, 0);
}

static void count_thread(void *ctx, int tid, int n_threads)
{
    int *seen = ctx;
    __atomic_fetch_add(&seen[tid], 1, __ATOMIC_SEQ_CST);
    assert_int_equal(n_threads, 4);
}

static void test_the_pool_runs_each_thread_once_per_run(void **state)
{
    (void)state;
    s1_err err;
    s1_pool *p = s1_pool_new(4, &err);
    assert_non_null(p);
    int seen[4] = {0};
    for (int i = 0; i < 100; i++)
        s1_pool_run(p, count_thread, seen);
    for (int i = 0; i < 4; i++)
        assert_int_equal(seen[i], 100);
    s1_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_matches_the_reference_on_every_kernel_set_dtype_and_alignment),
        cmocka_unit_test(test_parallel_projections_give_the_bits_of_one_thread),
        cmocka_unit_test(test_attention_kernels_match_the_reference_on_every_kernel_set),
        cmocka_unit_test(test_softmax_matches_the_reference_on_every_kernel_set),
        cmocka_unit_test(test_f16_and_bf16_conversions_are_exact),
        cmocka_unit_test(test_rmsnorm_swiglu_and_add_match_their_formulas),
        cmocka_unit_test(test_rope_rotates_the_pairs_of_each_half_by_position),
        cmocka_unit_test(test_embed_gathers_rows_of_any_dtype),
        cmocka_unit_test(test_the_pool_runs_each_thread_once_per_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
