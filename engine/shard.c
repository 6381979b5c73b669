#include "shard.h"

#include <stdlib.h>

s1_tensor s1_tensor_rows(const s1_tensor *t, int64_t r0, int64_t n)
{
    s1_tensor v = *t;
    v.data = (const char *)t->data + (size_t)(r0 * t->row_stride) * s1_dtype_size(t->dtype);
    v.rows = n;
    return v;
}

s1_tensor s1_tensor_cols(const s1_tensor *t, int64_t c0, int64_t n)
{
    s1_tensor v = *t;
    v.data = (const char *)t->data + (size_t)c0 * s1_dtype_size(t->dtype);
    v.cols = n;
    return v;
}

int s1_shard_check(const s1_model_config *c, int tp, s1_err *err)
{
    if (tp < 1 || tp > 64) return s1_errf(err, "tensor parallelism %d: use 1, 2, 4 or 8", tp);
    if (c->n_kv_heads % tp)
        return s1_errf(err,
                       "tensor parallelism %d: the model's %d kv heads do not split into %d "
                       "ranks (use a tp that divides %d)",
                       tp, c->n_kv_heads, tp, c->n_kv_heads);
    if (c->n_heads % tp)
        return s1_errf(err,
                       "tensor parallelism %d: the model's %d heads do not split into %d ranks", tp,
                       c->n_heads, tp);
    if (c->intermediate_size % tp)
        return s1_errf(err,
                       "tensor parallelism %d: the model's intermediate size %d does not split "
                       "into %d ranks",
                       tp, c->intermediate_size, tp);
    if (c->vocab_size < tp)
        return s1_errf(err, "tensor parallelism %d: more ranks than the %d vocabulary rows", tp,
                       c->vocab_size);
    return 0;
}

/* Rank r's slice of one layer: output-row splits for q/k/v/gate/up, input
 * column splits for o/down, norms whole. */
static s1_layer shard_layer(const s1_layer *l, const s1_shard *s)
{
    int64_t hd = s->head_dim, r = s->rank;
    int64_t q = s->n_heads * hd, kv = s->n_kv_heads * hd, ff = s->intermediate;
    s1_layer o = *l;
    o.wq = s1_tensor_rows(&l->wq, r * q, q);
    o.bq = s1_tensor_cols(&l->bq, r * q, q);
    o.wk = s1_tensor_rows(&l->wk, r * kv, kv);
    o.bk = s1_tensor_cols(&l->bk, r * kv, kv);
    o.wv = s1_tensor_rows(&l->wv, r * kv, kv);
    o.bv = s1_tensor_cols(&l->bv, r * kv, kv);
    o.wo = s1_tensor_cols(&l->wo, r * q, q);
    o.w_gate = s1_tensor_rows(&l->w_gate, r * ff, ff);
    o.w_up = s1_tensor_rows(&l->w_up, r * ff, ff);
    o.w_down = s1_tensor_cols(&l->w_down, r * ff, ff);
    return o;
}

int s1_shard_init(s1_shard *s, const s1_model *m, int rank, int tp, s1_err *err)
{
    const s1_model_config *c = &m->cfg;
    *s = (s1_shard){0};
    if (s1_shard_check(c, tp, err) < 0) return -1;
    if (rank < 0 || rank >= tp) return s1_errf(err, "shard: rank %d is not in [0, %d)", rank, tp);
    s->rank = rank;
    s->tp = tp;
    s->n_heads = c->n_heads / tp;
    s->n_kv_heads = c->n_kv_heads / tp;
    s->head_dim = c->head_dim;
    s->hidden = c->hidden_size;
    s->intermediate = c->intermediate_size / tp;
    s->vocab_begin = (int)((int64_t)c->vocab_size * rank / tp);
    s->vocab_end = (int)((int64_t)c->vocab_size * (rank + 1) / tp);
    s->w = m->w;
    s->w.layers = calloc((size_t)c->n_layers, sizeof *s->w.layers);
    if (!s->w.layers) return s1_errf(err, "shard: out of memory");
    for (int i = 0; i < c->n_layers; i++)
        s->w.layers[i] = shard_layer(&m->w.layers[i], s);
    s->w.lm_head = s1_tensor_rows(&m->w.lm_head, s->vocab_begin, s->vocab_end - s->vocab_begin);
    return 0;
}

void s1_shard_free(s1_shard *s)
{
    free(s->w.layers);
    s->w.layers = NULL;
}
