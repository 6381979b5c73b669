/* tests/gpu/test_cuda_open.c — the CUDA backend's open path on a machine
 * without a GPU: this program defines (and exports) the CUDA runtime calls
 * the module makes before its first stream, so the module's references bind
 * to them: a fake device count, host allocations from malloc, and a stream
 * creation that fails. Open must get that far (past device discovery and the
 * growth of its host buffers, which once looped forever from a capacity of
 * 0), fail with a message naming the call, and free everything (ASan). */
#include "gpu_test.h"

#include "backend.h"
#include "model.h"

static int fake_devices;
static int streams_asked;

cudaError_t cudaGetDeviceCount(int *count)
{
    *count = fake_devices;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
    (void)device;
    *value = attr == cudaDevAttrComputeCapabilityMajor ? 9 : 132;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    return device < fake_devices ? cudaSuccess : cudaErrorInvalidDevice;
}

cudaError_t cudaHostAlloc(void **ptr, size_t size, unsigned int flags)
{
    (void)flags;
    *ptr = malloc(size);
    return *ptr ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFreeHost(void *ptr)
{
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr)
{
    return ptr ? cudaErrorInvalidValue : cudaSuccess; /* nothing was allocated */
}

/* The first call that needs a real GPU: where the fake device ends. */
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags)
{
    (void)flags;
    *stream = NULL;
    streams_asked++;
    return cudaErrorDevicesUnavailable;
}

static void check_open(const s1_model *m, int devices, int tp, const char *expect, const char *what)
{
    fake_devices = devices;
    streams_asked = 0;
    s1_backend_cfg cfg = {.tp = tp, .block_size = 16, .n_blocks = 8, .max_batch_tokens = 64};
    s1_err err = {{0}};
    s1_backend *b = s1_backend_open("cuda", m, &cfg, &err);
    gt_ok(b == NULL && strstr(err.msg, expect) != NULL, "%s: \"%s\"", what, err.msg);
    s1_backend_close(b);
}

int main(void)
{
    char dir[64];
    s1_err err = {{0}};
    s1_model *m = gt_gen_model("tiny", dir, sizeof dir) ? s1_model_load(dir, &err) : NULL;
    if (gt_ok(m != NULL, "the model loads%s%s", m ? "" : ": ", m ? "" : err.msg)) {
        check_open(m, 1, 1, "cudaStreamCreateWithFlags on GPU 0",
                   "one fake GPU: open runs up to the first stream and fails naming it");
        gt_ok(streams_asked == 1, "the stream was asked for once (%d)", streams_asked);
        check_open(m, 0, 1, "no CUDA device found",
                   "no GPU: open says so and how to check the driver");
        check_open(m, 1, 2, "tp=2 needs 2 GPUs but 1 are visible",
                   "too few GPUs for tp: open says how many are visible");
        s1_model_free(m);
    }
    gt_remove_model(dir);
    return gt_done();
}
