/* Forks and ladders end to end on the CPU backend with tiny generated models:
 * the contract of a ladder is that each rung's tokens, counts and answer are
 * those of a separate request with that one setting and the same seed,
 * greedy and sampled, with several samples, under preemption in a tiny KV
 * cache, and when cancelled midway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"

static fx_models models;
static fx_models think_tags;    /* a QwQ-like tokenizer: the delimiter is </think> */
static const char *model_dir;   /* tiny, random: rarely ends its thinking */
static const char *boosted_dir; /* the same, its delimiter made likely */

static const char *const problems[] = {
    "Compute the sum of the first 100 positive integers.",
    "How many ways are there to choose 2 people from a group of 10?",
    "What is 2 + 2?",
};

/* Every engine here has this context, the tiny KV cache's included: the
 * context decides where the answer reserve ends the thinking. */
enum { CONTEXT = 256 };

static const s1_sampling greedy = {0};
static const s1_sampling sampled = {.temperature = 0.9f, .top_p = 0.95f, .seed = 7};

static int setup(void **state)
{
    (void)state;
    if (fx_models_gen(&models) < 0 || fx_models_gen_think_tags(&think_tags) < 0) return -1;
    model_dir = models.plain;
    boosted_dir = models.boosted;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_models_rm(&models);
    fx_models_rm(&think_tags);
    return 0;
}

static s1_ladder ladder(s1_ladder_kind kind, int n, const int *rungs)
{
    s1_ladder l = {.kind = kind, .n_rungs = n};
    memcpy(l.rungs, rungs, sizeof *rungs * (size_t)n);
    return l;
}

/* The separate request a rung must equal: the ladder's request with the
 * rung's value in the field the ladder replaces, and sample k's seed. */
static s1_request rung_request(const s1_request *ladder_req, int rung, int sample)
{
    s1_request r = *ladder_req;
    const s1_ladder *l = &ladder_req->policy.ladder;
    if (l->kind == S1_LADDER_BUDGET) r.policy.max_think = l->rungs[rung];
    if (l->kind == S1_LADDER_WAIT) r.policy.ignore_stop = l->rungs[rung];
    r.policy.ladder = (s1_ladder){0};
    r.samples = 0;
    r.sampling.seed += (uint64_t)sample;
    return r;
}

static int n_rungs(const s1_request *r)
{
    return r->policy.ladder.kind == S1_LADDER_NONE ? 1 : r->policy.ladder.n_rungs;
}

static int n_samples(const s1_request *r)
{
    return r->samples > 1 ? r->samples : 1;
}

/* Runs the requests (tags 0..n-1) in one engine; results in fx_grid order. */
static s1_result **run_ladders(const char *dir, s1_engine_cfg cfg, const s1_request *reqs, int n,
                               s1_engine_stats *stats)
{
    cfg.max_context = CONTEXT;
    s1_engine *e = fx_open(dir, cfg);
    assert_int_equal(s1_engine_get_info(e)->max_context, CONTEXT);
    for (int i = 0; i < n; i++)
        fx_add(e, &reqs[i]);
    s1_result **res = fx_run_grid(e, n, n_samples(&reqs[0]), n_rungs(&reqs[0]));
    if (stats) s1_engine_get_stats(e, stats);
    s1_engine_close(e);
    return res;
}

/* Every (request, sample, rung) of a ladder run against its separate run,
 * all separate runs together in one roomy engine. */
static void assert_rungs_equal_separate_runs(const char *dir, const s1_request *reqs, int n,
                                             s1_result **ladder_res)
{
    int ns = n_samples(&reqs[0]), nr = n_rungs(&reqs[0]);
    int total = n * ns * nr;
    s1_request *sep = calloc((size_t)total, sizeof *sep);
    assert_non_null(sep);
    for (int i = 0; i < total; i++) {
        sep[i] = rung_request(&reqs[i / (ns * nr)], i % nr, i / nr % ns);
        sep[i].tag = (uint64_t)i;
    }
    s1_engine *e = fx_open(dir, (s1_engine_cfg){.max_context = CONTEXT});
    for (int i = 0; i < total; i++)
        fx_add(e, &sep[i]);
    s1_result **alone = fx_run_grid(e, total, 1, 1);
    for (int i = 0; i < total; i++) {
        fx_check_counts(e, ladder_res[i]);
        assert_int_equal(ladder_res[i]->sample, i / nr % ns);
        assert_int_equal(ladder_res[i]->rung, i % nr);
        fx_assert_same_run(ladder_res[i], alone[i]);
    }
    s1_engine_close(e);
    fx_free_grid(alone, total);
    free(sep);
}

static s1_request budget_ladder(uint64_t tag, const char *problem, s1_sampling sampling)
{
    static const int budgets[] = {4, 12, 24, 40};
    s1_request r = fx_request(tag, problem);
    r.policy.ladder = ladder(S1_LADDER_BUDGET, 4, budgets);
    r.policy.max_answer = 6;
    r.sampling = sampling;
    return r;
}

static s1_request wait_ladder(uint64_t tag, const char *problem, s1_sampling sampling)
{
    static const int waits[] = {0, 1, 2, 4};
    s1_request r = fx_request(tag, problem);
    r.policy.ladder = ladder(S1_LADDER_WAIT, 4, waits);
    r.policy.max_think = 120;
    r.policy.max_answer = 4;
    r.sampling = sampling;
    return r;
}

static s1_engine_stats check_ladder(const char *dir, s1_engine_cfg cfg, const s1_request *reqs,
                                    int n)
{
    s1_engine_stats st;
    s1_result **res = run_ladders(dir, cfg, reqs, n, &st);
    assert_rungs_equal_separate_runs(dir, reqs, n, res);
    fx_free_grid(res, n * n_samples(&reqs[0]) * n_rungs(&reqs[0]));
    return st;
}

static void test_each_budget_rung_equals_a_separate_run_greedy_and_sampled(void **state)
{
    (void)state;
    s1_request reqs[] = {budget_ladder(0, problems[0], greedy),
                         budget_ladder(1, problems[1], sampled)};
    check_ladder(model_dir, (s1_engine_cfg){0}, reqs, 2);
    /* The boosted model ends its thinking early: larger rungs share its answer. */
    check_ladder(boosted_dir, (s1_engine_cfg){0}, reqs, 2);
}

/* Rungs the thinking reached each took a fork; the rungs above the point
 * where the model ended its thinking itself share the largest rung's run. */
static void test_a_budget_ladder_forks_once_per_rung_its_thinking_reaches(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        s1_request r = budget_ladder(0, problems[0], greedy);
        s1_engine_stats st;
        const char *dir = m ? boosted_dir : model_dir;
        s1_result **res = run_ladders(dir, (s1_engine_cfg){0}, &r, 1, &st);
        int thought = res[3]->thinking_tokens, reached = 0;
        for (int i = 0; i < 3; i++) {
            if (r.policy.ladder.rungs[i] <= thought) {
                reached++;
                assert_true(res[i]->forced_end);
                assert_int_equal(res[i]->thinking_tokens, r.policy.ladder.rungs[i]);
            } else {
                fx_assert_same_run(res[i], res[3]);
            }
        }
        assert_int_equal(st.forks, reached);
        if (m) assert_true(reached < 3); /* the boosted model stops early */
        fx_free_grid(res, 4);
    }
}

static void test_each_wait_rung_equals_a_separate_ignore_stop_run(void **state)
{
    (void)state;
    s1_request reqs[] = {wait_ladder(0, problems[0], greedy), wait_ladder(1, problems[1], sampled),
                         wait_ladder(2, problems[2], greedy)};
    reqs[2].policy.min_think = 10;
    s1_engine_stats st;
    s1_result **res = run_ladders(boosted_dir, (s1_engine_cfg){0}, reqs, 3, &st);
    assert_true(st.forks > 0);
    /* Each rung fed its count of waits, unless the budget came first. */
    for (int i = 0; i < 4; i++)
        if (!res[i]->forced_end) assert_int_equal(res[i]->waits, reqs[0].policy.ladder.rungs[i]);
    assert_rungs_equal_separate_runs(boosted_dir, reqs, 3, res);
    fx_free_grid(res, 12);
}

/* The same contract on a think-tags model, which the engine serves in that
 * template by default: the rungs fork at </think> as they do at <|im_start|>. */
static void test_ladders_on_a_think_tags_model_equal_separate_runs(void **state)
{
    (void)state;
    s1_request budgets[] = {budget_ladder(0, problems[0], greedy),
                            budget_ladder(1, problems[1], sampled)};
    check_ladder(think_tags.plain, (s1_engine_cfg){0}, budgets, 2);
    check_ladder(think_tags.boosted, (s1_engine_cfg){0}, budgets, 2);
    s1_request waits[] = {wait_ladder(0, problems[2], greedy),
                          wait_ladder(1, problems[0], sampled)};
    waits[0].samples = waits[1].samples = 2;
    s1_engine_stats st;
    s1_result **res = run_ladders(think_tags.boosted, (s1_engine_cfg){0}, waits, 2, &st);
    assert_true(st.forks > 0);
    int waited = 0;
    for (int i = 0; i < 16; i++) {
        waited += res[i]->waits;
        assert_null(strstr(res[i]->trace, "<|im_start|>"));
    }
    assert_true(waited > 0);
    assert_rungs_equal_separate_runs(think_tags.boosted, waits, 2, res);
    fx_free_grid(res, 16);
}

static void test_samples_fork_after_the_prompt_and_each_equals_its_own_seed(void **state)
{
    (void)state;
    s1_request reqs[] = {budget_ladder(0, problems[0], sampled),
                         budget_ladder(1, problems[1], sampled)};
    reqs[0].samples = reqs[1].samples = 3;
    check_ladder(model_dir, (s1_engine_cfg){0}, reqs, 2);
    s1_request waits = wait_ladder(0, problems[2], sampled);
    waits.samples = 3;
    check_ladder(boosted_dir, (s1_engine_cfg){0}, &waits, 1);
    /* Without a ladder: one result per sample, the prompt computed once. */
    s1_request plain = fx_request(0, problems[0]);
    plain.policy.max_think = 8;
    plain.policy.max_answer = 2;
    plain.sampling = sampled;
    plain.samples = 4;
    s1_engine_stats st;
    s1_result **res = run_ladders(model_dir, (s1_engine_cfg){0}, &plain, 1, &st);
    assert_int_equal(st.forks, 3);
    assert_true(st.tokens_computed < 2 * res[0]->prompt_tokens);
    assert_rungs_equal_separate_runs(model_dir, &plain, 1, res);
    fx_free_grid(res, 4);
}

/* 16 blocks of 16 tokens for three ladders of two samples: forks and mains
 * are preempted and recomputed over and over. */
static void test_ladders_are_exact_when_preempted_in_a_tiny_kv_cache(void **state)
{
    (void)state;
    s1_engine_cfg tight = {.kv_blocks = CONTEXT / 16, .block_size = 16, .max_seqs = 6};
    s1_request reqs[3];
    for (int i = 0; i < 3; i++) {
        reqs[i] = budget_ladder((uint64_t)i, problems[i], i == 1 ? greedy : sampled);
        reqs[i].samples = 2;
    }
    assert_true(check_ladder(model_dir, tight, reqs, 3).preemptions > 0);
    for (int i = 0; i < 3; i++) {
        reqs[i] = wait_ladder((uint64_t)i, problems[i], i == 1 ? greedy : sampled);
        reqs[i].samples = 2;
    }
    assert_true(check_ladder(boosted_dir, tight, reqs, 3).preemptions > 0);
}

/* Cancelled once its first rung has answered: the rungs already done equal
 * their separate runs, every other rung comes back cancelled, and nothing
 * of the request is left in flight. */
static void test_a_ladder_cancelled_midway_returns_every_rung(void **state)
{
    (void)state;
    s1_request r = budget_ladder(0, problems[0], sampled);
    r.policy.ladder.rungs[3] = 4000;
    r.policy.min_think = 4;
    r.samples = 2;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){.max_context = CONTEXT});
    fx_add(e, &r);
    s1_result *got[8] = {0};
    int n_got = 0;
    s1_err err = {{0}};
    while (n_got == 0) {
        assert_true(s1_engine_step(e, &err) > 0);
        for (s1_result *x; (x = s1_engine_take_result(e)); n_got++)
            got[x->sample * 4 + x->rung] = x;
    }
    assert_int_equal(s1_engine_cancel(e, 0), 0);
    int left;
    do {
        left = s1_engine_step(e, &err);
        assert_true(left >= 0);
        for (s1_result *x; (x = s1_engine_take_result(e)); n_got++) {
            assert_null(got[x->sample * 4 + x->rung]);
            got[x->sample * 4 + x->rung] = x;
        }
    } while (left > 0);
    assert_int_equal(n_got, 8);
    assert_int_equal(s1_engine_cancel(e, 0), -1);
    int cancelled = 0;
    for (int i = 0; i < 8; i++) {
        fx_check_counts(e, got[i]);
        if (got[i]->stop == S1_STOP_CANCELLED) {
            cancelled++;
            continue;
        }
        s1_request one = rung_request(&r, i % 4, i / 4);
        s1_engine *e1 = fx_open(model_dir, (s1_engine_cfg){.max_context = CONTEXT});
        fx_add(e1, &one);
        s1_result **alone = fx_run_grid(e1, 1, 1, 1);
        fx_assert_same_run(got[i], alone[0]);
        fx_free_grid(alone, 1);
        s1_engine_close(e1);
    }
    assert_true(cancelled >= 2); /* the largest rung of each sample */
    assert_true(got[3]->stop == S1_STOP_CANCELLED && got[7]->stop == S1_STOP_CANCELLED);
    s1_engine_close(e);
    for (int i = 0; i < 8; i++)
        s1_result_free(got[i]);
}

static void test_ladders_that_cannot_run_are_refused(void **state)
{
    (void)state;
    s1_engine *e = fx_open(model_dir, (s1_engine_cfg){0});
    s1_request r = budget_ladder(0, problems[0], greedy);
    r.policy.ladder.rungs[2] = 12;
    fx_assert_add_fails(e, &r, "ascending");
    r = budget_ladder(0, problems[0], greedy);
    r.policy.max_think = 100;
    fx_assert_add_fails(e, &r, "replaces policy.max_think");
    r = budget_ladder(0, problems[0], greedy);
    r.policy.min_think = 5;
    fx_assert_add_fails(e, &r, "smallest budget");
    r = wait_ladder(0, problems[0], greedy);
    r.policy.ignore_stop = 1;
    fx_assert_add_fails(e, &r, "replaces policy.ignore_stop");
    r = budget_ladder(0, problems[0], greedy);
    r.policy.ladder.n_rungs = S1_MAX_RUNGS + 1;
    fx_assert_add_fails(e, &r, "rungs");
    r = budget_ladder(0, problems[0], greedy);
    r.raw = true;
    fx_assert_add_fails(e, &r, "raw");
    r = budget_ladder(0, problems[0], greedy);
    r.samples = S1_MAX_SAMPLES + 1;
    fx_assert_add_fails(e, &r, "samples");
    s1_engine_close(e);
}

/* Runs r for steps steps, taking (and dropping, as a daemon killed before
 * writing them would) the results that came, then saves it; the engine is
 * closed, as by a crash. NULL when r ended first. */
static s1_resume *save_after_steps(const char *dir, const s1_request *r, int steps)
{
    s1_engine *e = fx_open(dir, (s1_engine_cfg){.max_context = CONTEXT});
    fx_add(e, r);
    s1_err err = {{0}};
    int left = 1;
    for (int i = 0; i < steps && left > 0; i++) {
        left = s1_engine_step(e, &err);
        assert_true(left >= 0);
        for (s1_result *x; (x = s1_engine_take_result(e));)
            s1_result_free(x);
    }
    s1_resume *saved = left > 0 ? s1_engine_save(e, r->tag, &err) : NULL;
    assert_true(saved || left == 0);
    s1_engine_close(e);
    return saved;
}

/* A save that runs some (sample, rung) twice or not at all is refused. */
static void assert_incomplete_saves_are_refused(const char *dir, s1_request r, s1_resume *saved)
{
    s1_engine *e = fx_open(dir, (s1_engine_cfg){.max_context = CONTEXT});
    r.resume = saved;
    saved->n--;
    fx_assert_add_fails(e, &r, "no saved sequence runs sample");
    s1_resume_seq last = saved->seqs[saved->n];
    saved->seqs[saved->n] = saved->seqs[0];
    saved->n++;
    fx_assert_add_fails(e, &r, "twice");
    saved->seqs[saved->n - 1] = last;
    s1_engine_close(e);
}

/* Killed after any step (mid-thinking, some rungs forked, some answered and
 * their results lost with the process), a request of several samples and
 * rungs resumed from its save in another engine gives every (sample, rung)
 * exactly the run of an uninterrupted one, greedy and sampled; its rebuilt
 * sequences share their prompt and common thinking as the forks did, so the
 * resumed run computes no more than the uninterrupted one (to a block). */
static void
test_samples_and_ladders_resumed_after_any_step_end_as_if_never_interrupted(void **state)
{
    (void)state;
    s1_request reqs[] = {budget_ladder(0, problems[0], sampled),
                         wait_ladder(0, problems[1], sampled),
                         budget_ladder(0, problems[2], greedy), fx_request(0, problems[1])};
    const char *dirs[] = {model_dir, boosted_dir, NULL, model_dir};
    static const int long_budgets[] = {30, 60, 100};
    reqs[2].policy.ladder = ladder(S1_LADDER_BUDGET, 3, long_budgets);
    reqs[2].policy.ignore_stop = 1000; /* thinks on: branches share long stretches with the trunk */
    dirs[2] = model_dir;
    reqs[0].samples = reqs[1].samples = reqs[3].samples = 3;
    reqs[3].policy.max_think = 30;
    reqs[3].sampling = sampled;
    for (int q = 0; q < 4; q++) {
        int cells = n_samples(&reqs[q]) * n_rungs(&reqs[q]);
        s1_engine_stats whole_st;
        s1_result **whole = run_ladders(dirs[q], (s1_engine_cfg){0}, &reqs[q], 1, &whole_st);
        s1_resume *saved;
        int resumes = 0;
        for (int steps = 2; (saved = save_after_steps(dirs[q], &reqs[q], steps)); steps += 7) {
            assert_true(saved->n >= n_samples(&reqs[q]));
            resumes++;
            if (q == 0 && steps == 16) assert_incomplete_saves_are_refused(dirs[q], reqs[q], saved);
            s1_request r = reqs[q];
            r.resume = saved;
            s1_engine_stats st;
            s1_result **resumed = run_ladders(dirs[q], (s1_engine_cfg){0}, &r, 1, &st);
            /* The rebuilt sequences shared their common tokens again, but
             * for the part of a block each forked in (shared when it forked). */
            assert_true(st.tokens_computed <= whole_st.tokens_computed + saved->n * 15);
            for (int i = 0; i < cells; i++) {
                assert_int_equal(resumed[i]->waits, whole[i]->waits);
                assert_int_equal(resumed[i]->forced_end, whole[i]->forced_end);
                fx_assert_same_run(resumed[i], whole[i]);
            }
            fx_free_grid(resumed, cells);
            s1_resume_free(saved);
        }
        assert_true(resumes >= 2);
        fx_free_grid(whole, cells);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_budget_rung_equals_a_separate_run_greedy_and_sampled),
        cmocka_unit_test(test_a_budget_ladder_forks_once_per_rung_its_thinking_reaches),
        cmocka_unit_test(test_each_wait_rung_equals_a_separate_ignore_stop_run),
        cmocka_unit_test(test_ladders_on_a_think_tags_model_equal_separate_runs),
        cmocka_unit_test(test_samples_fork_after_the_prompt_and_each_equals_its_own_seed),
        cmocka_unit_test(test_ladders_are_exact_when_preempted_in_a_tiny_kv_cache),
        cmocka_unit_test(test_a_ladder_cancelled_midway_returns_every_rung),
        cmocka_unit_test(test_ladders_that_cannot_run_are_refused),
        cmocka_unit_test(
            test_samples_and_ladders_resumed_after_any_step_end_as_if_never_interrupted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
