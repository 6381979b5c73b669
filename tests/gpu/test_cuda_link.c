/* tests/gpu/test_cuda_link.c — the CUDA runtime and NCCL link and work: the
 * versions they report, and an NCCL all-reduce over every visible GPU (one
 * process, ncclCommInitAll, a group call) that sums each rank's values. */
#include <nccl.h>

#include "gpu_test.h"

#define MAX_GPUS 8

int main(void)
{
    int rt = 0, nccl = 0;
    GT_CUDA(cudaRuntimeGetVersion(&rt));
    const ncclResult_t vr = ncclGetVersion(&nccl);
    printf("# NCCL %d (%s), CUDA runtime %d\n", nccl, ncclGetErrorString(vr), rt);
    gt_require_gpu();

    int n = 0;
    GT_CUDA(cudaGetDeviceCount(&n));
    if (n > MAX_GPUS) n = MAX_GPUS;
    enum { COUNT = 1 << 20 };
    ncclComm_t comms[MAX_GPUS];
    int devs[MAX_GPUS];
    float *buf[MAX_GPUS];
    cudaStream_t st[MAX_GPUS];
    float *h = malloc(COUNT * sizeof *h);
    for (int i = 0; i < n; i++)
        devs[i] = i;
    if (!gt_ok(ncclCommInitAll(comms, n, devs) == ncclSuccess, "ncclCommInitAll over %d GPUs", n))
        return gt_done();
    for (int i = 0; i < n; i++) {
        GT_CUDA(cudaSetDevice(i));
        GT_CUDA(cudaStreamCreate(&st[i]));
        for (int k = 0; k < COUNT; k++)
            h[k] = (float)(i + 1) * (float)(k % 100);
        buf[i] = gt_upload(h, COUNT * sizeof *h);
    }
    ncclResult_t r = ncclGroupStart();
    for (int i = 0; r == ncclSuccess && i < n; i++)
        r = ncclAllReduce(buf[i], buf[i], COUNT, ncclFloat, ncclSum, comms[i], st[i]);
    if (r == ncclSuccess) r = ncclGroupEnd();
    gt_ok(r == ncclSuccess, "all-reduce enqueued: %s", ncclGetErrorString(r));
    const float ranks = (float)(n * (n + 1) / 2);
    size_t bad = 0;
    for (int i = 0; i < n; i++) {
        GT_CUDA(cudaSetDevice(i));
        GT_CUDA(cudaStreamSynchronize(st[i]));
        gt_download(h, buf[i], COUNT * sizeof *h);
        for (int k = 0; k < COUNT; k++)
            bad += h[k] != ranks * (float)(k % 100);
        cudaFree(buf[i]);
        cudaStreamDestroy(st[i]);
        ncclCommDestroy(comms[i]);
    }
    gt_ok(bad == 0, "every rank holds the sum (%zu values differ)", bad);
    free(h);
    return gt_done();
}
