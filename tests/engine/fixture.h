/* tests/engine/fixture.h — what the engine tests share: a tiny model made by
 * tools/gen_model.py in a temporary directory, an engine on it, requests, and
 * running everything in flight to the end. */
#ifndef S1_ENGINE_FIXTURE_H
#define S1_ENGINE_FIXTURE_H

#include <stdint.h>

#include "engine.h"

/* gen_model.py --out TMPDIR --preset tiny ARGS; returns the directory
 * (malloc'ed), or NULL when generation failed. */
char *fx_gen_model(const char *args);
/* Scales lm_head row id of dir's model by factor (tests/engine/boost_row.py),
 * making the token likely. Returns 0 on success. */
int fx_boost_row(const char *dir, int32_t id, double factor);

/* Removes the directory and frees its name. */
void fx_rm_model(char *dir);

/* A tiny model, and a copy of it whose delimiter is made likely, so that it
 * ends its thinking early and often. */
typedef struct {
    char *plain, *boosted;
    int32_t im_start;
    int32_t think_end; /* the delimiter made likely: <|im_start|>, or </think> */
} fx_models;

/* Returns 0, or -1 when generation failed. */
int fx_models_gen(fx_models *m);
/* The same with gen_model.py --think-tags: a tokenizer with <think> and
 * </think>, the boosted copy's </think> made likely (a QwQ-like model). */
int fx_models_gen_think_tags(fx_models *m);
void fx_models_rm(fx_models *m);

/* Opens an engine on dir with cfg (model_dir filled in); fails the test on error. */
s1_engine *fx_open(const char *dir, s1_engine_cfg cfg);

/* A greedy templated request for problem. */
s1_request fx_request(uint64_t tag, const char *problem);
void fx_add(s1_engine *e, const s1_request *r);

/* r alone (as tag 0) in a fresh engine on dir; its result, counts checked. */
s1_result *fx_run_one(const char *dir, s1_engine_cfg cfg, s1_request r);

/* Steps until nothing is in flight; results[tag] for tags 0..n-1 (each must
 * arrive exactly once). */
void fx_run(s1_engine *e, s1_result **results, int n);
void fx_free_results(s1_result **results, int n);

/* Steps until nothing is in flight; a malloc'ed grid of n_tags * n_samples *
 * n_rungs results, the one of (tag, sample, rung) at (tag * n_samples +
 * sample) * n_rungs + rung, each arriving exactly once. */
s1_result **fx_run_grid(s1_engine *e, int n_tags, int n_samples, int n_rungs);
void fx_free_grid(s1_result **grid, int n);

/* The same run: tokens, kinds, counts, stop, trace and answer (not timings). */
void fx_assert_same_run(const s1_result *a, const s1_result *b);

/* The id of a token of dir's tokenizer, -1 when it has none. */
int32_t fx_token_id(const char *dir, const char *name);

/* s1_engine_add refuses r with a message containing needle. */
void fx_assert_add_fails(s1_engine *e, const s1_request *r, const char *needle);

/* Checks what every result must satisfy: the counts add up to the ids and
 * their kinds, and no id lies past the tokenizer's vocabulary. */
void fx_check_counts(const s1_engine *e, const s1_result *r);

#endif
