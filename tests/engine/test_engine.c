/* The engine end to end through its C API on the CPU backend, with tiny
 * models made by tools/gen_model.py: budget forcing on real logits, token
 * accounting, cancel, refusals, many sequences, determinism whatever the
 * batch, and the forced end with the real Qwen2.5 tokenizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared.h"

#include "fixture.h"
#include "tokenizer.h"

static fx_models models;
static const char *model_dir;   /* tiny, random: rarely ends its thinking */
static const char *boosted_dir; /* the same, its delimiter made likely */
static int32_t im_start;

static const char *const problems[] = {
    "What is 2 + 2?",
    "Compute the sum of the first 100 positive integers.",
    "Find the number of positive integers n less than 1000 such that n is divisible by 7.",
    "How many ways are there to choose 2 people from a group of 10?",
};
enum { N_PROBLEMS = sizeof problems / sizeof *problems };

static int setup(void **state)
{
    (void)state;
    if (fx_models_gen(&models) < 0) return -1;
    model_dir = models.plain;
    boosted_dir = models.boosted;
    im_start = models.im_start;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_models_rm(&models);
    return 0;
}

static s1_request budget_request(uint64_t tag, const char *problem, int max_think, int max_answer)
{
    s1_request r = fx_request(tag, problem);
    r.policy.max_think = max_think;
    r.policy.max_answer = max_answer;
    return r;
}

/* min_think = max_think: a delimiter the random model emits early becomes a
 * wait, so the budget is what ends the thinking. */
static void test_thinking_stops_at_exactly_the_budget_then_the_end_is_forced(void **state)
{
    (void)state;
    s1_request req = budget_request(0, problems[1], 64, 8);
    req.policy.min_think = 64;
    s1_result *r = fx_run_one(model_dir, (s1_engine_cfg){0}, req);
    assert_true(r->forced_end);
    assert_int_equal(r->thinking_tokens, 64);
    size_t i = 0;
    for (int thinking = 0; thinking < 64; i++)
        thinking += r->gen_kinds[i] == S1_TOK_THINKING;
    assert_int_equal(r->gen_ids[i], im_start);
    assert_int_equal(r->gen_kinds[i], S1_TOK_FORCED);
    assert_int_equal(r->forced_tokens, r->waits + 6);
    assert_non_null(strstr(r->trace, "<|im_start|>answer\nFinal Answer:"));
    assert_true(r->answer_tokens <= 8);
    s1_result_free(r);
}

/* The boosted model emits the delimiter early and often: every time before
 * min_think it must be replaced by the wait string. */
static void test_early_delimiters_become_waits_until_min_think(void **state)
{
    (void)state;
    s1_request req = budget_request(0, problems[2], 200, 4);
    req.policy.min_think = 40;
    s1_result *r = fx_run_one(boosted_dir, (s1_engine_cfg){0}, req);
    assert_true(r->waits > 0);
    int thinking = 0;
    for (size_t i = 0; i < r->n_gen && r->gen_kinds[i] != S1_TOK_ANSWER; i++) {
        if (r->gen_kinds[i] == S1_TOK_THINKING) {
            assert_int_not_equal(r->gen_ids[i], im_start);
            thinking++;
        } else if (r->gen_ids[i] != im_start) {
            assert_true(thinking < 40); /* a wait */
        }
    }
    assert_true(r->thinking_tokens >= 40 && r->thinking_tokens <= 200);
    s1_result_free(r);
}

static void test_ignore_stop_makes_exactly_that_many_waits(void **state)
{
    (void)state;
    s1_request req = budget_request(0, problems[3], 400, 4);
    req.policy.ignore_stop = 3;
    s1_result *r = fx_run_one(boosted_dir, (s1_engine_cfg){0}, req);
    /* Unless the budget came first, the fourth delimiter was accepted. */
    if (!r->forced_end) assert_int_equal(r->waits, 3);
    assert_true(r->waits <= 3);
    assert_int_equal(r->forced_tokens, r->waits + (r->forced_end ? 6 : 0));
    s1_result_free(r);
}

static void run_many(s1_engine_cfg cfg, int n, s1_result **out)
{
    s1_engine *e = fx_open(model_dir, cfg);
    for (int i = 0; i < n; i++) {
        s1_request r = budget_request((uint64_t)i, problems[i % N_PROBLEMS], 24, 8);
        if (i % 3 == 2)
            r.sampling = (s1_sampling){.temperature = 0.8f, .top_p = 0.9f, .seed = (uint64_t)i};
        fx_add(e, &r);
    }
    fx_run(e, out, n);
    for (int i = 0; i < n; i++)
        fx_check_counts(e, out[i]);
    s1_engine_close(e);
}

/* Greedy request 0 alone, amid others in small chunks, without the prefix
 * cache, and preempted in a tiny KV cache: the same tokens every time. */
static void test_greedy_tokens_do_not_depend_on_the_batch(void **state)
{
    (void)state;
    enum { N = 8 };
    s1_result *alone[1], *crowd[N], *no_cache[N], *tight[N];
    run_many((s1_engine_cfg){0}, 1, alone);
    run_many((s1_engine_cfg){.max_batch_tokens = 40}, N, crowd);
    run_many((s1_engine_cfg){.no_prefix_cache = true}, N, no_cache);
    run_many((s1_engine_cfg){.kv_blocks = 14, .block_size = 16}, N, tight);
    for (int i = 0; i < N; i++) {
        if (i % 3 == 2) continue;
        fx_assert_same_run(crowd[i], no_cache[i]);
        fx_assert_same_run(crowd[i], tight[i]);
    }
    fx_assert_same_run(alone[0], crowd[0]);
    fx_assert_same_run(crowd[0], crowd[4]);
    fx_free_results(alone, 1);
    fx_free_results(crowd, N);
    fx_free_results(no_cache, N);
    fx_free_results(tight, N);
}

/* Runs r in an engine until it has generated at least n tokens, and returns
 * where it stands then; the engine is closed, as by a crash. */
static s1_resume *save_after(const char *dir, s1_request r, int n)
{
    s1_engine *e = fx_open(dir, (s1_engine_cfg){0});
    fx_add(e, &r);
    int generated = 0;
    s1_err err = {0};
    while (generated < n) {
        assert_true(s1_engine_step(e, &err) > 0);
        assert_int_equal(s1_engine_progress(e, r.tag, NULL, &generated), 0);
    }
    s1_resume *saved = s1_engine_save(e, r.tag, &err);
    assert_non_null(saved);
    assert_int_equal(saved->n, 1);
    assert_int_equal(saved->seqs[0].n, (size_t)generated);
    s1_engine_close(e);
    return saved;
}

/* Waits and a forced end on the way, greedy and sampled: a request resumed
 * from a saved state in another engine ends with the very tokens and counts
 * of one that never stopped. */
static void test_a_resumed_request_ends_exactly_as_an_uninterrupted_one(void **state)
{
    (void)state;
    const s1_sampling samplings[] = {{0}, {.temperature = 0.8f, .top_p = 0.9f, .seed = 7}};
    for (size_t k = 0; k < sizeof samplings / sizeof samplings[0]; k++) {
        s1_request req = budget_request(0, problems[2], 90, 12);
        req.policy.min_think = 40;
        req.policy.ignore_stop = 2;
        req.sampling = samplings[k];
        s1_result *whole = fx_run_one(boosted_dir, (s1_engine_cfg){0}, req);
        s1_resume *saved = save_after(boosted_dir, req, 30);
        req.resume = saved;
        s1_result *resumed = fx_run_one(boosted_dir, (s1_engine_cfg){0}, req);
        fx_assert_same_run(whole, resumed);
        assert_memory_equal(whole->gen_kinds, resumed->gen_kinds, whole->n_gen);
        assert_int_equal(whole->thinking_tokens, resumed->thinking_tokens);
        assert_int_equal(whole->waits, resumed->waits);
        assert_int_equal(whole->forced_end, resumed->forced_end);
        assert_string_equal(whole->trace, resumed->trace);
        assert_string_equal(whole->answer, resumed->answer);
        s1_resume_free(saved);
        s1_result_free(whole);
        s1_result_free(resumed);
    }
}

/* A damaged or foreign saved state is refused at add, naming the part. */
static void test_a_saved_state_that_does_not_fit_is_refused(void **state)
{
    (void)state;
    s1_request req = budget_request(0, problems[0], 20, 4);
    s1_resume *saved = save_after(model_dir, req, 5);
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){0});
    s1_err err = {0};
    req.resume = saved;
    s1_resume_seq *q = &saved->seqs[0];
    q->kinds[0] = 9;
    assert_int_equal(s1_engine_add(e, &req, &err), -1);
    assert_non_null(strstr(err.msg, "kind 9"));
    q->kinds[0] = S1_TOK_ANSWER;
    assert_int_equal(s1_engine_add(e, &req, &err), -1);
    assert_non_null(strstr(err.msg, "saved policy state counts"));
    q->kinds[0] = S1_TOK_THINKING;
    q->state[strlen(q->state) - 1] = 'x';
    assert_int_equal(s1_engine_add(e, &req, &err), -1);
    assert_non_null(strstr(err.msg, "hex words"));
    s1_engine_close(e);
    s1_resume_free(saved);
}

static void test_a_cancelled_request_stops_and_an_overlong_prompt_is_refused(void **state)
{
    (void)state;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){.max_context = 160});
    s1_request r = budget_request(0, problems[0], 0, 0);
    fx_add(e, &r);
    s1_err err = {{0}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(s1_engine_step(e, &err), 1);
    assert_int_equal(s1_engine_cancel(e, 0), 0);
    s1_result *res;
    fx_run(e, &res, 1);
    assert_int_equal(res->stop, S1_STOP_CANCELLED);
    assert_int_equal(res->n_gen, 3);
    s1_result_free(res);

    char long_problem[600];
    for (size_t i = 0; i < sizeof long_problem - 1; i++)
        long_problem[i] = i % 2 ? 'q' : ' ';
    long_problem[sizeof long_problem - 1] = '\0';
    r = fx_request(1, long_problem);
    assert_int_equal(s1_engine_add(e, &r, &err), -1);
    assert_non_null(strstr(err.msg, "context"));
    s1_engine_close(e);
}

/* The id of the token of the single byte 0 in dir's tokenizer; -1 if none. */
static int32_t nul_token(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    s1_err err;
    s1_tokenizer *t = s1_tokenizer_load(path, &err);
    int32_t *ids = NULL, id = -1;
    size_t n = 0;
    if (t && s1_tokenizer_encode(t, "", 1, 0, &ids, &n, &err) == 0 && n == 1) id = ids[0];
    free(ids);
    if (t) s1_tokenizer_free(t);
    return id;
}

/* A byte-level tokenizer has a token for byte 0; a model made to like it
 * generates NULs, which must neither cut the trace (what follows, the forced
 * end, is kept) nor reach it raw. */
static void test_a_nul_byte_in_the_generation_becomes_a_replacement_character(void **state)
{
    (void)state;
    char *dir = fx_gen_model("");
    assert_non_null(dir);
    int32_t nul = nul_token(dir);
    assert_true(nul >= 0);
    assert_int_equal(fx_boost_row(dir, nul, 50), 0);
    s1_result *r = fx_run_one(dir, (s1_engine_cfg){0}, budget_request(0, problems[0], 8, 4));
    bool generated_nul = false;
    for (size_t i = 0; i < r->n_gen; i++)
        generated_nul |= r->gen_ids[i] == nul;
    assert_true(generated_nul);
    assert_non_null(strstr(r->trace, "\xef\xbf\xbd"));
    assert_non_null(strstr(r->trace, "Final Answer:"));
    s1_result_free(r);
    fx_rm_model(dir);
}

static void test_the_qwen_tokenizer_gives_the_known_forced_end(void **state)
{
    (void)state;
    char *dir = fx_gen_model("--tokenizer qwen --vocab 151936");
    assert_non_null(dir);
    s1_result *r = fx_run_one(dir, (s1_engine_cfg){0}, budget_request(0, problems[0], 8, 4));
    const int32_t forced[] = {151644, 9217, 198, 19357, 21806, 25};
    assert_true(r->forced_end);
    assert_int_equal(r->thinking_tokens, 8);
    assert_true(r->n_gen >= 14);
    assert_memory_equal(r->gen_ids + 8, forced, sizeof forced);
    assert_int_equal(r->forced_tokens, 6);
    assert_true(r->prompt_ids[r->n_prompt - 2] == 26865); /* think */
    s1_result_free(r);
    fx_rm_model(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thinking_stops_at_exactly_the_budget_then_the_end_is_forced),
        cmocka_unit_test(test_early_delimiters_become_waits_until_min_think),
        cmocka_unit_test(test_ignore_stop_makes_exactly_that_many_waits),
        cmocka_unit_test(test_greedy_tokens_do_not_depend_on_the_batch),
        cmocka_unit_test(test_a_resumed_request_ends_exactly_as_an_uninterrupted_one),
        cmocka_unit_test(test_a_saved_state_that_does_not_fit_is_refused),
        cmocka_unit_test(test_a_cancelled_request_stops_and_an_overlong_prompt_is_refused),
        cmocka_unit_test(test_a_nul_byte_in_the_generation_becomes_a_replacement_character),
        cmocka_unit_test(test_the_qwen_tokenizer_gives_the_known_forced_end),
    };
    /* The last case needs the real Qwen2.5 tokenizer. */
    size_t n = sizeof tests / sizeof *tests;
    if (!s1test_shared("models/qwen2.5-tokenizer/tokenizer.json", "the Qwen forced-end case")) n--;
    return _cmocka_run_group_tests("tests", tests, n, setup, teardown);
}
