// kernels/attention.cu — paged attention over a ragged batch (prefill chunks
// and decode tokens alike), flash-decoding style.
//
// Grid (work item, kv head): a work item is a span of one token's positions
// (kernels/cuda_plan.h), so a long context is split into many items while
// short ones beside it take one each. A block reads its kv head's K and V
// rows once for all G query heads sharing them (GQA), over its item's span, in tiles of TILE positions: scores into shared memory, running
// max and sum per head (online softmax), V accumulated in registers. A K or V
// row of hd bf16 is read by hd/8 lanes, 16 bytes each, so a warp reads
// 256/hd rows per access, coalesced. The combine kernel merges each token's items.
#include <cuda_bf16.h>

#include "launch.cuh"
#include "s1_kernels.h"

namespace {

constexpr int NWARP = 4;
constexpr int TILE = 128;
constexpr int GMAX = S1K_MAX_GROUP;

__device__ __forceinline__ void unpack8(uint4 v, float *f)
{
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

template <int HD>
__global__ void __launch_bounds__(NWARP * 32)
    attn_split_kernel(const uint16_t *__restrict__ q, const uint16_t *__restrict__ kc,
                      const uint16_t *__restrict__ vc, const int32_t *__restrict__ ctx_len,
                      const int32_t *__restrict__ tbl, const int32_t *__restrict__ blocks,
                      const int32_t *__restrict__ plan, const int32_t *__restrict__ first,
                      const int32_t *__restrict__ item_tok, float *__restrict__ part, int nh,
                      int nkv, int bs, float scale)
{
    constexpr int LPR = HD / 8;      // lanes per K/V row
    constexpr int RPW = 32 / LPR;    // rows per warp access
    constexpr int RPB = RPW * NWARP; // rows per block access
    __shared__ float sq[GMAX][HD];
    __shared__ float ss[GMAX][TILE];
    __shared__ float sm[GMAX], sl[GMAX], salpha[GMAX];
    __shared__ float sred[NWARP][GMAX][HD];

    pdl_wait();
    const int item = blockIdx.x, kvh = blockIdx.y;
    if (item >= plan[0]) return; // the grid is sized for the largest plan
    const int tok = item_tok[item], span = plan[1];
    const int G = nh / nkv, tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int sub = lane % LPR, grp = warp * RPW + lane / LPR;
    const int start = (item - first[tok]) * span, end = min(ctx_len[tok], start + span);
    const int32_t *bt = blocks + tbl[tok];

    for (int i = tid; i < G * HD; i += blockDim.x) {
        const int g = i / HD, d = i % HD;
        sq[g][d] = __uint_as_float((uint32_t)q[((int64_t)tok * nh + kvh * G + g) * HD + d] << 16) *
                   scale;
    }
    if (tid < GMAX) sm[tid] = -INFINITY, sl[tid] = 0.f;
    __syncthreads();

    float acc[GMAX][8];
#pragma unroll
    for (int g = 0; g < GMAX; g++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[g][j] = 0.f;

    for (int t0 = start; t0 < end; t0 += TILE) {
        const int n = min(TILE, end - t0);
        // Scores: row r of the tile against every query head of the group.
        // Unrolled so that several K loads per lane are in flight.
#pragma unroll 4
        for (int rb = 0; rb < n; rb += RPB) {
            const int r = rb + grp;
            float k[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (r < n) {
                const int p = t0 + r;
                const int64_t row = ((int64_t)bt[p / bs] * nkv + kvh) * bs + p % bs;
                unpack8(*(const uint4 *)(kc + row * HD + sub * 8), k);
            }
#pragma unroll
            for (int g = 0; g < GMAX; g++) {
                if (g >= G) break;
                float s = 0.f;
#pragma unroll
                for (int j = 0; j < 8; j++) s += k[j] * sq[g][sub * 8 + j];
#pragma unroll
                for (int o = LPR / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
                if (r < n && sub == 0) ss[g][r] = s;
            }
        }
        __syncthreads();
        // Softmax bookkeeping: warp w owns heads w, w + NWARP, ...
        for (int g = warp; g < G; g += NWARP) {
            float mx = -INFINITY;
            for (int r = lane; r < n; r += 32) mx = fmaxf(mx, ss[g][r]);
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
            const float m_old = sm[g], m_new = fmaxf(m_old, mx);
            float sum = 0.f;
            for (int r = lane; r < n; r += 32) {
                const float e = __expf(ss[g][r] - m_new);
                ss[g][r] = e;
                sum += e;
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
            __syncwarp();
            if (lane == 0) {
                const float alpha = __expf(m_old - m_new); // 0 on the first tile
                salpha[g] = alpha;
                sl[g] = sl[g] * alpha + sum;
                sm[g] = m_new;
            }
        }
        __syncthreads();
#pragma unroll
        for (int g = 0; g < GMAX; g++) {
            if (g >= G) break;
            const float a = salpha[g];
#pragma unroll
            for (int j = 0; j < 8; j++) acc[g][j] *= a;
        }
        // V: each lane accumulates its 8 dims over its rows.
#pragma unroll 4
        for (int r = grp; r < n; r += RPB) {
            const int p = t0 + r;
            const int64_t row = ((int64_t)bt[p / bs] * nkv + kvh) * bs + p % bs;
            float v[8];
            unpack8(*(const uint4 *)(vc + row * HD + sub * 8), v);
#pragma unroll
            for (int g = 0; g < GMAX; g++) {
                if (g >= G) break;
                const float pr = ss[g][r];
#pragma unroll
                for (int j = 0; j < 8; j++) acc[g][j] += pr * v[j];
            }
        }
        __syncthreads(); // ss is rewritten by the next tile
    }

    // Sum the row groups of each warp, then the warps.
#pragma unroll
    for (int g = 0; g < GMAX; g++) {
        if (g >= G) break;
#pragma unroll
        for (int j = 0; j < 8; j++) {
#pragma unroll
            for (int o = LPR; o < 32; o <<= 1) acc[g][j] += __shfl_xor_sync(0xffffffffu, acc[g][j], o);
            if (lane < LPR) sred[warp][g][sub * 8 + j] = acc[g][j];
        }
    }
    __syncthreads();
    for (int i = tid; i < G * HD; i += blockDim.x) {
        const int g = i / HD, d = i % HD;
        float o = 0.f;
#pragma unroll
        for (int w = 0; w < NWARP; w++) o += sred[w][g][d];
        float *dst = part + ((int64_t)item * nh + kvh * G + g) * (HD + 2);
        dst[d] = o;
        if (d == 0) dst[HD] = sm[g], dst[HD + 1] = sl[g];
    }
}

// One block per (token, query head), one thread per dimension: merges the
// token's items first[tok] .. first[tok + 1] - 1.
template <int HD>
__global__ void attn_combine_kernel(const float *__restrict__ part, const int32_t *__restrict__ first,
                                    uint16_t *__restrict__ out, int nh)
{
    pdl_wait();
    const int tok = blockIdx.x, h = blockIdx.y, d = threadIdx.x;
    const int w0 = first[tok], w1 = first[tok + 1];
    const int64_t stride = (int64_t)nh * (HD + 2);
    const float *p = part + ((int64_t)w0 * nh + h) * (HD + 2);
    float m = -INFINITY;
    for (int s = 0; s < w1 - w0; s++)
        if (p[s * stride + HD + 1] > 0.f) m = fmaxf(m, p[s * stride + HD]);
    float l = 0.f, o = 0.f;
    for (int s = 0; s < w1 - w0; s++) {
        const float *ps = p + s * stride;
        if (!(ps[HD + 1] > 0.f)) continue; // an empty split: nothing written but m, l
        const float w = __expf(ps[HD] - m);
        l += w * ps[HD + 1];
        o += w * ps[d];
    }
    out[((int64_t)tok * nh + h) * HD + d] = __bfloat16_as_ushort(__float2bfloat16_rn(o / l));
}

template <int HD>
cudaError_t launch(const uint16_t *q, const uint16_t *kc, const uint16_t *vc, const int32_t *ctx,
                   const int32_t *tbl, const int32_t *blocks, const int32_t *plan,
                   const int32_t *first, const int32_t *item_tok, float *part, uint16_t *out, int n,
                   int nh, int nkv, int bs, int max_items, cudaStream_t st)
{
    const float scale = 1.0f / sqrtf((float)HD);
    cudaError_t e = s1k_launch(attn_split_kernel<HD>, dim3(max_items, nkv), NWARP * 32, st, q, kc,
                               vc, ctx, tbl, blocks, plan, first, item_tok, part, nh, nkv, bs,
                               scale);
    if (e != cudaSuccess) return e;
    return s1k_launch(attn_combine_kernel<HD>, dim3(n, nh), HD, st, (const float *)part, first, out,
                      nh);
}

} // namespace

extern "C" cudaError_t s1k_attention(const uint16_t *q, const uint16_t *kc, const uint16_t *vc,
                                     const int32_t *ctx, const int32_t *tbl, const int32_t *blocks,
                                     const int32_t *plan, const int32_t *first,
                                     const int32_t *item_tok, float *part, uint16_t *out, int n,
                                     int nh, int nkv, int hd, int bs, int max_items,
                                     cudaStream_t st)
{
    if (n <= 0) return cudaSuccess;
    if (nkv <= 0 || nh % nkv || nh / nkv > GMAX || max_items < n)
        return cudaErrorInvalidValue;
#define S1K_ATTN(HD)                                                                               \
    launch<HD>(q, kc, vc, ctx, tbl, blocks, plan, first, item_tok, part, out, n, nh, nkv, bs,      \
               max_items, st)
    switch (hd) {
    case 16: return S1K_ATTN(16);
    case 32: return S1K_ATTN(32);
    case 64: return S1K_ATTN(64);
    case 128: return S1K_ATTN(128);
    default: return cudaErrorInvalidValue;
    }
#undef S1K_ATTN
}
