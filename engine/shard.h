/* engine/shard.h — tensor parallelism (Megatron): which part of every weight
 * rank r of tp computes with, as views into the model's mmap (a backend
 * copies them where it keeps its weights).
 *   - q/k/v, gate, up: split by output rows (HF "columns"), biases with them;
 *     rank r owns heads [r*H/tp, (r+1)*H/tp) and kv heads likewise;
 *   - o, down: split by input columns (views with row_stride > cols); each
 *     rank's product is a partial sum, to be all-reduced over the ranks;
 *   - lm_head: split by vocabulary rows, the logits gathered;
 *   - embedding and norms: replicated.
 * Pure and backend-neutral: the CPU ranks (engine/tp.c) and the CUDA backend
 * (kernels/) both build their ranks from it. */
#ifndef S1_SHARD_H
#define S1_SHARD_H

#include "err.h"
#include "model.h"

typedef struct {
    int rank, tp;
    int n_heads;    /* this rank's query heads */
    int n_kv_heads; /* this rank's kv heads */
    int head_dim;
    int hidden;       /* the full hidden size (replicated) */
    int intermediate; /* this rank's share of the MLP's intermediate size */
    int vocab_begin;  /* lm_head rows [vocab_begin, vocab_end) */
    int vocab_end;
    s1_weights w; /* views; w.layers is owned by the shard */
} s1_shard;

/* Checks that model m splits into tp ranks: tp >= 1, n_kv_heads % tp == 0
 * (so n_heads too) and intermediate_size % tp == 0. */
int s1_shard_check(const s1_model_config *c, int tp, s1_err *err);

/* Fills s with rank r of tp's views of m's weights. Fails (see
 * s1_shard_check) when m does not split that way. */
int s1_shard_init(s1_shard *s, const s1_model *m, int rank, int tp, s1_err *err);
void s1_shard_free(s1_shard *s);

/* Views: rows [r0, r0+n) of t, and columns [c0, c0+n) of t (every row). */
s1_tensor s1_tensor_rows(const s1_tensor *t, int64_t r0, int64_t n);
s1_tensor s1_tensor_cols(const s1_tensor *t, int64_t c0, int64_t n);

#endif
