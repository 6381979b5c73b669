/* store/job.c: policy and sampling JSON <-> engine structs, and the problem
 * checks, with the same rules as the CHECK functions of the schema. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "job.h"

/* Parses policy/sampling and expects failure with msg containing want. */
static void expect_rejected(const char *policy, const char *sampling, const char *want)
{
    s1_job_params p;
    s1_err err = {{0}};
    assert_int_equal(s1_job_params_parse(policy, sampling, &p, &err), -1);
    assert_non_null(strstr(err.msg, want));
}

static void test_policy_json_round_trips_every_key(void **state)
{
    (void)state;
    s1_policy_cfg in = {.max_think = 16000,
                        .min_think = 10,
                        .ignore_stop = 2,
                        .max_answer = 300,
                        .system = "sys",
                        .think_end = "<|im_start|>",
                        .answer_header = "answer\n",
                        .answer_prefix = "Final Answer:",
                        .wait_string = "Wait"};
    s1_err err = {{0}};
    char *json = s1_job_policy_json(&in, &err);
    assert_non_null(json);
    s1_job_params p;
    assert_int_equal(s1_job_params_parse(json, NULL, &p, &err), 0);
    assert_int_equal(p.policy.max_think, 16000);
    assert_int_equal(p.policy.min_think, 10);
    assert_int_equal(p.policy.ignore_stop, 2);
    assert_int_equal(p.policy.max_answer, 300);
    assert_string_equal(p.policy.system, "sys");
    assert_string_equal(p.policy.think_end, "<|im_start|>");
    assert_string_equal(p.policy.answer_header, "answer\n");
    assert_string_equal(p.policy.answer_prefix, "Final Answer:");
    assert_string_equal(p.policy.wait_string, "Wait");
    s1_job_params_free(&p);
    free(json);
}

static void test_ladders_round_trip_and_bad_ones_are_rejected_by_name(void **state)
{
    (void)state;
    s1_policy_cfg in = {.max_think = 500, .ladder = {S1_LADDER_WAIT, 3, {0, 2, 4}}};
    s1_err err = {{0}};
    char *json = s1_job_policy_json(&in, &err);
    assert_string_equal(json, "{\"max_think\":500,\"waits\":[0,2,4]}");
    s1_job_params p;
    assert_int_equal(s1_job_params_parse(json, NULL, &p, &err), 0);
    assert_int_equal(p.policy.ladder.kind, S1_LADDER_WAIT);
    assert_int_equal(p.policy.ladder.n_rungs, 3);
    assert_int_equal(p.policy.ladder.rungs[2], 4);
    s1_job_params_free(&p);
    free(json);
    const struct {
        const char *json, *needle;
    } bad[] = {
        {"{\"budgets\":[4,2]}", "budgets: 2 is out of order"},
        {"{\"budgets\":[]}", "policy.budgets must be an array of 1 to 32"},
        {"{\"waits\":[1.5]}", "policy.waits must be an integer"},
        {"{\"budgets\":[4],\"waits\":[1]}", "not both"},
        {"{\"budgets\":[4],\"max_think\":4}", "budgets replaces max_think"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(s1_job_params_parse(bad[i].json, NULL, &p, &err), -1);
        if (!strstr(err.msg, bad[i].needle)) fail_msg("%s: \"%s\"", bad[i].json, err.msg);
    }
}

static void test_default_policy_and_sampling_are_empty_objects(void **state)
{
    (void)state;
    s1_policy_cfg pol = {0};
    s1_sampling smp = {0};
    s1_err err = {{0}};
    char *a = s1_job_policy_json(&pol, &err), *b = s1_job_sampling_json(&smp, &err);
    assert_string_equal(a, "{}");
    assert_string_equal(b, "{}");
    free(a);
    free(b);
}

static void test_missing_keys_keep_the_engine_defaults(void **state)
{
    (void)state;
    s1_job_params p;
    s1_err err = {{0}};
    assert_int_equal(s1_job_params_parse("{}", NULL, &p, &err), 0);
    assert_int_equal(p.policy.max_think, 0);
    assert_null(p.policy.wait_string);
    assert_true(p.sampling.temperature == 0);
    assert_int_equal(p.sampling.seed, 0);
}

static void test_sampling_json_prints_floats_as_written(void **state)
{
    (void)state;
    s1_sampling s = {.temperature = 0.7f, .top_p = 0.95f, .top_k = 20, .seed = 42};
    s1_err err = {{0}};
    char *json = s1_job_sampling_json(&s, &err);
    assert_string_equal(json, "{\"seed\":42,\"temperature\":0.7,\"top_k\":20,\"top_p\":0.95}");
    s1_job_params p;
    assert_int_equal(s1_job_params_parse(NULL, json, &p, &err), 0);
    assert_true(p.sampling.temperature == 0.7f);
    assert_true(p.sampling.top_p == 0.95f);
    assert_int_equal(p.sampling.top_k, 20);
    assert_int_equal(p.sampling.seed, 42);
    free(json);
}

static void test_largest_seed_is_accepted(void **state)
{
    (void)state;
    s1_job_params p;
    s1_err err = {{0}};
    assert_int_equal(s1_job_params_parse(NULL, "{\"seed\": 9223372036854775807}", &p, &err), 0);
    assert_true(p.sampling.seed == (uint64_t)INT64_MAX);
}

static void test_unknown_policy_key_is_rejected_by_name(void **state)
{
    (void)state;
    expect_rejected("{\"budget\": 10}", NULL, "unknown key \"budget\"");
    expect_rejected(NULL, "{\"temp\": 1}", "unknown key \"temp\"");
}

static void test_integer_written_with_a_fraction_is_rejected(void **state)
{
    (void)state;
    expect_rejected("{\"max_think\": 10.0}", NULL, "policy.max_think must be an integer");
    expect_rejected(NULL, "{\"top_k\": 1.5}", "sampling.top_k must be an integer");
}

static void test_out_of_range_values_are_rejected(void **state)
{
    (void)state;
    expect_rejected("{\"max_think\": 0}", NULL, "max_think");
    expect_rejected("{\"min_think\": -1}", NULL, "min_think");
    expect_rejected("{\"max_answer\": 2147483648}", NULL, "max_answer");
    expect_rejected(NULL, "{\"top_p\": 0}", "top_p");
    expect_rejected(NULL, "{\"top_p\": 1.5}", "top_p");
    expect_rejected(NULL, "{\"temperature\": -0.1}", "temperature");
    expect_rejected(NULL, "{\"seed\": -1}", "seed");
}

static void test_min_think_above_max_think_is_rejected(void **state)
{
    (void)state;
    expect_rejected("{\"max_think\": 10, \"min_think\": 11}", NULL,
                    "min_think 11 is above max_think 10");
}

static void test_wrong_types_are_rejected(void **state)
{
    (void)state;
    expect_rejected("{\"system\": 3}", NULL, "policy.system must be a string");
    expect_rejected("{\"max_think\": \"10\"}", NULL, "policy.max_think must be an integer");
    expect_rejected(NULL, "{\"temperature\": \"hot\"}", "sampling.temperature must be a number");
}

static void test_empty_delimiter_and_wait_string_are_rejected(void **state)
{
    (void)state;
    expect_rejected("{\"think_end\": \"\"}", NULL, "think_end must not be empty");
    expect_rejected("{\"wait_string\": \"\"}", NULL, "wait_string must not be empty");
}

static void test_text_that_is_not_a_json_object_is_rejected(void **state)
{
    (void)state;
    expect_rejected("[]", NULL, "policy: expected a JSON object");
    expect_rejected("{", NULL, "policy: not valid JSON");
    expect_rejected("{\"max_think\": 1, \"max_think\": 2}", NULL, "policy: not valid JSON");
}

static void test_policy_check_rejects_min_think_above_budget(void **state)
{
    (void)state;
    s1_policy_cfg p = {.max_think = 5, .min_think = 6};
    s1_err err = {{0}};
    assert_int_equal(s1_job_policy_check(&p, &err), -1);
    assert_null(s1_job_policy_json(&p, &err));
    p.max_think = 0; /* no budget: any min_think */
    assert_int_equal(s1_job_policy_check(&p, &err), 0);
}

static void test_policy_string_that_is_not_utf8_is_refused_not_dropped(void **state)
{
    (void)state;
    s1_policy_cfg p = {.max_think = 5, .system = "x\xff", .wait_string = "Wait"};
    s1_err err = {{0}};
    assert_null(s1_job_policy_json(&p, &err));
    assert_string_equal(err.msg, "policy.system: not valid UTF-8 at byte 1");
    p.system = "x\xc3\xa9"; /* é */
    char *json = s1_job_policy_json(&p, &err);
    assert_string_equal(json,
                        "{\"max_think\":5,\"system\":\"x\xc3\xa9\",\"wait_string\":\"Wait\"}");
    free(json);
}

/* Expects s1_job_problem_check to fail on text with want in the message. */
static void expect_bad_problem(const char *text, size_t len, size_t max, const char *want)
{
    s1_err err = {{0}};
    assert_int_equal(s1_job_problem_check("p.txt", text, len, max, &err), -1);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "p.txt"));
}

static void test_bad_problems_are_rejected_naming_the_file(void **state)
{
    (void)state;
    expect_bad_problem("", 0, 100, "empty");
    expect_bad_problem(" \n\t ", 4, 100, "empty");
    expect_bad_problem("a\0b", 3, 100, "NUL byte at offset 1");
    expect_bad_problem("ab\xff", 3, 100, "not valid UTF-8 at byte 2");
    expect_bad_problem("\xc0\xaf", 2, 100, "not valid UTF-8 at byte 0"); /* overlong '/' */
    expect_bad_problem("\xe2\x82", 2, 100, "not valid UTF-8");           /* cut short */
    expect_bad_problem("abcdef", 6, 5, "larger than the limit of 5 bytes");
}

static void test_problem_in_any_script_is_accepted(void **state)
{
    (void)state;
    const char *t = "Combien font 2+2 ? 二加二等于几？ ∑ 🙂";
    s1_err err = {{0}};
    assert_int_equal(s1_job_problem_check("p.txt", t, strlen(t), 1000, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_json_round_trips_every_key),
        cmocka_unit_test(test_ladders_round_trip_and_bad_ones_are_rejected_by_name),
        cmocka_unit_test(test_default_policy_and_sampling_are_empty_objects),
        cmocka_unit_test(test_missing_keys_keep_the_engine_defaults),
        cmocka_unit_test(test_sampling_json_prints_floats_as_written),
        cmocka_unit_test(test_largest_seed_is_accepted),
        cmocka_unit_test(test_unknown_policy_key_is_rejected_by_name),
        cmocka_unit_test(test_integer_written_with_a_fraction_is_rejected),
        cmocka_unit_test(test_out_of_range_values_are_rejected),
        cmocka_unit_test(test_min_think_above_max_think_is_rejected),
        cmocka_unit_test(test_wrong_types_are_rejected),
        cmocka_unit_test(test_empty_delimiter_and_wait_string_are_rejected),
        cmocka_unit_test(test_text_that_is_not_a_json_object_is_rejected),
        cmocka_unit_test(test_policy_check_rejects_min_think_above_budget),
        cmocka_unit_test(test_policy_string_that_is_not_utf8_is_refused_not_dropped),
        cmocka_unit_test(test_bad_problems_are_rejected_naming_the_file),
        cmocka_unit_test(test_problem_in_any_script_is_accepted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
