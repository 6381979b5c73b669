/* bench/tokenize.c — tokenizer figures: load time of tokenizer.json and
 * encoding speed on 1 MB of mixed text (the benchmark problems and solutions:
 * prose, LaTeX, Asymptote code, numbers).
 * Usage: tokenize [TOKENIZER_JSON [JSONL...]]; defaults from $S1_SHARED. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "tokenizer.h"

#define TARGET_BYTES (1 << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Appends the string fields of every line of a JSONL file to buf. */
static void append_jsonl(const char *path, char *buf, size_t *len)
{
    json_error_t jerr;
    FILE *f = fopen(path, "r");
    char line[1 << 16];
    if (!f) return;
    while (*len < TARGET_BYTES && fgets(line, sizeof line, f)) {
        json_t *obj = json_loads(line, 0, &jerr);
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v)
        {
            size_t n = json_string_length(v);
            if (!json_is_string(v) || *len + n + 1 > TARGET_BYTES) continue;
            memcpy(buf + *len, json_string_value(v), n);
            *len += n;
            buf[(*len)++] = '\n';
        }
        json_decref(obj);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    const char *shared = getenv("S1_SHARED");
    char tok_path[4096], data[3][4096];
    const char *names[] = {"math500.jsonl", "aime24.jsonl", "amc23.jsonl"};
    if (argc < 2 && !shared) {
        fprintf(stderr, "tokenize: give TOKENIZER_JSON [JSONL...] or set S1_SHARED to the shared "
                        "data folder\n");
        return 2;
    }
    snprintf(tok_path, sizeof tok_path, "%s/models/qwen2.5-tokenizer/tokenizer.json", shared);
    for (int i = 0; i < 3; i++)
        snprintf(data[i], sizeof data[i], "%s/benchmarks/%s", shared, names[i]);

    s1_err err;
    double t0 = now();
    s1_tokenizer *t = s1_tokenizer_load(argc > 1 ? argv[1] : tok_path, &err);
    double load_s = now() - t0;
    if (!t) {
        fprintf(stderr, "tokenize: %s\n", err.msg);
        return 1;
    }
    _cleanup_free_ char *text = malloc(TARGET_BYTES);
    size_t len = 0;
    if (!text) return 1;
    /* Repeats the files until the text is 1 MB (the word cache is per call). */
    for (int pass = 0; pass < 64 && len < TARGET_BYTES - 4096; pass++)
        for (int i = 0; i < (argc > 2 ? argc - 2 : 3); i++)
            append_jsonl(argc > 2 ? argv[2 + i] : data[i], text, &len);
    if (len == 0) {
        fprintf(stderr, "tokenize: no text read from the JSONL files\n");
        s1_tokenizer_free(t);
        return 1;
    }
    _cleanup_free_ int32_t *ids = NULL;
    size_t n = 0;
    t0 = now();
    int rc = s1_tokenizer_encode(t, text, len, 0, &ids, &n, &err);
    double enc_s = now() - t0;
    if (rc < 0)
        fprintf(stderr, "tokenize: %s\n", err.msg);
    else
        printf("load %.3f s; encode %zu bytes -> %zu tokens in %.3f s: %.1f MB/s\n", load_s, len, n,
               enc_s, (double)len / 1e6 / enc_s);
    s1_tokenizer_free(t);
    return rc < 0;
}
