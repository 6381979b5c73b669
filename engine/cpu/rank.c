#include "rank.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "choose.h"
#include "ops.h"
#include "place.h"
#include "pool.h"
#include "profile.h"

/* A layer's small weights as f32: norms, and this rank's biases. */
typedef struct {
    float *attn_norm, *mlp_norm; /* [hidden] */
    float *bq, *bk, *bv;         /* [heads*hd], [kv*hd], [kv*hd] */
} layer_f32;

/* Activations of one forward, sized by s1_cpu_rank_reserve. */
typedef struct {
    float *x;         /* [n, hidden] the residual stream */
    float *xn;        /* [n, hidden] normed */
    float *part;      /* [n, hidden] output of o or down, before the all-reduce */
    float *q, *att;   /* [n, heads*hd] */
    float *k, *v;     /* [n, kv*hd] */
    float *g, *u;     /* [n, inter] */
    float *cos, *sin; /* [n, hd/2] */
    float *xo;        /* [n_out, hidden] final-normed rows asked for */
    float *scores;    /* [threads, group, positions] */
    void *xbuf;       /* [n, max(hidden, heads*hd, inter)] prepared matmul input */
} scratch;

struct s1_cpu_rank {
    const s1_model *m;
    const s1_shard *s;
    const s1_cpu_kernels *kern;
    s1_pool *pool; /* owned */
    int block_size, n_blocks;
    size_t block_floats; /* one layer's block of one cache: kv*bs*hd */
    float *kc, *vc;      /* K and V caches, owned */
    layer_f32 *lw;       /* [n_layers], owned; arrays in small */
    float *final_norm;   /* [hidden], in small */
    float *small;        /* owned */
    s1_layer *layers;    /* [n_layers], owned: this rank's matmul weights, in placed */
    s1_tensor lm_head;   /* this rank's vocabulary rows, in placed */
    void *placed;        /* owned, placed_bytes long (engine/cpu/place.h) */
    size_t placed_bytes;
    scratch sc;  /* carved from arena */
    void *arena; /* owned */
    int cap_tokens, cap_out, cap_pos;
};

static int cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    return 1;
}

static double kv_default_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return (double)(1u << 30);
    return S1_CPU_KV_DEFAULT_SHARE * (double)pages * (double)page;
}

double s1_cpu_plan_kv_bytes(const s1_model_config *c, const s1_cpu_plan *plan)
{
    return 2.0 * sizeof(float) * c->n_layers * c->n_kv_heads * c->head_dim * plan->block_size *
           plan->n_blocks;
}

int s1_cpu_plan_make(const s1_model *m, const s1_backend_cfg *cfg, s1_cpu_plan *plan, s1_err *err)
{
    const s1_model_config *c = &m->cfg;
    if (cfg->threads < 0 || cfg->block_size < 0 || cfg->n_blocks < 0)
        return s1_errf(err, "cpu: threads, block_size and n_blocks must not be negative");
    plan->threads = cfg->threads ? cfg->threads : cores();
    if (!(plan->kernels = s1_cpu_kernels_choose(m, err))) return -1;
    plan->block_size = cfg->block_size ? cfg->block_size : S1_CPU_DEFAULT_BLOCK_SIZE;
    plan->n_blocks = cfg->n_blocks;
    if (!plan->n_blocks) {
        plan->n_blocks = 1;
        double nb = kv_default_bytes() / s1_cpu_plan_kv_bytes(c, plan);
        /* no more than S1_CPU_KV_MAX_CONTEXTS full contexts (small models) */
        double cap =
            S1_CPU_KV_MAX_CONTEXTS * ((c->max_position + plan->block_size - 1) / plan->block_size);
        nb = c->max_position > 0 && nb > cap ? cap : nb;
        plan->n_blocks = nb < 1 ? 1 : nb > (1 << 30) ? (1 << 30) : (int)nb;
    }
    plan->max_batch_tokens = cfg->max_batch_tokens > 0 ? cfg->max_batch_tokens : 1;
    return 0;
}

static int check_tables(const s1_batch *b, int n_blocks, s1_err *err)
{
    if (b->n_seqs < 0 || (b->n_seqs && !b->tables))
        return s1_errf(err, "batch: %d sequences without block tables", b->n_seqs);
    for (int s = 0; s < b->n_seqs; s++) {
        const s1_block_table *t = &b->tables[s];
        if (t->n_blocks < 0 || (t->n_blocks && !t->blocks))
            return s1_errf(err, "batch: sequence %d has a bad block table", s);
        for (int i = 0; i < t->n_blocks; i++)
            if (t->blocks[i] < 0 || t->blocks[i] >= n_blocks)
                return s1_errf(err, "batch: sequence %d block %d is %d, outside the cache's %d", s,
                               i, t->blocks[i], n_blocks);
    }
    return 0;
}

int s1_cpu_batch_check(const s1_batch *b, int vocab, int n_blocks, int block_size, s1_err *err)
{
    if (b->n_tokens < 0 || b->n_out < 0 || b->n_out > b->n_tokens)
        return s1_errf(err, "batch: %d tokens with %d rows of logits asked for", b->n_tokens,
                       b->n_out);
    if (b->n_tokens && (!b->tokens || !b->pos || !b->seq))
        return s1_errf(err, "batch: tokens, pos and seq must be given");
    if (b->n_out && (!b->out_rows || !b->logits))
        return s1_errf(err, "batch: out_rows and logits must be given");
    if (check_tables(b, n_blocks, err) < 0) return -1;
    for (int i = 0; i < b->n_tokens; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= vocab)
            return s1_errf(err, "batch: token %d is id %d, outside the vocabulary of %d", i,
                           b->tokens[i], vocab);
        if (b->seq[i] < 0 || b->seq[i] >= b->n_seqs)
            return s1_errf(err, "batch: token %d is of sequence %d, not in [0, %d)", i, b->seq[i],
                           b->n_seqs);
        if (b->pos[i] < 0 || b->pos[i] / block_size >= b->tables[b->seq[i]].n_blocks)
            return s1_errf(err, "batch: token %d at position %d is outside its %d blocks", i,
                           b->pos[i], b->tables[b->seq[i]].n_blocks);
    }
    for (int j = 0; j < b->n_out; j++)
        if (b->out_rows[j] < 0 || b->out_rows[j] >= b->n_tokens)
            return s1_errf(err, "batch: out_rows[%d] = %d is not a token row", j, b->out_rows[j]);
    return 0;
}

/* Converts the norms and this rank's biases to f32 once, at open. */
static int load_small(s1_cpu_rank *r, s1_err *err)
{
    const s1_shard *s = r->s;
    int L = r->m->cfg.n_layers;
    size_t q = (size_t)s->n_heads * s->head_dim, kv = (size_t)s->n_kv_heads * s->head_dim;
    size_t per = 2 * (size_t)s->hidden + q + 2 * kv;
    r->small = malloc(((size_t)L * per + (size_t)s->hidden) * sizeof(float));
    r->lw = calloc((size_t)L, sizeof *r->lw);
    if (!r->small || !r->lw) return s1_errf(err, "cpu: out of memory for the norms");
    float *p = r->small;
    for (int i = 0; i < L; i++) {
        const s1_layer *l = &s->w.layers[i];
        layer_f32 *o = &r->lw[i];
        o->attn_norm = p, p += s->hidden;
        o->mlp_norm = p, p += s->hidden;
        o->bq = p, p += q;
        o->bk = p, p += kv;
        o->bv = p, p += kv;
        s1_cpu_tensor_f32(o->attn_norm, &l->attn_norm);
        s1_cpu_tensor_f32(o->mlp_norm, &l->mlp_norm);
        s1_cpu_tensor_f32(o->bq, &l->bq);
        s1_cpu_tensor_f32(o->bk, &l->bk);
        s1_cpu_tensor_f32(o->bv, &l->bv);
    }
    r->final_norm = p;
    s1_cpu_tensor_f32(r->final_norm, &s->w.final_norm);
    return 0;
}

/* Copies (or, with dst NULL, only sizes) this rank's matmul weights into
 * one block of its own memory; returns the bytes. Why a copy:
 * engine/cpu/place.h. */
static size_t place_all(s1_cpu_rank *r, char *dst)
{
    size_t off = 0;
    for (int l = 0; l < r->m->cfg.n_layers; l++) {
        s1_layer *w = &r->layers[l];
        s1_tensor *t[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
        for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
            if (dst) *t[i] = s1_cpu_place(t[i], dst + off);
            off += s1_cpu_placed_bytes(t[i]);
        }
    }
    if (dst) r->lm_head = s1_cpu_place(&r->lm_head, dst + off);
    return off + s1_cpu_placed_bytes(&r->lm_head);
}

/* This rank's matmul weights in memory of its own; norms and biases are in
 * small, and the embedding is read from the model a row per token. */
static int place_weights(s1_cpu_rank *r, s1_err *err)
{
    int L = r->m->cfg.n_layers;
    r->layers = malloc((size_t)L * sizeof *r->layers);
    if (!r->layers) return s1_errf(err, "cpu: out of memory for the layers");
    memcpy(r->layers, r->s->w.layers, (size_t)L * sizeof *r->layers);
    r->lm_head = r->s->w.lm_head;
    r->placed_bytes = place_all(r, NULL);
    r->placed = s1_cpu_place_alloc(r->placed_bytes, err);
    if (!r->placed) return -1;
    place_all(r, r->placed);
    return 0;
}

static int alloc_kv(s1_cpu_rank *r, s1_err *err)
{
    const s1_shard *s = r->s;
    r->block_floats = (size_t)s->n_kv_heads * r->block_size * s->head_dim;
    double bytes = 4.0 * r->block_floats * r->m->cfg.n_layers * r->n_blocks;
    if (bytes > (double)(SIZE_MAX / 4))
        return s1_errf(err, "cpu: a KV cache of %d blocks is too large", r->n_blocks);
    size_t n = r->block_floats * (size_t)r->m->cfg.n_layers * (size_t)r->n_blocks;
    /* calloc of a large size maps zero pages: untouched blocks cost nothing. */
    r->kc = calloc(n, sizeof(float));
    r->vc = calloc(n, sizeof(float));
    if (!r->kc || !r->vc)
        return s1_errf(err,
                       "cpu: out of memory for a KV cache of %d blocks (%.0f MiB); lower n_blocks",
                       r->n_blocks, 2 * bytes / (1 << 20));
    return 0;
}

/* Rounds a count of floats up to a cache line, so every buffer is aligned. */
static size_t line(size_t floats)
{
    return (floats + 15) & ~(size_t)15;
}

/* Carves every buffer from one arena (base NULL: only sizes it). */
static size_t carve(s1_cpu_rank *r, float *base, int n, int n_out, int n_pos)
{
    const s1_shard *s = r->s;
    size_t d = (size_t)s->hidden, q = (size_t)s->n_heads * s->head_dim;
    size_t kv = (size_t)s->n_kv_heads * s->head_dim, ff = (size_t)s->intermediate;
    size_t widest = d > q ? d : q;
    widest = widest > ff ? widest : ff;
    size_t group = (size_t)(s->n_heads / s->n_kv_heads);
    struct {
        float **p;
        size_t n;
    } parts[] = {
        {&r->sc.x, n * d},
        {&r->sc.xn, n * d},
        {&r->sc.part, n * d},
        {&r->sc.q, n * q},
        {&r->sc.att, n * q},
        {&r->sc.k, n * kv},
        {&r->sc.v, n * kv},
        {&r->sc.g, n * ff},
        {&r->sc.u, n * ff},
        {&r->sc.cos, n * (size_t)(s->head_dim / 2)},
        {&r->sc.sin, n * (size_t)(s->head_dim / 2)},
        {&r->sc.xo, n_out * d},
        {&r->sc.scores, (size_t)s1_pool_size(r->pool) * group * (size_t)n_pos},
        {(float **)&r->sc.xbuf, n * widest},
    };
    size_t off = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        if (base) *parts[i].p = base + off;
        off += line(parts[i].n);
    }
    return off;
}

/* Grows the scratch to at least n tokens, n_out logits rows and n_pos
 * positions of context. Positions grow by doubling: decoding reaches a new
 * position every step, and an arena reallocated (and its pages faulted in)
 * per step cost a long single sequence more than its attention. */
static int reserve(s1_cpu_rank *r, int n, int n_out, int n_pos, s1_err *err)
{
    if (n <= r->cap_tokens && n_out <= r->cap_out && n_pos <= r->cap_pos) return 0;
    n = n > r->cap_tokens ? n : r->cap_tokens;
    n_out = n_out > r->cap_out ? n_out : r->cap_out;
    if (n_pos > r->cap_pos) n_pos = n_pos > 2 * r->cap_pos ? n_pos : 2 * r->cap_pos;
    n_pos = n_pos > r->cap_pos ? n_pos : r->cap_pos;
    size_t floats = carve(r, NULL, n, n_out, n_pos);
    float *arena = aligned_alloc(64, floats * sizeof(float));
    if (!arena) return s1_errf(err, "cpu: out of memory for the activations of %d tokens", n);
    free(r->arena);
    r->arena = arena;
    carve(r, arena, n, n_out, n_pos);
    r->cap_tokens = n;
    r->cap_out = n_out;
    r->cap_pos = n_pos;
    return 0;
}

int s1_cpu_rank_reserve(s1_cpu_rank *r, const s1_batch *b, s1_err *err)
{
    int n_pos = 1;
    for (int i = 0; i < b->n_tokens; i++)
        n_pos = b->pos[i] + 1 > n_pos ? b->pos[i] + 1 : n_pos;
    return reserve(r, b->n_tokens, b->n_out, n_pos, err);
}

s1_cpu_rank *s1_cpu_rank_new(const s1_model *m, const s1_shard *s, const s1_cpu_plan *plan,
                             int threads, s1_err *err)
{
    s1_cpu_rank *r = calloc(1, sizeof *r);
    if (!r) {
        s1_errf(err, "cpu: out of memory");
        return NULL;
    }
    r->m = m;
    r->s = s;
    r->kern = plan->kernels;
    r->block_size = plan->block_size;
    r->n_blocks = plan->n_blocks;
    if (load_small(r, err) < 0 || place_weights(r, err) < 0 || alloc_kv(r, err) < 0 ||
        !(r->pool = s1_pool_new(threads, err)) ||
        reserve(r, plan->max_batch_tokens, plan->max_batch_tokens, plan->block_size, err) < 0) {
        s1_cpu_rank_free(r);
        return NULL;
    }
    return r;
}

void s1_cpu_rank_free(s1_cpu_rank *r)
{
    if (!r) return;
    s1_pool_free(r->pool);
    free(r->kc);
    free(r->vc);
    free(r->lw);
    free(r->small);
    free(r->layers);
    s1_cpu_place_free(r->placed, r->placed_bytes);
    free(r->arena);
    free(r);
}

/* Kv head h's part of block `block` of layer l: bs*hd floats. */
static float *kv_head(const s1_cpu_rank *r, float *cache, int l, int32_t block, int h)
{
    size_t b = (size_t)l * r->n_blocks + (size_t)block;
    return cache + b * r->block_floats + (size_t)h * r->block_size * r->s->head_dim;
}

/* For every token, K into its slot's column of the block's kt[hd][bs], V
 * into its row of v[bs][hd]. */
static void kv_write(s1_cpu_rank *r, const s1_batch *b, int l)
{
    int kvh = r->s->n_kv_heads, hd = r->s->head_dim, bs = r->block_size;
    for (int i = 0; i < b->n_tokens; i++) {
        int32_t block = b->tables[b->seq[i]].blocks[b->pos[i] / bs];
        int slot = b->pos[i] % bs;
        for (int h = 0; h < kvh; h++) {
            const float *k = r->sc.k + ((size_t)i * kvh + h) * hd;
            float *kt = kv_head(r, r->kc, l, block, h);
            for (int d = 0; d < hd; d++)
                kt[d * bs + slot] = k[d];
            memcpy(kv_head(r, r->vc, l, block, h) + (size_t)slot * hd,
                   r->sc.v + ((size_t)i * kvh + h) * hd, hd * sizeof(float));
        }
    }
}

/* Asks for a kv head's part of the next block while this one is computed:
 * blocks are a few KB apart, too short a stream for the hardware prefetcher
 * to find on its own. */
static void prefetch(const s1_cpu_rank *r, const float *part)
{
    size_t bytes = (size_t)r->block_size * r->s->head_dim * sizeof(float);
    for (size_t off = 0; off < bytes; off += 64)
        __builtin_prefetch((const char *)part + off);
}

/* att[i, heads of kv head h, :] = softmax(q k^T / sqrt(hd)) v over positions
 * 0..pos[i] of token i's sequence, block by block; the group's query heads
 * share each K/V read. scores: [group, pos[i]+1]. */
static void attend_one(s1_cpu_rank *r, const s1_batch *b, int l, int i, int h, float *scores)
{
    const s1_shard *s = r->s;
    int hd = s->head_dim, G = s->n_heads / s->n_kv_heads, bs = r->block_size;
    int P = b->pos[i] + 1;
    const int32_t *blocks = b->tables[b->seq[i]].blocks;
    const float *q = r->sc.q + ((size_t)i * s->n_heads + (size_t)h * G) * hd;
    float *out = r->sc.att + ((size_t)i * s->n_heads + (size_t)h * G) * hd;
    for (int p = 0; p < P; p += bs) {
        if (p + bs < P) prefetch(r, kv_head(r, r->kc, l, blocks[p / bs + 1], h));
        r->kern->qk(scores + p, P, q, G, hd, kv_head(r, r->kc, l, blocks[p / bs], h), bs,
                    P - p < bs ? P - p : bs);
    }
    for (int g = 0; g < G; g++)
        r->kern->softmax(scores + g * P, P, 1.0f / sqrtf((float)hd));
    memset(out, 0, (size_t)G * hd * sizeof(float));
    for (int p = 0; p < P; p += bs) {
        if (p + bs < P) prefetch(r, kv_head(r, r->vc, l, blocks[p / bs + 1], h));
        const float *v = kv_head(r, r->vc, l, blocks[p / bs], h);
        for (int g = 0; g < G; g++)
            r->kern->pv(out + g * hd, scores + g * P + p, v, hd, P - p < bs ? P - p : bs);
    }
}

typedef struct {
    s1_cpu_rank *r;
    const s1_batch *b;
    int layer;
    atomic_int next; /* the next (token, kv head) item to take */
} attend_job;

/* Items vary in length (each token its own context): threads take them one
 * at a time. */
static void attend_part(void *ctx, int tid, int n_threads)
{
    (void)n_threads;
    attend_job *j = ctx;
    s1_cpu_rank *r = j->r;
    int kvh = r->s->n_kv_heads, items = j->b->n_tokens * kvh;
    float *scores = r->sc.scores + (size_t)tid * (r->s->n_heads / kvh) * r->cap_pos;
    for (int it; (it = atomic_fetch_add(&j->next, 1)) < items;)
        attend_one(r, j->b, j->layer, it / kvh, it % kvh, scores);
}

/* x += o(attention(rope(q), rope(k), v)) with q, k, v = norm(x) · w + b;
 * o's partial sums all-reduced over the ranks. */
static void attention_block(s1_cpu_rank *r, const s1_batch *b, int l, s1_cpu_reduce_fn *reduce,
                            void *ctx)
{
    const s1_shard *s = r->s;
    const s1_layer *w = &r->layers[l];
    const layer_f32 *lf = &r->lw[l];
    scratch *sc = &r->sc;
    int n = b->n_tokens, d = s->hidden, hd = s->head_dim;
    s1_cpu_rmsnorm(sc->xn, sc->x, lf->attn_norm, n, d, r->m->cfg.rms_norm_eps);
    const s1_cpu_proj qkv[] = {{sc->q, w->wq.rows, &w->wq, lf->bq},
                               {sc->k, w->wk.rows, &w->wk, lf->bk},
                               {sc->v, w->wv.rows, &w->wv, lf->bv}};
    s1_cpu_matmul(r->pool, r->kern, sc->xn, n, sc->xbuf, qkv, 3);
    s1_cpu_rope(sc->q, n, s->n_heads, hd, sc->cos, sc->sin);
    s1_cpu_rope(sc->k, n, s->n_kv_heads, hd, sc->cos, sc->sin);
    double t0 = s1_cpu_profile_start();
    kv_write(r, b, l);
    attend_job j = {.r = r, .b = b, .layer = l};
    atomic_init(&j.next, 0);
    s1_pool_run(r->pool, attend_part, &j);
    s1_cpu_profile_stop(S1_CPU_OP_ATTENTION, t0);
    const s1_cpu_proj o = {sc->part, d, &w->wo, NULL};
    s1_cpu_matmul(r->pool, r->kern, sc->att, n, sc->xbuf, &o, 1);
    const float *sum = reduce ? reduce(ctx, s->rank, sc->part, (size_t)n * d) : sc->part;
    s1_cpu_add(sc->x, sum, (size_t)n * d);
}

/* x += down(silu(gate(norm(x))) * up(norm(x))); down's partial sums
 * all-reduced over the ranks. */
static void mlp_block(s1_cpu_rank *r, const s1_batch *b, int l, s1_cpu_reduce_fn *reduce, void *ctx)
{
    const s1_shard *s = r->s;
    const s1_layer *w = &r->layers[l];
    scratch *sc = &r->sc;
    int n = b->n_tokens, d = s->hidden, ff = s->intermediate;
    s1_cpu_rmsnorm(sc->xn, sc->x, r->lw[l].mlp_norm, n, d, r->m->cfg.rms_norm_eps);
    const s1_cpu_proj gate_up[] = {{sc->g, ff, &w->w_gate, NULL}, {sc->u, ff, &w->w_up, NULL}};
    s1_cpu_matmul(r->pool, r->kern, sc->xn, n, sc->xbuf, gate_up, 2);
    s1_cpu_swiglu(sc->g, sc->u, (size_t)n * ff);
    const s1_cpu_proj down = {sc->part, d, &w->w_down, NULL};
    s1_cpu_matmul(r->pool, r->kern, sc->g, n, sc->xbuf, &down, 1);
    const float *sum = reduce ? reduce(ctx, s->rank, sc->part, (size_t)n * d) : sc->part;
    s1_cpu_add(sc->x, sum, (size_t)n * d);
}

/* logits[j, vocab slice] = norm(x[out_rows[j]]) · lm_head^T */
static void lm_head(s1_cpu_rank *r, const s1_batch *b)
{
    const s1_shard *s = r->s;
    int d = s->hidden;
    for (int j = 0; j < b->n_out; j++)
        s1_cpu_rmsnorm(r->sc.xo + (size_t)j * d, r->sc.x + (size_t)b->out_rows[j] * d,
                       r->final_norm, 1, d, r->m->cfg.rms_norm_eps);
    const s1_cpu_proj head = {b->logits + s->vocab_begin, r->m->cfg.vocab_size, &r->lm_head, NULL};
    s1_cpu_matmul(r->pool, r->kern, r->sc.xo, b->n_out, r->sc.xbuf, &head, 1);
}

void s1_cpu_rank_forward(s1_cpu_rank *r, const s1_batch *b, s1_cpu_reduce_fn *reduce, void *ctx)
{
    const s1_model_config *c = &r->m->cfg;
    int n = b->n_tokens;
    if (!n) return;
    double t0 = s1_cpu_profile_start();
    s1_cpu_embed(r->sc.x, &r->s->w.embed, b->tokens, n);
    s1_cpu_rope_tables(r->sc.cos, r->sc.sin, b->pos, n, r->s->head_dim, c->rope_theta);
    for (int l = 0; l < c->n_layers; l++) {
        attention_block(r, b, l, reduce, ctx);
        mlp_block(r, b, l, reduce, ctx);
    }
    if (b->n_out) lm_head(r, b);
    s1_cpu_profile_stop(S1_CPU_OP_FORWARD, t0);
}

void s1_cpu_rank_copy_block(s1_cpu_rank *r, int32_t src, int32_t dst)
{
    if (src == dst) return;
    for (int l = 0; l < r->m->cfg.n_layers; l++) {
        memcpy(kv_head(r, r->kc, l, dst, 0), kv_head(r, r->kc, l, src, 0),
               r->block_floats * sizeof(float));
        memcpy(kv_head(r, r->vc, l, dst, 0), kv_head(r, r->vc, l, src, 0),
               r->block_floats * sizeof(float));
    }
}
