/* kernels/cuda_plan.h — the host-side shape decisions of one CUDA forward:
 * which captured graph a batch replays, how the attention work is cut across
 * the batch's sequences, and how host and device buffers grow. Pure C with no
 * CUDA, so that tests run it on any machine. */
#ifndef S1_CUDA_PLAN_H
#define S1_CUDA_PLAN_H

#include <stdint.h>

/* Graphs are captured for 1, 2, 4, ... S1_PLAN_MAX_GRAPH tokens. */
#define S1_PLAN_N_BUCKETS 7
#define S1_PLAN_MAX_GRAPH 64

/* The smallest span of positions one attention work item covers. */
#define S1_PLAN_MIN_SPAN 64

/* The graph bucket (index into 1, 2, 4, ...) of an n-token batch, or -1 when
 * no graph fits (n above the largest bucket or above max_tokens). */
int s1_plan_bucket(int n, int max_tokens);
/* The batch size of bucket b. */
int s1_plan_bucket_size(int b);

/* A capacity of at least need, doubling from cap (any cap, 0 included, for
 * need >= 1); -1 when it would pass INT32_MAX. */
int s1_plan_grow(int cap, int need);

/* The attention work items of an n-token batch at most: one per token plus
 * enough extra ones to put ~4 blocks on every multiprocessor (a work item is
 * one block per kv head), so that a long context among short ones is split
 * as finely as a batch of it alone would be. */
int s1_plan_attn_items(int n, int n_sms, int nkv);

/* Cuts every token's positions [0, ctx[i]) into consecutive spans of *span
 * positions, the same for the whole batch: the smallest power of two >=
 * S1_PLAN_MIN_SPAN for which all items fit in max_items. Token i's items are
 * first[i] .. first[i+1] - 1 (first has n + 1 entries) and item_tok[w] is the
 * token of item w. Every ctx[i] >= 1. Returns the number of items, or -1 when
 * max_items < n (there is always one item per token at least). */
int s1_plan_attention(const int32_t *ctx, int n, int max_items, int32_t *span, int32_t *first,
                      int32_t *item_tok);

#endif
