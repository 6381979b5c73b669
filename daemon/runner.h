/* daemon/runner.h — what the engine thread drives: the real engine
 * (engine/include/engine.h) or the noop engine, a benchmarking and simulation mode
 * that needs no model: each request "generates" max_think thinking tokens
 * (at noop-rate tokens/s, instantly when 0) and an empty answer. Both have
 * the engine's calls and threading rules: one thread drives a runner. */
#ifndef S1D_RUNNER_H
#define S1D_RUNNER_H

#include "config.h"
#include "engine.h"

typedef struct s1d_runner s1d_runner;

/* Opens the runner the configuration names (engine = engine | noop); loads
 * the model, so it can take long. */
s1d_runner *s1d_runner_open(const s1d_config *cfg, s1_err *err);
void s1d_runner_close(s1d_runner *r);

const s1_engine_info *s1d_runner_info(const s1d_runner *r);
/* The model's fingerprint (daemon/fingerprint.h); NULL for the noop engine. */
const char *s1d_runner_fingerprint(const s1d_runner *r);
int s1d_runner_add(s1d_runner *r, const s1_request *req, s1_err *err);
int s1d_runner_cancel(s1d_runner *r, uint64_t tag);
int s1d_runner_step(s1d_runner *r, s1_err *err);
int s1d_runner_capacity(const s1d_runner *r);
s1_result *s1d_runner_take_result(s1d_runner *r);
/* Where a request stands, to resume it elsewhere (engine.h s1_engine_save). */
s1_resume *s1d_runner_save(const s1d_runner *r, uint64_t tag, s1_err *err);
int s1d_runner_progress(const s1d_runner *r, uint64_t tag, int *thinking, int *generated);
/* Results of either kind are freed here (any thread). */
void s1d_runner_free_result(const s1d_runner *r, s1_result *res);

#endif
