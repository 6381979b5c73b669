/* store/bench.h — benchmark suites and runs as s1ctl writes and reads them:
 * a suite's problems upserted by name, a run of a suite queued at a ladder
 * of budgets (one job per problem and budget), and the rows its report and
 * lists are made of. The s1 paper's three figures (Control, Scaling,
 * Performance) are computed from a report's rows by pure functions here, so
 * every front end gets the same numbers. Failures return -1 (database) or
 * S1_CTL_NOT_FOUND / S1_CTL_REFUSED (store/ctl.h) with err naming the suite
 * or run. */
#ifndef S1_BENCH_H
#define S1_BENCH_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "err.h"

/* What an upsert did to a problem. */
typedef enum {
    S1_BENCH_ADDED,
    S1_BENCH_UPDATED,
    S1_BENCH_UNCHANGED,
} s1_bench_change;

/* Creates the suite, or keeps the one of that name (its description is
 * replaced when description is not NULL); *id gets its id. */
int s1_bench_suite_upsert(PGconn *c, const char *name, const char *description, long long *id,
                          s1_err *err);

/* Inserts the problem, or updates the suite's problem of that name when its
 * text or reference answer differ; *change says which happened. */
int s1_bench_problem_upsert(PGconn *c, long long suite_id, const char *name, const char *problem,
                            const char *answer, s1_bench_change *change, s1_err *err);

/* Suites by name: name, description, problems, runs, last_run, created_at. */
PGresult *s1_bench_suite_list(PGconn *c, s1_err *err);

/* One suite: id, name, description, problems, runs, created_at; no row when
 * there is no suite of that name. */
PGresult *s1_bench_suite_get(PGconn *c, const char *name, s1_err *err);

/* The suite's problems in id order: id, name, reference_answer, problem. */
PGresult *s1_bench_suite_problems(PGconn *c, long long suite_id, s1_err *err);

/* A run to queue. budgets: strictly increasing, positive (cli checks), at
 * most S1_MAX_RUNGS unless separate. The policy sets neither max_think nor
 * budgets: each job gets the ladder, or (separate) its budget as max_think. */
typedef struct {
    const char *suite;
    const char *model; /* NULL = any daemon */
    const char *queue; /* NULL = 'default' */
    const char *policy_json;
    const char *sampling_json;
    const char *note;
    const char *template_name; /* s1_template_name(); NULL = the serving model's default */
    const int *budgets;
    int n_budgets;
    int samples;   /* 0 = 1 */
    bool separate; /* one job per (problem, budget) rather than a ladder job per problem */
    int priority;
    long long limit; /* the first N problems of the suite; 0 = all */
    bool dry_run;    /* check and count everything, then roll back: nothing is queued */
} s1_bench_run_spec;

/* In one transaction: the s1.bench_runs row and one ladder job per problem
 * (separate: per problem and budget), each with the problem's reference answer. *run_id and *jobs
 * get the run and how many jobs were queued (with dry_run: would be; the
 * transaction is rolled back, every CHECK having been applied). S1_CTL_NOT_FOUND when the suite
 * does not exist, S1_CTL_REFUSED when it has no problems. */
int s1_bench_run_create(PGconn *c, const s1_bench_run_spec *s, long long *run_id, long long *jobs,
                        s1_err *err);

/* One run with its progress and Control (share of samples within their
 * budget): id, suite, model, budgets, samples, policy, sampling, note,
 * created_at, jobs, succeeded, failed, pending, control, and the distinct
 * model_fingerprints, s1d_versions, backends and gpus of its results (NULL
 * before any result). run_id 0 means the
 * latest run, of suite when suite is not NULL. No row when none matches. */
PGresult *s1_bench_run_get(PGconn *c, long long run_id, const char *suite, s1_err *err);

/* A run's jobs by state, and where its pending jobs wait (queue and model
 * of one of them; "" when none is pending, model "" also for any model). */
typedef struct {
    long long jobs, succeeded, failed, cancelled, pending;
    char queue[256], model[256];
} s1_bench_progress;

/* S1_CTL_NOT_FOUND when no run has this id. */
int s1_bench_run_progress(PGconn *c, long long run_id, s1_bench_progress *out, s1_err *err);

/* What a cancel or retry of a whole run did: jobs changed, and jobs the
 * caller may not change (another submitter's, without s1_admin). */
typedef struct {
    long long changed, refused;
} s1_bench_run_changed;

/* Cancels every queued or running job of the run (cancel), or queues every
 * failed or cancelled one again (retry), through s1.cancel_job / s1.retry_job
 * so each job's rights are checked, in one statement. */
int s1_bench_run_change(PGconn *c, long long run_id, bool cancel, s1_bench_run_changed *out,
                        s1_err *err);

/* Runs newest first (of suite when not NULL), at most limit: id, suite,
 * model, budgets, samples, jobs, succeeded, failed, pending, created_at, note. */
PGresult *s1_bench_run_list(PGconn *c, const char *suite, long limit, s1_err *err);

/* The run's scaling curve, one row per budget of its ladder (from
 * s1.scaling_curve): budget, jobs, succeeded, samples, graded, accuracy,
 * mean_thinking_tokens, control. accuracy and the means are NULL before any
 * sample has them. */
PGresult *s1_bench_run_curve(PGconn *c, long long run_id, s1_err *err);

/* One budget of a curve, as the figures need it. */
typedef struct {
    int budget;
    int has_accuracy; /* graded samples exist */
    double accuracy;  /* 0..1 */
    long graded;      /* graded samples behind accuracy */
    int has_thinking; /* samples with thinking tokens exist */
    double thinking;  /* mean thinking tokens */
} s1_bench_point;

/* The Wilson score interval at 95% of a share p (0..1) of n trials:
 * [*lo, *hi]; with n = 0, [0, 1]. Chosen over the normal approximation
 * because benchmark points are small (30 AIME problems) and often near 0 or
 * 1, where that one leaves [0, 1] or collapses to a point. */
void s1_bench_wilson(double p, long n, double *lo, double *hi);

/* The s1 paper's Scaling: the mean, over pairs of budgets that both have an
 * accuracy and a mean thinking count (pairs whose means are equal have no
 * slope and are left out), of the slope of accuracy in percentage points
 * over thousands of thinking tokens. 1 with *out set, 0 when no pair has a
 * slope. */
int s1_bench_scaling(const s1_bench_point *pts, int n, double *out);

/* The paper's Performance: the best accuracy (0..1). 1 with *out set, 0
 * when no budget has graded samples. */
int s1_bench_performance(const s1_bench_point *pts, int n, double *out);

/* Every result of the run with what voting reads: budget, problem
 * (suite_problem_id), sample, extracted_answer, grade; ordered by budget,
 * problem, sample. */
PGresult *s1_bench_run_samples(PGconn *c, long long run_id, s1_err *err);

/* Per budget and problem that both runs have, each run's accuracy over its
 * graded samples: budget, problem (suite_problem_id), a, b (0..1); ordered
 * by budget, problem. */
PGresult *s1_bench_paired(PGconn *c, long long run_a, long long run_b, s1_err *err);

/* A paired comparison of two runs over n shared problems, d[i] = a - b:
 * the mean difference, its 95% interval from a paired bootstrap over
 * problems, and the two-sided p-value of a sign-flip randomization test
 * (the exact McNemar test when each problem has one sample). Deterministic:
 * a fixed seed, 10,000 draws. */
typedef struct {
    double mean, lo, hi, p;
} s1_bench_paired_test;
void s1_bench_compare(const double *d, int n, s1_bench_paired_test *out);

/* The unbiased pass@k of a problem with n samples of which c are correct:
 * 1 - C(n-c, k) / C(n, k), the chance that k samples drawn without
 * replacement hold a correct one (Chen et al., 2021). k <= n. */
double s1_bench_pass_at_k(int n, int c, int k);

/* What a regrade found: results read, how many of them now grade correct,
 * and how many rows changed (extracted answer or grade). */
typedef struct {
    long long results, correct, changed;
} s1_bench_regraded;

/* Extracts and grades every result of run run_id again with this binary's
 * grader (store/answer.h, docs/grading.md), votes again on each job's
 * samples at each rung (results.majority, votes), and stores what changed,
 * in one transaction: all rows regraded or none. */
int s1_bench_regrade(PGconn *c, long long run_id, s1_bench_regraded *out, s1_err *err);

#endif
