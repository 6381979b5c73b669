// kernels/gemv.cu — the linear layers of small decode batches (n <= 8 token
// rows), where the time is reading the weight once from HBM: each warp
// streams ROWS weight rows with 16-byte loads, several in flight per lane,
// and applies them to all n token rows (read through L1/L2, where they stay).
#include <stdint.h>

#include "launch.cuh"
#include "s1_kernels.h"

namespace {

constexpr int WARPS = 4; // 8 rows per block: even small m (3584) gives 448 blocks, all resident
constexpr int ROWS = 2; // weight rows per warp: x loads are shared by them

__device__ __forceinline__ void unpack8(uint4 v, float *f)
{
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

template <int N>
__global__ void __launch_bounds__(WARPS * 32)
    gemv_kernel(float *__restrict__ y, const uint16_t *__restrict__ x,
                const uint16_t *__restrict__ w, int m, int k)
{
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int row0 = (blockIdx.x * WARPS + warp) * ROWS;
    if (row0 >= m) return;
    const int k8 = k / 8;
    const uint4 *wr[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++)
        wr[r] = (const uint4 *)(w + (int64_t)min(row0 + r, m - 1) * k);
    // The weights are constant: start fetching this lane's first lines into
    // L2 while the kernel before (which wrote x) finishes.
#pragma unroll
    for (int u = 0; u < 4; u++)
        if (lane + 32 * u < k8)
#pragma unroll
            for (int r = 0; r < ROWS; r++)
                asm volatile("prefetch.global.L2 [%0];" ::"l"(wr[r] + lane + 32 * u));
    pdl_wait();
    float acc[ROWS][N];
#pragma unroll
    for (int r = 0; r < ROWS; r++)
#pragma unroll
        for (int t = 0; t < N; t++) acc[r][t] = 0.f;

#pragma unroll 4
    for (int c = lane; c < k8; c += 32) {
        float wf[ROWS][8];
#pragma unroll
        for (int r = 0; r < ROWS; r++) unpack8(__ldg(wr[r] + c), wf[r]);
#pragma unroll
        for (int t = 0; t < N; t++) {
            float xf[8];
            unpack8(__ldg((const uint4 *)(x + (int64_t)t * k) + c), xf);
#pragma unroll
            for (int r = 0; r < ROWS; r++)
#pragma unroll
                for (int j = 0; j < 8; j++) acc[r][t] += wf[r][j] * xf[j];
        }
    }
#pragma unroll
    for (int r = 0; r < ROWS; r++)
#pragma unroll
        for (int t = 0; t < N; t++) {
            float v = acc[r][t];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            if (lane == 0 && row0 + r < m) y[(int64_t)t * m + row0 + r] = v;
        }
}

template <int N>
cudaError_t launch(float *y, const uint16_t *x, const uint16_t *w, int m, int k, cudaStream_t st)
{
    const int per_block = WARPS * ROWS;
    return s1k_launch(gemv_kernel<N>, (m + per_block - 1) / per_block, WARPS * 32, st, y, x, w, m,
                      k);
}

} // namespace

extern "C" cudaError_t s1k_gemv(float *y, const uint16_t *x, const uint16_t *w, int n, int m,
                                int k, cudaStream_t st)
{
    if (n <= 0 || m <= 0) return cudaSuccess;
    if (k % 8) return cudaErrorInvalidValue;
    switch (n) {
    case 1: return launch<1>(y, x, w, m, k, st);
    case 2: return launch<2>(y, x, w, m, k, st);
    case 3: return launch<3>(y, x, w, m, k, st);
    case 4: return launch<4>(y, x, w, m, k, st);
    case 5: return launch<5>(y, x, w, m, k, st);
    case 6: return launch<6>(y, x, w, m, k, st);
    case 7: return launch<7>(y, x, w, m, k, st);
    case 8: return launch<8>(y, x, w, m, k, st);
    default: return cudaErrorInvalidValue;
    }
}
