#include "bench.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "cleanup.h"
#include "ctl.h"
#include "db.h"

static void ll_param(char *buf, size_t cap, long long v)
{
    snprintf(buf, cap, "%lld", v);
}

/* Runs a statement whose one parameter is the run. */
static PGresult *exec_run(PGconn *c, const char *what, const char *sql, long long run_id,
                          s1_err *err)
{
    char rid[24];
    ll_param(rid, sizeof rid, run_id);
    const char *params[] = {rid};
    return s1_db_exec(c, what, sql, 1, params, err);
}

/* Suites are found by name, so importing the same name again reuses the row;
 * a NULL description keeps the one stored. */
static const char SQL_SUITE_UPSERT[] =
    "INSERT INTO s1.suites (name, description) VALUES ($1, $2)"
    " ON CONFLICT (name) DO UPDATE"
    "    SET description = coalesce(EXCLUDED.description, s1.suites.description)"
    " RETURNING id";

int s1_bench_suite_upsert(PGconn *c, const char *name, const char *description, long long *id,
                          s1_err *err)
{
    const char *params[] = {name, description};
    _cleanup_pgresult_ PGresult *r =
        s1_db_exec(c, "storing the suite", SQL_SUITE_UPSERT, 2, params, err);
    if (!r) return -1;
    *id = atoll(PQgetvalue(r, 0, 0));
    return 0;
}

/* A problem is keyed by (suite, name): re-importing a file changes only the
 * problems whose text or answer changed (the WHERE makes an identical row
 * return nothing), and xmax = 0 tells a fresh insert from an update. Jobs keep
 * their own copy of the text, so past runs are not rewritten. */
static const char SQL_PROBLEM_UPSERT[] =
    "INSERT INTO s1.suite_problems (suite_id, name, problem, reference_answer)"
    " VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (suite_id, name) DO UPDATE"
    "    SET problem = EXCLUDED.problem, reference_answer = EXCLUDED.reference_answer"
    "  WHERE (s1.suite_problems.problem, s1.suite_problems.reference_answer)"
    "        IS DISTINCT FROM (EXCLUDED.problem, EXCLUDED.reference_answer)"
    " RETURNING (xmax = 0) AS inserted";

int s1_bench_problem_upsert(PGconn *c, long long suite_id, const char *name, const char *problem,
                            const char *answer, s1_bench_change *change, s1_err *err)
{
    char sid[24];
    ll_param(sid, sizeof sid, suite_id);
    const char *params[] = {sid, name, problem, answer};
    _cleanup_pgresult_ PGresult *r =
        s1_db_exec(c, "storing the problem", SQL_PROBLEM_UPSERT, 4, params, err);
    if (!r) return -1;
    if (PQntuples(r) == 0)
        *change = S1_BENCH_UNCHANGED;
    else
        *change = *PQgetvalue(r, 0, 0) == 't' ? S1_BENCH_ADDED : S1_BENCH_UPDATED;
    return 0;
}

/* Counts come from subqueries so a suite without problems or runs still shows. */
static const char SQL_SUITE_LIST[] =
    "SELECT s.name, s.description,"
    "       (SELECT count(*) FROM s1.suite_problems p WHERE p.suite_id = s.id) AS problems,"
    "       (SELECT count(*) FROM s1.bench_runs b WHERE b.suite_id = s.id) AS runs,"
    "       (SELECT max(b.created_at) FROM s1.bench_runs b WHERE b.suite_id = s.id) AS last_run,"
    "       s.created_at"
    "  FROM s1.suites s ORDER BY s.name";

PGresult *s1_bench_suite_list(PGconn *c, s1_err *err)
{
    return s1_db_exec(c, "listing suites", SQL_SUITE_LIST, 0, NULL, err);
}

/* One suite by its unique name. */
static const char SQL_SUITE_GET[] =
    "SELECT s.id, s.name, s.description,"
    "       (SELECT count(*) FROM s1.suite_problems p WHERE p.suite_id = s.id) AS problems,"
    "       (SELECT count(*) FROM s1.bench_runs b WHERE b.suite_id = s.id) AS runs,"
    "       s.created_at"
    "  FROM s1.suites s WHERE s.name = $1";

PGresult *s1_bench_suite_get(PGconn *c, const char *name, s1_err *err)
{
    const char *params[] = {name};
    return s1_db_exec(c, "reading the suite", SQL_SUITE_GET, 1, params, err);
}

/* Id order is import order: the order of the file first imported. */
static const char SQL_SUITE_PROBLEMS[] = "SELECT id, name, reference_answer, problem"
                                         "  FROM s1.suite_problems WHERE suite_id = $1 ORDER BY id";

PGresult *s1_bench_suite_problems(PGconn *c, long long suite_id, s1_err *err)
{
    char sid[24];
    ll_param(sid, sizeof sid, suite_id);
    const char *params[] = {sid};
    return s1_db_exec(c, "reading the suite's problems", SQL_SUITE_PROBLEMS, 1, params, err);
}

/* The run's row keeps the ladder and the shared policy; the jobs below are
 * derived from it, so the row is the record of what was asked. */
static const char SQL_RUN_INSERT[] =
    "INSERT INTO s1.bench_runs (suite_id, model, budgets, policy, sampling, samples, note,"
    "                           template)"
    " SELECT s.id, $2, $3::int[], coalesce($4::jsonb, '{}'), coalesce($5::jsonb, '{}'),"
    "        coalesce($6::int, 1), $7, $8"
    "   FROM s1.suites s WHERE s.name = $1"
    " RETURNING id";

/* The jobs in one statement, so a run is queued whole or not at all and its
 * problems are read from one snapshot: one ladder job per problem (its
 * policy's budgets are the run's), or with $5 one job per (problem, budget),
 * max_think the budget. Everything else comes from the run's row. Jobs of
 * one problem get neighbouring ids, so a daemon claims them together and
 * they share the prompt's prefix-cache blocks. The CHECKs on policy apply. */
static const char SQL_RUN_JOBS[] =
    "INSERT INTO s1.jobs (problem, queue, model, reference_answer, policy, sampling,"
    "                     priority, samples, bench_run_id, suite_problem_id, template)"
    " SELECT p.problem, coalesce($2, 'default'), b.model, p.reference_answer,"
    "        b.policy || CASE WHEN u.budget IS NULL"
    "                         THEN jsonb_build_object('budgets', to_jsonb(b.budgets))"
    "                         ELSE jsonb_build_object('max_think', u.budget) END,"
    "        b.sampling, $3::int, b.samples, b.id, p.id, b.template"
    "   FROM s1.bench_runs b"
    "   JOIN LATERAL (SELECT sp.id, sp.problem, sp.reference_answer FROM s1.suite_problems sp"
    "                  WHERE sp.suite_id = b.suite_id ORDER BY sp.id LIMIT $4::bigint) p ON true"
    "  CROSS JOIN LATERAL (SELECT x FROM unnest(b.budgets) AS x WHERE $5::bool"
    "                      UNION ALL SELECT NULL::int WHERE NOT $5::bool) AS u(budget)"
    "  WHERE b.id = $1"
    "  ORDER BY p.id, u.budget";

/* "{512,1024}": the text form of an int[] parameter. */
static int budgets_param(const int *budgets, int n, char **out, s1_err *err)
{
    size_t cap = (size_t)n * 12 + 3, len = 1;
    char *s = malloc(cap);
    if (!s) return s1_errf(err, "budgets: out of memory");
    s[0] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%d", i ? "," : "", budgets[i]);
    snprintf(s + len, cap - len, "}");
    *out = s;
    return 0;
}

/* Inserts the run's row and its jobs inside the caller's transaction. */
static int run_insert(PGconn *c, const s1_bench_run_spec *s, const char *budgets, long long *run_id,
                      long long *jobs, s1_err *err)
{
    char samples[16], prio[16], limit[24], rid[24];
    snprintf(samples, sizeof samples, "%d", s->samples);
    snprintf(prio, sizeof prio, "%d", s->priority);
    ll_param(limit, sizeof limit, s->limit);
    const char *run_params[] = {s->suite,       s->model,         budgets,
                                s->policy_json, s->sampling_json, s->samples ? samples : NULL,
                                s->note,        s->template_name};
    _cleanup_pgresult_ PGresult *r =
        s1_db_exec(c, "recording the run", SQL_RUN_INSERT, 8, run_params, err);
    if (!r) return -1;
    if (PQntuples(r) == 0) {
        s1_errf(err, "suite %s: no such suite (import it with `s1ctl suite import`)", s->suite);
        return S1_CTL_NOT_FOUND;
    }
    *run_id = atoll(PQgetvalue(r, 0, 0));
    ll_param(rid, sizeof rid, *run_id);
    const char *job_params[] = {rid, s->queue, prio, s->limit ? limit : NULL,
                                s->separate ? "true" : "false"};
    _cleanup_pgresult_ PGresult *j =
        s1_db_exec(c, "queuing the run's jobs", SQL_RUN_JOBS, 5, job_params, err);
    if (!j) return -1;
    *jobs = atoll(PQcmdTuples(j));
    if (*jobs > 0) return 0;
    s1_errf(err, "suite %s has no problems (import some with `s1ctl suite import`)", s->suite);
    return S1_CTL_REFUSED;
}

int s1_bench_run_create(PGconn *c, const s1_bench_run_spec *s, long long *run_id, long long *jobs,
                        s1_err *err)
{
    _cleanup_free_ char *budgets = NULL;
    if (budgets_param(s->budgets, s->n_budgets, &budgets, err) < 0) return -1;
    if (s1_db_run(c, "beginning the run", "BEGIN", 0, NULL, err) < 0) return -1;
    int rc = run_insert(c, s, budgets, run_id, jobs, err);
    if (rc < 0 || s->dry_run) {
        PQclear(PQexec(c, "ROLLBACK"));
        return rc;
    }
    return s1_db_run(c, "committing the run", "COMMIT", 0, NULL, err);
}

/* The latest run matching the filters (NULL = any): by id, by suite, or the
 * newest of all. Progress counts jobs; Control is over every sample of the
 * run with thinking tokens, the paper's share of budgets respected; the
 * provenance is what its results recorded (0009_provenance_votes). */
/* "The latest run" is the latest complete one (nothing pending, something
 * succeeded): a run still going or cancelled whole is picked only when no
 * run is complete. */
static const char SQL_RUN_GET[] =
    "SELECT b.id, s.name AS suite, b.model, b.budgets, b.samples, b.policy, b.sampling, b.note,"
    "       b.created_at, t.jobs, t.succeeded, t.failed, t.pending, t.control,"
    "       v.model_fingerprints, v.s1d_versions, v.backends, v.gpus"
    "  FROM s1.bench_runs b JOIN s1.suites s ON s.id = b.suite_id"
    "  LEFT JOIN s1.run_provenance v ON v.bench_run_id = b.id"
    " CROSS JOIN LATERAL ("
    "   SELECT count(DISTINCT j.id) AS jobs,"
    "          count(DISTINCT j.id) FILTER (WHERE j.state = 'succeeded') AS succeeded,"
    "          count(DISTINCT j.id) FILTER (WHERE j.state IN ('failed', 'cancelled')) AS failed,"
    "          count(DISTINCT j.id) FILTER (WHERE j.state IN ('queued', 'running')) AS pending,"
    "          avg((r.thinking_tokens <= coalesce(r.budget, (j.policy ->> 'max_think')::int))::int)"
    "            AS control"
    "     FROM s1.jobs j LEFT JOIN s1.results r ON r.job_id = j.id"
    "    WHERE j.bench_run_id = b.id) t"
    " WHERE ($1::bigint IS NULL OR b.id = $1::bigint) AND ($2::text IS NULL OR s.name = $2)"
    " ORDER BY (t.pending = 0 AND t.succeeded > 0) DESC, b.id DESC LIMIT 1";

PGresult *s1_bench_run_get(PGconn *c, long long run_id, const char *suite, s1_err *err)
{
    char rid[24];
    ll_param(rid, sizeof rid, run_id);
    const char *params[] = {run_id ? rid : NULL, suite};
    return s1_db_exec(c, "reading the run", SQL_RUN_GET, 2, params, err);
}

/* The run's jobs by state; no row when there is no such run. */
static const char SQL_RUN_PROGRESS[] =
    "SELECT count(j.id), count(j.id) FILTER (WHERE j.state = 'succeeded'),"
    "       count(j.id) FILTER (WHERE j.state = 'failed'),"
    "       count(j.id) FILTER (WHERE j.state = 'cancelled'),"
    "       count(j.id) FILTER (WHERE j.state IN ('queued', 'running')),"
    "       coalesce(min(j.queue) FILTER (WHERE j.state = 'queued'), ''),"
    "       coalesce(min(j.model) FILTER (WHERE j.state = 'queued'), '')"
    "  FROM s1.bench_runs b LEFT JOIN s1.jobs j ON j.bench_run_id = b.id"
    " WHERE b.id = $1 GROUP BY b.id";

int s1_bench_run_progress(PGconn *c, long long run_id, s1_bench_progress *out, s1_err *err)
{
    _cleanup_pgresult_ PGresult *r =
        exec_run(c, "reading the run's progress", SQL_RUN_PROGRESS, run_id, err);
    if (!r) return -1;
    if (PQntuples(r) == 0) {
        s1_errf(err, "run %lld: no such benchmark run (see s1ctl bench list)", run_id);
        return S1_CTL_NOT_FOUND;
    }
    long long *counts[] = {&out->jobs, &out->succeeded, &out->failed, &out->cancelled,
                           &out->pending};
    for (int i = 0; i < 5; i++)
        *counts[i] = atoll(PQgetvalue(r, 0, i));
    snprintf(out->queue, sizeof out->queue, "%s", PQgetvalue(r, 0, 5));
    snprintf(out->model, sizeof out->model, "%s", PQgetvalue(r, 0, 6));
    return 0;
}

/* Each job through the function the roles allow (s1.cancel_job checks the
 * caller's right to it, 0003_roles); the states picked are the ones the
 * function can change, so "refused" counts only jobs the caller may not
 * touch (or that changed state meanwhile). */
static const char SQL_RUN_CANCEL[] =
    "SELECT count(*) FILTER (WHERE o.outcome = 'done'), count(*) FILTER (WHERE o.outcome <> 'done')"
    "  FROM s1.jobs j CROSS JOIN LATERAL s1.cancel_job(j.id) o"
    " WHERE j.bench_run_id = $1 AND j.state IN ('queued', 'running') AND NOT j.cancel_requested";

static const char SQL_RUN_RETRY[] =
    "SELECT count(*) FILTER (WHERE o.outcome = 'done'), count(*) FILTER (WHERE o.outcome <> 'done')"
    "  FROM s1.jobs j CROSS JOIN LATERAL s1.retry_job(j.id) o"
    " WHERE j.bench_run_id = $1 AND j.state IN ('failed', 'cancelled')";

int s1_bench_run_change(PGconn *c, long long run_id, bool cancel, s1_bench_run_changed *out,
                        s1_err *err)
{
    _cleanup_pgresult_ PGresult *r = exec_run(c, cancel ? "cancelling the run" : "retrying the run",
                                              cancel ? SQL_RUN_CANCEL : SQL_RUN_RETRY, run_id, err);
    if (!r) return -1;
    out->changed = atoll(PQgetvalue(r, 0, 0));
    out->refused = atoll(PQgetvalue(r, 0, 1));
    return 0;
}

/* Runs with their progress by job state; NULL suite = every suite. */
static const char SQL_RUN_LIST[] =
    "SELECT b.id, s.name AS suite, b.model, b.budgets, b.samples, t.jobs, t.succeeded,"
    "       t.failed, t.cancelled, t.pending, b.created_at, b.note"
    "  FROM s1.bench_runs b JOIN s1.suites s ON s.id = b.suite_id"
    " CROSS JOIN LATERAL ("
    "   SELECT count(*) AS jobs,"
    "          count(*) FILTER (WHERE j.state = 'succeeded') AS succeeded,"
    "          count(*) FILTER (WHERE j.state = 'failed') AS failed,"
    "          count(*) FILTER (WHERE j.state = 'cancelled') AS cancelled,"
    "          count(*) FILTER (WHERE j.state IN ('queued', 'running')) AS pending"
    "     FROM s1.jobs j WHERE j.bench_run_id = b.id) t"
    " WHERE ($1::text IS NULL OR s.name = $1)"
    " ORDER BY b.id DESC LIMIT $2::bigint";

PGresult *s1_bench_run_list(PGconn *c, const char *suite, long limit, s1_err *err)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *params[] = {suite, lim};
    return s1_db_exec(c, "listing runs", SQL_RUN_LIST, 2, params, err);
}

/* Every budget of the ladder, also those without jobs or results yet (the
 * view only has budgets that have jobs). accuracy is over graded samples (avg
 * skips NULL grades); graded says how many that is. */
static const char SQL_RUN_CURVE[] =
    "SELECT u.budget, coalesce(c.jobs, 0) AS jobs, coalesce(c.succeeded, 0) AS succeeded,"
    "       coalesce(c.samples, 0) AS samples, g.graded, c.accuracy, c.mean_thinking_tokens,"
    "       c.budget_respected AS control"
    "  FROM s1.bench_runs b"
    " CROSS JOIN unnest(b.budgets) AS u(budget)"
    "  LEFT JOIN s1.scaling_curve c ON c.bench_run_id = b.id AND c.budget = u.budget"
    " CROSS JOIN LATERAL ("
    "   SELECT count(r.grade) AS graded"
    "     FROM s1.jobs j JOIN s1.results r ON r.job_id = j.id"
    "    WHERE j.bench_run_id = b.id"
    "      AND coalesce(r.budget, (j.policy ->> 'max_think')::int) = u.budget) g"
    " WHERE b.id = $1"
    " ORDER BY u.budget";

PGresult *s1_bench_run_curve(PGconn *c, long long run_id, s1_err *err)
{
    return exec_run(c, "reading the run's scaling curve", SQL_RUN_CURVE, run_id, err);
}

/* Below this many thinking tokens apart, two budgets spent the same and
 * their slope would only be noise divided by nothing. */
#define SAME_THINKING 1e-9

int s1_bench_scaling(const s1_bench_point *pts, int n, double *out)
{
    double sum = 0;
    int pairs = 0;
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++) {
            const s1_bench_point *p = &pts[a], *q = &pts[b];
            if (!p->has_accuracy || !q->has_accuracy || !p->has_thinking || !q->has_thinking)
                continue;
            double dx = (q->thinking - p->thinking) / 1000.0;
            if (fabs(dx) < SAME_THINKING) continue;
            sum += (q->accuracy - p->accuracy) * 100.0 / dx;
            pairs++;
        }
    if (!pairs) return 0;
    *out = sum / pairs;
    return 1;
}

void s1_bench_wilson(double p, long n, double *lo, double *hi)
{
    const double z = 1.959964; /* the normal quantile of 97.5% */
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    double z2n = z * z / (double)n;
    double center = (p + z2n / 2) / (1 + z2n);
    double half = z * sqrt(p * (1 - p) / (double)n + z2n / (4 * (double)n)) / (1 + z2n);
    *lo = fmax(0, center - half);
    *hi = fmin(1, center + half);
}

int s1_bench_performance(const s1_bench_point *pts, int n, double *out)
{
    int found = 0;
    for (int i = 0; i < n; i++)
        if (pts[i].has_accuracy && (!found || pts[i].accuracy > *out)) {
            *out = pts[i].accuracy;
            found = 1;
        }
    return found;
}

/* ---- samples, votes ---- */

static const char SQL_RUN_SAMPLES[] =
    "SELECT coalesce(r.budget, (j.policy ->> 'max_think')::int) AS budget,"
    "       j.suite_problem_id AS problem, r.sample, r.extracted_answer, r.grade"
    "  FROM s1.jobs j JOIN s1.results r ON r.job_id = j.id"
    " WHERE j.bench_run_id = $1"
    " ORDER BY 1, 2, r.sample";

PGresult *s1_bench_run_samples(PGconn *c, long long run_id, s1_err *err)
{
    return exec_run(c, "reading the run's samples", SQL_RUN_SAMPLES, run_id, err);
}

/* As a product, so no binomial coefficient overflows: C(n-c,k)/C(n,k) =
 * prod over i in (n-c, n] of (1 - k/i). */
double s1_bench_pass_at_k(int n, int c, int k)
{
    if (n - c < k) return 1.0;
    double miss = 1.0;
    for (int i = n - c + 1; i <= n; i++)
        miss *= 1.0 - (double)k / i;
    return 1.0 - miss;
}

/* ---- comparing two runs ---- */

static const char SQL_PAIRED[] =
    "WITH acc AS ("
    "  SELECT j.bench_run_id AS run, coalesce(r.budget, (j.policy ->> 'max_think')::int) AS budget,"
    "         j.suite_problem_id AS problem, avg(r.grade::int) AS accuracy"
    "    FROM s1.jobs j JOIN s1.results r ON r.job_id = j.id"
    "   WHERE j.bench_run_id IN ($1, $2) AND r.grade IS NOT NULL"
    "   GROUP BY 1, 2, 3)"
    " SELECT a.budget, a.problem, a.accuracy AS a, b.accuracy AS b"
    "   FROM acc a JOIN acc b ON b.budget = a.budget AND b.problem = a.problem"
    "  WHERE a.run = $1 AND b.run = $2"
    "  ORDER BY 1, 2";

PGresult *s1_bench_paired(PGconn *c, long long run_a, long long run_b, s1_err *err)
{
    char a[24], b[24];
    ll_param(a, sizeof a, run_a);
    ll_param(b, sizeof b, run_b);
    const char *params[] = {a, b};
    return s1_db_exec(c, "pairing the runs' problems", SQL_PAIRED, 2, params, err);
}

enum { DRAWS = 10000 };

/* xorshift64*: a fixed, portable stream, so a comparison prints the same
 * figures on every machine and every run. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void s1_bench_compare(const double *d, int n, s1_bench_paired_test *out)
{
    *out = (s1_bench_paired_test){.p = 1};
    if (n <= 0) return;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += d[i];
    out->mean = sum / n;
    out->lo = out->hi = out->mean;
    double *means = malloc(DRAWS * sizeof *means);
    if (!means) return; /* no interval and p = 1: nothing claimed */
    uint64_t seed = 0x5131d5eedULL;
    int extreme = 0;
    for (int k = 0; k < DRAWS; k++) {
        double boot = 0, flip = 0;
        for (int i = 0; i < n; i++) {
            boot += d[next_random(&seed) % (uint64_t)n];
            flip += next_random(&seed) >> 63 ? d[i] : -d[i];
        }
        means[k] = boot / n;
        extreme += fabs(flip) >= fabs(sum) - 1e-12;
    }
    qsort(means, DRAWS, sizeof *means, by_double);
    out->lo = means[(int)(0.025 * DRAWS)];
    out->hi = means[(int)(0.975 * DRAWS) - 1];
    out->p = (extreme + 1.0) / (DRAWS + 1.0);
    free(means);
}

/* ---- regrading ---- */

/* Every result of a run with what grading reads and what it wrote, a job's
 * samples at a rung together (they are voted on together), lowest sample
 * first (a tied vote goes to it). */
static const char SQL_RUN_RESULTS[] =
    "SELECT r.id, r.answer, j.reference_answer, r.extracted_answer, r.grade, r.job_id, r.rung,"
    "       r.majority, r.votes"
    "  FROM s1.results r JOIN s1.jobs j ON j.id = r.job_id"
    " WHERE j.bench_run_id = $1 ORDER BY r.job_id, r.rung, r.sample";

/* Only the two columns the grader owns; the row is the one read above. */
static const char SQL_REGRADE[] =
    "UPDATE s1.results SET extracted_answer = $2, grade = $3::boolean WHERE id = $1";

/* The vote's columns, written only where they change. */
static const char SQL_REVOTE[] =
    "UPDATE s1.results SET majority = $2::boolean, votes = $3::int WHERE id = $1";

/* 1 when the stored extracted answer and grade differ from the new ones. */
static int grade_changed(const PGresult *r, int row, const char *extracted, int grade)
{
    const char *old_grade = PQgetisnull(r, row, 4) ? NULL : PQgetvalue(r, row, 4);
    const char *new_grade = grade < 0 ? NULL : grade ? "t" : "f";
    int same_answer = PQgetisnull(r, row, 3)
                          ? !extracted
                          : extracted && !strcmp(PQgetvalue(r, row, 3), extracted);
    int same_grade = old_grade ? new_grade && !strcmp(old_grade, new_grade) : !new_grade;
    return !same_answer || !same_grade;
}

/* Grades one row again; *extracted (owned by the caller) gets its answer. */
static int regrade_row(PGconn *c, const PGresult *r, int row, char **extracted,
                       s1_bench_regraded *out, s1_err *err)
{
    const char *text = PQgetisnull(r, row, 1) ? NULL : PQgetvalue(r, row, 1);
    const char *ref = PQgetisnull(r, row, 2) ? NULL : PQgetvalue(r, row, 2);
    int grade, rc = s1_answer_judge(text, ref, extracted, &grade, err);
    out->results++;
    out->correct += grade > 0;
    if (!rc && grade_changed(r, row, *extracted, grade)) {
        const char *params[] = {PQgetvalue(r, row, 0), *extracted,
                                grade < 0 ? NULL
                                : grade   ? "true"
                                          : "false"};
        rc = s1_db_run(c, "regrading a result", SQL_REGRADE, 3, params, err);
        out->changed += !rc;
    }
    return rc;
}

/* Marks row as the majority (with votes) or not, where it is not already. */
static int revote_row(PGconn *c, const PGresult *r, int row, bool majority, int votes, s1_err *err)
{
    char v[16];
    snprintf(v, sizeof v, "%d", votes);
    bool was = !PQgetisnull(r, row, 7) && *PQgetvalue(r, row, 7) == 't';
    if (!PQgetisnull(r, row, 7) && was == majority &&
        (!majority || !strcmp(PQgetvalue(r, row, 8), v)))
        return 0;
    const char *params[] = {PQgetvalue(r, row, 0), majority ? "true" : "false",
                            majority ? v : NULL};
    return s1_db_run(c, "storing a vote", SQL_REVOTE, 3, params, err);
}

/* One job's samples at one rung, rows [from, to): regraded, then voted on
 * with the answers just extracted. */
static int regrade_group(PGconn *c, const PGresult *r, int from, int to, s1_bench_regraded *out,
                         s1_err *err)
{
    int n = to - from, winner = -1, votes = 0, rc = 0;
    char **answers = calloc((size_t)n, sizeof *answers);
    if (!answers) return s1_errf(err, "regrading: out of memory");
    for (int i = 0; !rc && i < n; i++)
        rc = regrade_row(c, r, from + i, &answers[i], out, err);
    if (!rc) rc = s1_answer_vote((const char *const *)answers, n, &winner, &votes, err);
    for (int i = 0; !rc && i < n; i++)
        rc = revote_row(c, r, from + i, i == winner, votes, err);
    for (int i = 0; i < n; i++)
        free(answers[i]);
    free(answers);
    return rc;
}

/* Whether rows a and b are the same job's samples at the same rung. */
static bool same_group(const PGresult *r, int a, int b)
{
    return !strcmp(PQgetvalue(r, a, 5), PQgetvalue(r, b, 5)) &&
           !strcmp(PQgetvalue(r, a, 6), PQgetvalue(r, b, 6));
}

int s1_bench_regrade(PGconn *c, long long run_id, s1_bench_regraded *out, s1_err *err)
{
    *out = (s1_bench_regraded){0};
    if (s1_db_run(c, "regrading", "BEGIN", 0, NULL, err)) return -1;
    _cleanup_pgresult_ PGresult *r =
        exec_run(c, "reading the run's results", SQL_RUN_RESULTS, run_id, err);
    int rc = r ? 0 : -1;
    for (int from = 0, i = 1; !rc && r && i <= PQntuples(r); i++)
        if (i == PQntuples(r) || !same_group(r, from, i)) {
            rc = regrade_group(c, r, from, i, out, err);
            from = i;
        }
    s1_err ignored = {{0}};
    if (rc) return s1_db_run(c, "regrading", "ROLLBACK", 0, NULL, &ignored), -1;
    return s1_db_run(c, "regrading", "COMMIT", 0, NULL, err);
}
