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
    "                     priority, samples, max_attempts, template)"
    " VALUES ($1, coalesce($2, 'default'), $3, $4, coalesce($5::jsonb, '{}'),"
    "         coalesce($6::jsonb, '{}'), $7::int, coalesce($8::int, 1), coalesce($9::int, 3), $10)"
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
                            int_param(attempts, sizeof attempts, j->max_attempts, 1),
                            j->template_name};
    _cleanup_pgresult_ PGresult *r =
        s1_db_exec(c, "inserting the job", SQL_INSERT, 10, params, err);
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
    "       progress_thinking, progress_tokens, progress_at, model, samples, template, policy, "
    "sampling,"
    "       reference_answer, error, run_after, lease_until, created_at, started_at, finished_at,"
    "       updated_at, submitted_by, bench_run_id, suite_problem_id, meta, problem"
    "  FROM s1.jobs WHERE id = $1";

PGresult *s1_ctl_show(PGconn *c, long long id, s1_err *err)
{
    char idb[24];
    id_param(idb, sizeof idb, id);
    const char *params[] = {idb};
    return s1_db_exec(c, "reading the job", SQL_SHOW, 1, params, err);
}

/* Live workers as s1.worker_status counts them (a heartbeat within 60 s)
 * that serve the queue and the job's model: a budget must fit the smallest
 * context among them, since any of them may claim the job. */
static const char SQL_QUEUE_CONTEXT[] =
    "SELECT coalesce(min(max_context), 0) FROM s1.workers"
    " WHERE state <> 'stopped' AND heartbeat_at > now() - interval '60 seconds'"
    "   AND coalesce($1, 'default') = ANY (queues) AND ($2::text IS NULL OR model = $2)";

int s1_ctl_queue_context(PGconn *c, const char *queue, const char *model, int *context, s1_err *err)
{
    const char *params[] = {queue, model};
    _cleanup_pgresult_ PGresult *r =
        s1_db_exec(c, "reading the workers' context", SQL_QUEUE_CONTEXT, 2, params, err);
    if (!r) return -1;
    *context = atoi(PQgetvalue(r, 0, 0));
    return 0;
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

/* Results in sample and rung order, each with the single-run budget and
 * wait count it equals; the trace (large) only when asked for. */
static const char SQL_RESULTS[] =
    "SELECT r.sample, r.rung,"
    "       coalesce(r.budget, (j.policy ->> 'max_think')::int) AS budget,"
    "       coalesce(r.ignore_stop, (j.policy ->> 'ignore_stop')::int, 0) AS ignore_stop,"
    "       r.attempt, r.extracted_answer, r.grade, r.prompt_tokens, r.thinking_tokens,"
    "       r.forced_tokens, r.answer_tokens, r.waits, r.forced_end, r.context_end,"
    "       r.stop_reason, r.model, r.backend, r.gpus, r.worker, r.queue_wait_ms, r.ttft_ms,"
    "       r.decode_tps, r.created_at, r.answer,"
    "       CASE WHEN $2::bool THEN r.trace END AS trace"
    "  FROM s1.results r JOIN s1.jobs j ON j.id = r.job_id"
    " WHERE r.job_id = $1 ORDER BY r.sample, r.rung";

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

/* Cancel and retry run as functions of the schema (0003_roles): they check
 * that the caller may change the job, lock it, decide on its state and write
 * it in one statement, so neither a claim nor a completion by a daemon slips
 * in between, and a submitter needs no right on the state columns. A
 * cancelled running job is flagged for its daemon, which reads the row. */
static const char SQL_CANCEL[] = "SELECT outcome, state FROM s1.cancel_job($1::bigint)";
static const char SQL_RETRY[] = "SELECT outcome, state FROM s1.retry_job($1::bigint)";

/* One of those functions, and the words its refusals use. */
typedef struct {
    const char *sql;
    const char *verb, *verbed; /* "cancel", "cancelled" */
    const char *allowed;       /* the states it applies to */
} job_change;

static const job_change CANCEL = {SQL_CANCEL, "cancel", "cancelled", "queued or running"};
static const job_change RETRY = {SQL_RETRY, "retry", "retried", "failed or cancelled"};

/* Runs a cancel or retry function and turns its outcome into a return code;
 * state gets the job's state after the call ("" when not told). */
static int change_job(PGconn *c, const job_change *ch, long long id, char *state, size_t cap,
                      s1_err *err)
{
    char idb[24];
    id_param(idb, sizeof idb, id);
    const char *params[] = {idb};
    _cleanup_pgresult_ PGresult *r = s1_db_exec(c, "updating the job", ch->sql, 1, params, err);
    if (!r) return -1;
    const char *outcome = PQgetvalue(r, 0, 0);
    snprintf(state, cap, "%s", PQgetvalue(r, 0, 1));
    if (!strcmp(outcome, "done")) return 0;
    if (!strcmp(outcome, "not found")) {
        s1_errf(err, "job %lld: no such job", id);
        return S1_CTL_NOT_FOUND;
    }
    if (!strcmp(outcome, "forbidden"))
        s1_errf(err,
                "job %lld was submitted by another user: only its submitter or a member of "
                "s1_admin may %s it",
                id, ch->verb);
    else
        s1_errf(err, "job %lld is %s: only %s jobs can be %s", id, state, ch->allowed, ch->verbed);
    return S1_CTL_REFUSED;
}

int s1_ctl_cancel(PGconn *c, long long id, const char **now_state, s1_err *err)
{
    char state[16];
    int rc = change_job(c, &CANCEL, id, state, sizeof state, err);
    if (rc == 0) *now_state = !strcmp(state, "cancelled") ? "cancelled" : "running";
    return rc;
}

int s1_ctl_retry(PGconn *c, long long id, s1_err *err)
{
    char state[16];
    return change_job(c, &RETRY, id, state, sizeof state, err);
}

/* The daemon notifies each progress write, and the end of a job notifies
 * (s1.notify_end); a claim does not: the first progress says a job runs. */
static const char SQL_LISTEN[] = "LISTEN s1_progress";

int s1_ctl_listen_progress(PGconn *c, s1_err *err)
{
    return s1_db_run(c, "listening for progress", SQL_LISTEN, 0, NULL, err);
}

/* What `s1ctl wait` draws; read again on every notification about the job, so
 * the database, not the payload, is the truth. */
static const char SQL_PROGRESS[] =
    "SELECT state, progress_thinking,"
    "       coalesce((policy ->> 'max_think')::int, (policy -> 'budgets' ->> -1)::int, 0),"
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
