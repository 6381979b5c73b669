#include "cuda_load.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_util.h"
#include "s1_kernels.h"

#define STAGE_BYTES ((size_t)32 << 20)

struct s1_cuda_loader {
    int dev;
    cudaStream_t st;
    void *host[2];       /* pinned staging, owned */
    void *raw[2];        /* device copies in the file's dtype, owned */
    cudaEvent_t done[2]; /* the last conversion that read raw[i] / host[i] */
    int cur;
};

static size_t esize(s1_dtype t)
{
    return t == S1_DTYPE_F32 ? 4 : 2;
}

s1_cuda_loader *s1_cuda_loader_new(int dev, cudaStream_t st, s1_err *err)
{
    s1_cuda_loader *ld = calloc(1, sizeof *ld);
    if (!ld) {
        s1_errf(err, "cuda: out of host memory");
        return NULL;
    }
    ld->dev = dev;
    ld->st = st;
    for (int i = 0; i < 2; i++)
        if (CU(dev, cudaHostAlloc(&ld->host[i], STAGE_BYTES, cudaHostAllocDefault)) ||
            CU(dev, cudaMalloc(&ld->raw[i], STAGE_BYTES)) ||
            CU(dev, cudaEventCreateWithFlags(&ld->done[i], cudaEventDisableTiming))) {
            s1_err ignore;
            s1_cuda_loader_free(ld, &ignore);
            return NULL;
        }
    return ld;
}

int s1_cuda_loader_free(s1_cuda_loader *ld, s1_err *err)
{
    if (!ld) return 0;
    int rc = CU(ld->dev, cudaStreamSynchronize(ld->st));
    for (int i = 0; i < 2; i++) {
        if (ld->host[i]) cudaFreeHost(ld->host[i]);
        if (ld->raw[i]) cudaFree(ld->raw[i]);
        if (ld->done[i]) cudaEventDestroy(ld->done[i]);
    }
    free(ld);
    return rc;
}

/* Packs rows [r0, r0+n) of the view into a staging buffer and queues its
 * copy and conversion into dst. */
static int upload_chunk(s1_cuda_loader *ld, char *dst, int dst_bf16, const s1_tensor *t, int64_t r0,
                        int64_t n, s1_err *err)
{
    const int64_t cols = t->cols;
    const int dev = ld->dev, b = ld->cur;
    const size_t es = esize(t->dtype), row = (size_t)cols * es;
    /* The staging buffer is free once the conversion that last read it ran. */
    if (CU(dev, cudaEventSynchronize(ld->done[b]))) return -1;
    const char *src = (const char *)t->data + (size_t)r0 * (size_t)t->row_stride * es;
    if (cols == t->row_stride) {
        memcpy(ld->host[b], src, row * (size_t)n);
    } else {
        for (int64_t r = 0; r < n; r++)
            memcpy((char *)ld->host[b] + r * row, src + (size_t)r * (size_t)t->row_stride * es,
                   row);
    }
    /* Already in the dtype wanted (bf16 weights, f32 norms): straight in. */
    const bool same = dst_bf16 ? t->dtype == S1_DTYPE_BF16 : t->dtype == S1_DTYPE_F32;
    if (CU(dev, cudaMemcpyAsync(same ? (void *)dst : ld->raw[b], ld->host[b], row * (size_t)n,
                                cudaMemcpyHostToDevice, ld->st)) ||
        (!same &&
         CU(dev, s1k_convert(dst, dst_bf16, ld->raw[b], (int)t->dtype, n * cols, ld->st))) ||
        CU(dev, cudaEventRecord(ld->done[b], ld->st)))
        return -1;
    ld->cur ^= 1;
    return 0;
}

int s1_cuda_upload(s1_cuda_loader *ld, void *dst, int dst_bf16, const s1_tensor *t, s1_err *err)
{
    const int64_t cols = t->cols;
    const size_t dst_row = (size_t)cols * (dst_bf16 ? 2 : 4);
    if (!t->data) return CU(ld->dev, cudaMemsetAsync(dst, 0, dst_row * (size_t)t->rows, ld->st));
    if (t->rows <= 0 || cols <= 0) return 0;
    const int64_t per = (int64_t)(STAGE_BYTES / ((size_t)cols * esize(t->dtype)));
    if (per < 1)
        return s1_errf(err, "cuda: weight rows of %lld elements exceed the %zu MiB staging buffer",
                       (long long)cols, STAGE_BYTES >> 20);
    for (int64_t r = 0; r < t->rows; r += per) {
        const int64_t n = t->rows - r < per ? t->rows - r : per;
        if (upload_chunk(ld, (char *)dst + (size_t)r * dst_row, dst_bf16, t, r, n, err)) return -1;
    }
    return 0;
}
