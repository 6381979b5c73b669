/* kernels/cuda_load.h — copies weights from the safetensors mmap to one GPU:
 * any s1_tensor view (a tensor-parallel shard: a block of rows or of
 * columns), converted to bf16 (matrices) or f32 (norms, biases) on the
 * GPU. Two pinned staging buffers alternate, so packing the next chunk on the
 * host overlaps the copy and conversion of the previous one. */
#ifndef S1_CUDA_LOAD_H
#define S1_CUDA_LOAD_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#include "err.h"
#include "model.h"

typedef struct s1_cuda_loader s1_cuda_loader;

s1_cuda_loader *s1_cuda_loader_new(int dev, cudaStream_t st, s1_err *err);
/* Waits for every copy queued, then frees the staging buffers. */
int s1_cuda_loader_free(s1_cuda_loader *ld, s1_err *err);

/* dst[t->rows, t->cols] (dense; bf16 when dst_bf16, else f32) = the view t
 * (a shard from engine/shard.h: rows may be strided). A tensor with no data
 * (an absent bias) uploads zeros. Asynchronous: t's memory must stay mapped
 * until s1_cuda_loader_free. */
int s1_cuda_upload(s1_cuda_loader *ld, void *dst, int dst_bf16, const s1_tensor *t, s1_err *err);

#endif
