/* s1ctl bench run, report, list: a suite run at a ladder of budgets (one
 * ladder job per problem, or one job per problem and budget), and the s1
 * paper's view of it: accuracy against
 * thinking tokens, with Control, Scaling and Performance, as text, JSON or
 * an SVG plot. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cleanup.h"
#include "commands.h"
#include "ctl.h"
#include "db.h"
#include "flags.h"
#include "answer.h"
#include "job.h"
#include "log.h"
#include "policy_flags.h"
#include "plot.h"
#include "util.h"

/* More rungs than this is a typo, not a ladder (the paper uses a handful):
 * what one ladder job can hold. */
#define BENCH_MAX_BUDGETS S1_MAX_RUNGS

static const char run_usage[] =
    "Usage: s1ctl bench run [FLAGS] SUITE --budgets N,N,...\n"
    "Queues a run of SUITE: one budget-ladder job per problem (it thinks once, and\n"
    "each budget gets its own result), with the problem's reference answer, all in\n"
    "one transaction. Prints the run's id; follow it with `s1ctl bench report ID`.\n"
    "The policy and sampling flags apply to every job; --budgets is required.\n"
    "With --wait, exit as `s1ctl bench wait` does.\n\n";

typedef struct {
    s1_job_params params;
    s1_bench_run_spec spec;
    s1_ladder ladder; /* --budgets: spec.budgets points into it */
    s1ctl_db_args db;
    int wait;
    double timeout; /* with --wait; 0: none */
} run_args;

#define RUN(field) offsetof(run_args, field)

static const s1ctl_flag run_flags[] = {
    {"separate", NULL,
     "one job per problem and budget, each with max_think = the\n"
     "budget, instead of a ladder job per problem",
     s1ctl_set_bool, RUN(spec.separate)},
    {"model", "NAME", "only a daemon serving this model runs the jobs (default any)",
     s1ctl_set_text, RUN(spec.model)},
    {"queue", "NAME", "queue (default \"default\")", s1ctl_set_queue, RUN(spec.queue)},
    {"priority", "N", "higher runs first (-1000000..1000000, default 0)", s1ctl_set_param_int,
     RUN(spec.priority), S1_PARAM_PRIORITY},
    {"samples", "N", "samples per job (1..1024, default 1)", s1ctl_set_param_int, RUN(spec.samples),
     S1_PARAM_SAMPLES},
    {"limit", "N", "only the first N problems of the suite", s1ctl_set_long, RUN(spec.limit),
     S1_PARAM_NONE, 1, INT64_MAX},
    {"note", "TEXT", "stored with the run (e.g. what changed)", s1ctl_set_text, RUN(spec.note)},
    {"dry-run", NULL,
     "check everything and print what would be queued (the jobs\n"
     "counted by the database, every CHECK applied); queue nothing",
     s1ctl_set_bool, RUN(spec.dry_run)},
    {"wait", NULL, "follow the run until its last job ends, as `s1ctl bench wait`",
     s1ctl_set_switch, RUN(wait)},
    {"timeout", "SECONDS", "with --wait, give up after SECONDS (exit 7)", s1ctl_set_timeout,
     RUN(timeout)},
};

/* A run is a ladder of budgets: one budget (--budget) or a Wait ladder
 * (--waits) is not a run, so its help does not offer them. */
static const char *const run_omits[] = {"budget", "waits", NULL};
static const char run_omit_why[] = "a run is a ladder of budgets: give --budgets N,N,...";

/* The checks once every flag is read: a ladder, one suite, and a policy that
 * holds at every rung (--min-think within the smallest budget). */
static int run_check(int n_args, char **args, run_args *a)
{
    s1_policy_cfg *p = &a->params.policy;
    if (p->ladder.kind != S1_LADDER_BUDGET)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--budgets is required (e.g. --budgets 512,1024,2048)");
    if (s1ctl_policy_done(&a->params) < 0) return S1CTL_EXIT_USAGE;
    /* The run's row keeps the budgets; its policy is what every job shares. */
    a->ladder = p->ladder;
    a->spec.budgets = a->ladder.rungs;
    a->spec.n_budgets = a->ladder.n_rungs;
    p->ladder = (s1_ladder){0};
    if (a->timeout > 0 && !a->wait)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--timeout: only meaningful with --wait");
    if (a->wait && a->spec.dry_run)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--wait: a --dry-run queues nothing to wait for");
    if (n_args != 1)
        return s1ctl_fail(S1CTL_EXIT_USAGE,
                          "expected one SUITE, got %d arguments "
                          "(see s1ctl bench run --help)",
                          n_args);
    a->spec.suite = args[0];
    return 0;
}

/* 0; -1 after --help; or the exit code after printing why. */
static int run_parse(int argc, char **argv, run_args *a)
{
    const s1ctl_flag_table tables[] = {
        S1CTL_FLAGS(NULL, run_flags, a),
        {NULL, s1ctl_db_flags, 2, &a->db, NULL},
        S1CTL_POLICY_TABLES(&a->params, run_omits, run_omit_why),
    };
    int n,
        rc = s1ctl_flags_parse(run_usage, tables, sizeof tables / sizeof *tables, argc, argv, &n);
    return rc ? rc : run_check(n, argv + 1, a);
}

/* What a --dry-run would have queued, from the database's own count. */
static int print_dry_run(const run_args *a, long long jobs)
{
    const s1_bench_run_spec *s = &a->spec;
    json_t *budgets = json_array();
    for (int i = 0; i < s->n_budgets; i++)
        json_array_append_new(budgets, json_integer(s->budgets[i]));
    json_t *o =
        json_pack("{s:b,s:s,s:I,s:o,s:b,s:i,s:s,s:s?,s:i,s:o,s:o}", "dry_run", 1, "suite", s->suite,
                  "jobs", (json_int_t)jobs, "budgets", budgets, "separate", s->separate, "samples",
                  s->samples ? s->samples : 1, "queue", s->queue ? s->queue : "default", "model",
                  s->model, "priority", s->priority, "policy", json_loads(s->policy_json, 0, NULL),
                  "sampling", json_loads(s->sampling_json, 0, NULL));
    if (a->db.json) return s1ctl_print_json(o);
    _cleanup_free_ char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!text) return s1ctl_fail(S1CTL_EXIT_FAILED, "out of memory");
    printf("dry run, nothing was queued: %lld job%s of suite %s would be queued: %s\n", jobs,
           jobs == 1 ? "" : "s", s->suite, text);
    return S1CTL_EXIT_OK;
}

/* The run just queued: its id (or JSON), then with --wait its progress. */
static int print_queued(PGconn *c, const run_args *a, long long run_id, long long jobs)
{
    if (!a->wait || !a->db.json) {
        if (a->db.json)
            return s1ctl_print_json(json_pack("{s:I,s:I,s:s}", "run", (json_int_t)run_id, "jobs",
                                              (json_int_t)jobs, "suite", a->spec.suite));
        printf("%lld\n", run_id);
        fflush(stdout);
    }
    if (!a->wait) return S1CTL_EXIT_OK;
    s1ctl_deadline deadline = s1ctl_deadline_in(a->timeout);
    return s1ctl_follow_run(c, run_id, a->db.json, false, &deadline);
}

int s1ctl_bench_run(int argc, char **argv)
{
    run_args a = {0};
    int rc = run_parse(argc, argv, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    s1_err err = {{0}};
    _cleanup_free_ char *policy = s1_job_policy_json(&a.params.policy, &err);
    _cleanup_free_ char *sampling = policy ? s1_job_sampling_json(&a.params.sampling, &err) : NULL;
    if (!sampling) return s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
    a.spec.policy_json = policy;
    a.spec.template_name = s1_template_name(a.params.policy.template);
    a.spec.sampling_json = sampling;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db.db, &c))) return rc;
    if ((rc = s1ctl_budget_fits(c, a.spec.queue, a.spec.model, a.spec.budgets[a.spec.n_budgets - 1],
                                a.params.policy.max_answer)))
        return rc;
    long long run_id, jobs;
    if ((rc = s1_bench_run_create(c, &a.spec, &run_id, &jobs, &err)) < 0)
        return s1ctl_fail(s1ctl_store_exit(rc), "%s; nothing was queued", err.msg);
    if (a.spec.dry_run) return print_dry_run(&a, jobs);
    s1ctl_warn_unserved(c, a.spec.queue ? a.spec.queue : "default", a.spec.model);
    return print_queued(c, &a, run_id, jobs);
}

/* ---- bench list ---- */

static const char list_usage[] =
    "Usage: s1ctl bench list [--suite NAME] [--limit N] [--json] [--db CONNINFO]\n"
    "Lists benchmark runs, newest first, with their suite, model, budgets and progress\n"
    "(jobs succeeded, failed, cancelled, and still pending).\n\n";

/* Runs overlaid in one report at most. */
enum { MAX_RUNS = 6 };

typedef struct {
    s1ctl_db_args db;
    const char *suite, *plot;
    long long limit, run_id; /* run_id: the first of run_ids, 0 for none */
    long long run_ids[MAX_RUNS];
    int n_runs;
} view_args;

#define VIEW(field) offsetof(view_args, field)

/* The flags of the commands that read runs; each leaves out what it does
 * not take. */
static const s1ctl_flag view_flags[] = {
    {"suite", "NAME", "the runs of this suite (report: its latest complete run)", s1ctl_set_string,
     VIEW(suite)},
    {"limit", "N", "at most N runs (default 50)", s1ctl_set_long, VIEW(limit), S1_PARAM_NONE, 1,
     1000000},
    {"plot", "FILE.svg", "write accuracy against thinking tokens (log scale) as SVG",
     s1ctl_set_nonempty, VIEW(plot)},
};

static const char *const list_omits[] = {"plot", NULL};
static const char *const report_omits[] = {"limit", NULL};
static const char *const runs_only[] = {"suite", "limit", "plot", NULL};

/* Flags of list, report, compare and regrade (view_flags but omit); up to
 * max_runs RUN_ID arguments. 0; -1 after --help; or the exit code after
 * printing why. */
static int view_parse(int argc, char **argv, const char *usage, const char *const *omit,
                      int max_runs, view_args *a)
{
    const s1ctl_flag_table tables[] = {
        {NULL, view_flags, sizeof view_flags / sizeof *view_flags, a, omit, NULL},
        {NULL, s1ctl_db_flags, 2, &a->db, NULL},
    };
    int n, rc = s1ctl_flags_parse(usage, tables, 2, argc, argv, &n);
    if (rc) return rc;
    if (n > max_runs)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "unexpected argument '%s' (see s1ctl %s --help)",
                          argv[1 + max_runs], s1ctl_command());
    if ((rc = s1ctl_ids("run id", argv + 1, n, 0, max_runs, a->run_ids))) return rc;
    a->n_runs = n;
    a->run_id = a->n_runs ? a->run_ids[0] : 0;
    if (a->run_id && a->suite)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "give a RUN_ID or --suite NAME, not both");
    return 0;
}

/* The rows of r as a JSON array. */
static json_t *rows_json(const PGresult *r)
{
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(arr, s1ctl_row_json(r, i));
    return arr;
}

int s1ctl_bench_list(int argc, char **argv)
{
    view_args a = {.limit = 50};
    int rc = view_parse(argc, argv, list_usage, list_omits, 0, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db.db, &c))) return rc;
    s1_err err = {{0}};
    _cleanup_pgresult_ PGresult *r = s1_bench_run_list(c, a.suite, (long)a.limit, &err);
    if (!r) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (a.db.json) return s1ctl_print_json(rows_json(r));
    s1ctl_print_table(r);
    return S1CTL_EXIT_OK;
}

/* ---- bench report ---- */

/* A report: the run, its curve, and the figures computed from the curve. */
typedef struct {
    PGresult *run;   /* one row of s1_bench_run_get; owned */
    PGresult *curve; /* s1_bench_run_curve; owned */
    s1_bench_point pts[BENCH_MAX_BUDGETS];
    double lo[BENCH_MAX_BUDGETS], hi[BENCH_MAX_BUDGETS]; /* 95% interval of accuracy */
    int n;
    /* With several samples per problem (k of them): per budget, the share
     * of graded problems whose majority answer is right, and mean pass@k. */
    int k;
    long voted[BENCH_MAX_BUDGETS];
    double maj[BENCH_MAX_BUDGETS], pass[BENCH_MAX_BUDGETS];
    int has_scaling, has_performance;
    double scaling, performance;
} report;

static void report_free(report *r)
{
    PQclear(r->run);
    PQclear(r->curve);
}

static const char *col(const PGresult *r, int row, const char *name)
{
    return PQgetvalue(r, row, PQfnumber(r, name));
}

static int null(const PGresult *r, int row, const char *name)
{
    return PQgetisnull(r, row, PQfnumber(r, name));
}

/* Points from the curve's rows, then the paper's figures from the points. */
static void report_compute(report *rp)
{
    const PGresult *c = rp->curve;
    rp->n = PQntuples(c) < BENCH_MAX_BUDGETS ? PQntuples(c) : BENCH_MAX_BUDGETS;
    for (int i = 0; i < rp->n; i++) {
        s1_bench_point *p = &rp->pts[i];
        p->budget = atoi(col(c, i, "budget"));
        p->has_accuracy = !null(c, i, "accuracy");
        p->accuracy = p->has_accuracy ? strtod(col(c, i, "accuracy"), NULL) : 0;
        p->graded = atol(col(c, i, "graded"));
        p->has_thinking = !null(c, i, "mean_thinking_tokens");
        p->thinking = p->has_thinking ? strtod(col(c, i, "mean_thinking_tokens"), NULL) : 0;
        s1_bench_wilson(p->accuracy, p->graded, &rp->lo[i], &rp->hi[i]);
    }
    rp->has_scaling = s1_bench_scaling(rp->pts, rp->n, &rp->scaling);
    rp->has_performance = s1_bench_performance(rp->pts, rp->n, &rp->performance);
}

/* The index of budget among the report's points; -1 when it has none. */
static int point_of(const report *rp, int budget)
{
    for (int i = 0; i < rp->n; i++)
        if (rp->pts[i].budget == budget) return i;
    return -1;
}

/* One problem at one budget: rows [from, to) of the samples. Adds its
 * majority vote and pass@k to the budget's sums (graded problems only). */
static int vote_problem(report *rp, const PGresult *r, int from, int to)
{
    const char *answers[1024];
    int n = 0, correct = 0, graded = 0;
    for (int i = from; i < to && n < 1024; i++, n++) {
        answers[n] = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
        graded += !PQgetisnull(r, i, 4);
        correct += !PQgetisnull(r, i, 4) && *PQgetvalue(r, i, 4) == 't';
    }
    int at = point_of(rp, atoi(PQgetvalue(r, from, 0)));
    if (at < 0 || !graded) return 0;
    int winner, votes;
    s1_err err = {{0}};
    if (s1_answer_vote(answers, n, &winner, &votes, &err))
        return s1ctl_fail(S1CTL_EXIT_FAILED, "%s", err.msg);
    rp->voted[at]++;
    rp->maj[at] += winner >= 0 && *PQgetvalue(r, from + winner, 4) == 't';
    rp->pass[at] += s1_bench_pass_at_k(n, correct, rp->k < n ? rp->k : n);
    return 0;
}

/* maj@k and pass@k per budget, from every sample of the run. Only runs
 * with several samples per problem have them. 0, or the exit code. */
static int report_votes(PGconn *c, report *rp)
{
    rp->k = atoi(col(rp->run, 0, "samples"));
    if (rp->k < 2) return 0;
    s1_err err = {{0}};
    _cleanup_pgresult_ PGresult *r = s1_bench_run_samples(c, atoll(col(rp->run, 0, "id")), &err);
    if (!r) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    int rc = 0, from = 0;
    for (int i = 1; !rc && i <= PQntuples(r); i++)
        if (i == PQntuples(r) || strcmp(PQgetvalue(r, i, 0), PQgetvalue(r, from, 0)) ||
            strcmp(PQgetvalue(r, i, 1), PQgetvalue(r, from, 1))) {
            rc = vote_problem(rp, r, from, i);
            from = i;
        }
    for (int i = 0; i < rp->n; i++)
        if (rp->voted[i]) rp->maj[i] /= (double)rp->voted[i], rp->pass[i] /= (double)rp->voted[i];
    return rc;
}

/* Why a run was not found: by id, latest of a suite, or latest of all. */
static int no_run(long long run_id, const char *suite)
{
    if (run_id)
        return s1ctl_fail(S1CTL_EXIT_NOT_FOUND,
                          "run %lld: no such benchmark run (see s1ctl bench list)", run_id);
    if (suite)
        return s1ctl_fail(S1CTL_EXIT_NOT_FOUND,
                          "suite %s has no benchmark run (start one with s1ctl bench run)", suite);
    return s1ctl_fail(S1CTL_EXIT_NOT_FOUND,
                      "no benchmark run yet (start one with s1ctl bench run)");
}

/* Reads the run (by id, latest of a suite, or latest of all) and its curve.
 * 0, or the exit code after printing why. */
static int report_load(PGconn *c, long long run_id, const char *suite, report *rp)
{
    s1_err err = {{0}};
    rp->run = s1_bench_run_get(c, run_id, suite, &err);
    if (!rp->run) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (PQntuples(rp->run) == 0) return no_run(run_id, suite);
    rp->curve = s1_bench_run_curve(c, atoll(PQgetvalue(rp->run, 0, 0)), &err);
    if (!rp->curve) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    report_compute(rp);
    return report_votes(c, rp);
}

/* NULL when the figure is undefined (no graded sample, no pair of budgets). */
static json_t *maybe_real(int has, double v)
{
    return has ? json_real(v) : json_null();
}

static json_t *report_json(const report *rp)
{
    json_t *o = s1ctl_row_json(rp->run, 0);
    json_t *curve = rows_json(rp->curve);
    for (int i = 0; i < rp->n; i++) {
        json_t *row = json_array_get(curve, (size_t)i);
        int has = rp->pts[i].has_accuracy;
        json_object_set_new(row, "ci_low", maybe_real(has, rp->lo[i]));
        json_object_set_new(row, "ci_high", maybe_real(has, rp->hi[i]));
        if (rp->k < 2) continue;
        json_object_set_new(row, "maj_at_k", maybe_real(rp->voted[i] > 0, rp->maj[i]));
        json_object_set_new(row, "pass_at_k", maybe_real(rp->voted[i] > 0, rp->pass[i]));
        json_object_set_new(row, "voted_problems", json_integer(rp->voted[i]));
    }
    if (rp->k >= 2) json_object_set_new(o, "k", json_integer(rp->k));
    json_object_set_new(o, "curve", curve);
    json_object_set_new(o, "ci", json_string("Wilson score interval, 95%, over graded samples"));
    json_object_set_new(o, "scaling", maybe_real(rp->has_scaling, rp->scaling));
    json_object_set_new(o, "scaling_unit", json_string("accuracy points per 1000 thinking tokens"));
    json_object_set_new(o, "performance", maybe_real(rp->has_performance, rp->performance));
    return o;
}

/* A 0..1 column as "56.7%", or "-" when NULL. */
static const char *pct(char *buf, size_t cap, const PGresult *r, int row, const char *name)
{
    if (null(r, row, name)) return "-";
    snprintf(buf, cap, "%.1f%%", 100 * strtod(col(r, row, name), NULL));
    return buf;
}

static void print_header(const PGresult *run)
{
    printf("run %s: suite %s, model %s, %s sample%s per job, created %s\n", col(run, 0, "id"),
           col(run, 0, "suite"), null(run, 0, "model") ? "any" : col(run, 0, "model"),
           col(run, 0, "samples"), strcmp(col(run, 0, "samples"), "1") ? "s" : "",
           col(run, 0, "created_at"));
    if (!null(run, 0, "note")) printf("note: %s\n", col(run, 0, "note"));
    if (strcmp(col(run, 0, "policy"), "{}")) printf("policy: %s\n", col(run, 0, "policy"));
    if (strcmp(col(run, 0, "sampling"), "{}")) printf("sampling: %s\n", col(run, 0, "sampling"));
    if (!null(run, 0, "model_fingerprints"))
        printf("made by: model files %s, s1d %s, backend %s, %s GPU(s)\n",
               col(run, 0, "model_fingerprints"), col(run, 0, "s1d_versions"),
               col(run, 0, "backends"), col(run, 0, "gpus"));
    printf("jobs: %s, %s succeeded, %s failed or cancelled, %s pending\n\n", col(run, 0, "jobs"),
           col(run, 0, "succeeded"), col(run, 0, "failed"), col(run, 0, "pending"));
}

/* maj@k and pass@k of budget i as "56.7%", or "-" before any problem voted. */
static const char *voted_pct(char *buf, size_t cap, const report *rp, int i, const double *v)
{
    if (i >= rp->n || !rp->voted[i]) return "-";
    snprintf(buf, cap, "%.1f%%", 100 * v[i]);
    return buf;
}

static void print_curve(const report *rp)
{
    const PGresult *c = rp->curve;
    char acc[16], ctl[16], think[24], done[40], ci[32], maj[16], pass[16], head[2][16];
    printf("%8s  %11s  %7s  %6s  %8s  %13s  %8s  %7s", "budget", "done/total", "samples", "graded",
           "accuracy", "95% interval", "thinking", "control");
    snprintf(head[0], sizeof head[0], "maj@%d", rp->k);
    snprintf(head[1], sizeof head[1], "pass@%d", rp->k);
    if (rp->k >= 2) printf("  %8s  %8s", head[0], head[1]);
    printf("\n");
    for (int i = 0; i < PQntuples(c); i++) {
        snprintf(done, sizeof done, "%s/%s", col(c, i, "succeeded"), col(c, i, "jobs"));
        if (null(c, i, "mean_thinking_tokens"))
            snprintf(think, sizeof think, "-");
        else
            snprintf(think, sizeof think, "%.1f", strtod(col(c, i, "mean_thinking_tokens"), NULL));
        if (i < rp->n && rp->pts[i].has_accuracy)
            snprintf(ci, sizeof ci, "%.1f-%.1f%%", 100 * rp->lo[i], 100 * rp->hi[i]);
        else
            snprintf(ci, sizeof ci, "-");
        printf("%8s  %11s  %7s  %6s  %8s  %13s  %8s  %7s", col(c, i, "budget"), done,
               col(c, i, "samples"), col(c, i, "graded"), pct(acc, sizeof acc, c, i, "accuracy"),
               ci, think, pct(ctl, sizeof ctl, c, i, "control"));
        if (rp->k >= 2)
            printf("  %8s  %8s", voted_pct(maj, sizeof maj, rp, i, rp->maj),
                   voted_pct(pass, sizeof pass, rp, i, rp->pass));
        printf("\n");
    }
    if (rp->k >= 2)
        printf("maj@%d: the majority answer is right (votes grouped by the grader, ties to the\n"
               "earliest sample); pass@%d: unbiased estimate that %d samples hold a right one\n",
               rp->k, rp->k, rp->k);
}

static void print_figures(const report *rp)
{
    char ctl[16];
    printf("\nControl %s   ", pct(ctl, sizeof ctl, rp->run, 0, "control"));
    if (rp->has_scaling)
        printf("Scaling %.2f (accuracy points per 1000 thinking tokens)   ", rp->scaling);
    else
        printf("Scaling -   ");
    if (rp->has_performance)
        printf("Performance %.1f%%\n", 100 * rp->performance);
    else
        printf("Performance -\n");
}

/* Bar width of the terminal chart at 100% accuracy. */
#define CHART_WIDTH 40

/* Accuracy per budget as bars, with the thinking actually spent: the plot's
 * content for a terminal. */
static void print_chart(const report *rp)
{
    printf("\naccuracy by budget (mean thinking tokens)\n");
    for (int i = 0; i < rp->n; i++) {
        const s1_bench_point *p = &rp->pts[i];
        int w = p->has_accuracy ? (int)lround(p->accuracy * CHART_WIDTH) : 0;
        printf("%8d |", p->budget);
        for (int k = 0; k < CHART_WIDTH; k++)
            putchar(k < w ? '#' : ' ');
        if (p->has_accuracy)
            printf("| %5.1f%%", 100 * p->accuracy);
        else
            printf("|     -");
        if (p->has_thinking)
            printf("  (%.0f)\n", p->thinking);
        else
            printf("  (-)\n");
    }
}

/* ---- the SVG plot (cli/plot.c draws it) ---- */

static bool unfinished(const report *rp)
{
    return atol(col(rp->run, 0, "pending")) > 0;
}

static void plot_points(const report *rp, s1ctl_plot_point *out)
{
    for (int i = 0; i < rp->n; i++) {
        const s1_bench_point *p = &rp->pts[i];
        out[i] = (s1ctl_plot_point){.budget = p->budget,
                                    .has_accuracy = p->has_accuracy,
                                    .has_thinking = p->has_thinking,
                                    .accuracy = p->accuracy,
                                    .lo = rp->lo[i],
                                    .hi = rp->hi[i],
                                    .thinking = p->thinking,
                                    .n = p->graded};
    }
}

/* The lines above the chart: what was run, on what, how; the figures of a
 * single run. Several runs share the line of what they have in common. */
static void plot_text(const report *rps, int n, char *title, char *meta, char *figures, size_t cap)
{
    const PGresult *run = rps[0].run;
    if (n == 1)
        snprintf(title, cap, "%s, run %s: accuracy vs thinking tokens", col(run, 0, "suite"),
                 col(run, 0, "id"));
    else
        snprintf(title, cap, "%s: accuracy vs thinking tokens, %d runs", col(run, 0, "suite"), n);
    snprintf(meta, cap, "model %s, %s sample%s per job, sampling %s, created %.10s",
             null(run, 0, "model") ? "any" : col(run, 0, "model"), col(run, 0, "samples"),
             strcmp(col(run, 0, "samples"), "1") ? "s" : "",
             strcmp(col(run, 0, "sampling"), "{}") ? col(run, 0, "sampling") : "greedy",
             col(run, 0, "created_at"));
    char ctl[16], perf[32], scal[32];
    pct(ctl, sizeof ctl, run, 0, "control");
    snprintf(perf, sizeof perf, rps[0].has_performance ? "%.1f%%" : "-", 100 * rps[0].performance);
    snprintf(scal, sizeof scal, rps[0].has_scaling ? "%.2f" : "-", rps[0].scaling);
    snprintf(figures, cap, "Control %s   Scaling %s   Performance %s", ctl, scal, perf);
}

/* Writes the SVG chart of the runs to path; 0, or the exit code after
 * printing why. */
static int write_svg(const char *path, const report *rps, int n)
{
    s1ctl_plot_point pts[MAX_RUNS][BENCH_MAX_BUDGETS];
    s1ctl_plot_curve curves[MAX_RUNS];
    char names[MAX_RUNS][128], title[256], meta[256], figures[128];
    for (int k = 0; k < n; k++) {
        plot_points(&rps[k], pts[k]);
        snprintf(names[k], sizeof names[k], "run %s, model %s", col(rps[k].run, 0, "id"),
                 null(rps[k].run, 0, "model") ? "any" : col(rps[k].run, 0, "model"));
        curves[k] = (s1ctl_plot_curve){names[k], pts[k], rps[k].n, unfinished(&rps[k])};
    }
    plot_text(rps, n, title, meta, figures, sizeof title);
    s1ctl_plot_text text = {title, n == 1 ? meta : NULL, n == 1 ? figures : NULL};
    if (s1ctl_plot_svg(path, curves, n, &text))
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--plot %s: %s", path, strerror(errno));
    return 0;
}

/* Overlaid runs are compared as they are, but never silently: every setting
 * in which a run differs from the first is named on stderr. What made the
 * results (the last four) is compared only where both runs have some. */
static void warn_differences(const report *rps, int n)
{
    static const char *const settings[] = {
        "suite",        "model",    "samples", "sampling", "model_fingerprints",
        "s1d_versions", "backends", "gpus"};
    enum { FIRST_MADE_BY = 4 };
    for (int k = 1; k < n; k++)
        for (size_t s = 0; s < sizeof settings / sizeof *settings; s++) {
            const PGresult *x = rps[0].run, *y = rps[k].run;
            const char *a = col(x, 0, settings[s]), *b = col(y, 0, settings[s]);
            bool a_null = null(x, 0, settings[s]), b_null = null(y, 0, settings[s]);
            if (s >= FIRST_MADE_BY && (a_null || b_null)) continue;
            if (strcmp(a, b) || a_null != b_null)
                log_warning("warning: runs %s and %s differ in %s: %s vs %s", col(x, 0, "id"),
                            col(y, 0, "id"), settings[s], *a ? a : "(none)", *b ? b : "(none)");
        }
}

static const char report_usage[] =
    "Usage: s1ctl bench report [RUN_ID... | --suite NAME] [--json] [--plot FILE.svg]\n"
    "Prints a benchmark run (RUN_ID, else the latest complete run of --suite, else\n"
    "the latest complete run; the latest run when none is complete) per budget:\n"
    "jobs done/total, accuracy over graded samples with its 95% interval (Wilson),\n"
    "mean thinking tokens, control (share of samples within their budget) and, with\n"
    "several samples per problem, maj@k and pass@k; then the s1 paper's figures: Control, Scaling "
    "(mean slope of\n"
    "accuracy over thinking tokens between budgets, in accuracy points per 1000\n"
    "tokens) and Performance (best accuracy). On a terminal a text chart follows,\n"
    "unless --plot writes an SVG chart instead. Several RUN_IDs (up to 6) are\n"
    "reported one after the other and overlaid in one chart; settings in which\n"
    "they differ are named on stderr. --json prints an array for several runs.\n\n";

static int report_print(const view_args *a, const report *rps, int n)
{
    if (a->db.json) {
        if (n == 1) return s1ctl_print_json(report_json(&rps[0]));
        json_t *arr = json_array();
        for (int k = 0; k < n; k++)
            json_array_append_new(arr, report_json(&rps[k]));
        return s1ctl_print_json(arr);
    }
    for (int k = 0; k < n; k++) {
        if (k) printf("\n");
        print_header(rps[k].run);
        print_curve(&rps[k]);
        print_figures(&rps[k]);
        if (!a->plot && isatty(STDOUT_FILENO)) print_chart(&rps[k]);
    }
    return S1CTL_EXIT_OK;
}

int s1ctl_bench_report(int argc, char **argv)
{
    view_args a = {0};
    int rc = view_parse(argc, argv, report_usage, report_omits, MAX_RUNS, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db.db, &c))) return rc;
    report rps[MAX_RUNS] = {0};
    int n = a.n_runs ? a.n_runs : 1;
    for (int k = 0; !rc && k < n; k++)
        rc = report_load(c, a.n_runs ? a.run_ids[k] : 0, a.suite, &rps[k]);
    if (!rc) warn_differences(rps, n);
    if (!rc && a.plot) rc = write_svg(a.plot, rps, n);
    if (!rc) rc = report_print(&a, rps, n);
    for (int k = 0; k < n; k++)
        report_free(&rps[k]);
    return rc;
}

/* ---- bench compare ---- */

static const char compare_usage[] =
    "Usage: s1ctl bench compare RUN_A RUN_B [--json] [--db CONNINFO]\n"
    "Per budget both runs have, over the problems both have graded: each run's\n"
    "accuracy, the difference A - B with its 95% interval (paired bootstrap over\n"
    "problems) and a two-sided p-value (paired sign-flip randomization test; the\n"
    "exact McNemar test when each problem has one sample). 10,000 draws with a fixed\n"
    "seed: the same figures every time. Settings in which the runs differ (suite,\n"
    "model, samples, sampling) are named on stderr first.\n\n";

/* One budget's comparison from rows [from, to) of the pairs. */
typedef struct {
    int budget, problems;
    double a, b;
    s1_bench_paired_test t;
} compared;

static compared compare_budget(const PGresult *r, int from, int to, double *d)
{
    compared c = {.budget = atoi(PQgetvalue(r, from, 0)), .problems = to - from};
    for (int i = from; i < to; i++) {
        double a = strtod(PQgetvalue(r, i, 2), NULL), b = strtod(PQgetvalue(r, i, 3), NULL);
        c.a += a / c.problems;
        c.b += b / c.problems;
        d[i - from] = a - b;
    }
    s1_bench_compare(d, c.problems, &c.t);
    return c;
}

static void print_compared(const compared *c, int n, long long run_a, long long run_b)
{
    printf("run %lld (A) against run %lld (B), over the problems both graded\n", run_a, run_b);
    printf("%8s  %8s  %7s  %7s  %7s  %17s  %7s\n", "budget", "problems", "A", "B", "A - B",
           "95% interval", "p");
    for (int i = 0; i < n; i++)
        printf("%8d  %8d  %6.1f%%  %6.1f%%  %+6.1f%%  [%+6.1f, %+6.1f]  %7.4f\n", c[i].budget,
               c[i].problems, 100 * c[i].a, 100 * c[i].b, 100 * c[i].t.mean, 100 * c[i].t.lo,
               100 * c[i].t.hi, c[i].t.p);
    if (!n) printf("no budget has problems graded in both runs\n");
}

static json_t *compared_json(const compared *c, int n, long long run_a, long long run_b)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:f}", "budget",
                                             c[i].budget, "problems", c[i].problems, "a", c[i].a,
                                             "b", c[i].b, "difference", c[i].t.mean, "ci_low",
                                             c[i].t.lo, "ci_high", c[i].t.hi, "p", c[i].t.p));
    return json_pack("{s:I,s:I,s:o}", "a", (json_int_t)run_a, "b", (json_int_t)run_b, "budgets",
                     arr);
}

/* Splits the pairs by budget and compares each. 0, or the exit code. */
static int compare_runs(PGconn *c, const view_args *a)
{
    s1_err err = {{0}};
    _cleanup_pgresult_ PGresult *r = s1_bench_paired(c, a->run_ids[0], a->run_ids[1], &err);
    if (!r) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    int rows = PQntuples(r), n = 0;
    compared out[BENCH_MAX_BUDGETS];
    double *d = malloc((size_t)(rows ? rows : 1) * sizeof *d);
    if (!d) return s1ctl_fail(S1CTL_EXIT_FAILED, "out of memory");
    for (int from = 0, i = 1; i <= rows && n < BENCH_MAX_BUDGETS; i++)
        if (i == rows || strcmp(PQgetvalue(r, i, 0), PQgetvalue(r, from, 0))) {
            out[n++] = compare_budget(r, from, i, d);
            from = i;
        }
    free(d);
    if (a->db.json) return s1ctl_print_json(compared_json(out, n, a->run_ids[0], a->run_ids[1]));
    print_compared(out, n, a->run_ids[0], a->run_ids[1]);
    return S1CTL_EXIT_OK;
}

int s1ctl_bench_compare(int argc, char **argv)
{
    view_args a = {0};
    int rc = view_parse(argc, argv, compare_usage, runs_only, 2, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    if (a.n_runs != 2)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "give two run ids (see s1ctl bench list)");
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db.db, &c))) return rc;
    report rps[2] = {0};
    for (int k = 0; !rc && k < 2; k++)
        rc = report_load(c, a.run_ids[k], NULL, &rps[k]);
    if (!rc) warn_differences(rps, 2);
    if (!rc) rc = compare_runs(c, &a);
    report_free(&rps[0]);
    report_free(&rps[1]);
    return rc;
}

/* ---- bench regrade ---- */

static const char regrade_usage[] =
    "Usage: s1ctl bench regrade RUN_ID [--json] [--db CONNINFO]\n"
    "Extracts and grades every result of the run again with this s1ctl's grader\n"
    "(docs/grading.md), after the grader has improved; stores only the extracted\n"
    "answers and grades that change, all in one transaction, and prints how many.\n\n";

int s1ctl_bench_regrade(int argc, char **argv)
{
    view_args a = {0};
    int rc = view_parse(argc, argv, regrade_usage, runs_only, 1, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    if (!a.run_id) return s1ctl_fail(S1CTL_EXIT_USAGE, "no RUN_ID given (see s1ctl bench list)");
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db.db, &c))) return rc;
    s1_err err = {{0}};
    _cleanup_pgresult_ PGresult *run = s1_bench_run_get(c, a.run_id, NULL, &err);
    if (!run) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (PQntuples(run) == 0)
        return s1ctl_fail(S1CTL_EXIT_NOT_FOUND,
                          "run %lld: no such benchmark run (see s1ctl bench list)", a.run_id);
    s1_bench_regraded g;
    if (s1_bench_regrade(c, a.run_id, &g, &err)) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (a.db.json)
        return s1ctl_print_json(json_pack("{s:I,s:I,s:I,s:I}", "run", (json_int_t)a.run_id,
                                          "results", (json_int_t)g.results, "correct",
                                          (json_int_t)g.correct, "changed", (json_int_t)g.changed));
    printf("run %lld: %lld results regraded, %lld correct, %lld changed\n", a.run_id, g.results,
           g.correct, g.changed);
    return S1CTL_EXIT_OK;
}

static const char bench_help[] =
    "Usage: s1ctl bench COMMAND [FLAGS] [ARGS]   (s1ctl bench COMMAND --help for its flags)\n\n"
    "Benchmark runs: a suite at a ladder of thinking budgets.\n"
    "  run SUITE --budgets N,N,...   queue a ladder job per problem (--separate: per budget)\n"
    "  report [RUN_ID | --suite S]   accuracy against thinking tokens, and a plot\n"
    "  list                          runs with their progress\n"
    "  regrade RUN_ID                grade every result again with this grader\n"
    "  compare RUN_A RUN_B           per-budget differences with a paired test\n"
    "  wait RUN_ID                   follow a run until its last job ends\n"
    "  cancel RUN_ID                 cancel every queued or running job of a run\n"
    "  retry RUN_ID                  queue a run's failed and cancelled jobs again\n";

int s1ctl_bench(int argc, char **argv)
{
    static const s1ctl_sub subs[] = {
        {"run", "bench run", s1ctl_bench_run},
        {"report", "bench report", s1ctl_bench_report},
        {"list", "bench list", s1ctl_bench_list},
        {"regrade", "bench regrade", s1ctl_bench_regrade},
        {"compare", "bench compare", s1ctl_bench_compare},
        {"wait", "bench wait", s1ctl_bench_wait},
        {"cancel", "bench cancel", s1ctl_bench_cancel},
        {"retry", "bench retry", s1ctl_bench_retry},
    };
    return s1ctl_subcommand("bench", subs, sizeof subs / sizeof *subs, bench_help, argc, argv);
}
