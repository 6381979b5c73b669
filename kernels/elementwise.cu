// kernels/elementwise.cu — the memory-bound kernels of a decoder layer:
// dtype conversion, embedding gather, residual add + RMSNorm, QKV bias + RoPE
// + KV-cache write, SwiGLU, row gather. Each row-wise kernel moves 16 bytes
// per thread per access, coalesced across the warp (kernels/HOPPER notes).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "launch.cuh"
#include "s1_kernels.h"

extern "C" {
int s1k_pdl = 0;
void s1k_set_pdl(int on)
{
    s1k_pdl = on != 0;
}
}

namespace {

__device__ __forceinline__ float bf2f(uint16_t b)
{
    return __uint_as_float((uint32_t)b << 16);
}

__device__ __forceinline__ uint16_t f2bf(float f)
{
    return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}

// 8 bf16 in one 16-byte word <-> 8 floats.
__device__ __forceinline__ void unpack8(uint4 v, float *f)
{
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

__device__ __forceinline__ uint4 pack8(const float *f)
{
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; i++) w[i] = (uint32_t)f2bf(f[2 * i]) | ((uint32_t)f2bf(f[2 * i + 1]) << 16);
    return make_uint4(w[0], w[1], w[2], w[3]);
}

__global__ void convert_kernel(void *dst, int dst_bf16, const void *src, int src_dtype, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float f;
        if (src_dtype == S1K_F32) f = ((const float *)src)[i];
        else if (src_dtype == S1K_F16) f = __half2float(((const __half *)src)[i]);
        else f = bf2f(((const uint16_t *)src)[i]);
        if (dst_bf16) ((uint16_t *)dst)[i] = f2bf(f);
        else ((float *)dst)[i] = f;
    }
}

__global__ void embed_kernel(float *x, const uint16_t *emb, const int32_t *tokens, int d)
{
    pdl_wait();
    const int t = blockIdx.x;
    const uint4 *src = (const uint4 *)(emb + (int64_t)tokens[t] * d);
    float4 *dst = (float4 *)(x + (int64_t)t * d);
    for (int i = threadIdx.x; i < d / 8; i += blockDim.x) {
        float f[8];
        unpack8(src[i], f);
        dst[2 * i] = make_float4(f[0], f[1], f[2], f[3]);
        dst[2 * i + 1] = make_float4(f[4], f[5], f[6], f[7]);
    }
}

__device__ float block_sum(float v, float *red)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x / 32) ? red[lane] : 0.f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) red[0] = v;
    }
    __syncthreads();
    return red[0];
}

// One block per row. The row (at most a few KB of f32) is read twice; the
// second read hits L1/L2.
__global__ void add_rmsnorm_kernel(float *x, const float *y, uint16_t *out, const float *w, int d,
                                   float eps)
{
    pdl_wait();
    __shared__ float red[32];
    const int64_t row = blockIdx.x;
    float4 *xr = (float4 *)(x + row * d);
    const float4 *yr = y ? (const float4 *)(y + row * d) : nullptr;
    float ss = 0.f;
    for (int i = threadIdx.x; i < d / 4; i += blockDim.x) {
        float4 v = xr[i];
        if (yr) {
            const float4 a = yr[i];
            v.x += a.x, v.y += a.y, v.z += a.z, v.w += a.w;
            xr[i] = v;
        }
        ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
    const float r = rsqrtf(block_sum(ss, red) / (float)d + eps);
    const float4 *w4 = (const float4 *)w;
    uint4 *o = (uint4 *)(out + row * d);
    for (int i = threadIdx.x; i < d / 8; i += blockDim.x) {
        const float4 a = xr[2 * i], b = xr[2 * i + 1], wa = w4[2 * i], wb = w4[2 * i + 1];
        const float f[8] = {a.x * r * wa.x, a.y * r * wa.y, a.z * r * wa.z, a.w * r * wa.w,
                            b.x * r * wb.x, b.y * r * wb.y, b.z * r * wb.z, b.w * r * wb.w};
        o[i] = pack8(f);
    }
}

// One block per token: q heads, then k heads (rotated), then v heads.
__global__ void rope_qkv_kernel(const float *qkv, const float *bias, const float *rope,
                                const int32_t *pos, const int32_t *slot, uint16_t *q,
                                uint16_t *kc, uint16_t *vc, int nh, int nkv, int hd, int bs)
{
    pdl_wait();
    const int t = blockIdx.x, half = hd / 2;
    const float *row = qkv + (int64_t)t * (nh + 2 * nkv) * hd;
    const float *cs = rope + (int64_t)pos[t] * hd; // hd/2 (cos, sin) pairs
    const int64_t s = slot[t], blk = s / bs, off = s % bs;
    for (int i = threadIdx.x; i < (nh + nkv) * half; i += blockDim.x) {
        const int h = i / half, j = i % half, b = h * hd + j;
        const float x1 = row[b] + bias[b], x2 = row[b + half] + bias[b + half];
        const float c = cs[2 * j], sn = cs[2 * j + 1];
        const uint16_t o1 = f2bf(x1 * c - x2 * sn), o2 = f2bf(x2 * c + x1 * sn);
        uint16_t *dst;
        if (h < nh) dst = q + (int64_t)t * nh * hd + h * hd;
        else dst = kc + ((blk * nkv + (h - nh)) * bs + off) * hd;
        dst[j] = o1;
        dst[j + half] = o2;
    }
    const int vb = (nh + nkv) * hd;
    for (int i = threadIdx.x; i < nkv * hd; i += blockDim.x) {
        const int h = i / hd, j = i % hd;
        vc[((blk * nkv + h) * bs + off) * hd + j] = f2bf(row[vb + i] + bias[vb + i]);
    }
}

// One thread per 4 outputs, striding over every row of the batch: a row per
// grid dimension would cap the batch at 65535 tokens.
__global__ void swiglu_kernel(uint16_t *out, const float *gu, int n, int inter)
{
    pdl_wait();
    const int64_t quads = (int64_t)n * (inter / 4), q4 = inter / 4;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < quads;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = i / q4, c = i % q4;
        const float4 a = ((const float4 *)(gu + t * 2 * inter))[c];
        const float4 b = ((const float4 *)(gu + t * 2 * inter + inter))[c];
        const float f0 = a.x / (1.f + __expf(-a.x)) * b.x, f1 = a.y / (1.f + __expf(-a.y)) * b.y;
        const float f2 = a.z / (1.f + __expf(-a.z)) * b.z, f3 = a.w / (1.f + __expf(-a.w)) * b.w;
        ((uint2 *)(out + t * inter))[c] = make_uint2((uint32_t)f2bf(f0) | ((uint32_t)f2bf(f1) << 16),
                                                     (uint32_t)f2bf(f2) | ((uint32_t)f2bf(f3) << 16));
    }
}

__global__ void gather_rows_kernel(uint16_t *out, const uint16_t *x, const int32_t *rows, int d)
{
    pdl_wait();
    const uint4 *src = (const uint4 *)(x + (int64_t)rows[blockIdx.x] * d);
    uint4 *dst = (uint4 *)(out + (int64_t)blockIdx.x * d);
    for (int i = threadIdx.x; i < d / 8; i += blockDim.x) dst[i] = src[i];
}

__global__ void mask_kernel(float *logits, int ld, const int32_t *ids, const int32_t *off)
{
    const int r = blockIdx.x;
    for (int k = off[r] + threadIdx.x; k < off[r + 1]; k += blockDim.x) {
        const int id = ids[k];
        if (id >= 0 && id < ld) logits[(int64_t)r * ld + id] = -INFINITY;
    }
}

__global__ void copy_block_kernel(char *kv, size_t plane_bytes, size_t blk_bytes, int32_t src,
                                  int32_t dst)
{
    const char *plane = kv + blockIdx.x * plane_bytes;
    const uint4 *from = (const uint4 *)(plane + (size_t)src * blk_bytes);
    uint4 *to = (uint4 *)(kv + blockIdx.x * plane_bytes + (size_t)dst * blk_bytes);
    for (size_t i = threadIdx.x; i < blk_bytes / 16; i += blockDim.x) to[i] = from[i];
}

int threads_for(int work)
{
    return work >= 256 ? 256 : work >= 128 ? 128 : work >= 64 ? 64 : 32;
}

} // namespace

extern "C" cudaError_t s1k_convert(void *dst, int dst_bf16, const void *src, int src_dtype,
                                   int64_t n, cudaStream_t st)
{
    if (n <= 0) return cudaSuccess;
    const int64_t blocks = (n + 255) / 256;
    convert_kernel<<<(unsigned)(blocks < 65536 ? blocks : 65536), 256, 0, st>>>(dst, dst_bf16, src,
                                                                                 src_dtype, n);
    return cudaGetLastError();
}

extern "C" cudaError_t s1k_embed(float *x, const uint16_t *emb, const int32_t *tokens, int n,
                                 int d, cudaStream_t st)
{
    if (n <= 0) return cudaSuccess;
    return s1k_launch(embed_kernel, n, threads_for(d / 8), st, x, emb, tokens, d);
}

extern "C" cudaError_t s1k_add_rmsnorm(float *x, const float *y, uint16_t *out, const float *w,
                                       int n, int d, float eps, cudaStream_t st)
{
    if (n <= 0) return cudaSuccess;
    return s1k_launch(add_rmsnorm_kernel, n, threads_for(d / 4), st, x, y, out, w, d, eps);
}

extern "C" cudaError_t s1k_rope_qkv(const float *qkv, const float *bias, const float *rope,
                                    const int32_t *pos, const int32_t *slot, uint16_t *q,
                                    uint16_t *kc, uint16_t *vc, int n, int nh, int nkv, int hd,
                                    int bs, cudaStream_t st)
{
    if (n <= 0) return cudaSuccess;
    return s1k_launch(rope_qkv_kernel, n, threads_for((nh + nkv) * hd / 2), st, qkv, bias, rope,
                      pos, slot, q, kc, vc, nh, nkv, hd, bs);
}

extern "C" cudaError_t s1k_swiglu(uint16_t *out, const float *gu, int n, int inter,
                                  cudaStream_t st)
{
    if (n <= 0) return cudaSuccess;
    const int64_t quads = (int64_t)n * (inter / 4), blocks = (quads + 255) / 256;
    return s1k_launch(swiglu_kernel, (unsigned)(blocks < 65535 ? blocks : 65535), 256, st, out,
                      gu, n, inter);
}

extern "C" cudaError_t s1k_gather_rows(uint16_t *out, const uint16_t *x, const int32_t *rows,
                                       int n, int d, cudaStream_t st)
{
    if (n <= 0) return cudaSuccess;
    return s1k_launch(gather_rows_kernel, n, threads_for(d / 8), st, out, x, rows, d);
}

extern "C" cudaError_t s1k_mask_logits(float *logits, int ld, const int32_t *ids,
                                       const int32_t *off, int n_rows, cudaStream_t st)
{
    if (n_rows <= 0) return cudaSuccess;
    mask_kernel<<<n_rows, 64, 0, st>>>(logits, ld, ids, off);
    return cudaGetLastError();
}

extern "C" cudaError_t s1k_copy_block(void *kv, size_t plane_bytes, size_t blk_bytes, int32_t src,
                                      int32_t dst, int planes, cudaStream_t st)
{
    if (planes <= 0 || blk_bytes % 16) return cudaErrorInvalidValue;
    copy_block_kernel<<<planes, 256, 0, st>>>((char *)kv, plane_bytes, blk_bytes, src, dst);
    return cudaGetLastError();
}
