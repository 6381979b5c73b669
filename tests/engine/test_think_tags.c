/* The think-tags template (QwQ-32B and its kind think between <think> and
 * </think>) on tiny models made by tools/gen_model.py --think-tags: the
 * prompt's exact text, the template chosen by the tokenizer, budget forcing
 * and waits with </think> as the delimiter, and refusals where the tokenizer
 * lacks the tags. Ladders on such a model are in test_ladder.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "prompt.h"

static fx_models tags;  /* think-tags models: plain and </think> boosted */
static fx_models plain; /* s1 models: their tokenizer has no <think> */
static char *deepseek;  /* DeepSeek's chat tokens with the tags (R1-distill) */
static int32_t think_open, think_close;

static const char problem[] = "What is 2 + 2?";

static int setup(void **state)
{
    (void)state;
    deepseek = fx_gen_model("--markup deepseek");
    if (fx_models_gen_think_tags(&tags) < 0 || fx_models_gen(&plain) < 0 || !deepseek) return -1;
    think_open = fx_token_id(tags.plain, "<think>");
    think_close = tags.think_end;
    return think_open >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fx_models_rm(&tags);
    fx_models_rm(&plain);
    fx_rm_model(deepseek);
    return 0;
}

/* Renders problem in dir's tokenizer with cfg and compares with text encoded
 * with its markup matched. */
static void assert_prompt_is(const char *dir, const s1_policy_cfg *cfg, const char *text)
{
    s1_err err = {{0}};
    s1_tokenizer *t = s1_tokenizer_open(dir, &err);
    assert_non_null(t);
    int32_t *ids = NULL, *want = NULL;
    size_t n = 0, n_want = 0;
    assert_int_equal(s1_prompt_render(t, cfg, problem, strlen(problem), &ids, &n, &err), 0);
    assert_int_equal(s1_tokenizer_encode(t, text, strlen(text), 1, &want, &n_want, &err), 0);
    assert_int_equal(n, n_want);
    assert_memory_equal(ids, want, n * sizeof *ids);
    free(ids);
    free(want);
    s1_tokenizer_free(t);
}

static void
test_the_think_tags_prompt_opens_a_think_tag_and_has_no_system_turn_by_default(void **state)
{
    (void)state;
    s1_policy_cfg cfg = {.template = S1_TEMPLATE_THINK_TAGS};
    assert_prompt_is(tags.plain, &cfg,
                     "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n"
                     "<|im_start|>assistant\n<think>\n");
    cfg.system = "Think step by step.";
    assert_prompt_is(tags.plain, &cfg,
                     "<|im_start|>system\nThink step by step.<|im_end|>\n"
                     "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n"
                     "<|im_start|>assistant\n<think>\n");
    /* The same tokenizer still renders the s1 template when asked. */
    cfg = (s1_policy_cfg){.template = S1_TEMPLATE_S1};
    assert_prompt_is(tags.plain, &cfg,
                     "<|im_start|>system\n" S1_DEFAULT_SYSTEM "<|im_end|>\n"
                     "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n"
                     "<|im_start|>assistant\n<|im_start|>think\n");
}

static void test_the_default_template_follows_the_tokenizer_unless_configured(void **state)
{
    (void)state;
    s1_engine *e = fx_open(tags.plain, (s1_engine_cfg){0});
    assert_string_equal(s1_engine_get_info(e)->template_name, "think-tags");
    s1_engine_close(e);
    e = fx_open(tags.plain, (s1_engine_cfg){.template = S1_TEMPLATE_S1});
    assert_string_equal(s1_engine_get_info(e)->template_name, "s1");
    s1_engine_close(e);
    e = fx_open(plain.plain, (s1_engine_cfg){0});
    assert_string_equal(s1_engine_get_info(e)->template_name, "s1");
    s1_engine_close(e);
}

/* A configured default that cannot work is refused when the model loads,
 * not on the first job. */
static void test_an_engine_refuses_a_think_tags_default_its_tokenizer_cannot_serve(void **state)
{
    (void)state;
    s1_engine_cfg cfg = {.model_dir = plain.plain,
                         .threads = 1,
                         .kv_blocks = 64,
                         .template = S1_TEMPLATE_THINK_TAGS};
    s1_err err = {{0}};
    assert_null(s1_engine_open(&cfg, &err));
    assert_non_null(strstr(err.msg, plain.plain));
    assert_non_null(strstr(err.msg, "think-tags template needs </think> as one token"));
    assert_non_null(strstr(err.msg, "use the s1 template"));
}

static void test_a_think_tags_job_on_a_model_without_the_tags_is_refused(void **state)
{
    (void)state;
    s1_engine *e = fx_open(plain.plain, (s1_engine_cfg){0});
    s1_request r = fx_request(0, problem);
    r.policy.template = S1_TEMPLATE_THINK_TAGS;
    fx_assert_add_fails(e, &r, "the think-tags template needs </think> as one token");
    s1_engine_close(e);
}

/* Index of the first generated token after the first n thinking ones. */
static size_t after_thinking(const s1_result *r, int n)
{
    size_t i = 0;
    for (int thinking = 0; thinking < n; i++)
        thinking += r->gen_kinds[i] == S1_TOK_THINKING;
    return i;
}

static void test_the_budget_forces_the_close_tag_then_the_answer_prefix(void **state)
{
    (void)state;
    s1_request r = fx_request(0, problem);
    r.policy.max_think = r.policy.min_think = 32;
    r.policy.max_answer = 6;
    s1_result *res = fx_run_one(tags.plain, (s1_engine_cfg){0}, r);
    assert_true(res->forced_end);
    assert_int_equal(res->thinking_tokens, 32);
    size_t i = after_thinking(res, 32);
    assert_int_equal(res->gen_ids[i], think_close);
    assert_int_equal(res->gen_kinds[i], S1_TOK_FORCED);
    assert_non_null(strstr(res->trace, "</think>\n\nFinal Answer:"));
    assert_null(strstr(res->trace, "<|im_start|>"));
    assert_int_equal(strncmp(res->answer, "\n\nFinal Answer:", 15), 0);
    /* The prompt ends with the open tag the template wrote. */
    assert_int_equal(res->prompt_ids[res->n_prompt - 2], think_open);
    s1_result_free(res);
}

/* The boosted model closes its thinking early and often: each close before
 * the count is dropped and "Wait" fed; the next one is the model's own. */
static void test_early_close_tags_become_waits_and_the_next_one_is_accepted(void **state)
{
    (void)state;
    s1_request r = fx_request(0, problem);
    r.policy.max_think = 400;
    r.policy.ignore_stop = 2;
    r.policy.max_answer = 4;
    s1_result *res = fx_run_one(tags.boosted, (s1_engine_cfg){0}, r);
    assert_false(res->forced_end);
    assert_int_equal(res->waits, 2);
    int thinking = 0;
    for (size_t i = 0; i < res->n_gen && res->gen_kinds[i] != S1_TOK_ANSWER; i++) {
        assert_int_not_equal(res->gen_ids[i], think_close);
        thinking += res->gen_kinds[i] == S1_TOK_THINKING;
    }
    assert_int_equal(thinking, res->thinking_tokens);
    assert_non_null(strstr(res->trace, "Wait"));
    assert_non_null(strstr(res->trace, "</think>"));
    s1_result_free(res);
}

#define BOS "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
#define EOS "<\uff5cend\u2581of\u2581sentence\uff5c>"

/* R1-distill models speak DeepSeek's chat markup: the same template in it,
 * and the answer ends at its end of sentence. */
static void test_a_deepseek_markup_model_gets_think_tags_in_its_own_markup(void **state)
{
    (void)state;
    s1_policy_cfg cfg = {.template = S1_TEMPLATE_THINK_TAGS};
    assert_prompt_is(deepseek, &cfg,
                     BOS "<\uff5cUser\uff5c>What is 2 + 2?<\uff5cAssistant\uff5c><think>\n");
    cfg.system = "Think step by step.";
    assert_prompt_is(deepseek, &cfg,
                     BOS "Think step by step.<\uff5cUser\uff5c>What is 2 + 2?"
                         "<\uff5cAssistant\uff5c><think>\n");
    s1_request r = fx_request(0, problem);
    r.policy.max_think = r.policy.min_think = 16;
    s1_result *res = fx_run_one(deepseek, (s1_engine_cfg){0}, r);
    assert_int_equal(res->gen_ids[after_thinking(res, 16)], fx_token_id(deepseek, "</think>"));
    assert_non_null(strstr(res->trace, "</think>\n\nFinal Answer:"));
    if (res->stop == S1_STOP_EOS)
        assert_int_equal(res->gen_ids[res->n_gen - 1], fx_token_id(deepseek, EOS));
    s1_result_free(res);
    /* Its tokenizer has no <|im_start|>: the s1 template cannot be served. */
    s1_engine *e = fx_open(deepseek, (s1_engine_cfg){0});
    assert_string_equal(s1_engine_get_info(e)->template_name, "think-tags");
    r.policy.template = S1_TEMPLATE_S1;
    fx_assert_add_fails(e, &r, "the s1 template needs <|im_start|> as one token");
    s1_engine_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_the_think_tags_prompt_opens_a_think_tag_and_has_no_system_turn_by_default),
        cmocka_unit_test(test_the_default_template_follows_the_tokenizer_unless_configured),
        cmocka_unit_test(test_an_engine_refuses_a_think_tags_default_its_tokenizer_cannot_serve),
        cmocka_unit_test(test_a_think_tags_job_on_a_model_without_the_tags_is_refused),
        cmocka_unit_test(test_the_budget_forces_the_close_tag_then_the_answer_prefix),
        cmocka_unit_test(test_early_close_tags_become_waits_and_the_next_one_is_accepted),
        cmocka_unit_test(test_a_deepseek_markup_model_gets_think_tags_in_its_own_markup),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
