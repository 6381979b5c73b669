/* tests/tokenizer/tokenize_jsonl.c — the C side of the reference comparison:
 * reads JSON lines {"text": ..., "special": 0|1} on stdin and writes, for
 * each, {"ids": [...], "decoded": ...} or {"error": ...}.
 * Usage: tokenize_jsonl TOKENIZER_JSON < in.jsonl > out.jsonl */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "tokenizer.h"

static json_t *encode_one(const s1_tokenizer *t, const json_t *in)
{
    s1_err err = {{0}};
    _cleanup_free_ int32_t *ids = NULL;
    _cleanup_free_ char *text = NULL;
    size_t n = 0, len = 0;
    const char *s = json_string_value(json_object_get(in, "text"));
    if (!s) return json_pack("{s:s}", "error", "input line has no \"text\" string");
    int special = json_is_true(json_object_get(in, "special")) ||
                  json_integer_value(json_object_get(in, "special")) != 0;
    if (s1_tokenizer_encode(t, s, json_string_length(json_object_get(in, "text")), special, &ids,
                            &n, &err) < 0 ||
        s1_tokenizer_decode(t, ids, n, &text, &len, &err) < 0)
        return json_pack("{s:s}", "error", err.msg);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer(ids[i]));
    return json_pack("{s:o,s:s%}", "ids", arr, "decoded", text, len);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s TOKENIZER_JSON < in.jsonl\n", argv[0]);
        return 2;
    }
    s1_err err = {{0}};
    s1_tokenizer *t = s1_tokenizer_load(argv[1], &err);
    if (!t) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, stdin)) > 0) {
        json_error_t jerr;
        json_t *in = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, &jerr);
        json_t *out = in ? encode_one(t, in) : json_pack("{s:s}", "error", jerr.text);
        char *s = json_dumps(out, JSON_COMPACT | JSON_ENSURE_ASCII);
        puts(s);
        free(s);
        json_decref(out);
        json_decref(in);
    }
    free(line);
    s1_tokenizer_free(t);
    return 0;
}
