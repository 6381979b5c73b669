/* s1ctl generate: one problem through the engine, in-process, under the same
 * policy and sampling flags as submit; no database. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "commands.h"
#include "engine.h"
#include "file.h"
#include "job.h"
#include "policy_flags.h"
#include "util.h"

static const char usage[] =
    "Usage: s1ctl generate --model DIR [FLAGS] FILE\n"
    "Runs the problem in FILE (- reads stdin) through the engine under budget forcing and\n"
    "prints the answer and the token counts.\n\n"
    "  --model DIR         a Hugging Face model directory (Qwen2 architecture)\n"
    "  --trace             also print the whole trace (thinking, forced text, answer)\n"
    "  --raw               FILE is the whole prompt: no template, no policy, added tokens match\n"
    "  --max-tokens N      with --raw: generate at most N tokens (default: the context)\n"
    "  --json              print everything as JSON, prompt and token ids included\n"
    "  --backend NAME      cpu (default) or cuda\n"
    "  --threads N         CPU threads (default one per core)\n"
    "  --tp N              tensor-parallel degree (default 1)\n"
    "  --max-bytes N       largest FILE accepted (default 1048576)\n"
    "  --help              this text\n\n" S1CTL_POLICY_HELP;

enum {
    OPT_MODEL = 0x2000,
    OPT_TRACE,
    OPT_RAW,
    OPT_MAX_TOKENS,
    OPT_JSON,
    OPT_BACKEND,
    OPT_THREADS,
    OPT_TP,
    OPT_MAX_BYTES
};

static const struct option options[] = {
    S1CTL_POLICY_OPTIONS,
    {"model", required_argument, NULL, OPT_MODEL},
    {"trace", no_argument, NULL, OPT_TRACE},
    {"raw", no_argument, NULL, OPT_RAW},
    {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
    {"json", no_argument, NULL, OPT_JSON},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"tp", required_argument, NULL, OPT_TP},
    {"max-bytes", required_argument, NULL, OPT_MAX_BYTES},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct {
    s1_engine_cfg engine;
    s1_request req;
    long long max_bytes;
    int trace, json;
    const char *file;
} generate_args;

/* An int flag into *out; 1, or -1 after printing why. */
static int int_opt(const char *flag, const char *arg, long long min, long long max, int *out)
{
    long long v;
    if (s1ctl_parse_int(flag, arg, min, max, &v) < 0) return -1;
    *out = (int)v;
    return 1;
}

/* The flags of generate itself; 1 handled, 0 unknown, -1 bad value. */
static int generate_flag(int code, const char *arg, generate_args *a)
{
    switch (code) {
    case OPT_MODEL:
        a->engine.model_dir = arg;
        return 1;
    case OPT_TRACE:
        a->trace = 1;
        return 1;
    case OPT_RAW:
        a->req.raw = true;
        return 1;
    case OPT_JSON:
        a->json = 1;
        return 1;
    case OPT_BACKEND:
        a->engine.backend = arg;
        return 1;
    case OPT_MAX_TOKENS:
        return int_opt("--max-tokens", arg, 1, INT32_MAX, &a->req.max_tokens);
    case OPT_THREADS:
        return int_opt("--threads", arg, 1, 4096, &a->engine.threads);
    case OPT_TP:
        return int_opt("--tp", arg, 1, 64, &a->engine.tp);
    case OPT_MAX_BYTES:
        return s1ctl_parse_int("--max-bytes", arg, 1, 1LL << 30, &a->max_bytes) < 0 ? -1 : 1;
    default:
        return 0;
    }
}

/* 0; -1 after --help; or the exit code after printing why. */
static int parse_args(int argc, char **argv, generate_args *a)
{
    int o;
    while ((o = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (o == 'h') {
            fputs(usage, stdout);
            return -1;
        }
        if (o == '?' || o == ':') return s1ctl_bad_flag(argv, o);
        int rc = s1ctl_policy_flag(o, optarg, &a->req.policy, &a->req.sampling);
        if (rc == 0) rc = generate_flag(o, optarg, a);
        if (rc < 0) return S1CTL_EXIT_USAGE;
    }
    if (s1ctl_policy_done(&a->req.policy, &a->req.sampling) < 0) return S1CTL_EXIT_USAGE;
    if (a->req.policy.ladder.kind != S1_LADDER_NONE)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "generate runs one budget and one --ignore-stop: "
                                            "queue a ladder with s1ctl submit --budgets/--waits");
    if (!a->engine.model_dir) return s1ctl_fail(S1CTL_EXIT_USAGE, "--model DIR is required");
    if (optind + 1 != argc)
        return s1ctl_fail(S1CTL_EXIT_USAGE,
                          "expected one problem FILE (see s1ctl generate --help)");
    a->file = argv[optind];
    return 0;
}

static json_t *ids_json(const int32_t *ids, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer(ids[i]));
    return arr;
}

static int print_json(const s1_request *q, const s1_result *r, const s1_engine_info *info)
{
    json_t *kinds = json_array();
    for (size_t i = 0; i < r->n_gen; i++)
        json_array_append_new(kinds, json_integer(r->gen_kinds[i]));
    return s1ctl_print_json(json_pack(
        "{s:s,s:b,s:s,s:s,s:o,s:o,s:o,s:s?,s:s?,s:i,s:i,s:i,s:i,s:i,s:b,s:f,s:f}", "model",
        info->model_name, "raw", q->raw, "backend", info->backend, "prompt", q->text, "prompt_ids",
        ids_json(r->prompt_ids, r->n_prompt), "token_ids", ids_json(r->gen_ids, r->n_gen),
        "token_kinds", kinds, "trace", r->trace, "answer", r->answer, "prompt_tokens",
        r->prompt_tokens, "thinking_tokens", r->thinking_tokens, "forced_tokens", r->forced_tokens,
        "answer_tokens", r->answer_tokens, "waits", r->waits, "forced_end", r->forced_end,
        "ttft_ms", r->ttft_s * 1000.0, "decode_tps", r->decode_tps));
}

static void print_text(const s1_result *r, int trace)
{
    if (trace || !r->answer) printf("--- trace\n%s\n--- answer\n", r->trace ? r->trace : "");
    printf("%s\n", r->answer ? r->answer : "");
    printf("--- prompt %d, thinking %d, forced %d, answer %d tokens; %d waits; forced end %s; "
           "stop %s\n",
           r->prompt_tokens, r->thinking_tokens, r->forced_tokens, r->answer_tokens, r->waits,
           r->forced_end ? "yes" : "no", s1_stop_reason_name(r->stop));
}

/* Steps the engine until the one request finishes. */
static s1_result *run_to_end(s1_engine *e, s1_err *err)
{
    for (int left = 1;;) {
        s1_result *r = s1_engine_take_result(e);
        if (r) return r;
        if (left == 0) {
            s1_errf(err, "the engine finished without a result");
            return NULL;
        }
        if ((left = s1_engine_step(e, err)) < 0) return NULL;
    }
}

static inline void engine_closep(s1_engine **e)
{
    if (*e) s1_engine_close(*e);
}
static inline void result_freep(s1_result **r)
{
    if (*r) s1_result_free(*r);
}

int s1ctl_generate(int argc, char **argv)
{
    generate_args a = {.max_bytes = (long long)S1_JOB_MAX_PROBLEM_BYTES, .req = {.tag = 1}};
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    s1_err err = {{0}};
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (s1_read_file(a.file, (size_t)a.max_bytes, &text, &len, &err) < 0 ||
        s1_job_problem_check(strcmp(a.file, "-") ? a.file : "<stdin>", text, len,
                             (size_t)a.max_bytes, &err) < 0)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
    _cleanup_(engine_closep) s1_engine *e = s1_engine_open(&a.engine, &err);
    if (!e) return s1ctl_fail(S1CTL_EXIT_MODEL, "%s", err.msg);
    a.req.text = text;
    a.req.text_len = len;
    if (s1_engine_add(e, &a.req, &err) < 0) return s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
    _cleanup_(result_freep) s1_result *r = run_to_end(e, &err);
    if (!r) return s1ctl_fail(S1CTL_EXIT_FAILED, "%s", err.msg);
    if (a.json) return print_json(&a.req, r, s1_engine_get_info(e));
    print_text(r, a.trace);
    return S1CTL_EXIT_OK;
}
