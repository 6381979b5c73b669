#include "fixture.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tokenizer.h"

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

/* Two models from the same arguments, delimiter boosted in the second. */
static int gen_pair(fx_models *m, const char *args, const char *delimiter)
{
    m->plain = fx_gen_model(args);
    m->boosted = fx_gen_model(args);
    if (!m->plain || !m->boosted) return -1;
    m->im_start = fx_token_id(m->plain, "<|im_start|>");
    m->think_end = fx_token_id(m->plain, delimiter);
    return m->im_start >= 0 && m->think_end >= 0 && fx_boost_row(m->boosted, m->think_end, 2) == 0
               ? 0
               : -1;
}

int fx_models_gen(fx_models *m)
{
    return gen_pair(m, "", "<|im_start|>");
}

int fx_models_gen_think_tags(fx_models *m)
{
    return gen_pair(m, "--think-tags", "</think>");
}

void fx_models_rm(fx_models *m)
{
    fx_rm_model(m->plain);
    fx_rm_model(m->boosted);
    *m = (fx_models){0};
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
    s1_result **grid = fx_run_grid(e, n, 1, 1);
    memcpy(results, grid, sizeof *grid * (size_t)n);
    free(grid);
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

s1_result *fx_run_one(const char *dir, s1_engine_cfg cfg, s1_request r)
{
    s1_engine *e = fx_open(dir, cfg);
    r.tag = 0;
    fx_add(e, &r);
    s1_result *res;
    fx_run(e, &res, 1);
    fx_check_counts(e, res);
    s1_engine_close(e);
    return res;
}

s1_result **fx_run_grid(s1_engine *e, int n_tags, int n_samples, int n_rungs)
{
    int n = n_tags * n_samples * n_rungs;
    s1_result **grid = calloc((size_t)n, sizeof *grid);
    assert_non_null(grid);
    s1_err err = {{0}};
    int left;
    do {
        left = s1_engine_step(e, &err);
        if (left < 0) fail_msg("s1_engine_step: %s", err.msg);
        for (s1_result *r; (r = s1_engine_take_result(e));) {
            assert_true(r->tag < (uint64_t)n_tags);
            assert_in_range(r->sample, 0, n_samples - 1);
            assert_in_range(r->rung, 0, n_rungs - 1);
            size_t at = ((size_t)r->tag * (size_t)n_samples + (size_t)r->sample) * (size_t)n_rungs +
                        (size_t)r->rung;
            assert_null(grid[at]);
            grid[at] = r;
        }
    } while (left > 0);
    for (int i = 0; i < n; i++)
        assert_non_null(grid[i]);
    return grid;
}

void fx_free_grid(s1_result **grid, int n)
{
    fx_free_results(grid, n);
    free(grid);
}

void fx_assert_same_run(const s1_result *a, const s1_result *b)
{
    assert_int_equal(a->n_gen, b->n_gen);
    assert_memory_equal(a->gen_ids, b->gen_ids, a->n_gen * sizeof *a->gen_ids);
    assert_memory_equal(a->gen_kinds, b->gen_kinds, a->n_gen);
    assert_int_equal(a->stop, b->stop);
    assert_int_equal(a->prompt_tokens, b->prompt_tokens);
    assert_int_equal(a->thinking_tokens, b->thinking_tokens);
    assert_int_equal(a->forced_tokens, b->forced_tokens);
    assert_int_equal(a->answer_tokens, b->answer_tokens);
    assert_int_equal(a->waits, b->waits);
    assert_int_equal(a->forced_end, b->forced_end);
    assert_int_equal(a->context_end, b->context_end);
    assert_string_equal(a->trace, b->trace);
    assert_string_equal(a->answer, b->answer);
}

int32_t fx_token_id(const char *dir, const char *name)
{
    char *path = NULL;
    if (asprintf(&path, "%s/tokenizer.json", dir) < 0) return -1;
    s1_err err;
    s1_tokenizer *t = s1_tokenizer_load(path, &err);
    free(path);
    if (!t) return -1;
    int32_t id = s1_tokenizer_token_id(t, name);
    s1_tokenizer_free(t);
    return id;
}

void fx_assert_add_fails(s1_engine *e, const s1_request *r, const char *needle)
{
    s1_err err = {{0}};
    assert_int_equal(s1_engine_add(e, r, &err), -1);
    if (!strstr(err.msg, needle)) fail_msg("\"%s\" does not mention %s", err.msg, needle);
}
