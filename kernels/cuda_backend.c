/* kernels/cuda_backend.c — the CUDA backend: a Qwen2 forward over a ragged
 * batch on 1..8 GPUs of one process, tensor-parallel over NCCL.
 *
 * Each GPU (a rank) holds its Megatron shard in bf16: QKV, gate and up split
 * by output rows (heads, intermediate columns), O and down by input columns,
 * each followed by an NCCL all-reduce of the f32 partial sums; the lm_head by
 * vocabulary rows, each rank writing its slice of the logits. With tp > 1 a
 * host thread per GPU runs that GPU's work (the calls of one rank are ordered
 * on one stream, and NCCL collectives need every rank to enqueue at once).
 * Batches of at most 64 tokens replay a CUDA graph captured, per GPU, for the
 * next power-of-two size, padded with tokens that write a scratch KV block.
 * A rank that fails aborts its NCCL communicator and the others abort theirs
 * instead of waiting forever in a collective; the backend then refuses
 * further work. This file is built into the loadable module s1cuda.so
 * (engine/cuda_module.c opens it), the only part of s1d that links CUDA.
 * Environment: S1_CUDA_NO_GRAPHS=1 (no graphs), S1_CUDA_PDL=0 (no
 * programmatic dependent launch, which only sm_90 and newer have anyway),
 * S1_CUDA_GEMV=0 (cuBLASLt for every GEMM). */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cuda_gemm.h"
#include "cuda_load.h"
#include "cuda_plan.h"
#include "cuda_util.h"
#include "s1_config.h"
#include "s1_kernels.h"
#include "shard.h"

#define MAX_TP 8

/* The batch's metadata, one int32 buffer on the host (pinned) and on every
 * GPU: per token rows of max_tokens, then the attention plan. */
enum { M_TOKENS, M_POS, M_CTX, M_SLOT, M_TBL, M_ROWS, M_FIRST, M_PLAN, M_ITEMS, M_END };

typedef struct {
    uint16_t *wqkv;              /* [(nh+2*nkv)*hd, hidden] this rank's q, k, v rows */
    uint16_t *wo;                /* [hidden, nh*hd] this rank's columns */
    uint16_t *wgu;               /* [2*inter, hidden] gate rows then up rows */
    uint16_t *wdown;             /* [hidden, inter] this rank's columns */
    float *bqkv;                 /* [(nh+2*nkv)*hd] */
    float *attn_norm, *mlp_norm; /* [hidden] */
} cu_layer;

typedef struct cuda_backend cuda_backend;

/* One GPU. Every device pointer is owned and freed by rank_free. */
typedef struct {
    cuda_backend *cb;
    int rank, dev;
    int nh, nkv, inter;    /* this rank's heads, kv heads, intermediate size */
    int vocab_lo, vocab_n; /* this rank's slice of the vocabulary */
    s1_shard shard;        /* this rank's weight views (engine/shard.h) */
    cudaStream_t st;
    s1_cuda_gemm *gemm;
    ncclComm_t comm;   /* NULL when tp == 1 */
    cu_layer *layers;  /* [n_layers], host array */
    uint16_t *embed;   /* [vocab, hidden], whole on every rank */
    uint16_t *lm_head; /* [vocab_n, hidden] */
    float *final_norm; /* [hidden] */
    float *rope;       /* [max_position, hd/2, (cos, sin)] */
    uint16_t *kv;      /* [n_layers][K, V][n_blocks + 1][nkv][bs][hd] */
    float *x, *y;      /* [max_tokens, hidden] residual stream, layer output */
    float *qkv;        /* [max_tokens, (nh+2*nkv)*hd] */
    float *gu;         /* [max_tokens, 2*inter] */
    float *logits;     /* [max_tokens, vocab_n] */
    float *part;       /* [part_rows, nh, hd + 2] attention partials */
    uint16_t *xn;      /* [max_tokens, hidden] normed, GEMM input */
    uint16_t *q, *att; /* [max_tokens, nh*hd] */
    uint16_t *h;       /* [max_tokens, inter] */
    uint16_t *xo;      /* [max_tokens, hidden] rows whose logits are wanted */
    int32_t *meta;     /* [meta_len] laid out as cuda_backend.meta_off */
    int32_t *blocks;   /* [blocks_cap] */
    int blocks_cap;
    cudaGraphExec_t graph[S1_PLAN_N_BUCKETS];
    size_t free_bytes; /* free device memory after the weights */
    int rc;            /* the last team job's result */
    s1_err err;
    pthread_t thread;
    bool thread_started;
} cu_rank;

typedef int (*rank_fn)(cu_rank *r, void *arg);

struct cuda_backend {
    s1_backend base;
    const s1_model *m;
    int tp, hd, max_tokens, max_pos, n_sms;
    int max_items; /* attention work items of a max_tokens batch (part rows) */
    bool graphs;
    cu_rank ranks[MAX_TP];
    /* The batch's metadata, packed once by the caller for every rank to copy. */
    int meta_off[M_END + 1]; /* where each array starts; meta_off[M_END] = length */
    int32_t *h_meta;         /* [meta_off[M_END]] pinned, owned */
    int32_t *h_blocks;       /* [h_blocks_cap] pinned, owned */
    int h_blocks_cap;
    /* The logits rows of a forward, gathered from every rank's vocabulary
     * slice by page-locked copies, then handed to the caller's buffer. */
    float *h_logits; /* [h_logits_rows, vocab] pinned, owned */
    int h_logits_rows;
    atomic_bool failed; /* a rank failed and the communicators were aborted */
    /* Team of rank threads (tp > 1): a job is (fn, arg), generation-counted. */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned gen;
    int n_done;
    rank_fn fn;
    void *arg;
    bool quit;
    bool threads; /* jobs run on the rank threads (tp > 1), else in the caller */
};

/* ---- the team: runs one function on every rank, each on its GPU's thread */

static int run_job(cu_rank *r, rank_fn fn, void *arg)
{
    if (s1_cuda_check(cudaSetDevice(r->dev), "cudaSetDevice", r->dev, &r->err)) return -1;
    return fn(r, arg);
}

/* Abandons this rank's collectives: once a rank has failed, the others would
 * wait for it in their all-reduce forever. The communicator is gone after. */
static void rank_abort(cu_rank *r)
{
    if (r->comm) ncclCommAbort(r->comm);
    r->comm = NULL;
}

/* Waits for this rank's stream. With NCCL it polls, so that a failure of
 * another rank (whose collective will never come) or of NCCL itself aborts
 * the communicator, which ends the wait, instead of hanging. */
static int rank_sync(cu_rank *r)
{
    s1_err *err = &r->err;
    if (!r->comm) return CU(r->dev, cudaStreamSynchronize(r->st));
    for (;;) {
        const cudaError_t e = cudaStreamQuery(r->st);
        if (e != cudaErrorNotReady) return CU(r->dev, e);
        ncclResult_t async = ncclSuccess;
        if (CUNCCL(r->dev, ncclCommGetAsyncError(r->comm, &async)) ||
            s1_cuda_check_nccl(async, "ncclCommGetAsyncError", r->dev, err)) {
            rank_abort(r);
            return -1;
        }
        if (atomic_load(&r->cb->failed)) {
            rank_abort(r);
            return s1_errf(err, "cuda: GPU %d stopped: another GPU of the team failed", r->dev);
        }
        sched_yield();
    }
}

/* After a failed job with several GPUs: tells the others (see rank_sync). */
static void rank_failed(cu_rank *r)
{
    if (r->cb->tp == 1) return;
    atomic_store(&r->cb->failed, true);
    rank_abort(r);
}

static void *rank_thread(void *p)
{
    cu_rank *r = p;
    cuda_backend *cb = r->cb;
    unsigned seen = 0;
    pthread_mutex_lock(&cb->mu);
    for (;;) {
        while (cb->gen == seen && !cb->quit)
            pthread_cond_wait(&cb->go, &cb->mu);
        if (cb->quit) break;
        seen = cb->gen;
        rank_fn fn = cb->fn;
        void *arg = cb->arg;
        pthread_mutex_unlock(&cb->mu);
        int rc = run_job(r, fn, arg);
        if (rc) rank_failed(r);
        pthread_mutex_lock(&cb->mu);
        r->rc = rc;
        if (++cb->n_done == cb->tp) pthread_cond_signal(&cb->done);
    }
    pthread_mutex_unlock(&cb->mu);
    return NULL;
}

/* Runs fn on every rank and waits; the first failing rank's error is kept. */
static int team_run(cuda_backend *cb, rank_fn fn, void *arg, s1_err *err)
{
    if (!cb->threads) {
        for (int i = 0; i < cb->tp; i++)
            if ((cb->ranks[i].rc = run_job(&cb->ranks[i], fn, arg))) rank_failed(&cb->ranks[i]);
    } else {
        pthread_mutex_lock(&cb->mu);
        cb->fn = fn;
        cb->arg = arg;
        cb->n_done = 0;
        cb->gen++;
        pthread_cond_broadcast(&cb->go);
        while (cb->n_done < cb->tp)
            pthread_cond_wait(&cb->done, &cb->mu);
        pthread_mutex_unlock(&cb->mu);
    }
    for (int i = 0; i < cb->tp; i++)
        if (cb->ranks[i].rc) {
            if (err) *err = cb->ranks[i].err;
            return -1;
        }
    return 0;
}

static void team_stop(cuda_backend *cb)
{
    pthread_mutex_lock(&cb->mu);
    cb->quit = true;
    pthread_cond_broadcast(&cb->go);
    pthread_mutex_unlock(&cb->mu);
    for (int i = 0; i < cb->tp; i++)
        if (cb->ranks[i].thread_started) pthread_join(cb->ranks[i].thread, NULL);
    for (int i = 0; i < cb->tp; i++)
        cb->ranks[i].thread_started = false;
    cb->threads = false; /* later jobs (the cleanup) run in the caller */
}

static int team_start(cuda_backend *cb, s1_err *err)
{
    for (int i = 0; i < cb->tp; i++) {
        if (pthread_create(&cb->ranks[i].thread, NULL, rank_thread, &cb->ranks[i])) {
            team_stop(cb);
            return s1_errf(err, "cuda: cannot start the thread of GPU %d", cb->ranks[i].dev);
        }
        cb->ranks[i].thread_started = true;
    }
    cb->threads = true;
    return 0;
}

/* ---- loading: this rank's shard of every weight */

static int dmalloc(cu_rank *r, void *pp, size_t bytes)
{
    s1_err *err = &r->err;
    return CU(r->dev, cudaMalloc((void **)pp, bytes ? bytes : 1));
}

static int load_layer(cu_rank *r, s1_cuda_loader *ld, const s1_layer *w, cu_layer *l)
{
    const int64_t H = r->cb->m->cfg.hidden_size, hd = r->cb->hd, qd = (int64_t)r->nh * hd,
                  kd = (int64_t)r->nkv * hd, I = r->inter;
    s1_err *err = &r->err;
    if (dmalloc(r, &l->wqkv, (size_t)(qd + 2 * kd) * H * 2) ||
        dmalloc(r, &l->wo, (size_t)H * qd * 2) || dmalloc(r, &l->wgu, (size_t)2 * I * H * 2) ||
        dmalloc(r, &l->wdown, (size_t)H * I * 2) ||
        dmalloc(r, &l->bqkv, (size_t)(qd + 2 * kd) * 4) ||
        dmalloc(r, &l->attn_norm, (size_t)H * 4) || dmalloc(r, &l->mlp_norm, (size_t)H * 4))
        return -1;
    /* q, k, v (and gate, up) rows are stacked so one GEMM computes them */
    return s1_cuda_upload(ld, l->wqkv, 1, &w->wq, err) ||
                   s1_cuda_upload(ld, l->wqkv + qd * H, 1, &w->wk, err) ||
                   s1_cuda_upload(ld, l->wqkv + (qd + kd) * H, 1, &w->wv, err) ||
                   s1_cuda_upload(ld, l->bqkv, 0, &w->bq, err) ||
                   s1_cuda_upload(ld, l->bqkv + qd, 0, &w->bk, err) ||
                   s1_cuda_upload(ld, l->bqkv + qd + kd, 0, &w->bv, err) ||
                   s1_cuda_upload(ld, l->wo, 1, &w->wo, err) ||
                   s1_cuda_upload(ld, l->wgu, 1, &w->w_gate, err) ||
                   s1_cuda_upload(ld, l->wgu + I * H, 1, &w->w_up, err) ||
                   s1_cuda_upload(ld, l->wdown, 1, &w->w_down, err) ||
                   s1_cuda_upload(ld, l->attn_norm, 0, &w->attn_norm, err) ||
                   s1_cuda_upload(ld, l->mlp_norm, 0, &w->mlp_norm, err)
               ? -1
               : 0;
}

/* cos/sin of pos * theta^(-2j/hd), computed in double on the host. */
static int load_rope(cu_rank *r)
{
    const cuda_backend *cb = r->cb;
    const int half = cb->hd / 2;
    const size_t n = (size_t)cb->max_pos * (size_t)half * 2;
    s1_err *err = &r->err;
    float *t = malloc(n * sizeof *t);
    if (!t) return s1_errf(err, "cuda: out of host memory for the RoPE table");
    for (int j = 0; j < half; j++) {
        const double inv = pow((double)cb->m->cfg.rope_theta, -2.0 * j / cb->hd);
        for (int p = 0; p < cb->max_pos; p++) {
            t[((size_t)p * half + j) * 2] = (float)cos(p * inv);
            t[((size_t)p * half + j) * 2 + 1] = (float)sin(p * inv);
        }
    }
    int rc = dmalloc(r, &r->rope, n * sizeof *t) ||
             CU(r->dev, cudaMemcpy(r->rope, t, n * sizeof *t, cudaMemcpyHostToDevice));
    free(t);
    return rc ? -1 : 0;
}

static int alloc_activations(cu_rank *r)
{
    const cuda_backend *cb = r->cb;
    const size_t N = (size_t)cb->max_tokens, H = (size_t)cb->m->cfg.hidden_size,
                 hd = (size_t)cb->hd;
    const size_t qkvw = (size_t)(r->nh + 2 * r->nkv) * hd, qd = (size_t)r->nh * hd;
    return dmalloc(r, &r->x, N * H * 4) || dmalloc(r, &r->y, N * H * 4) ||
                   dmalloc(r, &r->qkv, N * qkvw * 4) ||
                   dmalloc(r, &r->gu, N * 2 * (size_t)r->inter * 4) ||
                   dmalloc(r, &r->logits, N * (size_t)r->vocab_n * 4) ||
                   dmalloc(r, &r->part, (size_t)cb->max_items * (size_t)r->nh * (hd + 2) * 4) ||
                   dmalloc(r, &r->xn, N * H * 2) || dmalloc(r, &r->q, N * qd * 2) ||
                   dmalloc(r, &r->att, N * qd * 2) || dmalloc(r, &r->h, N * (size_t)r->inter * 2) ||
                   dmalloc(r, &r->xo, N * H * 2) ||
                   dmalloc(r, &r->meta, (size_t)cb->meta_off[M_END] * 4) ||
                   dmalloc(r, &r->blocks, (size_t)r->blocks_cap * 4)
               ? -1
               : 0;
}

/* Team job: streams, cuBLASLt, every weight, the activations; then measures
 * the memory left for the KV cache. */
static int rank_load(cu_rank *r, void *arg)
{
    (void)arg;
    const cuda_backend *cb = r->cb;
    const s1_weights *w = &r->shard.w;
    const int64_t H = cb->m->cfg.hidden_size;
    s1_err *err = &r->err;
    if (s1_shard_init(&r->shard, cb->m, r->rank, cb->tp, err) ||
        CU(r->dev, cudaStreamCreateWithFlags(&r->st, cudaStreamNonBlocking)))
        return -1;
    if (!(r->gemm = s1_cuda_gemm_new(r->dev, r->st, err))) return -1;
    r->layers = calloc((size_t)cb->m->cfg.n_layers, sizeof *r->layers);
    if (!r->layers) return s1_errf(err, "cuda: out of host memory");
    s1_cuda_loader *ld = s1_cuda_loader_new(r->dev, r->st, err);
    if (!ld) return -1;
    int rc = dmalloc(r, &r->embed, (size_t)w->embed.rows * H * 2) ||
             dmalloc(r, &r->lm_head, (size_t)r->vocab_n * H * 2) ||
             dmalloc(r, &r->final_norm, (size_t)H * 4) ||
             s1_cuda_upload(ld, r->embed, 1, &w->embed, err) ||
             s1_cuda_upload(ld, r->lm_head, 1, &w->lm_head, err) ||
             s1_cuda_upload(ld, r->final_norm, 0, &w->final_norm, err);
    for (int l = 0; !rc && l < cb->m->cfg.n_layers; l++)
        rc = load_layer(r, ld, &w->layers[l], &r->layers[l]);
    s1_err lerr;
    if (s1_cuda_loader_free(ld, &lerr) && !rc) {
        r->err = lerr;
        rc = -1;
    }
    if (rc || load_rope(r) || alloc_activations(r)) return -1;
    size_t total;
    return CU(r->dev, cudaMemGetInfo(&r->free_bytes, &total));
}

static size_t kv_block_bytes(const cu_rank *r)
{
    const cuda_backend *cb = r->cb;
    return (size_t)r->nkv * (size_t)cb->base.block_size * (size_t)cb->hd * 2;
}

/* Team job: the KV cache, n_blocks + 1 blocks (the last is the scratch block
 * that graph padding tokens write). Zeroed, so no block ever holds NaN. */
static int rank_alloc_kv(cu_rank *r, void *arg)
{
    (void)arg;
    const cuda_backend *cb = r->cb;
    const size_t bytes =
        kv_block_bytes(r) * (size_t)(cb->base.n_blocks + 1) * 2 * (size_t)cb->m->cfg.n_layers;
    s1_err *err = &r->err;
    return dmalloc(r, &r->kv, bytes) || CU(r->dev, cudaMemsetAsync(r->kv, 0, bytes, r->st)) ||
                   rank_sync(r)
               ? -1
               : 0;
}

static void destroy_graphs(cu_rank *r)
{
    for (int i = 0; i < S1_PLAN_N_BUCKETS; i++)
        if (r->graph[i]) {
            cudaGraphExecDestroy(r->graph[i]);
            r->graph[i] = NULL;
        }
}

/* Team job (and the cleanup of a failed open): everything of one rank but
 * its communicator (comms_destroy). */
static int rank_free(cu_rank *r, void *arg)
{
    (void)arg;
    if (r->st) cudaStreamSynchronize(r->st);
    destroy_graphs(r);
    if (r->layers)
        for (int l = 0; l < r->cb->m->cfg.n_layers; l++) {
            cu_layer *y = &r->layers[l];
            void *p[] = {y->wqkv, y->wo, y->wgu, y->wdown, y->bqkv, y->attn_norm, y->mlp_norm};
            for (size_t i = 0; i < sizeof p / sizeof *p; i++)
                cudaFree(p[i]);
        }
    free(r->layers);
    r->layers = NULL;
    void *p[] = {r->embed, r->lm_head, r->final_norm, r->rope,   r->kv,   r->x,
                 r->y,     r->qkv,     r->gu,         r->logits, r->part, r->xn,
                 r->q,     r->att,     r->h,          r->xo,     r->meta, r->blocks};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++)
        cudaFree(p[i]);
    s1_cuda_gemm_free(r->gemm);
    r->gemm = NULL;
    s1_shard_free(&r->shard);
    if (r->st) cudaStreamDestroy(r->st);
    r->st = NULL;
    return 0;
}

/* ---- the forward pass of one rank */

/* x += y summed over the ranks (y is this rank's partial output). */
static int all_reduce(cu_rank *r, int n)
{
    s1_err *err = &r->err;
    if (!r->comm) return 0;
    const size_t count = (size_t)n * (size_t)r->cb->m->cfg.hidden_size;
    return CUNCCL(r->dev, ncclAllReduce(r->y, r->y, count, ncclFloat, ncclSum, r->comm, r->st));
}

/* One array of the batch's metadata on the device. */
static const int32_t *meta(const cu_rank *r, int which)
{
    return r->meta + r->cb->meta_off[which];
}

/* The attention work items an n-token forward is planned (and launched) for:
 * a function of n alone, so that a graph replays any batch of its size. */
static int max_items(const cuda_backend *cb, int n)
{
    return s1_plan_attn_items(n, cb->n_sms, cb->m->cfg.n_kv_heads / cb->tp);
}

static int layer_forward(cu_rank *r, int l, int n, const float *next_norm)
{
    const cuda_backend *cb = r->cb;
    const s1_model_config *c = &cb->m->cfg;
    const cu_layer *w = &r->layers[l];
    const int H = c->hidden_size, hd = cb->hd, qd = r->nh * hd, bs = cb->base.block_size;
    const int qkvw = (r->nh + 2 * r->nkv) * hd, dev = r->dev;
    const size_t plane = kv_block_bytes(r) / 2 * (size_t)(cb->base.n_blocks + 1);
    uint16_t *kc = r->kv + (size_t)(2 * l) * plane, *vc = kc + plane;
    s1_err *err = &r->err;
    cudaStream_t st = r->st;
    /* attention: xn is this layer's input_layernorm output */
    if (s1_cuda_gemm_run(r->gemm, r->qkv, r->xn, w->wqkv, n, qkvw, H, err) ||
        CU(dev, s1k_rope_qkv(r->qkv, w->bqkv, r->rope, meta(r, M_POS), meta(r, M_SLOT), r->q, kc,
                             vc, n, r->nh, r->nkv, hd, bs, st)) ||
        CU(dev, s1k_attention(r->q, kc, vc, meta(r, M_CTX), meta(r, M_TBL), r->blocks,
                              meta(r, M_PLAN), meta(r, M_FIRST), meta(r, M_ITEMS), r->part, r->att,
                              n, r->nh, r->nkv, hd, bs, max_items(cb, n), st)) ||
        s1_cuda_gemm_run(r->gemm, r->y, r->att, w->wo, n, H, qd, err) || all_reduce(r, n) ||
        CU(dev, s1k_add_rmsnorm(r->x, r->y, r->xn, w->mlp_norm, n, H, c->rms_norm_eps, st)))
        return -1;
    /* MLP */
    return s1_cuda_gemm_run(r->gemm, r->gu, r->xn, w->wgu, n, 2 * r->inter, H, err) ||
                   CU(dev, s1k_swiglu(r->h, r->gu, n, r->inter, st)) ||
                   s1_cuda_gemm_run(r->gemm, r->y, r->h, w->wdown, n, H, r->inter, err) ||
                   all_reduce(r, n) ||
                   CU(dev, s1k_add_rmsnorm(r->x, r->y, r->xn, next_norm, n, H, c->rms_norm_eps, st))
               ? -1
               : 0;
}

/* Embedding, the layers, the final norm and this rank's logits of n_out
 * rows: everything between the metadata upload and the logits download, so
 * that it can be captured into a graph. */
static int model_forward(cu_rank *r, int n, int n_out)
{
    const cuda_backend *cb = r->cb;
    const s1_model_config *c = &cb->m->cfg;
    const int H = c->hidden_size, dev = r->dev;
    s1_err *err = &r->err;
    if (CU(dev, s1k_embed(r->x, r->embed, meta(r, M_TOKENS), n, H, r->st)) ||
        CU(dev, s1k_add_rmsnorm(r->x, NULL, r->xn, r->layers[0].attn_norm, n, H, c->rms_norm_eps,
                                r->st)))
        return -1;
    for (int l = 0; l < c->n_layers; l++) {
        const float *next = l + 1 < c->n_layers ? r->layers[l + 1].attn_norm : r->final_norm;
        if (layer_forward(r, l, n, next)) return -1;
    }
    return CU(dev, s1k_gather_rows(r->xo, r->xn, meta(r, M_ROWS), n_out, H, r->st)) ||
                   s1_cuda_gemm_run(r->gemm, r->logits, r->xo, r->lm_head, n_out, r->vocab_n, H,
                                    err)
               ? -1
               : 0;
}

/* Captures the graph of bucket b on first use. An eager run of the same
 * forward comes first, so that module loading and the libraries' first-use
 * setup happen outside the capture; it writes the same K/V the graph then
 * writes again. */
static int graph_get(cu_rank *r, int b, cudaGraphExec_t *out)
{
    s1_err *err = &r->err;
    if (!r->graph[b]) {
        const int n = s1_plan_bucket_size(b);
        cudaGraph_t g = NULL;
        if (model_forward(r, n, n) ||
            CU(r->dev, cudaStreamBeginCapture(r->st, cudaStreamCaptureModeThreadLocal)))
            return -1;
        int rc = model_forward(r, n, n);
        cudaError_t e = cudaStreamEndCapture(r->st, &g);
        if (!rc) rc = CU(r->dev, e);
        if (!rc) rc = CU(r->dev, cudaGraphInstantiate(&r->graph[b], g, 0));
        if (g) cudaGraphDestroy(g);
        if (rc) return -1;
    }
    *out = r->graph[b];
    return 0;
}

typedef struct {
    const s1_batch *batch;
    int n_rows; /* tokens computed: n_tokens, or the graph bucket's size */
    int bucket; /* graph bucket, -1 for none */
    int n_blocks_used;
} fwd_job;

static int grow_blocks(cu_rank *r, int need)
{
    s1_err *err = &r->err;
    const int cap = s1_plan_grow(r->blocks_cap, need);
    if (cap < 0) return s1_errf(err, "cuda: a block table of %d entries is too large", need);
    if (rank_sync(r)) return -1;
    cudaFree(r->blocks);
    r->blocks = NULL;
    r->blocks_cap = 0;
    destroy_graphs(r); /* they hold the old pointer */
    if (dmalloc(r, &r->blocks, (size_t)cap * 4)) return -1;
    r->blocks_cap = cap;
    return 0;
}

/* Team job: one forward on this rank, its logits slice copied out. */
static int rank_forward(cu_rank *r, void *arg)
{
    const fwd_job *j = arg;
    const cuda_backend *cb = r->cb;
    const s1_batch *bt = j->batch;
    s1_err *err = &r->err;
    const int dev = r->dev;
    if (j->n_blocks_used > r->blocks_cap && grow_blocks(r, j->n_blocks_used)) return -1;
    if (CU(dev, cudaMemcpyAsync(r->meta, cb->h_meta, (size_t)cb->meta_off[M_END] * 4,
                                cudaMemcpyHostToDevice, r->st)) ||
        CU(dev, cudaMemcpyAsync(r->blocks, cb->h_blocks, (size_t)j->n_blocks_used * 4,
                                cudaMemcpyHostToDevice, r->st)))
        return -1;
    if (j->bucket >= 0) {
        cudaGraphExec_t g;
        if (graph_get(r, j->bucket, &g) || CU(dev, cudaGraphLaunch(g, r->st))) return -1;
    } else if (model_forward(r, j->n_rows, bt->n_out)) {
        return -1;
    }
    if (bt->n_out > 0 &&
        CU(dev, cudaMemcpy2DAsync(cb->h_logits + r->vocab_lo, (size_t)cb->base.vocab_size * 4,
                                  r->logits, (size_t)r->vocab_n * 4, (size_t)r->vocab_n * 4,
                                  (size_t)bt->n_out, cudaMemcpyDeviceToHost, r->st)))
        return -1;
    return rank_sync(r);
}

/* ---- the backend's operations */

static int grow_host_blocks(cuda_backend *cb, int need, s1_err *err)
{
    const int cap = s1_plan_grow(cb->h_blocks_cap, need);
    if (cap < 0) return s1_errf(err, "cuda: a block table of %d entries is too large", need);
    int32_t *p;
    if (CU(cb->ranks[0].dev, cudaHostAlloc((void **)&p, (size_t)cap * 4, cudaHostAllocPortable)))
        return -1;
    cudaFreeHost(cb->h_blocks);
    cb->h_blocks = p;
    cb->h_blocks_cap = cap;
    return 0;
}

/* Packs the block tables of the batch's sequences, then the scratch block. */
static int pack_tables(cuda_backend *cb, const s1_batch *b, int32_t *tbl_of_seq, int *n_used,
                       s1_err *err)
{
    int total = 1;
    for (int s = 0; s < b->n_seqs; s++)
        total += b->tables[s].n_blocks;
    if (total > cb->h_blocks_cap && grow_host_blocks(cb, total, err)) return -1;
    int k = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        tbl_of_seq[s] = k;
        for (int i = 0; i < b->tables[s].n_blocks; i++) {
            const int32_t blk = b->tables[s].blocks[i];
            if (blk < 0 || blk >= cb->base.n_blocks)
                return s1_errf(err, "cuda: sequence %d uses KV block %d of %d", s, blk,
                               cb->base.n_blocks);
            cb->h_blocks[k++] = blk;
        }
    }
    cb->h_blocks[k] = cb->base.n_blocks; /* scratch */
    *n_used = total;
    return 0;
}

/* Fills h_meta for the batch padded to n_rows tokens; padding tokens write
 * the scratch block, and padding output rows repeat row 0. Then the
 * attention plan over every row's context. */
static int pack_batch(cuda_backend *cb, const s1_batch *b, int n_rows, int *n_used, s1_err *err)
{
    const int bs = cb->base.block_size;
    int32_t *tbl_of_seq = malloc(sizeof *tbl_of_seq * (size_t)(b->n_seqs ? b->n_seqs : 1));
    if (!tbl_of_seq) return s1_errf(err, "cuda: out of host memory");
    int rc = pack_tables(cb, b, tbl_of_seq, n_used, err);
    int32_t *m[M_END];
    for (int k = 0; k < M_END; k++)
        m[k] = cb->h_meta + cb->meta_off[k];
    for (int i = 0; !rc && i < n_rows; i++) {
        int tok = 0, pos = 0, tbl = *n_used - 1, slot = cb->base.n_blocks * bs;
        if (i < b->n_tokens) {
            tok = b->tokens[i], pos = b->pos[i];
            const int s = b->seq[i];
            if (s < 0 || s >= b->n_seqs || pos < 0 || pos >= cb->max_pos ||
                pos / bs >= b->tables[s].n_blocks || tok < 0 || tok >= cb->base.vocab_size) {
                rc = s1_errf(err,
                             "cuda: batch row %d (token %d, sequence %d, position %d) is out "
                             "of range of its KV blocks, the context or the vocabulary",
                             i, tok, s, pos);
                break;
            }
            tbl = tbl_of_seq[s];
            slot = b->tables[s].blocks[pos / bs] * bs + pos % bs;
        }
        m[M_TOKENS][i] = tok, m[M_POS][i] = pos, m[M_CTX][i] = pos + 1;
        m[M_SLOT][i] = slot, m[M_TBL][i] = tbl;
    }
    for (int i = 0; !rc && i < n_rows; i++) {
        const int row = i < b->n_out ? b->out_rows[i] : 0;
        if (row < 0 || row >= b->n_tokens)
            rc = s1_errf(err, "cuda: output row %d is not in the batch", row);
        m[M_ROWS][i] = row;
    }
    free(tbl_of_seq);
    if (rc) return rc;
    const int n_items = s1_plan_attention(m[M_CTX], n_rows, max_items(cb, n_rows), &m[M_PLAN][1],
                                          m[M_FIRST], m[M_ITEMS]);
    m[M_PLAN][0] = n_items;
    return n_items < 0 ? s1_errf(err, "cuda: no attention plan for %d tokens", n_rows) : 0;
}

/* The pinned rows the ranks copy their logits into, grown to n_out rows. */
static int grow_host_logits(cuda_backend *cb, int n_out, s1_err *err)
{
    if (n_out <= cb->h_logits_rows) return 0;
    const int rows = s1_plan_grow(cb->h_logits_rows, n_out);
    float *p;
    if (rows < 0 || CU(cb->ranks[0].dev,
                       cudaHostAlloc((void **)&p, (size_t)rows * (size_t)cb->base.vocab_size * 4,
                                     cudaHostAllocPortable)))
        return rows < 0 ? s1_errf(err, "cuda: %d logits rows are too many", n_out) : -1;
    cudaFreeHost(cb->h_logits);
    cb->h_logits = p;
    cb->h_logits_rows = rows;
    return 0;
}

/* The error of every call after a rank failed with several GPUs. */
static int refuse_after_failure(s1_err *err)
{
    return s1_errf(err, "cuda: a GPU failed earlier and the NCCL communicators were aborted; "
                        "restart s1d to use the GPUs again");
}

static int cuda_forward(s1_backend *base, const s1_batch *b, s1_err *err)
{
    cuda_backend *cb = (cuda_backend *)base;
    if (atomic_load(&cb->failed)) return refuse_after_failure(err);
    if (b->n_tokens <= 0) return 0;
    if (b->n_tokens > cb->max_tokens)
        return s1_errf(err, "cuda: a batch of %d tokens exceeds max_batch_tokens (%d)", b->n_tokens,
                       cb->max_tokens);
    if (b->n_out > b->n_tokens)
        return s1_errf(err, "cuda: %d output rows for %d tokens", b->n_out, b->n_tokens);
    const int bucket = cb->graphs ? s1_plan_bucket(b->n_tokens, cb->max_tokens) : -1;
    fwd_job j = {.batch = b,
                 .bucket = bucket,
                 .n_rows = bucket >= 0 ? s1_plan_bucket_size(bucket) : b->n_tokens};
    if (grow_host_logits(cb, b->n_out, err) || pack_batch(cb, b, j.n_rows, &j.n_blocks_used, err) ||
        team_run(cb, rank_forward, &j, err))
        return -1;
    if (b->n_out > 0)
        memcpy(b->logits, cb->h_logits, (size_t)b->n_out * (size_t)base->vocab_size * 4);
    return 0;
}

typedef struct {
    int32_t src, dst;
} copy_job;

/* Team job: block dst = block src in every layer, K and V. */
static int rank_copy_block(cu_rank *r, void *arg)
{
    const copy_job *j = arg;
    const size_t blk = kv_block_bytes(r), plane = blk * (size_t)(r->cb->base.n_blocks + 1);
    s1_err *err = &r->err;
    return CU(r->dev, s1k_copy_block(r->kv, plane, blk, j->src, j->dst, 2 * r->cb->m->cfg.n_layers,
                                     r->st)) ||
                   rank_sync(r)
               ? -1
               : 0;
}

static int cuda_copy_block(s1_backend *base, int32_t src, int32_t dst, s1_err *err)
{
    cuda_backend *cb = (cuda_backend *)base;
    if (atomic_load(&cb->failed)) return refuse_after_failure(err);
    if (src < 0 || dst < 0 || src >= base->n_blocks || dst >= base->n_blocks)
        return s1_errf(err, "cuda: copy_block %d -> %d: blocks are 0..%d", src, dst,
                       base->n_blocks - 1);
    if (src == dst) return 0;
    copy_job j = {src, dst};
    return team_run(cb, rank_copy_block, &j, err);
}

/* Every communicator of the team, from this one thread: finalized together
 * in one group (each finalize waits for its peers), then freed. After a
 * failure they are aborted instead (a peer may never finalize). */
static void comms_destroy(cuda_backend *cb)
{
    ncclComm_t live[MAX_TP];
    int n = 0;
    for (int i = 0; i < cb->tp; i++)
        if (cb->ranks[i].comm) live[n++] = cb->ranks[i].comm, cb->ranks[i].comm = NULL;
    if (n == 0) return;
    if (atomic_load(&cb->failed)) {
        for (int i = 0; i < n; i++)
            ncclCommAbort(live[i]);
        return;
    }
    ncclGroupStart();
    for (int i = 0; i < n; i++)
        ncclCommFinalize(live[i]);
    ncclGroupEnd();
    for (int i = 0; i < n; i++)
        ncclCommDestroy(live[i]);
}

static void cuda_destroy(s1_backend *base)
{
    cuda_backend *cb = (cuda_backend *)base;
    if (!cb) return;
    team_run(cb, rank_free, NULL, NULL);
    team_stop(cb);
    comms_destroy(cb);
    if (cb->h_meta) cudaFreeHost(cb->h_meta);
    if (cb->h_blocks) cudaFreeHost(cb->h_blocks);
    if (cb->h_logits) cudaFreeHost(cb->h_logits);
    pthread_mutex_destroy(&cb->mu);
    pthread_cond_destroy(&cb->go);
    pthread_cond_destroy(&cb->done);
    free(cb);
}

static const s1_backend_ops cuda_ops = {
    .forward = cuda_forward,
    .copy_block = cuda_copy_block,
    .destroy = cuda_destroy,
};

/* ---- opening */

static int check_shapes(const s1_model_config *c, int tp, s1_err *err)
{
    const int hd = c->head_dim;
    if (tp < 1 || tp > MAX_TP) return s1_errf(err, "cuda: tp must be 1 to %d (got %d)", MAX_TP, tp);
    if (s1_shard_check(c, tp, err)) return s1_err_prefix(err, "cuda");
    if (hd != 16 && hd != 32 && hd != 64 && hd != 128)
        return s1_errf(err, "cuda: head_dim %d is not supported (16, 32, 64 or 128)", hd);
    if (c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads ||
        c->n_heads / c->n_kv_heads > S1K_MAX_GROUP)
        return s1_errf(err, "cuda: %d query heads per kv head; at most %d are supported",
                       c->n_kv_heads ? c->n_heads / c->n_kv_heads : 0, S1K_MAX_GROUP);
    if (c->hidden_size % 8 || (c->intermediate_size / tp) % 8)
        return s1_errf(err,
                       "cuda: hidden size %d and intermediate size per GPU %d must be "
                       "multiples of 8",
                       c->hidden_size, c->intermediate_size / tp);
    return 0;
}

static int find_devices(int tp, s1_err *err)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return s1_errf(err,
                       "cuda: no CUDA device found (cudaGetDeviceCount: %s); check the NVIDIA "
                       "driver and the GPUs with nvidia-smi, or use --backend cpu",
                       e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    if (n < tp)
        return s1_errf(err, "cuda: tp=%d needs %d GPUs but %d are visible (CUDA_VISIBLE_DEVICES)",
                       tp, tp, n);
    return 0;
}

static void init_ranks(cuda_backend *cb)
{
    const s1_model_config *c = &cb->m->cfg;
    const int64_t V = c->vocab_size;
    for (int i = 0; i < cb->tp; i++) {
        cu_rank *r = &cb->ranks[i];
        r->cb = cb;
        r->rank = i;
        r->dev = i;
        r->nh = c->n_heads / cb->tp;
        r->nkv = c->n_kv_heads / cb->tp;
        r->inter = c->intermediate_size / cb->tp;
        /* as s1_shard_init splits the lm_head */
        r->vocab_lo = (int)(V * i / cb->tp);
        r->vocab_n = (int)(V * (i + 1) / cb->tp) - r->vocab_lo;
        r->blocks_cap = 1024;
    }
}

static int init_nccl(cuda_backend *cb, s1_err *err)
{
    if (cb->tp == 1) return 0;
    ncclComm_t comms[MAX_TP];
    int devs[MAX_TP];
    for (int i = 0; i < cb->tp; i++)
        devs[i] = cb->ranks[i].dev;
    if (CUNCCL(0, ncclCommInitAll(comms, cb->tp, devs))) return -1;
    for (int i = 0; i < cb->tp; i++)
        cb->ranks[i].comm = comms[i];
    return 0;
}

/* Team job: one all-reduce while every rank is healthy, so that NCCL sets up
 * its connections (which waits for every peer) at open, not in the first
 * forward, where a failing rank could leave the others waiting in it. */
static int rank_connect(cu_rank *r, void *arg)
{
    (void)arg;
    s1_err *err = &r->err;
    if (!r->comm) return 0;
    return CUNCCL(r->dev, ncclAllReduce(r->y, r->y, 1, ncclFloat, ncclSum, r->comm, r->st)) ||
                   rank_sync(r)
               ? -1
               : 0;
}

/* The KV blocks that fit in kv_mem_fraction of every GPU's free memory. */
static int size_kv(cuda_backend *cb, const s1_backend_cfg *cfg, s1_err *err)
{
    if (cfg->n_blocks > 0) {
        cb->base.n_blocks = cfg->n_blocks;
        return 0;
    }
    const double frac = cfg->kv_mem_fraction > 0 ? cfg->kv_mem_fraction : 0.9;
    long long best = -1;
    for (int i = 0; i < cb->tp; i++) {
        const cu_rank *r = &cb->ranks[i];
        const double per_block = (double)kv_block_bytes(r) * 2 * cb->m->cfg.n_layers;
        long long n = (long long)((double)r->free_bytes * frac / per_block) - 1;
        if (best < 0 || n < best) best = n;
        if (n < 1)
            return s1_errf(err,
                           "cuda: no memory left for the KV cache on GPU %d after the "
                           "weights (%zu MiB free); use more GPUs (tp) or a smaller model",
                           r->dev, r->free_bytes >> 20);
    }
    cb->base.n_blocks = best > 1 << 30 ? 1 << 30 : (int)best;
    return 0;
}

/* Where each metadata array starts: token rows, then the attention plan. */
static void layout_meta(cuda_backend *cb)
{
    const int N = cb->max_tokens;
    const int len[M_END] = {N, N, N, N, N, N, N + 1, 2, cb->max_items};
    cb->meta_off[0] = 0;
    for (int i = 0; i < M_END; i++)
        cb->meta_off[i + 1] = cb->meta_off[i] + len[i];
}

/* Programmatic dependent launch where the GPU has it (sm_90 and newer) and
 * S1_CUDA_PDL=0 does not turn it off. */
static int choose_pdl(s1_err *err)
{
    int major = 0;
    if (CU(0, cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0))) return -1;
    const char *pdl = getenv("S1_CUDA_PDL");
    s1k_set_pdl(major >= 9 && !(pdl && !strcmp(pdl, "0")));
    return 0;
}

static cuda_backend *backend_new(const s1_model *m, const s1_backend_cfg *cfg, int n_sms,
                                 s1_err *err)
{
    cuda_backend *cb = calloc(1, sizeof *cb);
    if (!cb) {
        s1_errf(err, "cuda: out of host memory");
        return NULL;
    }
    const char *no_graphs = getenv("S1_CUDA_NO_GRAPHS");
    cb->m = m;
    cb->tp = cfg->tp > 0 ? cfg->tp : 1;
    cb->hd = m->cfg.head_dim;
    cb->n_sms = n_sms;
    cb->max_tokens = cfg->max_batch_tokens > 0 ? cfg->max_batch_tokens : 512;
    cb->max_pos = m->cfg.max_position > 0 ? m->cfg.max_position : 32768;
    cb->max_items = max_items(cb, cb->max_tokens);
    cb->graphs = !(no_graphs && *no_graphs && strcmp(no_graphs, "0"));
    cb->base.ops = &cuda_ops;
    cb->base.name = "cuda";
    cb->base.block_size = cfg->block_size > 0 ? cfg->block_size : 16;
    cb->base.vocab_size = m->cfg.vocab_size;
    cb->base.n_devices = cb->tp;
    atomic_init(&cb->failed, false);
    pthread_mutex_init(&cb->mu, NULL);
    pthread_cond_init(&cb->go, NULL);
    pthread_cond_init(&cb->done, NULL);
    layout_meta(cb);
    init_ranks(cb);
    return cb;
}

/* The module's entry point (engine/cuda_module.c finds it with dlsym). */
__attribute__((visibility("default"))) const char s1_cuda_module_version[] = S1_VERSION;

__attribute__((visibility("default"))) s1_backend *
s1_cuda_backend_open(const s1_model *m, const s1_backend_cfg *cfg, s1_err *err)
{
    const int tp = cfg->tp > 0 ? cfg->tp : 1;
    int n_sms = 0;
    if (check_shapes(&m->cfg, tp, err) || find_devices(tp, err) ||
        CU(0, cudaDeviceGetAttribute(&n_sms, cudaDevAttrMultiProcessorCount, 0)) || choose_pdl(err))
        return NULL;
    cuda_backend *cb = backend_new(m, cfg, n_sms, err);
    if (!cb) return NULL;
    if (CU(0, cudaHostAlloc((void **)&cb->h_meta, (size_t)cb->meta_off[M_END] * 4,
                            cudaHostAllocPortable)) ||
        grow_host_blocks(cb, 1024, err) || init_nccl(cb, err) || (tp > 1 && team_start(cb, err)) ||
        team_run(cb, rank_load, NULL, err) || team_run(cb, rank_connect, NULL, err) ||
        size_kv(cb, cfg, err) || team_run(cb, rank_alloc_kv, NULL, err)) {
        cuda_destroy(&cb->base);
        return NULL;
    }
    return &cb->base;
}
