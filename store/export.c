#include "export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "db.h"

/* One row per result (a sample at a rung of a ladder), the problem and its
 * job's settings beside the counts; budget and ignore_stop are those of the
 * single run the row equals.
 * $1 is the run (NULL for jobs), $2 the job ids (NULL for a run); $3 says
 * whether the trace is wanted, so one statement serves both shapes. */
static const char SQL_EXPORT[] =
    "SELECT j.bench_run_id AS run, r.job_id, p.name AS problem_id, j.problem,"
    "       j.reference_answer AS reference,"
    "       coalesce(r.budget, (j.policy ->> 'max_think')::int) AS budget, r.ignore_stop,"
    "       r.rung, r.sample, r.attempt, r.prompt_tokens, r.thinking_tokens, r.forced_tokens,"
    "       r.answer_tokens, r.waits, r.forced_end, r.stop_reason, r.answer, r.extracted_answer,"
    "       r.grade, j.policy, j.sampling, r.model, r.model_fingerprint, r.s1d_version, r.backend,"
    "       r.gpus, r.queue_wait_ms, r.ttft_ms,"
    "       r.decode_tps, r.created_at AS finished_at,"
    "       CASE WHEN $3::boolean THEN r.trace END AS trace"
    "  FROM s1.results r JOIN s1.jobs j ON j.id = r.job_id"
    "  LEFT JOIN s1.suite_problems p ON p.id = j.suite_problem_id"
    " WHERE ($1::bigint IS NOT NULL AND j.bench_run_id = $1::bigint)"
    "    OR ($2::bigint[] IS NOT NULL AND j.id = ANY ($2::bigint[]))"
    " ORDER BY r.job_id, r.sample, r.rung";

/* The job ids as an array literal, "{1,2,3}" (malloc'ed). */
static char *ids_literal(const long long *ids, int n)
{
    size_t cap = 3 + (size_t)n * 21;
    char *s = malloc(cap), *o = s;
    if (!s) return NULL;
    *o++ = '{';
    for (int i = 0; i < n; i++)
        o += snprintf(o, cap - (size_t)(o - s), "%s%lld", i ? "," : "", ids[i]);
    snprintf(o, cap - (size_t)(o - s), "}");
    return s;
}

/* Reads what is left of the statement, so the connection is usable again;
 * cancelled first when the reader stopped early (no need to stream the rest). */
static void drain(PGconn *c, bool cancel)
{
    PGcancel *k = cancel ? PQgetCancel(c) : NULL;
    char why[256];
    if (k) PQcancel(k, why, sizeof why);
    PQfreeCancel(k);
    PGresult *r;
    while ((r = PQgetResult(c)))
        PQclear(r);
}

long long s1_export_rows(PGconn *c, const s1_export_query *q, s1_export_row_fn fn, void *ud,
                         s1_err *err)
{
    char run[24];
    snprintf(run, sizeof run, "%lld", q->run);
    _cleanup_free_ char *ids = q->run > 0 ? NULL : ids_literal(q->jobs, q->n_jobs);
    if (q->run <= 0 && !ids) return s1_errf(err, "export: out of memory");
    const char *params[] = {q->run > 0 ? run : NULL, ids, q->trace ? "true" : "false"};
    if (!PQsendQueryParams(c, SQL_EXPORT, 3, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(c))
        return s1_db_errf(err, c, NULL, "export");
    long long rows = 0;
    PGresult *r;
    while ((r = PQgetResult(c))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && fn(ud, r)) {
            PQclear(r);
            drain(c, true);
            return rows;
        }
        rows += st == PGRES_SINGLE_TUPLE;
        if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK) {
            s1_db_errf(err, c, r, "export");
            PQclear(r);
            drain(c, false);
            return -1;
        }
        PQclear(r);
    }
    return rows;
}

/* The ids of the list that name no job, as text "4, 7" (malloc'ed; "" when
 * every job exists). */
static const char SQL_MISSING[] =
    "SELECT coalesce(string_agg(i::text, ', ' ORDER BY i), '')"
    "  FROM unnest($1::bigint[]) AS i WHERE NOT EXISTS (SELECT FROM s1.jobs j WHERE j.id = i)";

char *s1_export_missing_jobs(PGconn *c, const long long *ids, int n, s1_err *err)
{
    _cleanup_free_ char *list = ids_literal(ids, n);
    if (!list) return s1_errf(err, "export: out of memory"), NULL;
    const char *params[] = {list};
    _cleanup_pgresult_ PGresult *r =
        s1_db_exec(c, "checking the job ids", SQL_MISSING, 1, params, err);
    return r ? strdup(PQgetvalue(r, 0, 0)) : NULL;
}
