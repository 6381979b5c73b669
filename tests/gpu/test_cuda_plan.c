/* The CUDA backend's host-side planning (kernels/cuda_plan.c), on the CPU:
 * buffer growth from an empty capacity, graph buckets, and the attention work
 * list that splits each sequence by positions rather than the batch by one
 * split count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cuda_plan.h"

static void test_growth_from_an_empty_capacity_ends(void **state)
{
    (void)state;
    assert_int_equal(s1_plan_grow(0, 1024), 1024);
    assert_int_equal(s1_plan_grow(0, 1), 1);
    assert_int_equal(s1_plan_grow(-5, 3), 4);
    assert_int_equal(s1_plan_grow(1024, 1025), 2048);
    assert_int_equal(s1_plan_grow(4096, 10), 4096);
    assert_int_equal(s1_plan_grow(1 << 30, INT32_MAX), -1);
}

static void test_a_batch_replays_the_smallest_graph_it_fits(void **state)
{
    (void)state;
    assert_int_equal(s1_plan_bucket(1, 512), 0);
    assert_int_equal(s1_plan_bucket(3, 512), 2);
    assert_int_equal(s1_plan_bucket_size(s1_plan_bucket(60, 512)), 64);
    assert_int_equal(s1_plan_bucket(65, 512), -1);
    /* no graph larger than what the buffers hold */
    assert_int_equal(s1_plan_bucket(20, 16), -1);
    assert_int_equal(s1_plan_bucket(16, 16), 4);
}

/* Checks that items cover each token's positions exactly, in order. */
static void check_cover(const int32_t *ctx, int n, int n_items, int32_t span, const int32_t *first,
                        const int32_t *item_tok)
{
    assert_int_equal(first[0], 0);
    assert_int_equal(first[n], n_items);
    for (int i = 0; i < n; i++) {
        const int k = first[i + 1] - first[i];
        assert_true(k >= 1);
        assert_true((int64_t)k * span >= ctx[i]);
        assert_true((int64_t)(k - 1) * span < ctx[i]); /* no empty item */
        for (int w = first[i]; w < first[i + 1]; w++)
            assert_int_equal(item_tok[w], i);
    }
}

static void test_a_long_decode_beside_a_prefill_chunk_is_still_split(void **state)
{
    (void)state;
    enum { N = 513 };
    static int32_t ctx[N], first[N + 1], item_tok[4096];
    for (int i = 0; i < 512; i++)
        ctx[i] = i + 1; /* a 512-token prefill chunk of a new sequence */
    ctx[512] = 30000;   /* one decode token at 30k positions */
    const int max_items = s1_plan_attn_items(N, 132, 4);
    assert_true(max_items <= 4096);
    int32_t span = 0;
    const int n = s1_plan_attention(ctx, N, max_items, &span, first, item_tok);
    assert_true(n > 0 && n <= max_items);
    check_cover(ctx, N, n, span, first, item_tok);
    /* one split for the whole batch would have given the decode token one */
    assert_true(first[N] - first[N - 1] >= 32);
}

static void test_decode_at_batch_one_fills_the_gpu(void **state)
{
    (void)state;
    int32_t ctx[1] = {30000}, first[2], item_tok[512], span;
    const int max_items = s1_plan_attn_items(1, 132, 4);
    const int n = s1_plan_attention(ctx, 1, max_items, &span, first, item_tok);
    check_cover(ctx, 1, n, span, first, item_tok);
    assert_true(n >= 64);
    assert_int_equal(span % S1_PLAN_MIN_SPAN, 0);
}

static void test_short_contexts_get_one_item_each(void **state)
{
    (void)state;
    int32_t ctx[4] = {1, 5, 64, 3}, first[5], item_tok[16], span;
    const int n = s1_plan_attention(ctx, 4, 16, &span, first, item_tok);
    assert_int_equal(n, 4);
    assert_int_equal(span, S1_PLAN_MIN_SPAN);
    check_cover(ctx, 4, n, span, first, item_tok);
}

static void test_too_few_items_for_the_tokens_is_refused(void **state)
{
    (void)state;
    int32_t ctx[3] = {1, 1, 1}, first[4], item_tok[2], span;
    assert_int_equal(s1_plan_attention(ctx, 3, 2, &span, first, item_tok), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth_from_an_empty_capacity_ends),
        cmocka_unit_test(test_a_batch_replays_the_smallest_graph_it_fits),
        cmocka_unit_test(test_a_long_decode_beside_a_prefill_chunk_is_still_split),
        cmocka_unit_test(test_decode_at_batch_one_fills_the_gpu),
        cmocka_unit_test(test_short_contexts_get_one_item_each),
        cmocka_unit_test(test_too_few_items_for_the_tokens_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
