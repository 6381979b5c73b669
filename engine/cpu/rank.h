/* engine/cpu/rank.h — one CPU rank: the forward pass over a ragged batch on
 * the weights of one shard (engine/shard.h), with its own threads and its
 * part of the paged KV cache (its kv heads). The TP=1 backend (cpu.c) is one
 * rank; the TP backend (engine/tp.c) runs several, joined by an all-reduce.
 *
 * KV cache: f32, laid out [layer][block][kv_head] then, for K, [head_dim]
 * [slot] (transposed) and, for V, [slot][head_dim]. f32 because this backend
 * is the reference: a position's K/V is used exactly as computed, so prefill
 * in one chunk, in several, or token by token gives the same logits. K is
 * transposed so that a block's scores are computed 16 slots at a time with
 * no horizontal sum per position; one kv head's part of a block is
 * contiguous (attention streams it), and a block of a layer is one run of
 * memory (copy_block is one memcpy per layer). */
#ifndef S1_CPU_RANK_H
#define S1_CPU_RANK_H

#include <stddef.h>

#include "backend.h"
#include "kernels.h"
#include "shard.h"

/* KV memory, all ranks together, when the configuration gives no n_blocks:
 * this share of physical memory (1 GiB where it cannot be read), at most
 * enough for this many full contexts. The cache is mapped lazily, so blocks
 * never used cost nothing. */
#define S1_CPU_KV_DEFAULT_SHARE   0.25
#define S1_CPU_KV_MAX_CONTEXTS    64
#define S1_CPU_DEFAULT_BLOCK_SIZE 16

/* What a CPU backend was opened with, defaults resolved. */
typedef struct {
    const s1_cpu_kernels *kernels;
    int threads; /* in all, over every rank */
    int block_size;
    int n_blocks;
    int max_batch_tokens; /* scratch sized at open; a larger batch grows it */
} s1_cpu_plan;

/* Resolves cfg's defaults for model m: threads (0 = cores), block_size,
 * n_blocks (0 = S1_CPU_KV_DEFAULT_SHARE of memory), max_batch_tokens, the
 * kernels ($S1_CPU_KERNELS, else measured on m: engine/cpu/choose.h). */
int s1_cpu_plan_make(const s1_model *m, const s1_backend_cfg *cfg, s1_cpu_plan *plan, s1_err *err);

/* Bytes of the KV cache of plan on model c, all ranks together. */
double s1_cpu_plan_kv_bytes(const s1_model_config *c, const s1_cpu_plan *plan);

/* Checks everything forward will index: ids, positions, block tables,
 * out_rows. A bad batch is an error, never a crash. */
int s1_cpu_batch_check(const s1_batch *b, int vocab, int n_blocks, int block_size, s1_err *err);

typedef struct s1_cpu_rank s1_cpu_rank;

/* Sums part[n] over all ranks; returns where the sum is (the reducer's). */
typedef const float *s1_cpu_reduce_fn(void *ctx, int rank, const float *part, size_t n);

/* A rank on shard s (borrowed; it must outlive the rank) of model m with
 * `threads` threads, the caller of forward being one of them. */
s1_cpu_rank *s1_cpu_rank_new(const s1_model *m, const s1_shard *s, const s1_cpu_plan *plan,
                             int threads, s1_err *err);
/* Sizes the scratch for batch b (checked); call before forward. */
int s1_cpu_rank_reserve(s1_cpu_rank *r, const s1_batch *b, s1_err *err);
/* The forward over b: writes the K/V of b's tokens and the logits columns
 * [vocab_begin, vocab_end) of the rows asked for. reduce is NULL at TP=1. */
void s1_cpu_rank_forward(s1_cpu_rank *r, const s1_batch *b, s1_cpu_reduce_fn *reduce, void *ctx);
/* Copies block src into dst, every layer (ids checked by the caller). */
void s1_cpu_rank_copy_block(s1_cpu_rank *r, int32_t src, int32_t dst);
void s1_cpu_rank_free(s1_cpu_rank *r);

#endif
