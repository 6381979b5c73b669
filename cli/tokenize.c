/* s1ctl tokenize: stdin's text → token ids, or ids → text with --decode.
 * Needs only DIR/tokenizer.json. Special tokens written in the text match. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "commands.h"
#include "engine.h"
#include "flags.h"
#include "file.h"
#include "job.h"
#include "util.h"

static const char usage[] =
    "Usage: s1ctl tokenize --model DIR [--decode] [--json] < INPUT\n"
    "Prints the token ids of stdin's text, space-separated (added tokens such as\n"
    "<|im_end|> written in the text match). With --decode, reads ids and prints the text.\n\n";

typedef struct {
    const char *model;
    int decode, json;
} tokenize_args;

static const s1ctl_flag tokenize_flags[] = {
    {"model", "DIR", "a Hugging Face model directory (only tokenizer.json is read)",
     s1ctl_set_string, offsetof(tokenize_args, model)},
    {"decode", NULL, "ids (space- or comma-separated) → text", s1ctl_set_switch,
     offsetof(tokenize_args, decode)},
    {"json", NULL, "print a JSON array of ids (or a JSON string with --decode)", s1ctl_set_switch,
     offsetof(tokenize_args, json)},
};

static inline void tokenizer_freep(s1_tokenizer **t)
{
    if (*t) s1_tokenizer_free(*t);
}

/* Parses whitespace- or comma-separated ids below n_vocab into *ids. */
static int parse_ids(const char *text, int32_t n_vocab, int32_t **ids, size_t *n)
{
    size_t cap = 64;
    _cleanup_free_ int32_t *out = malloc(cap * sizeof *out);
    *n = 0;
    for (const char *p = text; out;) {
        p += strspn(p, " \t\r\n,");
        if (!*p) break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v >= n_vocab)
            return s1ctl_fail(S1CTL_EXIT_USAGE, "<stdin>: '%.*s' is not a token id below %d",
                              (int)strcspn(p, " \t\r\n,"), p, n_vocab);
        p = end;
        if (*n == cap) {
            int32_t *grown = realloc(out, 2 * cap * sizeof *out);
            if (!grown) break;
            out = grown;
            cap *= 2;
        }
        out[(*n)++] = (int32_t)v;
    }
    if (!out) return s1ctl_fail(S1CTL_EXIT_FAILED, "out of memory");
    *ids = S1_TAKE_PTR(out);
    return 0;
}

static int decode(const s1_tokenizer *t, const char *text, int json)
{
    _cleanup_free_ int32_t *ids = NULL;
    size_t n;
    int rc = parse_ids(text, s1_tokenizer_n_vocab(t), &ids, &n);
    if (rc) return rc;
    _cleanup_free_ char *out = NULL;
    size_t len;
    s1_err err = {{0}};
    if (s1_tokenizer_decode(t, ids, n, &out, &len, &err) < 0)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
    if (json) return s1ctl_print_json(json_stringn(out, len));
    fwrite(out, 1, len, stdout);
    return S1CTL_EXIT_OK;
}

static int encode(const s1_tokenizer *t, const char *text, size_t len, int json)
{
    _cleanup_free_ int32_t *ids = NULL;
    size_t n;
    s1_err err = {{0}};
    if (s1_tokenizer_encode(t, text, len, 1, &ids, &n, &err) < 0)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
    if (json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, json_integer(ids[i]));
        return s1ctl_print_json(a);
    }
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? " " : "", ids[i]);
    printf("\n");
    return S1CTL_EXIT_OK;
}

/* 0; -1 after --help; or the exit code after printing why. */
static int parse_args(int argc, char **argv, tokenize_args *a)
{
    const s1ctl_flag_table tables[] = {S1CTL_FLAGS(NULL, tokenize_flags, a)};
    int n, rc = s1ctl_flags_parse(usage, tables, 1, argc, argv, &n);
    if (rc) return rc;
    if (n > 0)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "unexpected argument '%s': the text is read from stdin",
                          argv[1]);
    if (!a->model || !*a->model) return s1ctl_fail(S1CTL_EXIT_USAGE, "--model DIR is required");
    return 0;
}

int s1ctl_tokenize(int argc, char **argv)
{
    tokenize_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    s1_err err = {{0}};
    _cleanup_(tokenizer_freep) s1_tokenizer *t = s1_tokenizer_open(a.model, &err);
    if (!t) return s1ctl_fail(S1CTL_EXIT_MODEL, "%s", err.msg);
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (s1_read_file("-", S1_JOB_MAX_PROBLEM_BYTES * 16, &text, &len, &err) < 0)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
    return a.decode ? decode(t, text, a.json) : encode(t, text, len, a.json);
}
