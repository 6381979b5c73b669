/* kernels/s1_kernels.h — the CUDA kernels' launch wrappers (the .cu files of kernels/),
 * callable from C. bf16 tensors are passed as uint16_t (the raw bf16 bits),
 * since C has no bf16 type. Each wrapper enqueues its kernel on the stream and
 * returns the launch's error (cudaGetLastError), so callers can name the
 * kernel and the GPU that failed. Shapes are in the comments: [rows, cols],
 * row-major, rows contiguous unless a leading dimension is given. */
#ifndef S1_KERNELS_H
#define S1_KERNELS_H

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Programmatic dependent launch for the forward pass's kernels (embed,
 * norms, RoPE, attention, SwiGLU, row gather, GEMV): lets each start while
 * the previous one drains. Process-wide; off by default. Only Hopper (sm_90)
 * and newer have it: callers turn it on for such devices alone. */
void s1k_set_pdl(int on);

/* Source dtypes of s1k_convert, numbered as s1_dtype in engine/model.h. */
enum { S1K_F32 = 0, S1K_F16 = 1, S1K_BF16 = 2 };

/* Query heads per kv head the attention kernels handle at most (Qwen2.5
 * models have 5 to 8). */
#define S1K_MAX_GROUP 8

/* dst[n] (bf16 when dst_bf16, else f32) = src[n] of dtype src_dtype. Rounds
 * to nearest even. */
cudaError_t s1k_convert(void *dst, int dst_bf16, const void *src, int src_dtype, int64_t n,
                        cudaStream_t st);

/* x[n, d] (f32) = emb[tokens[i], :] (bf16). d % 8 == 0. */
cudaError_t s1k_embed(float *x, const uint16_t *emb, const int32_t *tokens, int n, int d,
                      cudaStream_t st);

/* x += y (when y is not NULL), then out = x / rms(x) * w, per row:
 * x, y [n, d] f32, w [d] f32, out [n, d] bf16. d % 8 == 0. */
cudaError_t s1k_add_rmsnorm(float *x, const float *y, uint16_t *out, const float *w, int n, int d,
                            float eps, cudaStream_t st);

/* Adds the QKV bias, rotates q and k (HF "rotate half": pairs (j, j+hd/2),
 * cos/sin from rope [max_pos, hd/2] as (cos, sin)), writes q [n, nh*hd]
 * (bf16) and the token's k and v into the paged cache at slot[i]
 * (block = slot / bs, offset slot % bs). qkv [n, (nh+2*nkv)*hd] f32,
 * bias [(nh+2*nkv)*hd] f32. Cache layout per layer: [blocks, nkv, bs, hd]. */
cudaError_t s1k_rope_qkv(const float *qkv, const float *bias, const float *rope, const int32_t *pos,
                         const int32_t *slot, uint16_t *q, uint16_t *kc, uint16_t *vc, int n,
                         int nh, int nkv, int hd, int bs, cudaStream_t st);

/* Paged attention over a ragged batch, flash-decoding style: token i attends
 * to positions [0, ctx[i]) of its sequence, whose blocks are
 * blocks[tbl[i] ...]. The positions are cut into work items on the host
 * (s1_plan_attention, kernels/cuda_plan.h): item w covers the span
 * [k * span, min(ctx, (k + 1) * span)) of token item_tok[w], k = w -
 * first[item_tok[w]]; plan = {n_items, span} lives on the device, so a
 * captured graph replays any plan of at most max_items items. Each item is
 * computed by nkv blocks (one per kv head, serving all its query heads) into
 * part [max_items, nh, hd + 2] f32, which s1k_attention then combines into out
 * [n, nh*hd] bf16. hd is 16, 32, 64 or 128; nh / nkv <= S1K_MAX_GROUP. */
cudaError_t s1k_attention(const uint16_t *q, const uint16_t *kc, const uint16_t *vc,
                          const int32_t *ctx, const int32_t *tbl, const int32_t *blocks,
                          const int32_t *plan, const int32_t *first, const int32_t *item_tok,
                          float *part, uint16_t *out, int n, int nh, int nkv, int hd, int bs,
                          int max_items, cudaStream_t st);

/* y[n, m] (f32) = x[n, k] (bf16) . w[m, k]^T (bf16) for 1 <= n <= 8: the
 * weight streamed once, f32 accumulation. k % 8 == 0; x, w 16-byte aligned. */
#define S1K_GEMV_MAX_N 8
cudaError_t s1k_gemv(float *y, const uint16_t *x, const uint16_t *w, int n, int m, int k,
                     cudaStream_t st);

/* out[n, inter] (bf16) = silu(gu[:, :inter]) * gu[:, inter:], gu [n, 2*inter]
 * f32. inter % 4 == 0; any n (the grid strides over rows). */
cudaError_t s1k_swiglu(uint16_t *out, const float *gu, int n, int inter, cudaStream_t st);

/* out[i, :] = x[rows[i], :], bf16 rows of d elements, d % 8 == 0. */
cudaError_t s1k_gather_rows(uint16_t *out, const uint16_t *x, const int32_t *rows, int n, int d,
                            cudaStream_t st);

/* Budget-forcing mask: logits[r, ids[k]] = -inf for ids[off[r]] ..
 * ids[off[r+1]-1]; rows of ld floats. Ids outside [0, ld) are ignored. */
cudaError_t s1k_mask_logits(float *logits, int ld, const int32_t *ids, const int32_t *off,
                            int n_rows, cudaStream_t st);

/* Copy-on-write of a KV block: in each of `planes` planes (layer x K/V) of
 * plane_bytes, the blk_bytes of block src are copied over block dst.
 * blk_bytes % 16 == 0. */
cudaError_t s1k_copy_block(void *kv, size_t plane_bytes, size_t blk_bytes, int32_t src, int32_t dst,
                           int planes, cudaStream_t st);

/* Sampling parameters of one logits row. */
typedef struct {
    float temperature; /* <= 0: greedy */
    float top_p;       /* 0 or >= 1: off */
    int32_t top_k;     /* <= 0: off */
    int32_t pad_;
    uint64_t seed; /* the sequence's seed */
    uint64_t step; /* the sequence's sample counter */
} s1k_sample_param;

/* out[r] = a token id below n_vocab drawn from logits row r (rows of ld
 * floats): greedy is the lowest id among the largest logits (id 0 for a row
 * with nothing above -inf, also when sampling); otherwise
 * softmax(logits / T), cut to the top_k largest then to the smallest set of
 * largest whose mass reaches top_p (ties at a threshold are kept), sampled
 * with u = splitmix64(seed, step) / 2^64 — a counter-based generator, so the
 * draw depends only on the sequence's seed and step, never on the batch. */
cudaError_t s1k_sample(const float *logits, int ld, int n_vocab, const s1k_sample_param *prm,
                       int32_t *out, int n_rows, cudaStream_t st);

#ifdef __cplusplus
}
#endif

#endif
