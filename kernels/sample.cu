// kernels/sample.cu — logits -> token on the GPU, one block per row.
//
// No sort: top-k and top-p thresholds are found by building the threshold's
// 32-bit order key bit by bit (32 counting passes over the row each, the row
// staying in L2), then one block-wide prefix sum in id order picks the token.
// The random number is a counter-based hash of (seed, step): a sequence draws
// the same number whatever batch it runs in.
#include <stdint.h>

#include "s1_kernels.h"

namespace {

constexpr int NT = 1024;

// Floats -> unsigned keys in the same order; NaN sorts below everything.
__device__ __forceinline__ uint32_t order_key(float f)
{
    if (f != f) return 0u;
    const uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ uint64_t splitmix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

__device__ float block_sum(float v, float *red)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads(); // red may still be read from the previous call
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
    __syncthreads();
    float s = 0.f;
    for (int w = 0; w < NT / 32; w++) s += red[w];
    return s;
}

// (value, id) argmax: larger value, then lower id.
__device__ void better(float &v, int &id, float v2, int id2)
{
    if (v2 > v || (v2 == v && id2 < id)) v = v2, id = id2;
}

__device__ int block_argmax(const float *l, int n, float *redv, int *redi)
{
    float v = -INFINITY;
    int id = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += NT)
        if (l[i] == l[i]) better(v, id, l[i], i);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        better(v, id, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, id, o));
    if (threadIdx.x % 32 == 0) redv[threadIdx.x / 32] = v, redi[threadIdx.x / 32] = id;
    __syncthreads();
    for (int w = 0; w < NT / 32; w++) better(v, id, redv[w], redi[w]);
    __syncthreads();
    return id == 0x7fffffff ? 0 : id;
}

// Weight of token i: exp((l - max) / T) when its key is at least `floor`.
__device__ __forceinline__ float weight(float l, float mx, float inv_t, uint32_t floor)
{
    return order_key(l) >= floor && l == l ? __expf((l - mx) * inv_t) : 0.f;
}

__global__ void __launch_bounds__(NT)
    sample_kernel(const float *logits, int ld, int n, const s1k_sample_param *prm, int32_t *out)
{
    __shared__ float redv[NT / 32];
    __shared__ int redi[NT / 32];
    __shared__ float red[NT / 32];
    __shared__ float scan[NT];
    const float *l = logits + (int64_t)blockIdx.x * ld;
    const s1k_sample_param p = prm[blockIdx.x];

    const int best = block_argmax(l, n, redv, redi);
    const float mx = l[best];
    // A row with nothing above -inf (every id masked) has no distribution
    // to draw from: (l - mx) would be NaN everywhere and no thread would own
    // the draw, so it takes the greedy answer, as a greedy row does.
    if (!(p.temperature > 0.f) || !(mx > -INFINITY)) {
        if (threadIdx.x == 0) out[blockIdx.x] = best;
        return;
    }
    const float inv_t = 1.f / p.temperature;

    // Top-k: the largest key K with count(key >= K) >= k.
    uint32_t floor_k = 0;
    if (p.top_k > 0 && p.top_k < n) {
        for (int bit = 31; bit >= 0; bit--) {
            const uint32_t cand = floor_k | (1u << bit);
            float c = 0.f;
            for (int i = threadIdx.x; i < n; i += NT) c += order_key(l[i]) >= cand ? 1.f : 0.f;
            if (block_sum(c, red) >= (float)p.top_k) floor_k = cand;
        }
    }
    // Top-p over what top-k kept: the largest key K whose set reaches the mass.
    uint32_t floor_p = floor_k;
    if (p.top_p > 0.f && p.top_p < 1.f) {
        float total = 0.f;
        for (int i = threadIdx.x; i < n; i += NT) total += weight(l[i], mx, inv_t, floor_k);
        const float need = p.top_p * block_sum(total, red);
        uint32_t k = 0;
        for (int bit = 31; bit >= 0; bit--) {
            const uint32_t cand = k | (1u << bit);
            const uint32_t fl = cand > floor_k ? cand : floor_k;
            float s = 0.f;
            for (int i = threadIdx.x; i < n; i += NT) s += weight(l[i], mx, inv_t, fl);
            if (block_sum(s, red) >= need) k = cand;
        }
        floor_p = k > floor_k ? k : floor_k;
    }

    // Draw: thread t owns ids [t*chunk, (t+1)*chunk); a prefix sum over the
    // threads' masses finds the owner of u, which walks its ids.
    const int chunk = (n + NT - 1) / NT, lo = threadIdx.x * chunk, hi = min(n, lo + chunk);
    float mine = 0.f;
    for (int i = lo; i < hi; i++) mine += weight(l[i], mx, inv_t, floor_p);
    scan[threadIdx.x] = mine;
    __syncthreads();
    for (int o = 1; o < NT; o <<= 1) { // Hillis-Steele inclusive scan
        const float add = threadIdx.x >= o ? scan[threadIdx.x - o] : 0.f;
        __syncthreads();
        scan[threadIdx.x] += add;
        __syncthreads();
    }
    const float total = scan[NT - 1];
    const double r = (double)(splitmix64(p.seed ^ splitmix64(p.step)) >> 11) * 0x1.0p-53;
    const float u = (float)r * total;
    const float before = threadIdx.x ? scan[threadIdx.x - 1] : 0.f;
    if (u >= before && (u < scan[threadIdx.x] || threadIdx.x == NT - 1)) {
        float acc = before;
        int pick = -1;
        for (int i = lo; i < hi; i++) {
            const float w = weight(l[i], mx, inv_t, floor_p);
            if (w > 0.f) pick = i; // the last kept id so far, in case of rounding
            acc += w;
            if (u < acc) break;
        }
        // An owner with nothing kept (only possible through rounding at the
        // end) falls back to the most probable token.
        out[blockIdx.x] = pick >= 0 ? pick : best;
    }
}

} // namespace

extern "C" cudaError_t s1k_sample(const float *logits, int ld, int n_vocab,
                                  const s1k_sample_param *prm, int32_t *out, int n_rows,
                                  cudaStream_t st)
{
    if (n_rows <= 0) return cudaSuccess;
    if (n_vocab <= 0 || n_vocab > ld) return cudaErrorInvalidValue;
    sample_kernel<<<n_rows, NT, 0, st>>>(logits, ld, n_vocab, prm, out);
    return cudaGetLastError();
}
