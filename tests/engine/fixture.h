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

/* Opens an engine on dir with cfg (model_dir filled in); fails the test on error. */
s1_engine *fx_open(const char *dir, s1_engine_cfg cfg);

/* A greedy templated request for problem. */
s1_request fx_request(uint64_t tag, const char *problem);
void fx_add(s1_engine *e, const s1_request *r);

/* Steps until nothing is in flight; results[tag] for tags 0..n-1 (each must
 * arrive exactly once). */
void fx_run(s1_engine *e, s1_result **results, int n);
void fx_free_results(s1_result **results, int n);

/* Checks what every result must satisfy: the counts add up to the ids and
 * their kinds, and no id lies past the tokenizer's vocabulary. */
void fx_check_counts(const s1_engine *e, const s1_result *r);

#endif
