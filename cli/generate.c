/* s1ctl generate: one problem through the engine, in-process, under the same
 * policy and sampling flags as submit; no database. */
#include <stddef.h>
#include <stdint.h>
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
    "prints the answer and the token counts.\n\n";

typedef struct {
    s1_engine_cfg engine;
    s1_request req;
    s1_job_params params; /* the policy flags, copied into req */
    long long max_bytes;
    int trace, json;
    const char *file;
} generate_args;

#define GEN(field) offsetof(generate_args, field)

static const s1ctl_flag generate_flags[] = {
    {"model", "DIR", "a Hugging Face model directory (Qwen2 architecture)", s1ctl_set_string,
     GEN(engine.model_dir)},
    {"trace", NULL, "also print the whole trace (thinking, forced text, answer)", s1ctl_set_switch,
     GEN(trace)},
    {"raw", NULL, "FILE is the whole prompt: no template, no policy, added tokens match",
     s1ctl_set_bool, GEN(req.raw)},
    {"max-tokens", "N", "with --raw: generate at most N tokens (default: the context)",
     s1ctl_set_int, GEN(req.max_tokens), S1_PARAM_NONE, 1, INT32_MAX},
    {"json", NULL, "print everything as JSON, prompt and token ids included", s1ctl_set_switch,
     GEN(json)},
    {"backend", "NAME", "cpu (default) or cuda", s1ctl_set_string, GEN(engine.backend)},
    {"threads", "N", "CPU threads (default one per core)", s1ctl_set_int, GEN(engine.threads),
     S1_PARAM_NONE, 1, 4096},
    {"tp", "N", "tensor-parallel degree (default 1)", s1ctl_set_int, GEN(engine.tp), S1_PARAM_NONE,
     1, 64},
    {"max-bytes", "N", "largest FILE accepted (default 1048576)", s1ctl_set_long, GEN(max_bytes),
     S1_PARAM_NONE, 1, 1LL << 30},
};

/* generate runs one budget and one --ignore-stop: ladders are queued with
 * submit. */
static const char *const no_ladders[] = {"budgets", "waits", NULL};
static const char no_ladders_why[] =
    "generate runs one budget and one --ignore-stop: queue a ladder with s1ctl submit";

/* 0; -1 after --help; or the exit code after printing why. */
static int parse_args(int argc, char **argv, generate_args *a)
{
    const s1ctl_flag_table tables[] = {S1CTL_FLAGS(NULL, generate_flags, a),
                                       S1CTL_POLICY_TABLES(&a->params, no_ladders, no_ladders_why)};
    int n, rc = s1ctl_flags_parse(usage, tables, 3, argc, argv, &n);
    if (rc) return rc;
    if (s1ctl_policy_done(&a->params) < 0) return S1CTL_EXIT_USAGE;
    a->req.policy = a->params.policy;
    a->req.sampling = a->params.sampling;
    if (!a->engine.model_dir) return s1ctl_fail(S1CTL_EXIT_USAGE, "--model DIR is required");
    if (n != 1)
        return s1ctl_fail(S1CTL_EXIT_USAGE,
                          "expected one problem FILE (see s1ctl generate --help)");
    a->file = argv[1];
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
