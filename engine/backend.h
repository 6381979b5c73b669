/* engine/backend.h — what the scheduler asks of a compute backend: one
 * forward over a ragged batch (prefill chunks and decode tokens of many
 * sequences mixed), writing K/V into a paged cache and returning logits for
 * the rows asked for. Backends: cpu (engine/cpu/) and cuda (kernels/). */
#ifndef S1_BACKEND_H
#define S1_BACKEND_H

#include <stdint.h>

#include "err.h"
#include "model.h"

/* The KV blocks of one sequence, in position order: position p lives in
 * block blocks[p / block_size], slot p % block_size. */
typedef struct {
    const int32_t *blocks;
    int n_blocks;
} s1_block_table;

/* A ragged batch. The tokens of one sequence are contiguous and in position
 * order; token i attends to positions 0..pos[i] of its own sequence, the
 * earlier ones already in the cache or written by this same forward. */
typedef struct {
    int n_tokens;
    const int32_t *tokens; /* [n_tokens] ids fed */
    const int32_t *pos;    /* [n_tokens] position in its sequence */
    const int32_t *seq;    /* [n_tokens] index into tables */
    int n_seqs;
    const s1_block_table *tables; /* [n_seqs] */
    int n_out;
    const int32_t *out_rows; /* [n_out] token rows whose logits are wanted */
    float *logits;           /* [n_out, vocab_size] written by forward */
} s1_batch;

typedef struct {
    int tp;                 /* tensor-parallel ranks: 1, 2, 4 or 8 */
    int threads;            /* CPU worker threads in all; 0 = one per core */
    int block_size;         /* tokens per KV block */
    int n_blocks;           /* KV blocks; 0 = sized by the backend */
    int max_batch_tokens;   /* the largest n_tokens forward will be given */
    double kv_mem_fraction; /* cuda: share of free memory after weights for KV */
} s1_backend_cfg;

typedef struct s1_backend s1_backend;

typedef struct {
    int (*forward)(s1_backend *b, const s1_batch *batch, s1_err *err);
    /* Copies the K/V of block src into block dst (copy-on-write of a block
     * shared through the prefix cache or a fork). */
    int (*copy_block)(s1_backend *b, int32_t src, int32_t dst, s1_err *err);
    void (*destroy)(s1_backend *b);
} s1_backend_ops;

/* Common head of every backend; the backend's own state follows it. */
struct s1_backend {
    const s1_backend_ops *ops;
    const char *name; /* "cpu" or "cuda" */
    int n_blocks;     /* KV blocks actually allocated */
    int block_size;
    int vocab_size; /* logits row length */
    int n_devices;  /* GPUs used (0 for cpu) */
};

/* Opens backend `name` ("cpu" or "cuda") for model m. The model must outlive
 * the backend. Errors say why (e.g. "cuda: this build has no CUDA backend"). */
s1_backend *s1_backend_open(const char *name, const s1_model *m, const s1_backend_cfg *cfg,
                            s1_err *err);

/* The backends' own constructors, called by s1_backend_open. The CUDA one is
 * defined in kernels/, in the module s1cuda.so that engine/cuda_module.c
 * loads: nothing links it directly. */
s1_backend *s1_cpu_backend_open(const s1_model *m, const s1_backend_cfg *cfg, s1_err *err);
s1_backend *s1_cuda_backend_open(const s1_model *m, const s1_backend_cfg *cfg, s1_err *err);

static inline int s1_backend_forward(s1_backend *b, const s1_batch *batch, s1_err *err)
{
    return b->ops->forward(b, batch, err);
}
static inline int s1_backend_copy_block(s1_backend *b, int32_t src, int32_t dst, s1_err *err)
{
    return b->ops->copy_block(b, src, dst, err);
}
static inline void s1_backend_close(s1_backend *b)
{
    if (b) b->ops->destroy(b);
}

#endif
