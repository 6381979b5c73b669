/* Budget forcing driven by scripted token streams: every transition of
 * DESIGN.md "Budget forcing". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

enum { DELIM = 100, EOS = 101, ALT = 102, WAIT = 200 };
static const int32_t wait_ids[] = {WAIT};
static const int32_t answer_ids[] = {300, 301, 302};

static s1_vocab vocab(void)
{
    return (s1_vocab){.think_end = DELIM,
                      .eos = EOS,
                      .eos_alt = -1,
                      .wait = wait_ids,
                      .n_wait = 1,
                      .answer_start = answer_ids,
                      .n_answer_start = 3};
}

static s1_policy *policy(int max_think, int min_think, int ignore_stop, int max_answer, int room)
{
    s1_policy_cfg cfg = {.max_think = max_think,
                         .min_think = min_think,
                         .ignore_stop = ignore_stop,
                         .max_answer = max_answer};
    s1_vocab v = vocab();
    s1_err err = {{0}};
    s1_policy *p = s1_policy_new(&cfg, &v, room, &err);
    assert_non_null(p);
    return p;
}

/* What one step appended. */
typedef struct {
    int n;
    int32_t ids[16];
    uint8_t kinds[16];
} fed;

static fed step(s1_policy *p, int32_t sampled)
{
    fed f;
    assert_true(s1_policy_step_cap(p) <= 16);
    f.n = s1_policy_step(p, sampled, f.ids, f.kinds, 16);
    assert_true(f.n <= s1_policy_step_cap(p));
    return f;
}

static void assert_fed(fed f, int n, const int32_t *ids, const uint8_t *kinds)
{
    assert_int_equal(f.n, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(f.ids[i], ids[i]);
        assert_int_equal(f.kinds[i], kinds[i]);
    }
}

static s1_policy_counts counts(const s1_policy *p)
{
    s1_policy_counts c;
    s1_policy_get_counts(p, &c);
    return c;
}

static void assert_stopped(const s1_policy *p, s1_stop_reason want)
{
    s1_stop_reason why = S1_STOP_CANCELLED;
    assert_true(s1_policy_done(p, &why));
    assert_int_equal(why, want);
}

static void test_forced_end_follows_the_token_that_reaches_the_budget(void **state)
{
    (void)state;
    s1_policy *p = policy(3, 0, 0, 0, 1000);
    assert_fed(step(p, 7), 1, (int32_t[]){7}, (uint8_t[]){S1_TOK_THINKING});
    assert_fed(step(p, 8), 1, (int32_t[]){8}, (uint8_t[]){S1_TOK_THINKING});
    assert_true(counts(p).thinking_phase);
    assert_fed(
        step(p, 9), 5, (int32_t[]){9, DELIM, 300, 301, 302},
        (uint8_t[]){S1_TOK_THINKING, S1_TOK_FORCED, S1_TOK_FORCED, S1_TOK_FORCED, S1_TOK_FORCED});
    s1_policy_counts c = counts(p);
    assert_false(c.thinking_phase);
    assert_true(c.forced_end);
    assert_int_equal(c.thinking, 3);
    assert_int_equal(c.forced, 4);
    assert_fed(step(p, 42), 1, (int32_t[]){42}, (uint8_t[]){S1_TOK_ANSWER});
    assert_false(s1_policy_done(p, NULL));
    assert_fed(step(p, EOS), 1, (int32_t[]){EOS}, (uint8_t[]){S1_TOK_ANSWER});
    assert_stopped(p, S1_STOP_EOS);
    assert_int_equal(counts(p).answer, 2);
    assert_int_equal(step(p, 5).n, 0);
    s1_policy_free(p);
}

static void test_budget_of_one_forces_the_end_after_the_first_token(void **state)
{
    (void)state;
    s1_policy *p = policy(1, 0, 0, 0, 1000);
    fed f = step(p, 7);
    assert_int_equal(f.n, 5);
    assert_int_equal(f.kinds[0], S1_TOK_THINKING);
    assert_int_equal(f.ids[1], DELIM);
    assert_true(counts(p).forced_end);
    assert_int_equal(counts(p).thinking, 1);
    s1_policy_free(p);
}

static void test_wait_is_fed_when_stop_comes_before_min_think(void **state)
{
    (void)state;
    s1_policy *p = policy(10, 2, 0, 0, 1000);
    step(p, 7);
    assert_fed(step(p, DELIM), 1, (int32_t[]){WAIT}, (uint8_t[]){S1_TOK_FORCED});
    assert_int_equal(counts(p).waits, 1);
    assert_true(counts(p).thinking_phase);
    step(p, 8);
    assert_fed(step(p, DELIM), 1, (int32_t[]){DELIM}, (uint8_t[]){S1_TOK_ANSWER});
    s1_policy_counts c = counts(p);
    assert_false(c.thinking_phase);
    assert_false(c.forced_end);
    assert_int_equal(c.thinking, 2);
    assert_int_equal(c.forced, 1);
    assert_int_equal(c.answer, 1);
    s1_policy_free(p);
}

static void test_ignore_stop_suppresses_the_first_delimiters(void **state)
{
    (void)state;
    s1_policy *p = policy(0, 0, 2, 0, 1000);
    assert_int_equal(step(p, DELIM).ids[0], WAIT);
    assert_int_equal(step(p, DELIM).ids[0], WAIT);
    assert_int_equal(counts(p).waits, 2);
    assert_fed(step(p, DELIM), 1, (int32_t[]){DELIM}, (uint8_t[]){S1_TOK_ANSWER});
    assert_false(counts(p).thinking_phase);
    assert_int_equal(counts(p).thinking, 0);
    s1_policy_free(p);
}

static void test_delimiter_is_accepted_without_min_think_or_ignore_stop(void **state)
{
    (void)state;
    s1_policy *p = policy(5, 0, 0, 0, 1000);
    step(p, 7);
    assert_fed(step(p, DELIM), 1, (int32_t[]){DELIM}, (uint8_t[]){S1_TOK_ANSWER});
    assert_false(counts(p).forced_end);
    /* The budget no longer applies in the answer phase. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(step(p, 7).kinds[0], S1_TOK_ANSWER);
    assert_false(s1_policy_done(p, NULL));
    s1_policy_free(p);
}

static void test_waits_do_not_count_toward_the_budget(void **state)
{
    (void)state;
    s1_policy *p = policy(3, 0, 5, 0, 1000);
    step(p, 7);
    step(p, DELIM);
    step(p, 8);
    step(p, DELIM);
    assert_int_equal(counts(p).thinking, 2);
    fed f = step(p, 9);
    assert_int_equal(f.n, 5);
    assert_true(counts(p).forced_end);
    assert_int_equal(counts(p).forced, 2 + 4);
    s1_policy_free(p);
}

static void test_max_answer_stops_the_answer(void **state)
{
    (void)state;
    s1_policy *p = policy(1, 0, 0, 2, 1000);
    step(p, 7);
    step(p, 10);
    assert_false(s1_policy_done(p, NULL));
    assert_int_equal(step(p, 11).n, 1);
    assert_stopped(p, S1_STOP_MAX_ANSWER);
    assert_int_equal(counts(p).answer, 2);
    s1_policy_free(p);
}

static void test_eos_while_thinking_ends_like_the_delimiter(void **state)
{
    (void)state;
    s1_policy *p = policy(0, 2, 0, 0, 1000);
    assert_fed(step(p, EOS), 1, (int32_t[]){WAIT}, (uint8_t[]){S1_TOK_FORCED});
    step(p, 7);
    step(p, 8);
    assert_fed(step(p, EOS), 1, (int32_t[]){EOS}, (uint8_t[]){S1_TOK_ANSWER});
    assert_stopped(p, S1_STOP_EOS);
    s1_policy_free(p);
}

static void test_context_full_during_thinking_stops_with_context(void **state)
{
    (void)state;
    s1_policy *p = policy(10, 0, 0, 0, 3);
    step(p, 1);
    step(p, 2);
    assert_false(s1_policy_done(p, NULL));
    assert_int_equal(step(p, 3).n, 1);
    assert_stopped(p, S1_STOP_CONTEXT);
    assert_int_equal(counts(p).thinking, 3);
    s1_policy_free(p);
}

static void test_context_full_during_the_forced_end_cuts_it(void **state)
{
    (void)state;
    s1_policy *p = policy(2, 0, 0, 0, 4);
    step(p, 1);
    assert_fed(step(p, 2), 3, (int32_t[]){2, DELIM, 300},
               (uint8_t[]){S1_TOK_THINKING, S1_TOK_FORCED, S1_TOK_FORCED});
    assert_stopped(p, S1_STOP_CONTEXT);
    s1_policy_counts c = counts(p);
    assert_int_equal(c.thinking + c.forced + c.answer, 4);
    s1_policy_free(p);
}

static void test_eos_that_fills_the_context_stops_with_eos(void **state)
{
    (void)state;
    s1_policy *p = policy(1, 0, 0, 0, 6);
    step(p, 1);
    step(p, EOS);
    assert_stopped(p, S1_STOP_EOS);
    s1_policy_free(p);
}

/* A scripted stream with every kind of event: the counts must add up to what
 * was appended, token by token. */
static void test_counts_add_up_to_the_tokens_appended(void **state)
{
    (void)state;
    s1_policy *p = policy(20, 4, 4, 6, 1000);
    const int32_t script[] = {5,  DELIM, 6,  7,  DELIM, 8,  DELIM, EOS, 9,  10, 11,
                              12, 13,    14, 15, 16,    17, 18,    19,  20, 21, 22,
                              23, 24,    25, 26, 27,    28, 29,    30,  31};
    int n_kind[4] = {0}, total = 0;
    for (size_t i = 0; i < sizeof script / sizeof *script && !s1_policy_done(p, NULL); i++) {
        fed f = step(p, script[i]);
        for (int j = 0; j < f.n; j++)
            n_kind[f.kinds[j]]++;
        total += f.n;
    }
    s1_policy_counts c = counts(p);
    assert_stopped(p, S1_STOP_MAX_ANSWER);
    assert_true(c.forced_end);
    assert_int_equal(c.waits, 4);
    assert_int_equal(c.thinking, 20);
    assert_int_equal(n_kind[S1_TOK_THINKING], c.thinking);
    assert_int_equal(n_kind[S1_TOK_FORCED], c.forced);
    assert_int_equal(n_kind[S1_TOK_ANSWER], c.answer);
    assert_int_equal(c.forced, 4 + 4);
    assert_int_equal(c.answer, 6);
    assert_int_equal(total, c.thinking + c.forced + c.answer);
    s1_policy_free(p);
}

static void test_raw_stops_at_max_tokens_or_either_end_token(void **state)
{
    (void)state;
    s1_vocab v = vocab();
    v.eos_alt = ALT;
    s1_err err = {{0}};
    s1_policy *p = s1_policy_new_raw(2, &v, 100, &err);
    assert_non_null(p);
    assert_fed(step(p, DELIM), 1, (int32_t[]){DELIM}, (uint8_t[]){S1_TOK_ANSWER});
    step(p, 3);
    assert_stopped(p, S1_STOP_MAX_TOKENS);
    s1_policy_free(p);

    p = s1_policy_new_raw(0, &v, 100, &err);
    step(p, 3);
    step(p, ALT);
    assert_stopped(p, S1_STOP_EOS);
    s1_policy_free(p);
}

static void assert_rejected(s1_policy_cfg cfg, s1_vocab v, const char *field)
{
    s1_err err = {{0}};
    assert_null(s1_policy_new(&cfg, &v, 100, &err));
    assert_non_null(strstr(err.msg, field));
}

static void test_bad_policies_are_rejected_naming_the_field(void **state)
{
    (void)state;
    s1_vocab v = vocab();
    assert_rejected((s1_policy_cfg){.max_think = 5, .min_think = 6}, v, "min_think");
    assert_rejected((s1_policy_cfg){.max_think = -1}, v, "max_think");
    assert_rejected((s1_policy_cfg){.ignore_stop = -2}, v, "ignore_stop");
    s1_vocab no_wait = v;
    no_wait.n_wait = 0;
    assert_rejected((s1_policy_cfg){0}, no_wait, "wait_string");
    s1_vocab no_answer = v;
    no_answer.n_answer_start = 0;
    assert_rejected((s1_policy_cfg){0}, no_answer, "answer_prefix");
    s1_err err = {{0}};
    s1_policy_cfg ok = {.max_think = 5, .min_think = 5};
    s1_policy *p = s1_policy_new(&ok, &v, 100, &err);
    assert_non_null(p);
    s1_policy_free(p);
}

static s1_policy *ladder_policy(s1_ladder_kind kind, int n, const int *rungs, int max_think)
{
    s1_policy_cfg cfg = {.max_think = max_think, .ladder = {.kind = kind, .n_rungs = n}};
    memcpy(cfg.ladder.rungs, rungs, sizeof *rungs * (size_t)n);
    s1_vocab v = vocab();
    s1_err err = {{0}};
    s1_policy *p = s1_policy_new(&cfg, &v, 1000, &err);
    assert_non_null(p);
    return p;
}

static void assert_rungs(const s1_policy *p, int first, int n)
{
    int f, k;
    s1_policy_rungs(p, &f, &k);
    assert_int_equal(f, first);
    assert_int_equal(k, n);
}

static void test_a_budget_ladder_branches_at_each_smaller_budget(void **state)
{
    (void)state;
    s1_policy *p = ladder_policy(S1_LADDER_BUDGET, 3, (int[]){2, 4, 6}, 0);
    assert_rungs(p, 0, 3);
    assert_int_equal(s1_policy_branch(p, 7), 0);
    step(p, 7);
    assert_int_equal(s1_policy_branch(p, DELIM), 0);
    assert_int_equal(s1_policy_branch(p, 8), 1);
    s1_policy *fork = s1_policy_fork(p, 1);
    assert_rungs(fork, 0, 1);
    assert_rungs(p, 1, 2);
    assert_int_equal(step(fork, 8).n, 5); /* the forked rung's forced end */
    assert_true(counts(fork).forced_end);
    assert_int_equal(step(p, 8).n, 1); /* the ladder thinks on */
    assert_int_equal(s1_policy_branch(p, 9), 0);
    step(p, 9);
    assert_int_equal(s1_policy_branch(p, 9), 1);
    s1_policy_free(s1_policy_fork(p, 1));
    assert_rungs(p, 2, 1);
    step(p, 9);
    step(p, 9);
    assert_int_equal(s1_policy_branch(p, 9), 0); /* the last rung is its own */
    assert_int_equal(step(p, 9).n, 5);
    s1_policy_free(fork);
    s1_policy_free(p);
}

static void test_a_wait_ladder_branches_where_a_smaller_count_accepts_the_stop(void **state)
{
    (void)state;
    s1_policy *p = ladder_policy(S1_LADDER_WAIT, 3, (int[]){0, 1, 3}, 0);
    assert_int_equal(s1_policy_branch(p, 7), 0);
    assert_int_equal(s1_policy_branch(p, DELIM), 1);
    s1_policy *fork = s1_policy_fork(p, 1);
    assert_fed(step(fork, DELIM), 1, (int32_t[]){DELIM}, (uint8_t[]){S1_TOK_ANSWER});
    assert_fed(step(p, DELIM), 1, (int32_t[]){WAIT}, (uint8_t[]){S1_TOK_FORCED});
    assert_int_equal(s1_policy_branch(p, EOS), 1);
    s1_policy_free(s1_policy_fork(p, 1));
    step(p, EOS);
    step(p, EOS);
    assert_int_equal(s1_policy_branch(p, DELIM), 0); /* 3 waits: the ladder's own rung */
    assert_fed(step(p, DELIM), 1, (int32_t[]){DELIM}, (uint8_t[]){S1_TOK_ANSWER});
    assert_int_equal(counts(p).waits, 3);
    assert_rungs(p, 2, 1);
    s1_policy_free(fork);
    s1_policy_free(p);
}

/* A plain fork (a sample) keeps the pending rungs and copies the counts. */
static void test_a_plain_fork_copies_counts_and_pending_rungs(void **state)
{
    (void)state;
    s1_policy *p = ladder_policy(S1_LADDER_BUDGET, 2, (int[]){3, 9}, 0);
    step(p, 7);
    s1_policy *c = s1_policy_fork(p, 0);
    assert_rungs(c, 0, 2);
    assert_int_equal(counts(c).thinking, 1);
    step(c, 7);
    assert_int_equal(counts(p).thinking, 1);
    assert_int_equal(s1_policy_branch(c, 7), 1);
    s1_policy_free(c);
    s1_policy_free(p);
}

/* room 40, answer start 3: 36 spare, a reserve of 5 answer tokens; thinking
 * ends after 40 - (1 + 3 + 5) = 31 tokens, before the budget of 50. */
static void test_thinking_ends_while_the_answer_reserve_fits(void **state)
{
    (void)state;
    s1_policy *p = policy(50, 0, 0, 5, 40);
    for (int i = 0; i < 30; i++)
        assert_int_equal(step(p, 7).n, 1);
    assert_int_equal(step(p, 7).n, 5);
    s1_policy_counts c = counts(p);
    assert_true(c.forced_end && c.context_end);
    assert_int_equal(c.thinking, 31);
    for (int i = 0; i < 5; i++)
        step(p, 7);
    assert_stopped(p, S1_STOP_MAX_ANSWER);
    s1_policy_free(p);
    /* Without max_answer the reserve is half of the spare room. */
    p = policy(0, 0, 0, 0, 40);
    while (counts(p).thinking_phase)
        step(p, 7);
    assert_int_equal(counts(p).thinking, 40 - (1 + 3 + 18));
    s1_policy_free(p);
}

static void test_bad_ladders_are_rejected_naming_the_field(void **state)
{
    (void)state;
    const struct {
        s1_policy_cfg cfg;
        const char *needle;
    } cases[] = {
        {{.ladder = {S1_LADDER_BUDGET, 2, {5, 5}}}, "policy.budgets: rung 2"},
        {{.ladder = {S1_LADDER_BUDGET, 1, {0}}}, "at least 1"},
        {{.ladder = {S1_LADDER_WAIT, 2, {2, 1}}}, "policy.waits"},
        {{.ladder = {S1_LADDER_WAIT, 0, {0}}}, "rungs"},
        {{.max_think = 8, .ladder = {S1_LADDER_BUDGET, 1, {4}}}, "max_think"},
        {{.min_think = 8, .ladder = {S1_LADDER_BUDGET, 1, {4}}}, "smallest budget"},
    };
    s1_vocab v = vocab();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        s1_err err = {{0}};
        assert_null(s1_policy_new(&cases[i].cfg, &v, 100, &err));
        if (!strstr(err.msg, cases[i].needle))
            fail_msg("\"%s\" does not mention %s", err.msg, cases[i].needle);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forced_end_follows_the_token_that_reaches_the_budget),
        cmocka_unit_test(test_budget_of_one_forces_the_end_after_the_first_token),
        cmocka_unit_test(test_wait_is_fed_when_stop_comes_before_min_think),
        cmocka_unit_test(test_ignore_stop_suppresses_the_first_delimiters),
        cmocka_unit_test(test_delimiter_is_accepted_without_min_think_or_ignore_stop),
        cmocka_unit_test(test_waits_do_not_count_toward_the_budget),
        cmocka_unit_test(test_max_answer_stops_the_answer),
        cmocka_unit_test(test_eos_while_thinking_ends_like_the_delimiter),
        cmocka_unit_test(test_context_full_during_thinking_stops_with_context),
        cmocka_unit_test(test_context_full_during_the_forced_end_cuts_it),
        cmocka_unit_test(test_eos_that_fills_the_context_stops_with_eos),
        cmocka_unit_test(test_counts_add_up_to_the_tokens_appended),
        cmocka_unit_test(test_raw_stops_at_max_tokens_or_either_end_token),
        cmocka_unit_test(test_bad_policies_are_rejected_naming_the_field),
        cmocka_unit_test(test_a_budget_ladder_branches_at_each_smaller_budget),
        cmocka_unit_test(test_a_wait_ladder_branches_where_a_smaller_count_accepts_the_stop),
        cmocka_unit_test(test_a_plain_fork_copies_counts_and_pending_rungs),
        cmocka_unit_test(test_thinking_ends_while_the_answer_reserve_fits),
        cmocka_unit_test(test_bad_ladders_are_rejected_naming_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
