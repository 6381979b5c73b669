/* s1_model_config_parse on JSON strings: a published Qwen2.5 config parses
 * with its defaults, and each bad key fails with a message naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "model_config.h"

/* Qwen2.5-0.5B-Instruct's config.json, less keys s1d ignores. */
#define QWEN05_FIELDS                                                                              \
    "\"bos_token_id\": 151643, \"eos_token_id\": 151645, \"hidden_act\": \"silu\","                \
    "\"hidden_size\": 896, \"intermediate_size\": 4864, \"max_position_embeddings\": 32768,"       \
    "\"model_type\": \"qwen2\", \"num_attention_heads\": 14, \"num_hidden_layers\": 24,"           \
    "\"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, \"sliding_window\": 32768,"               \
    "\"tie_word_embeddings\": true, \"use_sliding_window\": false, \"vocab_size\": 151936"
#define QWEN05_ARCH "\"architectures\": [\"Qwen2ForCausalLM\"]"
#define QWEN05                                                                                     \
    "{" QWEN05_ARCH ", " QWEN05_FIELDS                                                             \
    ", \"num_key_value_heads\": 2, \"torch_dtype\": \"bfloat16\"}"

static int parse(const char *json, s1_model_config *c, s1_err *err)
{
    return s1_model_config_parse(json, strlen(json), "dir/config.json", c, err);
}

/* Parses json expecting failure; the message must name the file and contain
 * fragment. */
static void expect_error(const char *json, const char *fragment)
{
    s1_model_config c;
    s1_err err = {{0}};
    assert_int_equal(parse(json, &c, &err), -1);
    if (!strstr(err.msg, "dir/config.json: ") || !strstr(err.msg, fragment))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, fragment);
}

static void test_a_qwen2_5_config_parses(void **state)
{
    (void)state;
    s1_model_config c;
    s1_err err = {{0}};
    assert_int_equal(parse(QWEN05, &c, &err), 0);
    assert_string_equal(c.architecture, "Qwen2ForCausalLM");
    assert_int_equal(c.vocab_size, 151936);
    assert_int_equal(c.hidden_size, 896);
    assert_int_equal(c.intermediate_size, 4864);
    assert_int_equal(c.n_layers, 24);
    assert_int_equal(c.n_heads, 14);
    assert_int_equal(c.n_kv_heads, 2);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.max_position, 32768);
    assert_float_equal(c.rms_norm_eps, 1e-6f, 1e-12);
    assert_float_equal(c.rope_theta, 1e6f, 0);
    assert_true(c.tie_word_embeddings);
    assert_int_equal(c.dtype, S1_DTYPE_BF16);
}

static void test_optional_keys_take_their_defaults(void **state)
{
    (void)state;
    s1_model_config c;
    s1_err err = {{0}};
    assert_int_equal(parse("{\"architectures\": [\"Other\", \"Qwen2ForCausalLM\"], "
                           "\"hidden_size\": 64, \"intermediate_size\": 128, "
                           "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                           "\"num_key_value_heads\": null, \"vocab_size\": 512, "
                           "\"max_position_embeddings\": 4096, \"rms_norm_eps\": 1e-5, "
                           "\"rope_scaling\": null, \"dtype\": \"float16\"}",
                           &c, &err),
                     0);
    assert_int_equal(c.n_kv_heads, 4);
    assert_float_equal(c.rope_theta, 10000.0f, 0);
    assert_false(c.tie_word_embeddings);
    assert_int_equal(c.dtype, S1_DTYPE_F16);
}

static void test_invalid_json_is_named(void **state)
{
    (void)state;
    expect_error("{\"hidden_size\": ", "invalid JSON at line 1");
    expect_error("[]", "not a JSON object");
}

static void test_an_unsupported_architecture_is_named(void **state)
{
    (void)state;
    expect_error("{\"architectures\": [\"LlamaForCausalLM\"], " QWEN05_FIELDS "}",
                 "unsupported architecture LlamaForCausalLM; s1d runs Qwen2ForCausalLM models");
    expect_error("{\"architectures\": [], " QWEN05_FIELDS "}", "unsupported architecture (none)");
    expect_error("{" QWEN05_FIELDS "}", "missing key architectures");
    expect_error("{\"architectures\": \"Qwen2ForCausalLM\", " QWEN05_FIELDS "}",
                 "architectures must be an array of strings");
    expect_error("{\"architectures\": [1], " QWEN05_FIELDS "}",
                 "architectures must be an array of strings");
}

static void test_a_missing_required_key_is_named(void **state)
{
    (void)state;
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": 896}", "missing key intermediate_size");
    expect_error("{" QWEN05_ARCH ", " QWEN05_FIELDS "}", "missing key torch_dtype");
}

static void test_a_key_of_the_wrong_type_is_named(void **state)
{
    (void)state;
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": 896.0}", "hidden_size must be an integer");
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": \"896\"}", "hidden_size must be an integer");
    expect_error("{" QWEN05_ARCH ", " QWEN05_FIELDS ", \"num_key_value_heads\": true}",
                 "num_key_value_heads must be an integer");
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": 64, \"intermediate_size\": 128, "
                 "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 512, "
                 "\"max_position_embeddings\": 4096, \"rms_norm_eps\": \"1e-6\"}",
                 "rms_norm_eps must be a number");
    expect_error("{" QWEN05_ARCH ", " QWEN05_FIELDS ", \"torch_dtype\": 16}",
                 "torch_dtype must be a string");
}

static void test_a_non_positive_value_is_named(void **state)
{
    (void)state;
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": 0}", "hidden_size is 0, must be a positive");
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": 4294967296}",
                 "hidden_size is 4294967296, must be a positive");
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": 64, \"intermediate_size\": 128, "
                 "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 512, "
                 "\"max_position_embeddings\": 4096, \"rms_norm_eps\": -1}",
                 "rms_norm_eps is -1, must be a positive number");
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": 64, \"intermediate_size\": 128, "
                 "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 512, "
                 "\"max_position_embeddings\": 4096, \"rms_norm_eps\": 1e-300}",
                 "rms_norm_eps is 1e-300, must be a positive number");
}

static void test_a_bad_bool_or_dtype_is_named(void **state)
{
    (void)state;
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": 896, \"intermediate_size\": 4864, "
                 "\"max_position_embeddings\": 32768, \"num_attention_heads\": 14, "
                 "\"num_hidden_layers\": 24, \"rms_norm_eps\": 1e-06, \"vocab_size\": 151936, "
                 "\"tie_word_embeddings\": 1}",
                 "tie_word_embeddings must be true or false");
    expect_error("{" QWEN05_ARCH ", " QWEN05_FIELDS ", \"torch_dtype\": \"float8\"}",
                 "torch_dtype float8 is not supported");
}

static void test_inconsistent_head_counts_are_refused(void **state)
{
    (void)state;
    expect_error("{" QWEN05_ARCH ", " QWEN05_FIELDS ", \"num_key_value_heads\": 3, "
                 "\"torch_dtype\": \"bfloat16\"}",
                 "num_attention_heads 14 is not a multiple of num_key_value_heads 3");
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": 90, \"intermediate_size\": 128, "
                 "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 512, "
                 "\"max_position_embeddings\": 4096, \"rms_norm_eps\": 1e-6, "
                 "\"torch_dtype\": \"float32\"}",
                 "hidden_size 90 is not a multiple of num_attention_heads 4");
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": 60, \"intermediate_size\": 128, "
                 "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 512, "
                 "\"max_position_embeddings\": 4096, \"rms_norm_eps\": 1e-6, "
                 "\"torch_dtype\": \"float32\"}",
                 "head dimension 15");
}

static void test_unsupported_options_are_refused_by_name(void **state)
{
    (void)state;
    expect_error("{" QWEN05_ARCH ", " QWEN05_FIELDS ", \"num_key_value_heads\": 2, "
                 "\"torch_dtype\": \"bfloat16\", \"rope_scaling\": {\"type\": \"yarn\"}}",
                 "rope_scaling is set");
    expect_error("{" QWEN05_ARCH ", \"hidden_size\": 896, \"intermediate_size\": 4864, "
                 "\"max_position_embeddings\": 32768, \"num_attention_heads\": 14, "
                 "\"num_hidden_layers\": 24, \"rms_norm_eps\": 1e-06, \"vocab_size\": 151936, "
                 "\"torch_dtype\": \"bfloat16\", \"use_sliding_window\": true}",
                 "use_sliding_window is true");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_qwen2_5_config_parses),
        cmocka_unit_test(test_optional_keys_take_their_defaults),
        cmocka_unit_test(test_invalid_json_is_named),
        cmocka_unit_test(test_an_unsupported_architecture_is_named),
        cmocka_unit_test(test_a_missing_required_key_is_named),
        cmocka_unit_test(test_a_key_of_the_wrong_type_is_named),
        cmocka_unit_test(test_a_non_positive_value_is_named),
        cmocka_unit_test(test_a_bad_bool_or_dtype_is_named),
        cmocka_unit_test(test_inconsistent_head_counts_are_refused),
        cmocka_unit_test(test_unsupported_options_are_refused_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
