/* kernels/cuda_util.h — error checks for the CUDA, cuBLASLt and NCCL calls of
 * the CUDA backend: each turns a failed call into an s1_err naming the call
 * and the GPU, so a user sees e.g. "cuda: cudaMalloc on GPU 1: out of memory". */
#ifndef S1_CUDA_UTIL_H
#define S1_CUDA_UTIL_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "err.h"

/* Each returns 0 on success, else fills err and returns -1. */
int s1_cuda_check(cudaError_t e, const char *call, int dev, s1_err *err);
int s1_cuda_check_blas(cublasStatus_t s, const char *call, int dev, s1_err *err);
int s1_cuda_check_nccl(ncclResult_t r, const char *call, int dev, s1_err *err);

/* `CU(dev, cudaMalloc(&p, n))`: evaluates to 0 or -1 (err filled), naming the
 * function called (the text before its opening parenthesis). */
#define CU(dev, call)     s1_cuda_check((call), #call, (dev), err)
#define CUBLAS(dev, call) s1_cuda_check_blas((call), #call, (dev), err)
#define CUNCCL(dev, call) s1_cuda_check_nccl((call), #call, (dev), err)

#endif
