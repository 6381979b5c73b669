// kernels/launch.cuh — launching the forward pass's kernels with programmatic
// dependent launch (PDL, sm_90): a kernel may be scheduled while its
// predecessor's last blocks still run, and waits in pdl_wait() for the
// predecessor to complete (and, transitively, everything before it) before
// touching anything another kernel writes. Every kernel launched through
// s1k_launch calls pdl_wait() before its first such access and writes nothing
// before it; work on constant data (weights) may come first. Off unless
// s1k_set_pdl(1) (the CUDA backend turns it on; S1_CUDA_PDL=0 keeps it off).
#ifndef S1_LAUNCH_CUH
#define S1_LAUNCH_CUH

#include <cuda_runtime.h>

extern "C" int s1k_pdl;

// Before sm_90 there is no programmatic dependent launch (and none is asked
// for: the host turns it on for Hopper devices only), so nothing to wait for.
__device__ __forceinline__ void pdl_wait()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

template <typename... P, typename... A>
cudaError_t s1k_launch(void (*kernel)(P...), dim3 grid, dim3 block, cudaStream_t st, A... args)
{
    if (!s1k_pdl) {
        kernel<<<grid, block, 0, st>>>(args...);
        return cudaGetLastError();
    }
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = 0;
    cfg.stream = st;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    return cudaLaunchKernelEx(&cfg, kernel, args...);
}

#endif
