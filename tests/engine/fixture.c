#include "fixture.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

char *fx_gen_model(const char *args)
{
    const char *root = getenv("S1_SOURCE_ROOT");
    const char *tmp = getenv("TMPDIR");
    char *dir = NULL, *cmd = NULL;
    if (!root || asprintf(&dir, "%s/s1engine.XXXXXX", tmp ? tmp : "/tmp") < 0) return NULL;
    if (!mkdtemp(dir)) {
        free(dir);
        return NULL;
    }
    int rc = -1;
    if (asprintf(&cmd, "/usr/bin/python3 '%s/tools/gen_model.py' --out '%s' --preset tiny %s", root,
                 dir, args) >= 0)
        rc = system(cmd);
    free(cmd);
    if (rc != 0) {
        fx_rm_model(dir);
        return NULL;
    }
    return dir;
}

int fx_boost_row(const char *dir, int32_t id, double factor)
{
    const char *root = getenv("S1_SOURCE_ROOT");
    char *cmd = NULL;
    if (!root || asprintf(&cmd,
                          "/usr/bin/python3 '%s/tests/engine/boost_row.py' "
                          "'%s/model.safetensors' %d %g",
                          root, dir, id, factor) < 0)
        return -1;
    int rc = system(cmd);
    free(cmd);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void fx_rm_model(char *dir)
{
    if (dir) nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

s1_engine *fx_open(const char *dir, s1_engine_cfg cfg)
{
    cfg.model_dir = dir;
    if (!cfg.threads) cfg.threads = 1;
    /* 8192 tokens of KV: the backend's default would size it for a real model. */
    if (!cfg.kv_blocks) cfg.kv_blocks = 512;
    s1_err err = {{0}};
    s1_engine *e = s1_engine_open(&cfg, &err);
    if (!e) fail_msg("s1_engine_open: %s", err.msg);
    return e;
}

s1_request fx_request(uint64_t tag, const char *problem)
{
    return (s1_request){.tag = tag, .text = problem, .text_len = strlen(problem)};
}

void fx_add(s1_engine *e, const s1_request *r)
{
    s1_err err = {{0}};
    if (s1_engine_add(e, r, &err) < 0) fail_msg("s1_engine_add: %s", err.msg);
}

void fx_run(s1_engine *e, s1_result **results, int n)
{
    for (int i = 0; i < n; i++)
        results[i] = NULL;
    s1_err err = {{0}};
    int left;
    do {
        left = s1_engine_step(e, &err);
        if (left < 0) fail_msg("s1_engine_step: %s", err.msg);
        for (s1_result *r; (r = s1_engine_take_result(e));) {
            assert_true(r->tag < (uint64_t)n);
            assert_null(results[r->tag]);
            results[r->tag] = r;
        }
    } while (left > 0);
    for (int i = 0; i < n; i++)
        assert_non_null(results[i]);
}

void fx_free_results(s1_result **results, int n)
{
    for (int i = 0; i < n; i++)
        s1_result_free(results[i]);
}

void fx_check_counts(const s1_engine *e, const s1_result *r)
{
    int kinds[4] = {0};
    for (size_t i = 0; i < r->n_gen; i++) {
        assert_in_range(r->gen_kinds[i], S1_TOK_THINKING, S1_TOK_ANSWER);
        kinds[r->gen_kinds[i]]++;
        assert_in_range(r->gen_ids[i], 0, s1_engine_get_info(e)->vocab_size - 1);
    }
    assert_int_equal(kinds[S1_TOK_THINKING], r->thinking_tokens);
    assert_int_equal(kinds[S1_TOK_FORCED], r->forced_tokens);
    assert_int_equal(kinds[S1_TOK_ANSWER], r->answer_tokens);
    assert_int_equal(r->thinking_tokens + r->forced_tokens + r->answer_tokens, (int)r->n_gen);
    assert_int_equal(r->prompt_tokens, (int)r->n_prompt);
    assert_true(r->prompt_tokens + (int)r->n_gen <= s1_engine_get_info(e)->max_context);
    assert_non_null(r->trace);
    assert_non_null(r->answer);
}
