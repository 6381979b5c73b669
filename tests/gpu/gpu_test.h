/* tests/gpu/gpu_test.h — what the GPU tests share: TAP output, the skip when
 * there is no GPU (exit 77, so meson's exitcode protocol reports SKIP), a
 * seeded generator, bf16/f16 conversions done on the CPU, and error norms. */
#ifndef S1_GPU_TEST_H
#define S1_GPU_TEST_H

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

static int gt_n, gt_failed;

__attribute__((format(printf, 2, 3))) static inline bool gt_ok(bool cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s %d - ", cond ? "ok" : "not ok", ++gt_n);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (!cond) gt_failed++;
    return cond;
}

/* Ends the test: the plan, then 0 or 1. */
static inline int gt_done(void)
{
    printf("1..%d\n", gt_n);
    return gt_failed ? 1 : 0;
}

/* Skips the whole test (exit 77) when no CUDA device can be used. */
static inline void gt_require_gpu(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        printf("1..0 # SKIP no CUDA device (cudaGetDeviceCount: %s)\n",
               e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        exit(77);
    }
}

/* Aborts the test on a failed CUDA call: nothing after it means anything. */
#define GT_CUDA(call)                                                                              \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            printf("Bail out! %s:%d: %s: %s\n", __FILE__, __LINE__, #call,                         \
                   cudaGetErrorString(e_));                                                        \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t gt_rng = 0x243f6a8885a308d3ull;

static inline void gt_seed(uint64_t s)
{
    gt_rng = s * 0x9e3779b97f4a7c15ull + 1;
}

static inline uint64_t gt_next(void)
{
    gt_rng ^= gt_rng << 13;
    gt_rng ^= gt_rng >> 7;
    gt_rng ^= gt_rng << 17;
    return gt_rng;
}

/* Uniform in [lo, hi). */
static inline float gt_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)((gt_next() >> 40) * 0x1.0p-24);
}

static inline float gt_bf2f(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even, as __float2bfloat16_rn (NaN kept NaN). */
static inline uint16_t gt_f2bf(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static inline float gt_f16_to_f(uint16_t h)
{
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0    ? ldexpf((float)m, -24)
              : e == 31 ? (m ? NAN : INFINITY)
                        : ldexpf((float)(m | 1024), e - 25);
    return s ? -v : v;
}

/* ||a - b|| / ||b|| over n values. */
static inline double gt_rel_err(const float *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    if (!(num == num)) return INFINITY; /* NaN never passes */
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Writes a model of tools/gen_model.py --preset `preset` into a fresh
 * directory (dir: a buffer of at least 32 bytes), with the python3 of
 * S1_PYTHON (it needs numpy); false when it cannot, said in TAP. */
static inline bool gt_gen_model(const char *preset, char *dir, size_t cap)
{
    const char *src = getenv("S1_SOURCE_ROOT"), *py = getenv("S1_PYTHON");
    if (!src) {
        printf("Bail out! S1_SOURCE_ROOT is not set (run through meson test)\n");
        exit(1);
    }
    snprintf(dir, cap, "/tmp/s1-gpu-test-XXXXXX");
    if (!mkdtemp(dir)) return gt_ok(false, "mkdtemp %s: %s", dir, strerror(errno));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s/tools/gen_model.py --out %s --preset %s",
             py ? py : "/usr/bin/python3", src, dir, preset);
    return gt_ok(system(cmd) == 0, "gen_model.py --preset %s writes a model", preset);
}

/* Removes what gt_gen_model wrote. */
static inline void gt_remove_model(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("# could not remove %s\n", dir);
}

static inline void *gt_dev(size_t bytes)
{
    void *p = NULL;
    GT_CUDA(cudaMalloc(&p, bytes ? bytes : 1));
    GT_CUDA(cudaMemset(p, 0xff, bytes ? bytes : 1)); /* poison: NaN in f32 and bf16 */
    return p;
}

static inline void *gt_upload(const void *h, size_t bytes)
{
    void *p = gt_dev(bytes);
    GT_CUDA(cudaMemcpy(p, h, bytes, cudaMemcpyHostToDevice));
    return p;
}

static inline void gt_download(void *h, const void *d, size_t bytes)
{
    GT_CUDA(cudaDeviceSynchronize());
    GT_CUDA(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
}

#endif
