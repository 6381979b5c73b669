/* The engine's scheduler and budget forcing end to end, on a tiny generated
 * model (real config, weights and tokenizer) with the oracle backend of
 * fake_backend.c: exact, batch-independent logits, so any difference between
 * runs is the scheduler's doing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared.h"

#include "fake_backend.h"
#include "fixture.h"
#include "tokenizer.h"

static char *model_dir;
static int32_t im_start, im_end, end_of_text, wait_id;
static int32_t answer_ids[16];
static int n_answer_ids;

static const char *const problems[] = {
    "What is 2 + 2?",
    "Compute the sum of the first 100 positive integers.",
    "Find the number of positive integers n less than 1000 such that n is divisible by 7.",
    "How many ways are there to choose 2 people from a group of 10?",
    "Let f(x) = 2x + 3. Solve f(f(x)) = 21.",
    "What is the probability that a fair coin lands heads three times in a row?",
};
enum { N_PROBLEMS = sizeof problems / sizeof *problems };

static int setup(void **state)
{
    (void)state;
    model_dir = fx_gen_model("");
    if (!model_dir) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    s1_err err;
    s1_tokenizer *t = s1_tokenizer_load(path, &err);
    if (!t) return -1;
    im_start = s1_tokenizer_token_id(t, "<|im_start|>");
    im_end = s1_tokenizer_token_id(t, "<|im_end|>");
    end_of_text = s1_tokenizer_token_id(t, "<|endoftext|>");
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = s1_tokenizer_encode(t, "Wait", 4, 0, &ids, &n, &err);
    wait_id = rc == 0 && n == 1 ? ids[0] : -1;
    free(ids);
    rc |= s1_tokenizer_encode(t, "answer\nFinal Answer:", 20, 0, &ids, &n, &err);
    n_answer_ids = (int)n;
    if (rc == 0 && n <= 16) memcpy(answer_ids, ids, n * sizeof *ids);
    free(ids);
    s1_tokenizer_free(t);
    return rc == 0 && wait_id >= 0 && n <= 16 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fx_rm_model(model_dir);
    return 0;
}

/* The special tokens stay unlikely unless a test boosts them, so that runs
 * end where the test says. */
static int reset(void **state)
{
    (void)state;
    fake_backend_knobs =
        (fake_knobs){.boost_id = -1, .boost2_id = -1, .quiet = {im_start, im_end, end_of_text, -1}};
    fake_backend_stats = (fake_stats){0};
    return 0;
}

static s1_request budget_request(uint64_t tag, const char *problem, int max_think, int max_answer)
{
    s1_request r = fx_request(tag, problem);
    r.policy.max_think = max_think;
    r.policy.max_answer = max_answer;
    return r;
}

/* Runs problems[0..n) (request i on problem i % N_PROBLEMS) with a budget. */
static void run_set(s1_engine_cfg cfg, int n, int max_think, s1_result **out)
{
    s1_engine *e = fx_open(model_dir, cfg);
    for (int i = 0; i < n; i++) {
        s1_request r = budget_request((uint64_t)i, problems[i % N_PROBLEMS], max_think, 24);
        /* Every third one samples, to vary what its batch-mates do. */
        if (i % 3 == 2) r.sampling = (s1_sampling){.temperature = 0.9f, .top_p = 0.95f, .seed = 7};
        fx_add(e, &r);
    }
    fx_run(e, out, n);
    for (int i = 0; i < n; i++)
        fx_check_counts(e, out[i]);
    s1_engine_close(e);
}

static void assert_same_tokens(const s1_result *a, const s1_result *b)
{
    assert_int_equal(a->n_gen, b->n_gen);
    assert_memory_equal(a->gen_ids, b->gen_ids, a->n_gen * sizeof *a->gen_ids);
    assert_memory_equal(a->gen_kinds, b->gen_kinds, a->n_gen);
    assert_int_equal(a->stop, b->stop);
}

static void test_a_forced_end_follows_exactly_max_think_thinking_tokens(void **state)
{
    (void)state;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){0});
    s1_request r = budget_request(0, problems[1], 64, 10);
    fx_add(e, &r);
    s1_result *res;
    fx_run(e, &res, 1);
    fx_check_counts(e, res);
    assert_true(res->forced_end);
    assert_int_equal(res->thinking_tokens, 64);
    for (int i = 0; i < 64; i++)
        assert_int_equal(res->gen_kinds[i], S1_TOK_THINKING);
    assert_int_equal(res->gen_ids[64], im_start);
    for (int i = 0; i < n_answer_ids; i++) {
        assert_int_equal(res->gen_ids[65 + i], answer_ids[i]);
        assert_int_equal(res->gen_kinds[65 + i], S1_TOK_FORCED);
    }
    assert_int_equal(res->forced_tokens, 1 + n_answer_ids);
    assert_int_equal(res->stop, S1_STOP_MAX_ANSWER);
    assert_int_equal(res->answer_tokens, 10);
    assert_non_null(strstr(res->trace, "Final Answer:"));
    assert_int_equal(strncmp(res->answer, "answer\nFinal Answer:", 20), 0);
    assert_true(res->ttft_s >= 0);
    s1_result_free(res);
    s1_engine_close(e);
}

static void test_waits_replace_early_delimiters_until_min_think(void **state)
{
    (void)state;
    fake_backend_knobs.boost_id = im_start;
    fake_backend_knobs.boost_every = 5;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){0});
    s1_request r = budget_request(0, problems[2], 200, 5);
    r.policy.min_think = 40;
    fx_add(e, &r);
    s1_result *res;
    fx_run(e, &res, 1);
    fx_check_counts(e, res);
    assert_true(res->waits > 0);
    int thinking = 0, waits = 0;
    size_t i = 0;
    for (; i < res->n_gen && res->gen_kinds[i] != S1_TOK_ANSWER; i++) {
        thinking += res->gen_kinds[i] == S1_TOK_THINKING;
        if (res->gen_kinds[i] == S1_TOK_FORCED) {
            assert_int_equal(res->gen_ids[i], wait_id);
            assert_true(thinking < 40);
            waits++;
        }
        assert_int_not_equal(res->gen_ids[i], im_start);
    }
    assert_int_equal(waits, res->waits);
    /* The delimiter the model sampled after min_think was accepted. */
    assert_false(res->forced_end);
    assert_true(i < res->n_gen);
    assert_int_equal(res->gen_ids[i], im_start);
    assert_true(thinking >= 40);
    s1_result_free(res);
    s1_engine_close(e);
}

static void test_ignore_stop_suppresses_the_first_delimiters(void **state)
{
    (void)state;
    fake_backend_knobs.boost_id = im_start;
    fake_backend_knobs.boost_every = 3;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){0});
    s1_request r = budget_request(0, problems[3], 0, 5);
    r.policy.ignore_stop = 4;
    r.policy.wait_string = "Wait, let me check";
    fx_add(e, &r);
    s1_result *res;
    fx_run(e, &res, 1);
    fx_check_counts(e, res);
    assert_int_equal(res->waits, 4);
    assert_false(res->forced_end);
    assert_non_null(strstr(res->trace, "Wait, let me check"));
    s1_result_free(res);
    s1_engine_close(e);
}

static void test_eos_ends_the_answer_and_stays_out_of_it(void **state)
{
    (void)state;
    fake_backend_knobs.boost_id = im_end;
    fake_backend_knobs.boost_every = 4;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){0});
    s1_request r = budget_request(0, problems[0], 8, 0);
    r.policy.min_think = 8;
    fx_add(e, &r);
    s1_result *res;
    fx_run(e, &res, 1);
    fx_check_counts(e, res);
    assert_int_equal(res->stop, S1_STOP_EOS);
    assert_int_equal(res->gen_ids[res->n_gen - 1], im_end);
    assert_null(strstr(res->answer, "<|im_end|>"));
    assert_non_null(strstr(res->trace, "<|im_end|>"));
    s1_result_free(res);
    s1_engine_close(e);
}

/* No budget, or one past what the context holds: the thinking is forced to
 * end (a context end) while the answer reserve fits, so the answer is there. */
static void test_thinking_ends_early_enough_for_the_answer_reserve(void **state)
{
    (void)state;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){.max_context = 120});
    s1_request reqs[] = {budget_request(0, problems[0], 0, 0),
                         budget_request(1, problems[0], 100000, 0),
                         budget_request(2, problems[0], 0, 5)};
    for (int i = 0; i < 3; i++)
        fx_add(e, &reqs[i]);
    s1_result *res[3];
    fx_run(e, res, 3);
    int spare = 120 - res[0]->prompt_tokens - 1 - n_answer_ids;
    for (int i = 0; i < 3; i++) {
        fx_check_counts(e, res[i]);
        assert_true(res[i]->forced_end && res[i]->context_end);
        assert_int_equal(res[i]->stop, i == 2 ? S1_STOP_MAX_ANSWER : S1_STOP_CONTEXT);
        assert_int_equal(res[i]->forced_tokens, 1 + n_answer_ids);
        assert_int_equal(res[i]->answer_tokens, i == 2 ? 5 : spare / 2);
        assert_int_equal(res[i]->thinking_tokens, spare - (i == 2 ? 5 : spare / 2));
    }
    fx_free_results(res, 3);
    s1_engine_close(e);
}

/* A budget the context can hold with its reserve ends by the budget. */
static void test_a_budget_that_fits_is_not_a_context_end(void **state)
{
    (void)state;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){.max_context = 120});
    s1_request r = budget_request(0, problems[0], 10, 4);
    fx_add(e, &r);
    s1_result *res;
    fx_run(e, &res, 1);
    assert_true(res->forced_end);
    assert_false(res->context_end);
    assert_int_equal(res->thinking_tokens, 10);
    s1_result_free(res);
    s1_engine_close(e);
}

static void test_greedy_results_do_not_depend_on_batch_mates(void **state)
{
    (void)state;
    s1_result *alone[1], *crowd[12];
    run_set((s1_engine_cfg){0}, 1, 40, alone);
    fake_backend_stats = (fake_stats){0};
    run_set((s1_engine_cfg){.max_batch_tokens = 64}, 12, 40, crowd);
    assert_same_tokens(alone[0], crowd[0]);
    assert_same_tokens(crowd[0], crowd[6]);
    assert_true(fake_backend_stats.max_seqs > 1);
    assert_true(fake_backend_stats.max_tokens <= 64);
    fx_free_results(alone, 1);
    fx_free_results(crowd, 12);
}

static void test_the_prefix_cache_changes_no_token(void **state)
{
    (void)state;
    s1_result *on[12], *off[12];
    run_set((s1_engine_cfg){.max_batch_tokens = 48}, 12, 30, on);
    long fed_on = fake_backend_stats.tokens;
    fake_backend_stats = (fake_stats){0};
    run_set((s1_engine_cfg){.max_batch_tokens = 48, .no_prefix_cache = true}, 12, 30, off);
    for (int i = 0; i < 12; i++)
        assert_same_tokens(on[i], off[i]);
    /* The shared system prompt was computed once, not twelve times. */
    assert_true(fed_on < fake_backend_stats.tokens);
    fx_free_results(on, 12);
    fx_free_results(off, 12);
}

/* With the block size equal to the prompt's length the whole prompt is
 * cached; its last token must be fed again, into a copy of the shared block. */
static void test_a_fully_cached_prompt_copies_its_last_block(void **state)
{
    (void)state;
    s1_result *first[1];
    run_set((s1_engine_cfg){0}, 1, 20, first);
    int bs = first[0]->prompt_tokens;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){.block_size = bs, .kv_blocks = 16});
    s1_result *res[3];
    for (int i = 0; i < 3; i++) {
        s1_request r = budget_request(0, problems[0], 20, 24);
        fx_add(e, &r);
        fx_run(e, &res[i], 1);
    }
    for (int i = 0; i < 3; i++)
        assert_same_tokens(first[0], res[i]);
    assert_true(fake_backend_stats.copies >= 2);
    fx_free_results(first, 1);
    fx_free_results(res, 3);
    s1_engine_close(e);
}

static void test_preemption_in_a_tiny_kv_cache_changes_no_token(void **state)
{
    (void)state;
    s1_result *roomy[8], *tight[8];
    run_set((s1_engine_cfg){.no_prefix_cache = true}, 8, 60, roomy);
    long fed_roomy = fake_backend_stats.tokens;
    fake_backend_stats = (fake_stats){0};
    /* 16 blocks of 16: room for about two sequences of ~110 tokens at once. */
    run_set((s1_engine_cfg){.no_prefix_cache = true, .kv_blocks = 16}, 8, 60, tight);
    for (int i = 0; i < 8; i++)
        assert_same_tokens(roomy[i], tight[i]);
    /* Recomputation fed more tokens. */
    assert_true(fake_backend_stats.tokens > fed_roomy);
    fx_free_results(roomy, 8);
    fx_free_results(tight, 8);
}

static void test_many_sequences_in_flight_all_finish(void **state)
{
    (void)state;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){.max_seqs = 16});
    assert_int_equal(s1_engine_capacity(e), 16);
    enum { N = 100 };
    for (int i = 0; i < N; i++) {
        s1_request r = budget_request((uint64_t)i, problems[i % N_PROBLEMS], 10 + i % 7, 5);
        r.sampling = (s1_sampling){.temperature = 1.0f, .top_k = 20, .seed = (uint64_t)i};
        fx_add(e, &r);
    }
    assert_int_equal(s1_engine_capacity(e), 0);
    s1_result *res[N];
    fx_run(e, res, N);
    for (int i = 0; i < N; i++) {
        fx_check_counts(e, res[i]);
        assert_int_equal(res[i]->thinking_tokens, 10 + i % 7);
    }
    assert_true(fake_backend_stats.max_seqs <= 16);
    assert_int_equal(s1_engine_capacity(e), 16);
    fx_free_results(res, N);
    s1_engine_close(e);
}

static void test_cancel_stops_a_request_in_flight(void **state)
{
    (void)state;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){0});
    s1_request r = budget_request(0, problems[0], 0, 0);
    fx_add(e, &r);
    s1_request r2 = budget_request(1, problems[1], 0, 0);
    fx_add(e, &r2);
    s1_err err;
    for (int i = 0; i < 5; i++)
        assert_true(s1_engine_step(e, &err) == 2);
    int thinking = -1, generated = -1;
    assert_int_equal(s1_engine_progress(e, 0, &thinking, &generated), 0);
    assert_int_equal(thinking, 5);
    assert_int_equal(generated, 5);
    assert_int_equal(s1_engine_cancel(e, 0), 0);
    assert_int_equal(s1_engine_cancel(e, 1), 0);
    assert_int_equal(s1_engine_cancel(e, 99), -1);
    s1_result *res[2];
    fx_run(e, res, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(res[i]->stop, S1_STOP_CANCELLED);
        fx_check_counts(e, res[i]);
    }
    assert_int_equal(s1_engine_progress(e, 0, NULL, NULL), -1);
    fx_free_results(res, 2);
    s1_engine_close(e);
}

static void test_a_request_cancelled_while_queued_ends_with_nothing_generated(void **state)
{
    (void)state;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){.max_seqs = 1});
    for (uint64_t i = 0; i < 2; i++) {
        s1_request r = budget_request(i, problems[i], 5, 2);
        fx_add(e, &r);
    }
    s1_err err;
    assert_int_equal(s1_engine_step(e, &err), 2);
    assert_int_equal(s1_engine_cancel(e, 1), 0);
    s1_result *res[2];
    fx_run(e, res, 2);
    assert_int_equal(res[1]->stop, S1_STOP_CANCELLED);
    assert_int_equal(res[1]->n_gen, 0);
    assert_string_equal(res[1]->trace, "");
    assert_int_equal(res[0]->stop, S1_STOP_MAX_ANSWER);
    fx_free_results(res, 2);
    s1_engine_close(e);
}

static void test_raw_requests_stop_at_max_tokens(void **state)
{
    (void)state;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){0});
    s1_request r = fx_request(0, "<|im_start|>user\nHello<|im_end|>\n");
    r.raw = true;
    r.max_tokens = 12;
    fx_add(e, &r);
    s1_result *res;
    fx_run(e, &res, 1);
    fx_check_counts(e, res);
    assert_int_equal(res->prompt_ids[0], im_start);
    assert_int_equal(res->stop, S1_STOP_MAX_TOKENS);
    assert_int_equal(res->answer_tokens, 12);
    assert_string_equal(res->trace, res->answer);
    s1_result_free(res);
    s1_engine_close(e);
}

static void test_requests_that_can_never_run_are_refused(void **state)
{
    (void)state;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){.max_context = 128});
    char long_problem[400];
    memset(long_problem, 'x', sizeof long_problem - 1);
    long_problem[sizeof long_problem - 1] = '\0';
    for (size_t i = 0; i < sizeof long_problem - 1; i += 2)
        long_problem[i] = ' ';
    s1_request r = fx_request(1, long_problem);
    fx_assert_add_fails(e, &r, "context");
    r = fx_request(1, "");
    fx_assert_add_fails(e, &r, "empty");
    r = fx_request(1, "2+2?");
    r.policy.think_end = "</think> now";
    fx_assert_add_fails(e, &r, "think_end");
    r.policy.think_end = NULL;
    r.policy.wait_string = "";
    fx_assert_add_fails(e, &r, "wait_string");
    r.policy.wait_string = NULL;
    r.policy.answer_header = "";
    r.policy.answer_prefix = "";
    fx_assert_add_fails(e, &r, "answer_prefix");
    r = budget_request(1, "2+2?", 10, 0);
    r.policy.min_think = 11;
    fx_assert_add_fails(e, &r, "min_think");
    r.policy.min_think = 0;
    fx_add(e, &r);
    fx_assert_add_fails(e, &r, "already in flight");
    assert_int_equal(s1_engine_capacity(e), 63);
    s1_engine_close(e);
}

static void test_the_qwen_tokenizer_gives_the_known_forced_end(void **state)
{
    (void)state;
    char *dir = fx_gen_model("--tokenizer qwen --vocab 151936 --tie");
    assert_non_null(dir);
    fake_backend_knobs.quiet[0] = 151643;
    fake_backend_knobs.quiet[1] = 151644;
    fake_backend_knobs.quiet[2] = 151645;
    s1_engine *e = fx_open(dir, (s1_engine_cfg){0});
    s1_request r = budget_request(0, problems[0], 16, 3);
    fx_add(e, &r);
    s1_result *res;
    fx_run(e, &res, 1);
    fx_check_counts(e, res);
    const int32_t forced[] = {151644, 9217, 198, 19357, 21806, 25};
    assert_int_equal(res->thinking_tokens, 16);
    assert_memory_equal(res->gen_ids + 16, forced, sizeof forced);
    assert_int_equal(res->forced_tokens, 6);
    const int32_t think[] = {151644, 26865, 198};
    assert_memory_equal(res->prompt_ids + res->n_prompt - 3, think, sizeof think);
    s1_result_free(res);
    s1_engine_close(e);
    fx_rm_model(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_a_forced_end_follows_exactly_max_think_thinking_tokens, reset),
        cmocka_unit_test_setup(test_waits_replace_early_delimiters_until_min_think, reset),
        cmocka_unit_test_setup(test_ignore_stop_suppresses_the_first_delimiters, reset),
        cmocka_unit_test_setup(test_eos_ends_the_answer_and_stays_out_of_it, reset),
        cmocka_unit_test_setup(test_thinking_ends_early_enough_for_the_answer_reserve, reset),
        cmocka_unit_test_setup(test_a_budget_that_fits_is_not_a_context_end, reset),
        cmocka_unit_test_setup(test_greedy_results_do_not_depend_on_batch_mates, reset),
        cmocka_unit_test_setup(test_the_prefix_cache_changes_no_token, reset),
        cmocka_unit_test_setup(test_a_fully_cached_prompt_copies_its_last_block, reset),
        cmocka_unit_test_setup(test_preemption_in_a_tiny_kv_cache_changes_no_token, reset),
        cmocka_unit_test_setup(test_many_sequences_in_flight_all_finish, reset),
        cmocka_unit_test_setup(test_cancel_stops_a_request_in_flight, reset),
        cmocka_unit_test_setup(test_a_request_cancelled_while_queued_ends_with_nothing_generated,
                               reset),
        cmocka_unit_test_setup(test_raw_requests_stop_at_max_tokens, reset),
        cmocka_unit_test_setup(test_requests_that_can_never_run_are_refused, reset),
        cmocka_unit_test_setup(test_the_qwen_tokenizer_gives_the_known_forced_end, reset),
    };
    /* The last case needs the real Qwen2.5 tokenizer. */
    size_t n = sizeof tests / sizeof *tests;
    if (!s1test_shared("models/qwen2.5-tokenizer/tokenizer.json", "the Qwen forced-end case")) n--;
    return _cmocka_run_group_tests("tests", tests, n, setup, teardown);
}
