/* The CPU backend at TP=1: one rank on the whole model. With cfg->tp > 1,
 * s1_cpu_backend_open hands over to the tensor-parallel backend (tp.c). */
#include <stdlib.h>

#include "backend.h"
#include "log.h"
#include "rank.h"
#include "tp.h"

typedef struct {
    s1_backend base;
    const s1_model *m;
    s1_shard shard;    /* the whole model: rank 0 of 1 */
    s1_cpu_rank *rank; /* owned */
} cpu_backend;

static int cpu_forward(s1_backend *base, const s1_batch *b, s1_err *err)
{
    cpu_backend *c = (cpu_backend *)base;
    if (s1_cpu_batch_check(b, base->vocab_size, base->n_blocks, base->block_size, err) < 0 ||
        s1_cpu_rank_reserve(c->rank, b, err) < 0)
        return -1;
    s1_cpu_rank_forward(c->rank, b, NULL, NULL);
    return 0;
}

static int cpu_copy_block(s1_backend *base, int32_t src, int32_t dst, s1_err *err)
{
    cpu_backend *c = (cpu_backend *)base;
    if (src < 0 || dst < 0 || src >= base->n_blocks || dst >= base->n_blocks)
        return s1_errf(err, "cpu: copy_block %d -> %d is outside the cache's %d blocks", src, dst,
                       base->n_blocks);
    s1_cpu_rank_copy_block(c->rank, src, dst);
    return 0;
}

static void cpu_destroy(s1_backend *base)
{
    cpu_backend *c = (cpu_backend *)base;
    s1_cpu_rank_free(c->rank);
    s1_shard_free(&c->shard);
    free(c);
}

static const s1_backend_ops cpu_ops = {
    .forward = cpu_forward,
    .copy_block = cpu_copy_block,
    .destroy = cpu_destroy,
};

s1_backend *s1_cpu_backend_open(const s1_model *m, const s1_backend_cfg *cfg, s1_err *err)
{
    if (cfg->tp > 1) return s1_tp_backend_open(m, cfg, err);
    s1_cpu_plan plan;
    if (s1_cpu_plan_make(m, cfg, &plan, err) < 0) return NULL;
    cpu_backend *c = calloc(1, sizeof *c);
    if (!c) {
        s1_errf(err, "cpu: out of memory");
        return NULL;
    }
    c->base = (s1_backend){.ops = &cpu_ops,
                           .name = "cpu",
                           .n_blocks = plan.n_blocks,
                           .block_size = plan.block_size,
                           .vocab_size = m->cfg.vocab_size};
    c->m = m;
    if (s1_shard_init(&c->shard, m, 0, 1, err) < 0 ||
        !(c->rank = s1_cpu_rank_new(m, &c->shard, &plan, plan.threads, err))) {
        cpu_destroy(&c->base);
        return NULL;
    }
    log_info("cpu backend: %d threads, %s kernels, %d KV blocks of %d tokens (%.0f MiB, f32)",
             plan.threads, plan.kernels->name, plan.n_blocks, plan.block_size,
             s1_cpu_plan_kv_bytes(&m->cfg, &plan) / (1 << 20));
    return &c->base;
}
