/* Tensor-parallel shards (engine/shard.h): every rank's views point at the
 * right rows or columns of the weights, together cover them once, and a
 * model that does not split is refused with the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shard.h"

enum { HIDDEN = 16, HEADS = 4, KV = 2, HD = 4, INTER = 24, VOCAB = 10 };

static uint16_t storage[1 << 14];

/* A weight at element offset `at` of storage. */
static s1_tensor t2(size_t at, int64_t rows, int64_t cols)
{
    return (s1_tensor){.data = storage + at,
                       .dtype = S1_DTYPE_BF16,
                       .rows = rows,
                       .cols = cols,
                       .row_stride = cols};
}

/* A one-layer model whose tensors are views of storage (no data needed). */
static void make_model(s1_model *m, s1_layer *l, int kv, int inter)
{
    memset(m, 0, sizeof *m);
    m->cfg = (s1_model_config){.vocab_size = VOCAB,
                               .hidden_size = HIDDEN,
                               .intermediate_size = inter,
                               .n_layers = 1,
                               .n_heads = HEADS,
                               .n_kv_heads = kv,
                               .head_dim = HD};
    *l = (s1_layer){.attn_norm = t2(0, 1, HIDDEN),
                    .wq = t2(100, HEADS * HD, HIDDEN),
                    .bq = t2(1000, 1, HEADS * HD),
                    .wk = t2(2000, kv * HD, HIDDEN),
                    .bk = t2(3000, 1, kv * HD),
                    .wv = t2(4000, kv * HD, HIDDEN),
                    .bv = t2(5000, 1, kv * HD),
                    .wo = t2(6000, HIDDEN, HEADS * HD),
                    .mlp_norm = t2(7000, 1, HIDDEN),
                    .w_gate = t2(8000, inter, HIDDEN),
                    .w_up = t2(9000, inter, HIDDEN),
                    .w_down = t2(10000, HIDDEN, inter)};
    m->w = (s1_weights){.embed = t2(12000, VOCAB, HIDDEN),
                        .layers = l,
                        .final_norm = t2(13000, 1, HIDDEN),
                        .lm_head = t2(14000, VOCAB, HIDDEN)};
}

static ptrdiff_t at(const s1_tensor *t)
{
    return (const uint16_t *)t->data - storage;
}

static void test_rank_one_of_two_views_its_half_of_every_split_weight(void **state)
{
    (void)state;
    s1_model m;
    s1_layer l;
    s1_shard s;
    s1_err err;
    make_model(&m, &l, KV, INTER);
    assert_int_equal(s1_shard_init(&s, &m, 1, 2, &err), 0);
    assert_int_equal(s.n_heads, 2);
    assert_int_equal(s.n_kv_heads, 1);
    assert_int_equal(s.intermediate, 12);
    const s1_layer *r = &s.w.layers[0];
    /* output-row splits: the second half of the rows */
    assert_int_equal(at(&r->wq), 100 + 8 * HIDDEN);
    assert_int_equal(r->wq.rows, 8);
    assert_int_equal(at(&r->bq), 1000 + 8);
    assert_int_equal(r->bq.cols, 8);
    assert_int_equal(at(&r->wk), 2000 + 4 * HIDDEN);
    assert_int_equal(at(&r->bv), 5000 + 4);
    assert_int_equal(at(&r->w_gate), 8000 + 12 * HIDDEN);
    assert_int_equal(r->w_up.rows, 12);
    /* input-column splits: views whose rows are longer than their columns */
    assert_int_equal(at(&r->wo), 6000 + 8);
    assert_int_equal(r->wo.cols, 8);
    assert_int_equal(r->wo.row_stride, 16);
    assert_int_equal(r->wo.rows, HIDDEN);
    assert_int_equal(at(&r->w_down), 10000 + 12);
    assert_int_equal(r->w_down.row_stride, INTER);
    /* replicated */
    assert_ptr_equal(r->attn_norm.data, l.attn_norm.data);
    assert_ptr_equal(s.w.embed.data, m.w.embed.data);
    assert_ptr_equal(s.w.final_norm.data, m.w.final_norm.data);
    /* vocabulary rows */
    assert_int_equal(s.vocab_begin, 5);
    assert_int_equal(at(&s.w.lm_head), 14000 + 5 * HIDDEN);
    assert_int_equal(s.w.lm_head.rows, 5);
    s1_shard_free(&s);
}

static void test_the_ranks_vocabulary_slices_cover_it_once(void **state)
{
    (void)state;
    s1_model m;
    s1_layer l;
    make_model(&m, &l, 4, INTER);
    m.cfg.n_heads = 4;
    int next = 0;
    for (int r = 0; r < 4; r++) {
        s1_shard s;
        s1_err err;
        assert_int_equal(s1_shard_init(&s, &m, r, 4, &err), 0);
        assert_int_equal(s.vocab_begin, next);
        assert_int_equal(at(&s.w.lm_head), 14000 + next * HIDDEN);
        assert_int_equal(at(&s.w.layers[0].wq), 100 + r * 4 * HIDDEN);
        next = s.vocab_end;
        s1_shard_free(&s);
    }
    assert_int_equal(next, VOCAB);
}

static void test_a_model_that_does_not_split_is_refused_with_the_reason(void **state)
{
    (void)state;
    s1_model m;
    s1_layer l;
    s1_shard s;
    s1_err err = {{0}};
    make_model(&m, &l, KV, INTER);
    assert_int_equal(s1_shard_init(&s, &m, 0, 4, &err), -1);
    assert_non_null(strstr(err.msg, "2 kv heads do not split into 4 ranks"));
    make_model(&m, &l, KV, 25);
    assert_int_equal(s1_shard_check(&m.cfg, 2, &err), -1);
    assert_non_null(strstr(err.msg, "intermediate size 25"));
    assert_int_equal(s1_shard_check(&m.cfg, 0, &err), -1);
    assert_int_equal(s1_shard_check(&m.cfg, 1, &err), 0);
    assert_int_equal(s1_shard_init(&s, &m, 1, 1, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank_one_of_two_views_its_half_of_every_split_weight),
        cmocka_unit_test(test_the_ranks_vocabulary_slices_cover_it_once),
        cmocka_unit_test(test_a_model_that_does_not_split_is_refused_with_the_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
