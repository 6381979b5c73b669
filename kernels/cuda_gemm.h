/* kernels/cuda_gemm.h — the linear layers of the CUDA backend through
 * cuBLASLt: bf16 weights and activations, f32 accumulation, f32 output (the
 * next kernel reads it: bias + RoPE, SwiGLU, the residual add, or the
 * logits). One per GPU, bound to that GPU's stream. Up to 8 token rows go
 * through kernels/gemv.cu instead (the weight streamed once), unless the
 * environment sets S1_CUDA_GEMV=0. */
#ifndef S1_CUDA_GEMM_H
#define S1_CUDA_GEMM_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#include "err.h"

typedef struct s1_cuda_gemm s1_cuda_gemm;

s1_cuda_gemm *s1_cuda_gemm_new(int dev, cudaStream_t st, s1_err *err);
void s1_cuda_gemm_free(s1_cuda_gemm *g);

/* y[n, m] (f32) = x[n, k] (bf16) . w[m, k]^T (bf16): a weight in the HF
 * [out_features, in_features] layout applied to n token rows. Usable while
 * the stream is being captured into a CUDA graph. */
int s1_cuda_gemm_run(s1_cuda_gemm *g, float *y, const uint16_t *x, const uint16_t *w, int n, int m,
                     int k, s1_err *err);

#endif
