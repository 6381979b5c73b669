#include "tp.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ops.h"
#include "cpu/rank.h"
#include "log.h"

typedef struct tp_backend tp_backend;

typedef struct {
    tp_backend *t;
    int rank;
    s1_shard shard;
    s1_cpu_rank *cpu; /* owned */
    float *sum;       /* [sum_cap] this rank's all-reduced buffer, owned */
    pthread_t thread;
    bool started;
} tp_rank;

struct tp_backend {
    s1_backend base;
    int tp;
    tp_rank *ranks;      /* [tp], owned */
    const float **parts; /* [tp] each rank's partial sums, published for the all-reduce */
    size_t sum_cap;
    pthread_barrier_t barrier;
    /* Starting a forward on ranks 1..tp-1 (rank 0 is the caller). */
    pthread_mutex_t lock;
    pthread_cond_t go_cv, done_cv;
    unsigned gen;
    int done;
    bool stop;
    const s1_batch *batch;
};

/* Every rank adds the ranks' parts in rank order, so all ranks hold the same
 * bits afterwards; the second barrier keeps a part alive until all have read
 * it. */
static const float *allreduce(void *ctx, int rank, const float *part, size_t n)
{
    tp_backend *t = ctx;
    t->parts[rank] = part;
    pthread_barrier_wait(&t->barrier);
    float *sum = t->ranks[rank].sum;
    memcpy(sum, t->parts[0], n * sizeof(float));
    for (int r = 1; r < t->tp; r++)
        s1_cpu_add(sum, t->parts[r], n);
    pthread_barrier_wait(&t->barrier);
    return sum;
}

/* Ranks 1..tp-1: wait for a forward, run it on this rank, report done. */
static void *rank_main(void *arg)
{
    tp_rank *rk = arg;
    tp_backend *t = rk->t;
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&t->lock);
        while (t->gen == seen && !t->stop)
            pthread_cond_wait(&t->go_cv, &t->lock);
        bool stop = t->stop;
        seen = t->gen;
        pthread_mutex_unlock(&t->lock);
        if (stop) return NULL;
        s1_cpu_rank_forward(rk->cpu, t->batch, allreduce, t);
        pthread_mutex_lock(&t->lock);
        if (++t->done == t->tp - 1) pthread_cond_signal(&t->done_cv);
        pthread_mutex_unlock(&t->lock);
    }
}

/* Sizes every rank's scratch and all-reduce buffer before any rank starts,
 * so that a forward, once started, cannot fail halfway. */
static int tp_reserve(tp_backend *t, const s1_batch *b, s1_err *err)
{
    size_t need = (size_t)b->n_tokens * t->ranks[0].shard.hidden;
    for (int r = 0; r < t->tp; r++)
        if (s1_cpu_rank_reserve(t->ranks[r].cpu, b, err) < 0) return -1;
    if (need <= t->sum_cap) return 0;
    for (int r = 0; r < t->tp; r++) {
        float *p = realloc(t->ranks[r].sum, need * sizeof(float));
        if (!p)
            return s1_errf(err, "tp: out of memory for the all-reduce of %d tokens", b->n_tokens);
        t->ranks[r].sum = p;
    }
    t->sum_cap = need;
    return 0;
}

static int tp_forward(s1_backend *base, const s1_batch *b, s1_err *err)
{
    tp_backend *t = (tp_backend *)base;
    if (s1_cpu_batch_check(b, base->vocab_size, base->n_blocks, base->block_size, err) < 0 ||
        tp_reserve(t, b, err) < 0)
        return -1;
    pthread_mutex_lock(&t->lock);
    t->batch = b;
    t->done = 0;
    t->gen++;
    pthread_cond_broadcast(&t->go_cv);
    pthread_mutex_unlock(&t->lock);
    s1_cpu_rank_forward(t->ranks[0].cpu, b, allreduce, t);
    pthread_mutex_lock(&t->lock);
    while (t->done < t->tp - 1)
        pthread_cond_wait(&t->done_cv, &t->lock);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

static int tp_copy_block(s1_backend *base, int32_t src, int32_t dst, s1_err *err)
{
    tp_backend *t = (tp_backend *)base;
    if (src < 0 || dst < 0 || src >= base->n_blocks || dst >= base->n_blocks)
        return s1_errf(err, "cpu: copy_block %d -> %d is outside the cache's %d blocks", src, dst,
                       base->n_blocks);
    for (int r = 0; r < t->tp; r++)
        s1_cpu_rank_copy_block(t->ranks[r].cpu, src, dst);
    return 0;
}

static void tp_destroy(s1_backend *base)
{
    tp_backend *t = (tp_backend *)base;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_broadcast(&t->go_cv);
    pthread_mutex_unlock(&t->lock);
    for (int r = 0; r < t->tp && t->ranks; r++) {
        tp_rank *rk = &t->ranks[r];
        if (rk->started) pthread_join(rk->thread, NULL);
        s1_cpu_rank_free(rk->cpu);
        s1_shard_free(&rk->shard);
        free(rk->sum);
    }
    free(t->ranks);
    free(t->parts);
    pthread_barrier_destroy(&t->barrier);
    pthread_cond_destroy(&t->go_cv);
    pthread_cond_destroy(&t->done_cv);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static const s1_backend_ops tp_ops = {
    .forward = tp_forward,
    .copy_block = tp_copy_block,
    .destroy = tp_destroy,
};

/* Builds rank r: its shard, its CPU rank, and (r > 0) its thread. */
static int open_rank(tp_backend *t, const s1_model *m, const s1_cpu_plan *plan, int r, s1_err *err)
{
    tp_rank *rk = &t->ranks[r];
    rk->t = t;
    rk->rank = r;
    if (s1_shard_init(&rk->shard, m, r, t->tp, err) < 0) return -1;
    int threads = plan->threads / t->tp > 1 ? plan->threads / t->tp : 1;
    if (!(rk->cpu = s1_cpu_rank_new(m, &rk->shard, plan, threads, err))) return -1;
    if (r == 0) return 0;
    int rc = pthread_create(&rk->thread, NULL, rank_main, rk);
    if (rc) return s1_errf(err, "tp: cannot start the thread of rank %d: %s", r, strerror(rc));
    rk->started = true;
    return 0;
}

s1_backend *s1_tp_backend_open(const s1_model *m, const s1_backend_cfg *cfg, s1_err *err)
{
    s1_cpu_plan plan;
    if (s1_shard_check(&m->cfg, cfg->tp, err) < 0 || s1_cpu_plan_make(m, cfg, &plan, err) < 0)
        return NULL;
    tp_backend *t = calloc(1, sizeof *t);
    if (!t) {
        s1_errf(err, "tp: out of memory");
        return NULL;
    }
    t->base = (s1_backend){.ops = &tp_ops,
                           .name = "cpu",
                           .n_blocks = plan.n_blocks,
                           .block_size = plan.block_size,
                           .vocab_size = m->cfg.vocab_size};
    t->tp = cfg->tp;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->go_cv, NULL);
    pthread_cond_init(&t->done_cv, NULL);
    pthread_barrier_init(&t->barrier, NULL, (unsigned)t->tp);
    t->ranks = calloc((size_t)t->tp, sizeof *t->ranks);
    t->parts = calloc((size_t)t->tp, sizeof *t->parts);
    if (!t->ranks || !t->parts) {
        s1_errf(err, "tp: out of memory");
        tp_destroy(&t->base);
        return NULL;
    }
    for (int r = 0; r < t->tp; r++)
        if (open_rank(t, m, &plan, r, err) < 0) {
            tp_destroy(&t->base);
            return NULL;
        }
    log_info("cpu backend: tensor parallel over %d ranks, %d threads, %s kernels, %d KV blocks of "
             "%d tokens (%.0f MiB, f32)",
             t->tp, plan.threads, plan.kernels->name, plan.n_blocks, plan.block_size,
             s1_cpu_plan_kv_bytes(&m->cfg, &plan) / (1 << 20));
    return &t->base;
}
