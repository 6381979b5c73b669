/* tests/tokenizer/test_tokenizer.c — loading errors, one test per bad
 * tokenizer.json, and the encoder's contract on a tiny inline tokenizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "tokenizer.h"

/* A valid tokenizer: bytes a, b, Ã (0xC3), © (0xA9), space (Ġ); one merge;
 * the chat tokens. The tests replace one part at a time. */
#define VOCAB "{\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u00c3\": 3, \"\\u00a9\": 4, \"\\u0120\": 5}"
#define ADDED                                                                                      \
    "[{\"id\": 6, \"content\": \"<|im_start|>\", \"special\": true, \"normalized\": false},"       \
    " {\"id\": 7, \"content\": \"<|im_end|>\", \"special\": true, \"normalized\": false}]"
#define PRETOK                                                                                     \
    "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": " \
    "\"\\\\s+|[^\\\\s]+\"}, \"behavior\": \"Isolated\", \"invert\": false}, "                      \
    "{\"type\": \"ByteLevel\", \"use_regex\": false}]}"

typedef struct {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    strcpy(f->dir, "/tmp/s1tokXXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/tokenizer.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_json(const fixture *f, const char *normalizer, const char *pretok,
                       const char *model)
{
    FILE *out = fopen(f->path, "w");
    assert_non_null(out);
    fprintf(out,
            "{\"added_tokens\": %s, \"normalizer\": %s, \"pre_tokenizer\": %s, "
            "\"decoder\": {\"type\": \"ByteLevel\"}, \"model\": %s}",
            ADDED, normalizer, pretok, model);
    fclose(out);
}

static void write_model(const fixture *f, const char *model)
{
    write_json(f, "{\"type\": \"NFC\"}", PRETOK, model);
}

/* Loads the file, which must fail with a message naming it and saying what. */
static void assert_load_fails(const fixture *f, const char *says)
{
    s1_err err = {{0}};
    s1_tokenizer *t = s1_tokenizer_load(f->path, &err);
    assert_null(t);
    assert_non_null(strstr(err.msg, f->path));
    if (!strstr(err.msg, says)) fail_msg("error \"%s\" does not say \"%s\"", err.msg, says);
}

static s1_tokenizer *load_ok(const fixture *f)
{
    s1_err err = {{0}};
    s1_tokenizer *t = s1_tokenizer_load(f->path, &err);
    if (!t) fail_msg("%s", err.msg);
    return t;
}

static void test_load_fails_on_a_missing_file(void **state)
{
    assert_load_fails(*state, "No such file");
}

static void test_load_fails_on_a_directory(void **state)
{
    fixture *f = *state;
    strcpy(f->path, f->dir);
    assert_load_fails(f, "directory");
    snprintf(f->path, sizeof f->path, "%s/tokenizer.json", f->dir);
}

static void test_load_fails_on_invalid_json(void **state)
{
    fixture *f = *state;
    FILE *out = fopen(f->path, "w");
    assert_non_null(out);
    fputs("{\"model\": {\"type\": \"BPE\",", out);
    fclose(out);
    assert_load_fails(f, "invalid JSON");
}

static void test_load_fails_without_a_model(void **state)
{
    write_model(*state, "null");
    assert_load_fails(*state, "no \"model\"");
}

static void test_load_fails_on_a_model_that_is_not_bpe(void **state)
{
    write_model(*state, "{\"type\": \"WordPiece\", \"vocab\": " VOCAB "}");
    assert_load_fails(*state, "model type \"WordPiece\" is not supported");
}

static void test_load_fails_without_a_vocab(void **state)
{
    write_model(*state, "{\"type\": \"BPE\", \"merges\": []}");
    assert_load_fails(*state, "no \"vocab\"");
}

static void test_load_fails_without_merges(void **state)
{
    write_model(*state, "{\"type\": \"BPE\", \"vocab\": " VOCAB "}");
    assert_load_fails(*state, "no \"merges\"");
}

static void test_load_fails_on_a_merge_naming_an_unknown_token(void **state)
{
    write_model(*state,
                "{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"a b\", \"a zz\"]}");
    assert_load_fails(*state, "merges[1] names the token \"zz\"");
}

static void test_load_fails_on_a_merge_whose_result_is_not_in_the_vocab(void **state)
{
    write_model(*state, "{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"b a\"]}");
    assert_load_fails(*state, "makes \"ba\"");
}

static void test_load_fails_on_a_merge_that_is_not_two_tokens(void **state)
{
    write_model(*state, "{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [[\"a\"]]}");
    assert_load_fails(*state, "merges[0] is neither");
}

static void test_load_fails_on_a_vocab_id_that_is_negative(void **state)
{
    write_model(*state, "{\"type\": \"BPE\", \"vocab\": {\"a\": -4}, \"merges\": []}");
    assert_load_fails(*state, "has id -4");
}

static void test_load_fails_on_an_unsupported_normalizer(void **state)
{
    write_json(*state, "{\"type\": \"NFKC\"}", PRETOK,
               "{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"a b\"]}");
    assert_load_fails(*state, "normalizer type \"NFKC\" is not supported");
}

static void test_load_fails_on_an_unsupported_pre_tokenizer(void **state)
{
    write_json(*state, "null", "{\"type\": \"Whitespace\"}",
               "{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"a b\"]}");
    assert_load_fails(*state, "pre_tokenizer type \"Whitespace\" is not supported");
}

static void test_load_fails_without_a_byte_level_pre_tokenizer(void **state)
{
    write_json(*state, "null",
               "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Isolated\"}",
               "{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"a b\"]}");
    assert_load_fails(*state, "no ByteLevel step");
}

static void test_load_fails_on_a_regex_that_does_not_compile(void **state)
{
    write_json(*state, "null",
               "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
               "{\"Regex\": \"(a|\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", "
               "\"use_regex\": false}]}",
               "{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"a b\"]}");
    assert_load_fails(*state, "does not compile");
}

static void test_load_fails_on_an_unsupported_decoder(void **state)
{
    fixture *f = *state;
    FILE *out = fopen(f->path, "w");
    assert_non_null(out);
    fprintf(
        out,
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"decoder\": {\"type\": \"WordPiece\"}, "
        "\"model\": {\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": []}}");
    fclose(out);
    assert_load_fails(f, "decoder type \"WordPiece\" is not supported");
}

/* Encodes text and compares the ids with want[0..n). */
static void assert_encodes(const s1_tokenizer *t, const char *text, int special,
                           const int32_t *want, size_t n)
{
    s1_err err = {{0}};
    _cleanup_free_ int32_t *ids = NULL;
    size_t got = 0;
    assert_int_equal(s1_tokenizer_encode(t, text, strlen(text), special, &ids, &got, &err), 0);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
}

static void test_merges_apply_by_rank_with_string_and_pair_forms(void **state)
{
    const char *models[] = {"{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"a b\"]}",
                            "{\"type\": \"BPE\", \"vocab\": " VOCAB
                            ", \"merges\": [[\"a\", \"b\"]]}"};
    for (int m = 0; m < 2; m++) {
        write_model(*state, models[m]);
        s1_tokenizer *t = load_ok(*state);
        assert_encodes(t, "abba ab", 0, (const int32_t[]){2, 1, 0, 5, 2}, 5);
        s1_tokenizer_free(t);
    }
}

static void test_added_tokens_match_only_with_special(void **state)
{
    write_model(*state, "{\"type\": \"BPE\", \"vocab\": {\"<\": 0, \"|\": 1, \"a\": 2, \"b\": 3, "
                        "\"ab\": 4}, \"merges\": [\"a b\"]}");
    s1_tokenizer *t = load_ok(*state);
    assert_encodes(t, "ab<|im_end|>", 1, (const int32_t[]){4, 7}, 2);
    /* Without special the markup is text; bytes missing from this vocab drop. */
    assert_encodes(t, "<|im_end|>", 0, (const int32_t[]){0, 1, 1}, 3);
    s1_tokenizer_free(t);
}

static void test_a_byte_missing_from_the_vocab_becomes_the_unk_token(void **state)
{
    write_model(*state, "{\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"<unk>\": 1}, \"merges\": [], "
                        "\"unk_token\": \"<unk>\"}");
    s1_tokenizer *t = load_ok(*state);
    assert_encodes(t, "axa", 0, (const int32_t[]){0, 1, 0}, 3);
    s1_tokenizer_free(t);
}

static void test_ignore_merges_takes_a_whole_word_from_the_vocab(void **state)
{
    const char *models[] = {
        "{\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": []}",
        "{\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [], "
        "\"ignore_merges\": true}"};
    for (int m = 0; m < 2; m++) {
        write_model(*state, models[m]);
        s1_tokenizer *t = load_ok(*state);
        if (m)
            assert_encodes(t, "ab", 0, (const int32_t[]){2}, 1);
        else
            assert_encodes(t, "ab", 0, (const int32_t[]){0, 1}, 2);
        s1_tokenizer_free(t);
    }
}

static void test_empty_regex_matches_split_nothing(void **state)
{
    write_json(*state, "null",
               "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
               "{\"Regex\": \"b*$|a\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", "
               "\"use_regex\": false}]}",
               "{\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3}, "
               "\"merges\": [\"a b\"]}");
    s1_tokenizer *t = load_ok(*state);
    /* "a" is split off, so "ab" cannot merge; the empty match at the end adds nothing. */
    assert_encodes(t, "cab", 0, (const int32_t[]){2, 0, 1}, 3);
    assert_encodes(t, "ccc", 0, (const int32_t[]){2, 2, 2}, 3);
    s1_tokenizer_free(t);
}

static void test_encode_rejects_invalid_utf8(void **state)
{
    write_model(*state, "{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"a b\"]}");
    s1_tokenizer *t = load_ok(*state);
    s1_err err = {{0}};
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(s1_tokenizer_encode(t, "ab\xc3(", 4, 0, &ids, &n, &err), -1);
    assert_null(ids);
    assert_non_null(strstr(err.msg, "not valid UTF-8 (byte 2)"));
    s1_tokenizer_free(t);
}

static void test_decode_rejects_an_id_outside_the_vocabulary(void **state)
{
    write_model(*state, "{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"a b\"]}");
    s1_tokenizer *t = load_ok(*state);
    s1_err err = {{0}};
    char *text = NULL;
    size_t len;
    assert_int_equal(s1_tokenizer_decode(t, (const int32_t[]){0, 8}, 2, &text, &len, &err), -1);
    assert_null(text);
    assert_non_null(strstr(err.msg, "token id 8"));
    assert_int_equal(s1_tokenizer_decode(t, (const int32_t[]){-1}, 1, &text, &len, &err), -1);
    s1_tokenizer_free(t);
}

static void test_decode_replaces_a_cut_character_with_u_fffd(void **state)
{
    write_model(*state, "{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"a b\"]}");
    s1_tokenizer *t = load_ok(*state);
    s1_err err = {{0}};
    _cleanup_free_ char *whole = NULL, *cut = NULL;
    size_t len;
    assert_int_equal(s1_tokenizer_decode(t, (const int32_t[]){3, 4, 5, 6}, 4, &whole, &len, &err),
                     0);
    assert_string_equal(whole, "\xc3\xa9 <|im_start|>"); /* the bytes of "é", then text */
    assert_int_equal(s1_tokenizer_decode(t, (const int32_t[]){0, 3}, 2, &cut, &len, &err), 0);
    assert_string_equal(cut, "a\xef\xbf\xbd");
    s1_tokenizer_free(t);
}

static void test_token_id_finds_vocab_and_added_tokens(void **state)
{
    write_model(*state, "{\"type\": \"BPE\", \"vocab\": " VOCAB ", \"merges\": [\"a b\"]}");
    s1_tokenizer *t = load_ok(*state);
    assert_int_equal(s1_tokenizer_token_id(t, "ab"), 2);
    assert_int_equal(s1_tokenizer_token_id(t, " "), 5); /* text, not the byte-level "Ġ" */
    assert_int_equal(s1_tokenizer_token_id(t, "<|im_end|>"), 7);
    assert_int_equal(s1_tokenizer_token_id(t, "zz"), -1);
    assert_int_equal(s1_tokenizer_n_vocab(t), 8);
    s1_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_fails_on_a_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_on_a_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_on_invalid_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_without_a_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_on_a_model_that_is_not_bpe, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_without_a_vocab, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_without_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_on_a_merge_naming_an_unknown_token, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_on_a_merge_whose_result_is_not_in_the_vocab,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_on_a_merge_that_is_not_two_tokens, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_on_a_vocab_id_that_is_negative, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_on_an_unsupported_normalizer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_on_an_unsupported_pre_tokenizer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_without_a_byte_level_pre_tokenizer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_on_a_regex_that_does_not_compile, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_load_fails_on_an_unsupported_decoder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merges_apply_by_rank_with_string_and_pair_forms, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_added_tokens_match_only_with_special, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_byte_missing_from_the_vocab_becomes_the_unk_token,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignore_merges_takes_a_whole_word_from_the_vocab, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_regex_matches_split_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_rejects_invalid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_rejects_an_id_outside_the_vocabulary, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_decode_replaces_a_cut_character_with_u_fffd, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_token_id_finds_vocab_and_added_tokens, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
