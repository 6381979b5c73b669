/* The KV block manager: allocation, reference counts, the prefix cache and
 * its eviction, copy-on-write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kvcache.h"

enum { BS = 4 };
/* Three full blocks and a partial one. */
static const int32_t prompt[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
enum { N_PROMPT = sizeof prompt / sizeof *prompt };

/* A sequence that computed the whole prompt and published it. */
static void run_prompt(s1_kv *kv, s1_kv_table *t)
{
    assert_int_equal(s1_kv_table_match(kv, t, prompt, N_PROMPT, N_PROMPT), 0);
    assert_int_equal(s1_kv_table_reserve(kv, t, N_PROMPT), 0);
    s1_kv_table_publish(kv, t, prompt, N_PROMPT, N_PROMPT);
}

static void test_blocks_run_out_and_come_back(void **state)
{
    (void)state;
    s1_kv *kv = s1_kv_new(3, BS, true);
    s1_kv_table t = {0};
    assert_int_equal(s1_kv_table_reserve(kv, &t, 3 * BS), 0);
    assert_int_equal(s1_kv_available(kv), 0);
    assert_int_equal(s1_kv_table_reserve(kv, &t, 3 * BS + 1), -1);
    s1_kv_table_release(kv, &t);
    assert_int_equal(s1_kv_available(kv), 3);
    s1_kv_table_free(&t);
    s1_kv_free(kv);
}

static void test_a_shared_prompt_prefix_shares_its_full_blocks(void **state)
{
    (void)state;
    s1_kv *kv = s1_kv_new(16, BS, true);
    s1_kv_table a = {0}, b = {0};
    run_prompt(kv, &a);
    assert_int_equal(s1_kv_table_match(kv, &b, prompt, N_PROMPT, N_PROMPT), 3 * BS);
    assert_int_equal(b.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(b.blocks[i], a.blocks[i]);
        assert_int_equal(s1_kv_refcount(kv, a.blocks[i]), 2);
    }
    assert_int_equal(s1_kv_refcount(kv, a.blocks[3]), 1);
    /* A prompt differing in its second block shares only the first. */
    int32_t other[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++)
        other[i] = prompt[i] + (i == 5);
    s1_kv_table c = {0};
    assert_int_equal(s1_kv_table_match(kv, &c, other, N_PROMPT, N_PROMPT), BS);
    s1_kv_table_release(kv, &a);
    s1_kv_table_release(kv, &b);
    s1_kv_table_release(kv, &c);
    assert_int_equal(s1_kv_available(kv), 16);
    s1_kv_table_free(&a);
    s1_kv_table_free(&b);
    s1_kv_table_free(&c);
    s1_kv_free(kv);
}

static void test_a_fully_cached_prompt_leaves_its_last_token_to_compute(void **state)
{
    (void)state;
    s1_kv *kv = s1_kv_new(16, BS, true);
    s1_kv_table a = {0}, b = {0};
    run_prompt(kv, &a);
    assert_int_equal(s1_kv_table_match(kv, &b, prompt, 3 * BS, 3 * BS), 3 * BS - 1);
    /* Writing that token into the shared block copies it first. */
    s1_kv_copy cp;
    assert_int_equal(s1_kv_table_own(kv, &b, 3 * BS - 1, &cp), 1);
    assert_int_equal(cp.src, a.blocks[2]);
    assert_int_not_equal(cp.dst, a.blocks[2]);
    assert_int_equal(b.blocks[2], cp.dst);
    assert_int_equal(s1_kv_refcount(kv, a.blocks[2]), 1);
    /* A private block is written in place. */
    assert_int_equal(s1_kv_table_own(kv, &b, 3 * BS - 1, &cp), 0);
    s1_kv_table_release(kv, &a);
    s1_kv_table_release(kv, &b);
    s1_kv_table_free(&a);
    s1_kv_table_free(&b);
    s1_kv_free(kv);
}

static void test_released_prompt_blocks_stay_cached_until_evicted(void **state)
{
    (void)state;
    s1_kv *kv = s1_kv_new(4, BS, true);
    s1_kv_table a = {0}, b = {0};
    run_prompt(kv, &a);
    s1_kv_table_release(kv, &a);
    assert_int_equal(s1_kv_available(kv), 4);
    assert_int_equal(s1_kv_table_match(kv, &b, prompt, N_PROMPT, N_PROMPT), 3 * BS);
    s1_kv_table_release(kv, &b);
    /* Taking every block evicts the cached ones: nothing matches after. */
    assert_int_equal(s1_kv_table_reserve(kv, &a, 4 * BS), 0);
    s1_kv_table_release(kv, &a);
    assert_int_equal(s1_kv_table_match(kv, &b, prompt, N_PROMPT, N_PROMPT), 0);
    s1_kv_table_free(&a);
    s1_kv_table_free(&b);
    s1_kv_free(kv);
}

static void test_eviction_takes_a_prompt_tail_before_its_head(void **state)
{
    (void)state;
    s1_kv *kv = s1_kv_new(4, BS, true);
    s1_kv_table a = {0}, b = {0};
    run_prompt(kv, &a);
    s1_kv_table_release(kv, &a);
    /* One free block, then the idle third block go first. */
    assert_int_equal(s1_kv_table_reserve(kv, &b, 2 * BS), 0);
    s1_kv_table c = {0};
    assert_int_equal(s1_kv_table_match(kv, &c, prompt, N_PROMPT, N_PROMPT), 2 * BS);
    s1_kv_table_release(kv, &b);
    s1_kv_table_release(kv, &c);
    s1_kv_table_free(&a);
    s1_kv_table_free(&b);
    s1_kv_table_free(&c);
    s1_kv_free(kv);
}

static void test_without_prefix_cache_nothing_is_shared(void **state)
{
    (void)state;
    s1_kv *kv = s1_kv_new(16, BS, false);
    s1_kv_table a = {0}, b = {0};
    assert_int_equal(s1_kv_table_reserve(kv, &a, N_PROMPT), 0);
    s1_kv_table_publish(kv, &a, prompt, N_PROMPT, N_PROMPT);
    assert_int_equal(s1_kv_table_match(kv, &b, prompt, N_PROMPT, N_PROMPT), 0);
    assert_int_equal(b.n, 0);
    s1_kv_table_release(kv, &a);
    s1_kv_table_free(&a);
    s1_kv_free(kv);
}

static void test_the_same_prefix_computed_twice_is_cached_once(void **state)
{
    (void)state;
    s1_kv *kv = s1_kv_new(16, BS, true);
    s1_kv_table a = {0}, b = {0}, c = {0};
    /* a and b both compute the prompt before either publishes. */
    assert_int_equal(s1_kv_table_reserve(kv, &a, N_PROMPT), 0);
    assert_int_equal(s1_kv_table_reserve(kv, &b, N_PROMPT), 0);
    s1_kv_table_publish(kv, &a, prompt, N_PROMPT, N_PROMPT);
    s1_kv_table_publish(kv, &b, prompt, N_PROMPT, N_PROMPT);
    assert_int_equal(s1_kv_table_match(kv, &c, prompt, N_PROMPT, N_PROMPT), 3 * BS);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c.blocks[i], a.blocks[i]);
    s1_kv_table_release(kv, &a);
    s1_kv_table_release(kv, &b);
    s1_kv_table_release(kv, &c);
    /* b's duplicates went back to the free stack, a's stay cached. */
    assert_int_equal(s1_kv_available(kv), 16);
    assert_int_equal(s1_kv_table_match(kv, &c, prompt, N_PROMPT, N_PROMPT), 3 * BS);
    s1_kv_table_release(kv, &c);
    s1_kv_table_free(&a);
    s1_kv_table_free(&b);
    s1_kv_table_free(&c);
    s1_kv_free(kv);
}

static void test_a_sequence_admitted_alongside_picks_up_blocks_cached_meanwhile(void **state)
{
    (void)state;
    s1_kv *kv = s1_kv_new(16, BS, true);
    s1_kv_table a = {0}, b = {0};
    assert_int_equal(s1_kv_table_match(kv, &a, prompt, N_PROMPT, N_PROMPT), 0);
    assert_int_equal(s1_kv_table_match(kv, &b, prompt, N_PROMPT, N_PROMPT), 0);
    assert_int_equal(s1_kv_table_reserve(kv, &a, N_PROMPT), 0);
    assert_int_equal(s1_kv_table_reserve(kv, &b, N_PROMPT), 0);
    /* a computed two blocks; b none yet. */
    s1_kv_table_publish(kv, &a, prompt, N_PROMPT, 2 * BS);
    assert_int_equal(s1_kv_table_rematch(kv, &b, prompt, N_PROMPT, 0, N_PROMPT), 2 * BS);
    assert_int_equal(b.blocks[0], a.blocks[0]);
    assert_int_equal(b.blocks[1], a.blocks[1]);
    assert_int_equal(s1_kv_refcount(kv, a.blocks[1]), 2);
    /* Nothing more is cached: b goes on with its own third block. */
    assert_int_equal(s1_kv_table_rematch(kv, &b, prompt, N_PROMPT, 2 * BS, N_PROMPT), 2 * BS);
    assert_int_not_equal(b.blocks[2], a.blocks[2]);
    /* b's replaced blocks went back: 16 - 4 (a) - 2 (b's own) free. */
    assert_int_equal(s1_kv_available(kv), 10);
    s1_kv_table_release(kv, &a);
    s1_kv_table_release(kv, &b);
    s1_kv_table_free(&a);
    s1_kv_table_free(&b);
    s1_kv_free(kv);
}

/* A fork shares every block; the first write to the shared partial block
 * gives the writer a private copy, the other then writes in place. */
static void test_a_fork_shares_its_blocks_until_one_side_writes(void **state)
{
    (void)state;
    s1_kv *kv = s1_kv_new(8, BS, false);
    s1_kv_table parent = {0}, child = {0};
    run_prompt(kv, &parent);
    assert_int_equal(s1_kv_held(kv), 4);
    assert_int_equal(s1_kv_table_fork(kv, &parent, &child), 0);
    assert_int_equal(child.n, 4);
    assert_int_equal(s1_kv_held(kv), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s1_kv_refcount(kv, parent.blocks[i]), 2);
    s1_kv_copy cp;
    int32_t shared = parent.blocks[3];
    assert_int_equal(s1_kv_table_own(kv, &child, N_PROMPT, &cp), 1);
    assert_int_equal(cp.src, shared);
    assert_int_equal(cp.dst, child.blocks[3]);
    assert_int_equal(s1_kv_table_own(kv, &parent, N_PROMPT, &cp), 0);
    assert_int_equal(s1_kv_refcount(kv, shared), 1);
    assert_int_equal(s1_kv_held(kv), 5);
    s1_kv_table_release(kv, &parent);
    assert_int_equal(s1_kv_refcount(kv, child.blocks[0]), 1);
    s1_kv_table_release(kv, &child);
    assert_int_equal(s1_kv_held(kv), 0);
    s1_kv_table_free(&parent);
    s1_kv_table_free(&child);
    s1_kv_free(kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_run_out_and_come_back),
        cmocka_unit_test(test_a_shared_prompt_prefix_shares_its_full_blocks),
        cmocka_unit_test(test_a_fully_cached_prompt_leaves_its_last_token_to_compute),
        cmocka_unit_test(test_released_prompt_blocks_stay_cached_until_evicted),
        cmocka_unit_test(test_eviction_takes_a_prompt_tail_before_its_head),
        cmocka_unit_test(test_without_prefix_cache_nothing_is_shared),
        cmocka_unit_test(test_the_same_prefix_computed_twice_is_cached_once),
        cmocka_unit_test(test_a_sequence_admitted_alongside_picks_up_blocks_cached_meanwhile),
        cmocka_unit_test(test_a_fork_shares_its_blocks_until_one_side_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
