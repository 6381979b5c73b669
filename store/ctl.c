#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

/* Every column with a NULL parameter falls back to the column's default, so
 * s1ctl and a hand-written INSERT get the same job. The insert trigger
 * notifies s1_jobs. */
static const char SQL_INSERT[] =
    "INSERT INTO s1.jobs (problem, queue, model, reference_answer, policy, sampling,"
    "                     priority, samples, max_attempts)"
    " VALUES ($1, coalesce($2, 'default'), $3, $4, coalesce($5::jsonb, '{}'),"
    "         coalesce($6::jsonb, '{}'), $7::int, coalesce($8::int, 1), coalesce($9::int, 3))"
    " RETURNING id";

/* Formats an int parameter; "0 = default" fields pass NULL instead. */
static const char *int_param(char *buf, size_t cap, int v, int zero_is_default)
{
    if (zero_is_default && v == 0) return NULL;
    snprintf(buf, cap, "%d", v);
    return buf;
}

int s1_ctl_insert(PGconn *c, const s1_ctl_job *j, long long *id, s1_err *err)
{
    char prio[16], samples[16], attempts[16];
    const char *params[] = {j->problem,
                            j->queue,
                            j->model,
                            j->reference_answer,
                            j->policy_json,
                            j->sampling_json,
                            int_param(prio, sizeof prio, j->priority, 0),
                            int_param(samples, sizeof samples, j->samples, 1),
                            int_param(attempts, sizeof attempts, j->max_attempts, 1)};
    _cleanup_pgresult_ PGresult *r = s1_db_exec(c, "inserting the job", SQL_INSERT, 9, params, err);
    if (!r) return -1;
    *id = atoll(PQgetvalue(r, 0, 0));
    return 0;
}

static void id_param(char *buf, size_t cap, long long id)
{
    snprintf(buf, cap, "%lld", id);
}

/* Every column a user may want to see, in the order they read best. */
static const char SQL_SHOW[] =
    "SELECT id, state, queue, priority, attempt, max_attempts, worker, cancel_requested,"
    "       progress_thinking, progress_tokens, progress_at, model, samples, policy, sampling,"
    "       reference_answer, error, run_after, lease_until, created_at, started_at, finished_at,"
    "       updated_at, bench_run_id, suite_problem_id, meta, problem"
    "  FROM s1.jobs WHERE id = $1";

PGresult *s1_ctl_show(PGconn *c, long long id, s1_err *err)
{
    char idb[24];
    id_param(idb, sizeof idb, id);
    const char *params[] = {idb};
    return s1_db_exec(c, "reading the job", SQL_SHOW, 1, params, err);
}

/* The summary view is the one readable row per job; NULL filters match all. */
static const char SQL_LIST[] =
    "SELECT id, state, queue, budget, attempt, thinking, answer, grade, created_at, error"
    "  FROM s1.job_summary"
    " WHERE ($1::s1.job_state IS NULL OR state = $1::s1.job_state)"
    "   AND ($2::text IS NULL OR queue = $2)"
    " ORDER BY id DESC LIMIT $3::bigint";

PGresult *s1_ctl_list(PGconn *c, const char *state, const char *queue, long limit, s1_err *err)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *params[] = {state, queue, lim};
    return s1_db_exec(c, "listing jobs", SQL_LIST, 3, params, err);
}

/* A job's state, to tell "no such job" from "no result yet". */
static const char SQL_STATE[] = "SELECT state FROM s1.jobs WHERE id = $1";

/* Results in sample order; the trace (large) only when asked for. */
static const char SQL_RESULTS[] =
    "SELECT sample, attempt, extracted_answer, grade, prompt_tokens, thinking_tokens,"
    "       forced_tokens, answer_tokens, waits, forced_end, stop_reason, model, backend, gpus,"
    "       worker, queue_wait_ms, ttft_ms, decode_tps, created_at, answer,"
    "       CASE WHEN $2::bool THEN trace END AS trace"
    "  FROM s1.results WHERE job_id = $1 ORDER BY sample";

PGresult *s1_ctl_results(PGconn *c, long long id, int with_trace, char *state, size_t cap,
                         s1_err *err)
{
    char idb[24];
    id_param(idb, sizeof idb, id);
    const char *params[] = {idb, with_trace ? "true" : "false"};
    _cleanup_pgresult_ PGresult *s = s1_db_exec(c, "reading the job", SQL_STATE, 1, params, err);
    if (!s) return NULL;
    state[0] = '\0';
    if (PQntuples(s) == 0) {
        s1_errf(err, "job %lld: no such job", id);
        return NULL;
    }
    snprintf(state, cap, "%s", PQgetvalue(s, 0, 0));
    return s1_db_exec(c, "reading the results", SQL_RESULTS, 2, params, err);
}

/* Cancel and retry decide on the state they hold locked, so a claim or a
 * completion by a daemon cannot slip in between the read and the write. */
static const char SQL_LOCK_JOB[] = "SELECT state FROM s1.jobs WHERE id = $1 FOR UPDATE";

/* A queued job never started: it ends now, no daemon involved. */
static const char SQL_CANCEL_QUEUED[] =
    "UPDATE s1.jobs SET state = 'cancelled', finished_at = now(),"
    "       error = 'cancelled before it started'"
    " WHERE id = $1 AND state = 'queued'";

/* A running job belongs to its daemon: ask it (flag + notify); it writes the
 * final state under its fence. */
static const char SQL_CANCEL_RUNNING[] =
    "UPDATE s1.jobs SET cancel_requested = true WHERE id = $1 AND state = 'running'";
static const char SQL_NOTIFY_CANCEL[] = "SELECT pg_notify('s1_cancel', $1)";

/* Back to the queue as if new: attempts reset, no lease, no progress. Results
 * of the earlier run are removed so sample numbers stay unique. */
static const char SQL_RETRY[] =
    "UPDATE s1.jobs SET state = 'queued', attempt = 0, run_after = now(), worker = NULL,"
    "       lease_until = NULL, cancel_requested = false, progress_thinking = 0,"
    "       progress_tokens = 0, progress_at = NULL, error = NULL, started_at = NULL,"
    "       finished_at = NULL"
    " WHERE id = $1 AND state IN ('failed', 'cancelled')";
static const char SQL_DELETE_RESULTS[] = "DELETE FROM s1.results WHERE job_id = $1";

/* Begins a transaction and locks the job; *state gets its state. Returns 0,
 * S1_CTL_NOT_FOUND or -1 (the transaction is rolled back on failure). */
static int begin_locked(PGconn *c, long long id, const char *idb, char *state, size_t cap,
                        s1_err *err)
{
    const char *params[] = {idb};
    if (s1_db_run(c, "beginning a transaction", "BEGIN", 0, NULL, err) < 0) return -1;
    _cleanup_pgresult_ PGresult *r = s1_db_exec(c, "locking the job", SQL_LOCK_JOB, 1, params, err);
    if (r && PQntuples(r) == 1) {
        snprintf(state, cap, "%s", PQgetvalue(r, 0, 0));
        return 0;
    }
    PQclear(PQexec(c, "ROLLBACK"));
    if (!r) return -1;
    s1_errf(err, "job %lld: no such job", id);
    return S1_CTL_NOT_FOUND;
}

/* Runs the statements of a decided change and commits; rolls back on error. */
static int commit_with(PGconn *c, const char *const *sqls, int n, const char *idb, s1_err *err)
{
    const char *params[] = {idb};
    for (int i = 0; i < n; i++)
        if (s1_db_run(c, "updating the job", sqls[i], 1, params, err) < 0) {
            PQclear(PQexec(c, "ROLLBACK"));
            return -1;
        }
    return s1_db_run(c, "committing", "COMMIT", 0, NULL, err);
}

static int refuse(PGconn *c, s1_err *err, const char *fmt, long long id, const char *state)
{
    PQclear(PQexec(c, "ROLLBACK"));
    s1_errf(err, fmt, id, state);
    return S1_CTL_REFUSED;
}

int s1_ctl_cancel(PGconn *c, long long id, const char **now_state, s1_err *err)
{
    char idb[24], state[16];
    id_param(idb, sizeof idb, id);
    int rc = begin_locked(c, id, idb, state, sizeof state, err);
    if (rc < 0) return rc;
    if (!strcmp(state, "queued")) {
        const char *sqls[] = {SQL_CANCEL_QUEUED};
        *now_state = "cancelled";
        return commit_with(c, sqls, 1, idb, err);
    }
    if (!strcmp(state, "running")) {
        const char *sqls[] = {SQL_CANCEL_RUNNING, SQL_NOTIFY_CANCEL};
        *now_state = "running";
        return commit_with(c, sqls, 2, idb, err);
    }
    return refuse(c, err, "job %lld is %s: only queued or running jobs can be cancelled", id,
                  state);
}

int s1_ctl_retry(PGconn *c, long long id, s1_err *err)
{
    char idb[24], state[16];
    id_param(idb, sizeof idb, id);
    int rc = begin_locked(c, id, idb, state, sizeof state, err);
    if (rc < 0) return rc;
    if (strcmp(state, "failed") && strcmp(state, "cancelled"))
        return refuse(c, err, "job %lld is %s: only failed or cancelled jobs can be retried", id,
                      state);
    const char *sqls[] = {SQL_DELETE_RESULTS, SQL_RETRY};
    return commit_with(c, sqls, 2, idb, err);
}

/* The daemon notifies progress and the state trigger notifies every change. */
static const char SQL_LISTEN[] = "LISTEN s1_progress";

int s1_ctl_listen_progress(PGconn *c, s1_err *err)
{
    return s1_db_run(c, "listening for progress", SQL_LISTEN, 0, NULL, err);
}

/* What `s1ctl wait` draws; read again on every notification about the job, so
 * the database, not the payload, is the truth. */
static const char SQL_PROGRESS[] =
    "SELECT state, progress_thinking, coalesce((policy ->> 'max_think')::int, 0),"
    "       coalesce(error, ''), progress_tokens, queue, coalesce(model, '')"
    "  FROM s1.jobs WHERE id = $1";

int s1_ctl_progress_get(PGconn *c, long long id, s1_ctl_progress *p, s1_err *err)
{
    char idb[24];
    id_param(idb, sizeof idb, id);
    const char *params[] = {idb};
    _cleanup_pgresult_ PGresult *r =
        s1_db_exec(c, "reading the job's progress", SQL_PROGRESS, 1, params, err);
    if (!r) return -1;
    if (PQntuples(r) == 0) {
        s1_errf(err, "job %lld: no such job", id);
        return S1_CTL_NOT_FOUND;
    }
    snprintf(p->state, sizeof p->state, "%s", PQgetvalue(r, 0, 0));
    p->thinking = atoi(PQgetvalue(r, 0, 1));
    p->budget = atoi(PQgetvalue(r, 0, 2));
    snprintf(p->error, sizeof p->error, "%s", PQgetvalue(r, 0, 3));
    p->generated = atoi(PQgetvalue(r, 0, 4));
    snprintf(p->queue, sizeof p->queue, "%s", PQgetvalue(r, 0, 5));
    snprintf(p->model, sizeof p->model, "%s", PQgetvalue(r, 0, 6));
    return 0;
}

/* A job waits silently for ever when no daemon serves its queue and model:
 * submit and wait say so, naming what the live daemons do serve. */
static const char SQL_SERVED[] =
    "SELECT count(*) FILTER (WHERE $1 = ANY (queues) AND ($2::text IS NULL OR model = $2)),"
    "       coalesce(string_agg(DISTINCT coalesce(model, '?') || ' on ' ||"
    "                           array_to_string(queues, ', '), '; '), '')"
    "  FROM s1.worker_status WHERE alive";

int s1_ctl_served(PGconn *c, const char *queue, const char *model, char **live, s1_err *err)
{
    const char *params[] = {queue, model};
    _cleanup_pgresult_ PGresult *r =
        s1_db_exec(c, "reading the live workers", SQL_SERVED, 2, params, err);
    if (!r) return -1;
    if (atoll(PQgetvalue(r, 0, 0)) > 0) return 1;
    *live = strdup(PQgetvalue(r, 0, 1));
    return *live ? 0 : s1_errf(err, "out of memory");
}
