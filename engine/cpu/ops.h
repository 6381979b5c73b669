/* engine/cpu/ops.h — the layer operations of the Qwen2 forward pass on f32
 * activations, one function each, shapes in the comments. Row-wise ops run on
 * the calling thread; matmuls split their output rows over the pool. */
#ifndef S1_CPU_OPS_H
#define S1_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "model.h"
#include "pool.h"

/* x[n, d] = embed[tok[i], :] */
void s1_cpu_embed(float *x, const s1_tensor *embed, const int32_t *tok, int n);

/* out[n, d] = x[n, d] / rms(x[n, :]) * w[d], rms = sqrt(mean(x^2) + eps) */
void s1_cpu_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps);

/* cos, sin[n, hd/2] of the angles pos[i] * theta^(-2j/hd), in double
 * precision so that long positions keep their accuracy. */
void s1_cpu_rope_tables(float *cos, float *sin, const int32_t *pos, int n, int hd, float theta);

/* v[n, heads, hd] rotated in place, "rotate half" as HF Qwen2: the pair
 * (j, j + hd/2) of row i turns by the angle cos/sin[i, j]. */
void s1_cpu_rope(float *v, int n, int heads, int hd, const float *cos, const float *sin);

/* g[i] = silu(g[i]) * u[i], i < n */
void s1_cpu_swiglu(float *g, const float *u, size_t n);

/* x[i] += y[i], i < n */
void s1_cpu_add(float *x, const float *y, size_t n);

/* One projection of a matmul: out[t, r] (row stride ldo) = x[t, :] · w[r, :]
 * + bias[r] (bias may be NULL). */
typedef struct {
    float *out;
    int64_t ldo;
    const s1_tensor *w;
    const float *bias;
} s1_cpu_proj;

/* Projections p[n_proj] of the same input x[n, cols], their output rows
 * split over the pool's threads in one parallel step (q/k/v, gate/up), so
 * that each costs one synchronisation. xbuf holds the prepared input:
 * n * cols * 4 bytes. */
void s1_cpu_matmul(s1_pool *pool, const s1_cpu_kernels *k, const float *x, int n, void *xbuf,
                   const s1_cpu_proj *p, int n_proj);

/* The f32 copy of a 1-D weight (norms, biases): out[cols]. */
void s1_cpu_tensor_f32(float *out, const s1_tensor *t);

#endif
