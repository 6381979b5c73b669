#include "ops.h"

#include <math.h>
#include <stdatomic.h>

#include "profile.h"

void s1_cpu_tensor_f32(float *out, const s1_tensor *t)
{
    const void *row = s1_tensor_row(t, 0);
    for (int64_t c = 0; c < t->cols; c++)
        out[c] = s1_row_at(row, c, t->dtype);
}

void s1_cpu_embed(float *x, const s1_tensor *embed, const int32_t *tok, int n)
{
    int64_t d = embed->cols;
    for (int i = 0; i < n; i++) {
        const void *row = s1_tensor_row(embed, tok[i]);
        for (int64_t c = 0; c < d; c++)
            x[i * d + c] = s1_row_at(row, c, embed->dtype);
    }
}

void s1_cpu_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps)
{
    double t0 = s1_cpu_profile_start();
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        double ss = 0;
        for (int c = 0; c < d; c++)
            ss += (double)xi[c] * xi[c];
        float inv = (float)(1.0 / sqrt(ss / d + eps));
        for (int c = 0; c < d; c++)
            out[(size_t)i * d + c] = xi[c] * inv * w[c];
    }
    s1_cpu_profile_stop(S1_CPU_OP_NORM, t0);
}

void s1_cpu_rope_tables(float *cos_out, float *sin_out, const int32_t *pos, int n, int hd,
                        float theta)
{
    int half = hd / 2;
    for (int j = 0; j < half; j++) {
        double inv_freq = pow((double)theta, -2.0 * j / hd);
        for (int i = 0; i < n; i++) {
            double a = pos[i] * inv_freq;
            cos_out[i * half + j] = (float)cos(a);
            sin_out[i * half + j] = (float)sin(a);
        }
    }
}

void s1_cpu_rope(float *v, int n, int heads, int hd, const float *cos, const float *sin)
{
    int half = hd / 2;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < heads; h++) {
            float *x = v + ((size_t)i * heads + h) * hd;
            const float *c = cos + (size_t)i * half, *s = sin + (size_t)i * half;
            for (int j = 0; j < half; j++) {
                float a = x[j], b = x[j + half];
                x[j] = a * c[j] - b * s[j];
                x[j + half] = b * c[j] + a * s[j];
            }
        }
}

void s1_cpu_swiglu(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void s1_cpu_add(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* Runs of rows, CHUNKS_PER_THREAD per thread: long enough that the weights
 * stream sequentially (the hardware prefetcher restarts at every jump),
 * enough of them that a thread slowed down by the OS does not hold up the
 * others for long. */
#define CHUNKS_PER_THREAD 4
#define MAX_PROJ          4

typedef struct {
    const s1_cpu_kernels *k;
    s1_cpu_mm mm[MAX_PROJ];
    int64_t chunk[MAX_PROJ];
    int first[MAX_PROJ + 1]; /* chunks of projection i: [first[i], first[i+1]) */
    int n_proj;
    atomic_int next; /* the next chunk to take */
} matmul_job;

static void matmul_part(void *ctx, int tid, int n_threads)
{
    (void)tid, (void)n_threads;
    matmul_job *j = ctx;
    for (int c; (c = atomic_fetch_add(&j->next, 1)) < j->first[j->n_proj];) {
        int i = 0;
        while (c >= j->first[i + 1])
            i++;
        int64_t r0 = (c - j->first[i]) * j->chunk[i], rows = j->mm[i].w->rows;
        j->k->matmul(&j->mm[i], r0, r0 + j->chunk[i] < rows ? r0 + j->chunk[i] : rows);
    }
}

/* One parallel step for projections of one input that share a dtype. */
static void matmul_group(s1_pool *pool, const s1_cpu_kernels *k, const float *x, int n, void *xbuf,
                         const s1_cpu_proj *p, int n_proj)
{
    matmul_job j = {.k = k, .n_proj = n_proj};
    const void *xp = s1_cpu_prep_x(k, p[0].w->dtype, x, n, p[0].w->cols, xbuf);
    int64_t total = 0;
    for (int i = 0; i < n_proj; i++)
        total += p[i].w->rows;
    if (!total || !n) return;
    for (int i = 0; i < n_proj; i++) {
        /* each projection's share of the chunks, by its rows */
        int64_t want = CHUNKS_PER_THREAD * s1_pool_size(pool) * p[i].w->rows / total + 1;
        int64_t c = (p[i].w->rows + want - 1) / want;
        j.chunk[i] = (c + S1_MM_ROW_BLOCK - 1) / S1_MM_ROW_BLOCK * S1_MM_ROW_BLOCK;
        j.first[i + 1] = j.first[i] + (int)((p[i].w->rows + j.chunk[i] - 1) / j.chunk[i]);
        j.mm[i] = (s1_cpu_mm){
            .out = p[i].out, .ldo = p[i].ldo, .x = xp, .n = n, .w = p[i].w, .bias = p[i].bias};
    }
    atomic_init(&j.next, 0);
    s1_pool_run(pool, matmul_part, &j);
}

void s1_cpu_matmul(s1_pool *pool, const s1_cpu_kernels *k, const float *x, int n, void *xbuf,
                   const s1_cpu_proj *p, int n_proj)
{
    double t0 = s1_cpu_profile_start();
    for (int i = 0, e; i < n_proj; i = e) {
        for (e = i + 1; e < n_proj && e - i < MAX_PROJ && p[e].w->dtype == p[i].w->dtype; e++)
            ;
        matmul_group(pool, k, x, n, xbuf, p + i, e - i);
    }
    s1_cpu_profile_stop(S1_CPU_OP_MATMUL, t0);
}
