#include "queue.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "db.h"

/* Every UPDATE here sets updated_at itself: the jobs_touch trigger (0001_init)
 * then skips its function call (~1.5 us a row). */

/* Claim: one statement, so two daemons never take the same job (SKIP LOCKED)
 * and a claimed job always has its attempt, worker and lease set together.
 * Each queue is read on its own through the claim index, in order (queue =
 * ANY would sort every queued row); the best n of those win. The ids come
 * as an array (= ANY (ARRAY(...))) so that the update finds them by primary
 * key: as IN (...) the planner joins them to a scan of the whole table. */
static const char SQL_CLAIM[] =
    "UPDATE s1.jobs j"
    "   SET state = 'running', attempt = j.attempt + 1, worker = $1,"
    "       lease_until = now() + $2::int * interval '1 millisecond',"
    "       started_at = now(), progress_thinking = 0, progress_tokens = 0,"
    "       progress_at = NULL, error = NULL, updated_at = now()"
    " WHERE j.id = ANY (ARRAY(SELECT c.id FROM unnest($3::text[]) AS q(name),"
    "                      LATERAL (SELECT id, priority FROM s1.jobs"
    "                                WHERE state = 'queued' AND queue = q.name"
    "                                  AND run_after <= now() AND (model IS NULL OR model = $4)"
    "                                ORDER BY priority DESC, id"
    "                                FOR UPDATE SKIP LOCKED LIMIT $5) AS c"
    "                      ORDER BY c.priority DESC, c.id LIMIT $5))"
    " RETURNING j.id, j.attempt, j.samples, j.cancel_requested,"
    "           extract(epoch FROM now() - j.created_at) * 1000,"
    "           j.problem, j.reference_answer, j.policy::text, j.sampling::text,"
    "           (SELECT json_agg(json_build_object('sample', r.sample, 'rung', r.rung,"
    "                                              'ids', r.token_ids,"
    "                                              'kinds', r.token_kinds, 'state', r.state))::text"
    "              FROM s1.resume r WHERE r.job_id = j.id AND r.model = $4),"
    "           j.template";

/* Lease renewal, fenced: only the attempts this worker still holds. A row
 * locked now (by this worker's own completion being written, or by a cancel)
 * is not waited for: it is reported held from the snapshot and renewed next
 * time, so a slow write never stalls the heartbeat, and no reaper (SKIP
 * LOCKED too) can take a row while it is locked. */
static const char SQL_RENEW[] =
    "WITH mine AS (SELECT j.id, j.cancel_requested"
    "                FROM s1.jobs j, unnest($3::bigint[], $4::int[]) AS h(id, attempt)"
    "               WHERE j.id = h.id AND j.attempt = h.attempt AND j.worker = $1"
    "                 AND j.state = 'running'),"
    " renewed AS (UPDATE s1.jobs j SET lease_until = now() + $2::int * interval '1 millisecond',"
    "                                 updated_at = now()"
    "              WHERE j.id IN (SELECT k.id FROM s1.jobs k JOIN mine ON mine.id = k.id"
    "                              WHERE k.worker = $1 AND k.state = 'running'"
    "                                FOR UPDATE OF k SKIP LOCKED)"
    "             RETURNING j.id)"
    " SELECT id, cancel_requested FROM mine";

/* Progress, fenced, with one s1_progress notification per job written. A
 * row locked now (a cancel, an analyst's SELECT FOR UPDATE, this worker's own
 * completion) is skipped, not waited for: its progress is written at a later
 * tick, and the statements queued behind this one on the connection (the
 * heartbeat among them) never wait on another transaction. */
static const char SQL_PROGRESS[] =
    "WITH p AS (UPDATE s1.jobs j"
    "              SET progress_thinking = h.thinking, progress_tokens = h.generated,"
    "                  progress_at = now(), updated_at = now()"
    "             FROM unnest($2::bigint[], $3::int[], $4::int[], $5::int[])"
    "                  AS h(id, attempt, thinking, generated)"
    "            WHERE j.id = h.id AND j.attempt = h.attempt AND j.worker = $1"
    "              AND j.state = 'running'"
    "              AND j.id IN (SELECT k.id FROM s1.jobs k"
    "                            WHERE k.id = ANY ($2::bigint[]) AND k.worker = $1"
    "                              AND k.state = 'running'"
    "                              FOR UPDATE OF k SKIP LOCKED)"
    "           RETURNING j.id, j.progress_thinking)"
    " SELECT pg_notify('s1_progress', id || ' ' || progress_thinking) FROM p";

/* Completion: the jobs' new states and their result rows in one statement,
 * hence one transaction. Rows are inserted only for the jobs whose fenced
 * update matched, so an attempt that lost its lease writes nothing. A
 * hand-back (queued) undoes the attempt: it was not the job's fault. Token
 * ids come as hex of their stored bytes: decode() copies them, where int[]
 * would parse every id. */
static const char SQL_COMPLETE[] =
    "WITH d AS (SELECT * FROM jsonb_to_recordset($2::jsonb)"
    "             AS d(id bigint, attempt int, state s1.job_state, error text)),"
    " j AS (UPDATE s1.jobs j"
    "          SET state = d.state, error = d.error, lease_until = NULL,"
    "              attempt = CASE WHEN d.state = 'queued' THEN j.attempt - 1 ELSE j.attempt END,"
    "              started_at = CASE WHEN d.state = 'queued' THEN NULL ELSE j.started_at END,"
    "              finished_at = CASE WHEN d.state = 'queued' THEN NULL ELSE now() END,"
    "              updated_at = now()"
    "         FROM d"
    "        WHERE j.id = d.id AND j.attempt = d.attempt AND j.worker = $1"
    "          AND j.state = 'running'"
    "       RETURNING j.id, d.attempt),"
    " r AS (INSERT INTO s1.results (job_id, attempt, sample, rung, budget, ignore_stop,"
    "              context_end, trace, answer, extracted_answer,"
    "              grade, prompt_tokens, thinking_tokens, forced_tokens, answer_tokens, waits,"
    "              forced_end, stop_reason, prompt_ids, token_ids, queue_wait_ms, ttft_ms,"
    "              decode_tps, model, backend, gpus, worker, model_fingerprint, s1d_version,"
    "              majority, votes)"
    "       SELECT x.job_id, x.attempt, x.sample, x.rung, nullif(x.budget, 0), x.ignore_stop,"
    "              x.context_end, x.trace, x.answer, x.extracted_answer,"
    "              x.grade, x.prompt_tokens, x.thinking_tokens, x.forced_tokens, x.answer_tokens,"
    "              x.waits, x.forced_end, x.stop_reason, decode(x.prompt_ids, 'hex'),"
    "              decode(x.token_ids, 'hex'),"
    "              x.queue_wait_ms, x.ttft_ms, x.decode_tps, $3, $4, $5::int, $1, $7, $8,"
    "              x.majority, x.votes"
    "         FROM jsonb_to_recordset($6::jsonb) AS x(job_id bigint, attempt int, sample int,"
    "              rung int, budget int, ignore_stop int, context_end boolean,"
    "              trace text, answer text, extracted_answer text, grade boolean,"
    "              prompt_tokens int, thinking_tokens int, forced_tokens int,"
    "              answer_tokens int, waits int, forced_end boolean, stop_reason text,"
    "              prompt_ids text, token_ids text, queue_wait_ms float8, ttft_ms float8,"
    "              decode_tps float8, majority boolean, votes int)"
    "         JOIN j ON j.id = x.job_id AND j.attempt = x.attempt"
    "       RETURNING 1)"
    " SELECT id FROM j";

/* The reaper: a lease that expired means its worker died or stalled. The job
 * goes back to the queue after a backoff of 2^(attempt-1) s (at most 5 min),
 * or fails after max_attempts; a cancel requested meanwhile wins. The
 * exponent is capped before power() so no attempt count overflows it. SKIP
 * LOCKED lets every daemon run it without waiting on the others. (A running
 * job always has a lease: 0003_roles checks it.) */
static const char SQL_REAP[] =
    "UPDATE s1.jobs j"
    "   SET state = CASE WHEN j.cancel_requested THEN 'cancelled'"
    "                    WHEN j.attempt >= j.max_attempts THEN 'failed'"
    "                    ELSE 'queued' END::s1.job_state,"
    "       error = CASE WHEN j.cancel_requested THEN 'cancelled'"
    "                    ELSE format('lease expired on worker %s (attempt %s of %s)',"
    "                                j.worker, j.attempt, j.max_attempts) END,"
    "       run_after = now() + least(power(2, least(j.attempt, 10) - 1), 300)"
    "                           * interval '1 second',"
    "       finished_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts"
    "                          THEN now() END,"
    "       lease_until = NULL, updated_at = now()"
    " WHERE j.id IN (SELECT id FROM s1.jobs WHERE state = 'running' AND lease_until < now()"
    "                   FOR UPDATE SKIP LOCKED)"
    " RETURNING j.id, j.state, j.attempt";

/* Saved states of running jobs, fenced like every write after the claim:
 * only for an attempt this worker holds, and never over the save of a later
 * attempt (a zombie's save cannot replace its rescuer's). A job's save is
 * all its sequences: rows of that job it no longer names are deleted, so the
 * table holds one consistent set per job. The rows' foreign key takes a key
 * share lock on the job: a job row another transaction holds FOR UPDATE is
 * skipped (saved next time), so the statements behind this one on the
 * connection, heartbeats among them, never wait on someone else's lock. */
static const char SQL_SAVE[] =
    "WITH x AS (SELECT x.* FROM jsonb_to_recordset($3::jsonb) AS x(job_id bigint, attempt int,"
    "                 sample int, rung int, token_ids int[], token_kinds smallint[], state text)"
    "             JOIN s1.jobs j ON j.id = x.job_id AND j.attempt = x.attempt AND j.worker = $1"
    "                           AND j.state = 'running'"
    "              FOR KEY SHARE OF j SKIP LOCKED),"
    " gone AS (DELETE FROM s1.resume r USING (SELECT DISTINCT job_id, attempt FROM x) k"
    "           WHERE r.job_id = k.job_id AND r.attempt <= k.attempt"
    "             AND NOT EXISTS (SELECT FROM x WHERE x.job_id = r.job_id AND x.sample = r.sample"
    "                                             AND x.rung = r.rung))"
    " INSERT INTO s1.resume AS r (job_id, sample, rung, attempt, worker, model, token_ids,"
    "                            token_kinds, state, saved_at)"
    " SELECT x.job_id, x.sample, x.rung, x.attempt, $1, $2, x.token_ids, x.token_kinds, x.state,"
    "        now()"
    "   FROM x"
    " ON CONFLICT (job_id, sample, rung) DO UPDATE"
    "   SET attempt = EXCLUDED.attempt, worker = EXCLUDED.worker, model = EXCLUDED.model,"
    "       token_ids = EXCLUDED.token_ids, token_kinds = EXCLUDED.token_kinds,"
    "       state = EXCLUDED.state, saved_at = now()"
    "  WHERE r.attempt <= EXCLUDED.attempt";

/* The worker's row: what `select * from s1.worker_status` shows. */
static const char SQL_WORKER[] =
    "INSERT INTO s1.workers AS w (name, host, pid, version, model, backend, gpus, queues, state,"
    "                             jobs_in_flight, jobs_done, tokens_per_s, max_context,"
    "                             model_fingerprint, started_at, heartbeat_at)"
    " VALUES ($1, $2, $3::int, $4, $5, $6, $7::int, $8::text[], $9, $10::int, $11::bigint,"
    "         $12::float8, nullif($13::int, 0), $14, now(), now())"
    " ON CONFLICT (name) DO UPDATE"
    "   SET host = EXCLUDED.host, pid = EXCLUDED.pid, version = EXCLUDED.version,"
    "       model = EXCLUDED.model, backend = EXCLUDED.backend, gpus = EXCLUDED.gpus,"
    "       max_context = EXCLUDED.max_context, model_fingerprint = EXCLUDED.model_fingerprint,"
    "       queues = EXCLUDED.queues, state = EXCLUDED.state,"
    "       jobs_in_flight = EXCLUDED.jobs_in_flight, jobs_done = EXCLUDED.jobs_done,"
    "       tokens_per_s = EXCLUDED.tokens_per_s, heartbeat_at = now(),"
    "       started_at = CASE WHEN w.pid IS DISTINCT FROM EXCLUDED.pid OR w.state = 'stopped'"
    "                         THEN now() ELSE w.started_at END";

void s1_queue_stmt_clear(s1_queue_stmt *s)
{
    for (int i = 0; i < s->n_params; i++)
        free(s->params[i]);
    memset(s, 0, sizeof *s);
}

/* Runs the prepared statement; a connection that has not prepared it yet
 * (SQLSTATE 26000, invalid_sql_statement_name) prepares it and runs again. */
PGresult *s1_queue_exec(PGconn *c, const s1_queue_stmt *s, s1_err *err)
{
    const char *const *params = (const char *const *)s->params;
    PGresult *r = PQexecPrepared(c, s->name, s->n_params, params, NULL, NULL, 0);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state && !strcmp(state, "26000")) {
        PQclear(r);
        r = PQprepare(c, s->name, s->sql, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            s1_db_errf(err, c, r, "preparing %s", s->what);
            PQclear(r);
            return NULL;
        }
        PQclear(r);
        r = PQexecPrepared(c, s->name, s->n_params, params, NULL, NULL, 0);
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    s1_db_errf(err, c, r, "%s", s->what);
    PQclear(r);
    return NULL;
}

static void stmt_init(s1_queue_stmt *s, const char *what, const char *name, const char *sql)
{
    memset(s, 0, sizeof *s);
    s->what = what;
    s->name = name;
    s->sql = sql;
}

/* Appends a parameter (copied; NULL stays SQL NULL); -1 when out of memory. */
static int add_param(s1_queue_stmt *s, const char *v)
{
    char *copy = NULL;
    if (v && !(copy = strdup(v))) return -1;
    s->params[s->n_params++] = copy;
    return 0;
}

static int add_paramf(s1_queue_stmt *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_paramf(s1_queue_stmt *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *v = NULL;
    int rc = vasprintf(&v, fmt, ap);
    va_end(ap);
    if (rc < 0) return -1;
    s->params[s->n_params++] = v;
    return 0;
}

/* A text[] literal: each element quoted, quotes and backslashes escaped. */
static int add_text_array(s1_queue_stmt *s, const char *const *v, int n)
{
    size_t cap = 3;
    for (int i = 0; i < n; i++)
        cap += 2 * strlen(v[i]) + 3;
    char *out = malloc(cap), *p = out;
    if (!out) return -1;
    *p++ = '{';
    for (int i = 0; i < n; i++) {
        if (i) *p++ = ',';
        *p++ = '"';
        for (const char *c = v[i]; *c; c++) {
            if (*c == '"' || *c == '\\') *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = 0;
    s->params[s->n_params++] = out;
    return 0;
}

/* An int[] or bigint[] literal of one field of the held jobs. */
static int add_held_array(s1_queue_stmt *s, const s1_queue_held *h, int n, int field)
{
    char *out = malloc((size_t)n * 21 + 3), *p = out;
    if (!out) return -1;
    *p++ = '{';
    for (int i = 0; i < n; i++) {
        long long v = field == 0   ? h[i].id
                      : field == 1 ? h[i].attempt
                      : field == 2 ? h[i].thinking
                                   : h[i].generated;
        p += sprintf(p, "%s%lld", i ? "," : "", v);
    }
    *p++ = '}';
    *p = 0;
    s->params[s->n_params++] = out;
    return 0;
}

/* Statement builders leave s cleared when they run out of memory. */
static int built(s1_queue_stmt *s, int rc)
{
    if (rc) s1_queue_stmt_clear(s);
    return rc ? -1 : 0;
}

int s1_queue_claim(s1_queue_stmt *s, const s1_queue_worker *w, int n)
{
    stmt_init(s, "claim", "s1_claim", SQL_CLAIM);
    int rc = add_param(s, w->worker) || add_paramf(s, "%d", w->lease_ms) ||
             add_text_array(s, w->queues, w->n_queues) || add_param(s, w->model) ||
             add_paramf(s, "%d", n);
    return built(s, rc);
}

static char *dup_value(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

/* Rows in the order of SQL_CLAIM's RETURNING list. */
int s1_queue_parse_claim(const PGresult *r, s1_queue_job **jobs, int *n, s1_err *err)
{
    int rows = PQntuples(r);
    s1_queue_job *j = calloc(rows ? (size_t)rows : 1, sizeof *j);
    if (!j) return s1_errf(err, "claim: out of memory for %d jobs", rows);
    for (int i = 0; i < rows; i++) {
        j[i].id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        j[i].attempt = atoi(PQgetvalue(r, i, 1));
        j[i].samples = atoi(PQgetvalue(r, i, 2));
        j[i].cancel_requested = PQgetvalue(r, i, 3)[0] == 't';
        j[i].queue_wait_ms = strtod(PQgetvalue(r, i, 4), NULL);
        j[i].problem = dup_value(r, i, 5);
        j[i].reference = dup_value(r, i, 6);
        j[i].policy = dup_value(r, i, 7);
        j[i].sampling = dup_value(r, i, 8);
        j[i].resume = dup_value(r, i, 9);
        j[i].template_name = dup_value(r, i, 10);
    }
    *jobs = j;
    *n = rows;
    return 0;
}

void s1_queue_jobs_free(s1_queue_job *jobs, int n)
{
    for (int i = 0; i < n && jobs; i++) {
        free(jobs[i].problem);
        free(jobs[i].reference);
        free(jobs[i].policy);
        free(jobs[i].sampling);
        free(jobs[i].resume);
        free(jobs[i].template_name);
    }
    free(jobs);
}

int s1_queue_renew(s1_queue_stmt *s, const s1_queue_worker *w, const s1_queue_held *h, int n)
{
    stmt_init(s, "renew leases", "s1_renew", SQL_RENEW);
    int rc = add_param(s, w->worker) || add_paramf(s, "%d", w->lease_ms) ||
             add_held_array(s, h, n, 0) || add_held_array(s, h, n, 1);
    return built(s, rc);
}

int s1_queue_parse_renew(const PGresult *r, s1_queue_lease **out, int *n, s1_err *err)
{
    int rows = PQntuples(r);
    s1_queue_lease *l = calloc(rows ? (size_t)rows : 1, sizeof *l);
    if (!l) return s1_errf(err, "renew leases: out of memory for %d jobs", rows);
    for (int i = 0; i < rows; i++) {
        l[i].id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        l[i].cancel_requested = PQgetvalue(r, i, 1)[0] == 't';
    }
    *out = l;
    *n = rows;
    return 0;
}

int s1_queue_progress(s1_queue_stmt *s, const s1_queue_worker *w, const s1_queue_held *h, int n)
{
    stmt_init(s, "progress", "s1_progress", SQL_PROGRESS);
    int rc = add_param(s, w->worker) || add_held_array(s, h, n, 0) || add_held_array(s, h, n, 1) ||
             add_held_array(s, h, n, 2) || add_held_array(s, h, n, 3);
    return built(s, rc);
}

char *s1_queue_utf8(const char *s)
{
    size_t len = strlen(s);
    unsigned char *out = malloc(3 * len + 1), *o = out;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    if (!out) return NULL;
    while (p < end) {
        int n = *p < 0x80             ? 1
                : (*p & 0xE0) == 0xC0 ? 2
                : (*p & 0xF0) == 0xE0 ? 3
                : (*p & 0xF8) == 0xF0 ? 4
                                      : 0;
        int ok = n > 0 && p + n <= end && !(n == 2 && *p < 0xC2) && !(n == 4 && *p > 0xF4);
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xC0) == 0x80;
        /* Overlong 3/4-byte forms, surrogates and code points past U+10FFFF. */
        if (ok && n == 3 && ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0)))
            ok = 0;
        if (ok && n == 4 && ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90)))
            ok = 0;
        if (ok) {
            memcpy(o, p, (size_t)n);
            o += n;
            p += n;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
        }
    }
    *o = 0;
    return (char *)out;
}

/* A JSON string of possibly invalid UTF-8 text; JSON null for NULL. */
static json_t *json_text(const char *s)
{
    if (!s) return json_null();
    _cleanup_free_ char *clean = s1_queue_utf8(s);
    return clean ? json_string(clean) : NULL;
}

static json_t *json_ids(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(ids[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* Token ids as s1.results stores them (0007_queue_speed): 4 bytes each,
 * little-endian, here in hex for decode(..., 'hex'). */
static json_t *json_hex_ids(const int32_t *ids, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *hex = malloc(8 * n + 1), *p = hex;
    if (!hex) return NULL;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) {
            unsigned byte = ((uint32_t)ids[i] >> (8 * b)) & 0xFF;
            *p++ = digits[byte >> 4];
            *p++ = digits[byte & 15];
        }
    json_t *s = json_stringn_nocheck(hex, 8 * n);
    free(hex);
    return s;
}

static json_t *sample_json(const s1_queue_done *d, const s1_queue_sample *x)
{
    json_t *o = json_object();
    if (!o) return NULL;
    int rc = json_object_set_new(o, "job_id", json_integer(d->id)) |
             json_object_set_new(o, "attempt", json_integer(d->attempt)) |
             json_object_set_new(o, "sample", json_integer(x->sample)) |
             json_object_set_new(o, "rung", json_integer(x->rung)) |
             json_object_set_new(o, "budget", json_integer(x->budget)) |
             json_object_set_new(o, "ignore_stop", json_integer(x->ignore_stop)) |
             json_object_set_new(o, "context_end", json_boolean(x->context_end)) |
             json_object_set_new(o, "trace", json_text(x->trace)) |
             json_object_set_new(o, "answer", json_text(x->answer)) |
             json_object_set_new(o, "extracted_answer", json_text(x->extracted_answer)) |
             json_object_set_new(o, "grade", x->grade < 0 ? json_null() : json_boolean(x->grade)) |
             json_object_set_new(o, "prompt_tokens", json_integer(x->prompt_tokens)) |
             json_object_set_new(o, "thinking_tokens", json_integer(x->thinking_tokens)) |
             json_object_set_new(o, "forced_tokens", json_integer(x->forced_tokens)) |
             json_object_set_new(o, "answer_tokens", json_integer(x->answer_tokens)) |
             json_object_set_new(o, "waits", json_integer(x->waits)) |
             json_object_set_new(o, "forced_end", json_boolean(x->forced_end)) |
             json_object_set_new(o, "stop_reason", json_text(x->stop_reason)) |
             json_object_set_new(o, "prompt_ids", json_hex_ids(x->prompt_ids, x->n_prompt)) |
             json_object_set_new(o, "token_ids", json_hex_ids(x->token_ids, x->n_tokens)) |
             json_object_set_new(o, "queue_wait_ms", json_real(x->queue_wait_ms)) |
             json_object_set_new(o, "ttft_ms", json_real(x->ttft_ms)) |
             json_object_set_new(o, "decode_tps", json_real(x->decode_tps)) |
             json_object_set_new(o, "majority", json_boolean(x->majority)) |
             json_object_set_new(o, "votes", x->majority ? json_integer(x->votes) : json_null());
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static const char *end_state(s1_queue_end e)
{
    switch (e) {
    case S1_QUEUE_SUCCEEDED:
        return "succeeded";
    case S1_QUEUE_FAILED:
        return "failed";
    case S1_QUEUE_CANCELLED:
        return "cancelled";
    case S1_QUEUE_REQUEUED:
        return "queued";
    }
    return "failed";
}

/* The two JSON arrays of the completion: job states and result rows. */
static int complete_json(const s1_queue_done *d, int n, char **jobs_out, char **rows_out)
{
    json_t *jobs = json_array(), *rows = json_array();
    int rc = !jobs || !rows;
    for (int i = 0; !rc && i < n; i++) {
        json_t *o = json_object();
        rc = !o || json_object_set_new(o, "id", json_integer(d[i].id)) |
                       json_object_set_new(o, "attempt", json_integer(d[i].attempt)) |
                       json_object_set_new(o, "state", json_string(end_state(d[i].end))) |
                       json_object_set_new(o, "error", json_text(d[i].error));
        if (rc && o) json_decref(o);
        rc = rc || json_array_append_new(jobs, o);
        for (int k = 0; !rc && d[i].end == S1_QUEUE_SUCCEEDED && k < d[i].n_samples; k++) {
            json_t *x = sample_json(&d[i], &d[i].samples[k]);
            rc = !x || json_array_append_new(rows, x);
        }
    }
    if (!rc) {
        *jobs_out = json_dumps(jobs, JSON_COMPACT);
        *rows_out = json_dumps(rows, JSON_COMPACT);
        rc = !*jobs_out || !*rows_out;
    }
    json_decref(jobs);
    json_decref(rows);
    return rc ? -1 : 0;
}

int s1_queue_complete(s1_queue_stmt *s, const s1_queue_worker *w, const s1_queue_origin *o,
                      const s1_queue_done *d, int n, s1_err *err)
{
    char *jobs = NULL, *rows = NULL;
    if (complete_json(d, n, &jobs, &rows)) {
        free(jobs);
        free(rows);
        return s1_errf(err, "complete: out of memory writing the results of %d jobs", n);
    }
    stmt_init(s, "complete", "s1_complete", SQL_COMPLETE);
    s->params[1] = jobs; /* $2 and $6: owned by s from here */
    s->params[5] = rows;
    s->n_params = 6;
    int rc = !(s->params[0] = strdup(w->worker)) || !(s->params[2] = strdup(o->model)) ||
             !(s->params[3] = strdup(o->backend)) || asprintf(&s->params[4], "%d", o->gpus) < 0 ||
             add_param(s, o->fingerprint) || add_param(s, o->version);
    if (built(s, rc)) return s1_errf(err, "complete: out of memory");
    return 0;
}

size_t s1_queue_done_bytes(const s1_queue_done *d)
{
    size_t bytes = 64;
    for (int i = 0; i < d->n_samples; i++) {
        const s1_queue_sample *x = &d->samples[i];
        const char *texts[] = {x->trace, x->answer, x->extracted_answer};
        bytes += 512 + 8 * (x->n_prompt + x->n_tokens);
        for (int t = 0; t < 3; t++)
            bytes += texts[t] ? strlen(texts[t]) : 0;
    }
    return bytes;
}

bool s1_queue_batch_full(int jobs, size_t bytes, size_t next_bytes)
{
    return jobs >= S1_QUEUE_BATCH_JOBS || (jobs > 0 && bytes + next_bytes > S1_QUEUE_BATCH_BYTES);
}

int s1_queue_parse_ids(const PGresult *r, int64_t **ids, int *n, s1_err *err)
{
    int rows = PQntuples(r);
    int64_t *v = calloc(rows ? (size_t)rows : 1, sizeof *v);
    if (!v) return s1_errf(err, "out of memory for %d ids", rows);
    for (int i = 0; i < rows; i++)
        v[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    *ids = v;
    *n = rows;
    return 0;
}

void s1_queue_reap(s1_queue_stmt *s)
{
    stmt_init(s, "reap expired leases", "s1_reap", SQL_REAP);
}

int s1_queue_worker_beat(s1_queue_stmt *s, const s1_queue_worker *w, const s1_queue_figures *f)
{
    stmt_init(s, "worker heartbeat", "s1_worker_beat", SQL_WORKER);
    int rc = add_param(s, w->worker) || add_param(s, f->host) || add_paramf(s, "%d", f->pid) ||
             add_param(s, f->version) || add_param(s, w->model) || add_param(s, f->backend) ||
             add_paramf(s, "%d", f->gpus) || add_text_array(s, w->queues, w->n_queues) ||
             add_param(s, f->state) || add_paramf(s, "%d", f->jobs_in_flight) ||
             add_paramf(s, "%lld", f->jobs_done) || add_paramf(s, "%.3f", f->tokens_per_s) ||
             add_paramf(s, "%d", f->max_context) || add_param(s, w->fingerprint);
    return built(s, rc);
}

/* One saved sequence as a row of the save statement. */
static json_t *saved_json(const s1_queue_saved *v, const s1_resume_seq *q)
{
    json_t *o = json_object(), *kinds = json_array();
    int rc = !o || !kinds;
    for (size_t i = 0; !rc && i < q->n; i++)
        rc = json_array_append_new(kinds, json_integer(q->kinds[i]));
    rc = rc || json_object_set_new(o, "job_id", json_integer(v->id)) |
                   json_object_set_new(o, "attempt", json_integer(v->attempt)) |
                   json_object_set_new(o, "sample", json_integer(q->sample)) |
                   json_object_set_new(o, "rung", json_integer(q->rung)) |
                   json_object_set_new(o, "token_ids", json_ids(q->ids, q->n)) |
                   json_object_set_new(o, "token_kinds", kinds) |
                   json_object_set_new(o, "state", json_text(q->state));
    if (rc) {
        json_decref(o);
        if (!o) json_decref(kinds);
        return NULL;
    }
    return o;
}

int s1_queue_save(s1_queue_stmt *s, const s1_queue_worker *w, const s1_queue_saved *v, int n,
                  s1_err *err)
{
    json_t *rows = json_array();
    int rc = !rows;
    for (int i = 0; !rc && i < n; i++)
        for (int k = 0; !rc && k < v[i].state->n; k++) {
            json_t *o = saved_json(&v[i], &v[i].state->seqs[k]);
            rc = !o || json_array_append_new(rows, o);
        }
    char *text = rc ? NULL : json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    if (!text) return s1_errf(err, "save: out of memory for %d jobs", n);
    stmt_init(s, "save running jobs", "s1_save", SQL_SAVE);
    rc = add_param(s, w->worker) || add_param(s, w->model);
    if (!rc)
        s->params[s->n_params++] = text;
    else
        free(text);
    return built(s, rc) ? s1_errf(err, "save: out of memory for %d jobs", n) : 0;
}

/* One element of a claimed job's resume array into q, checked for shape
 * only: the engine checks the tokens and rungs against the request. */
static int resume_from_json(const json_t *o, s1_resume_seq *q, s1_err *err)
{
    const json_t *ids = json_object_get(o, "ids"), *kinds = json_object_get(o, "kinds");
    const json_t *sample = json_object_get(o, "sample"), *rung = json_object_get(o, "rung");
    const char *state = json_string_value(json_object_get(o, "state"));
    if (!json_is_array(ids) || !json_is_array(kinds) || !state || !json_is_integer(sample) ||
        !json_is_integer(rung) || json_array_size(ids) != json_array_size(kinds))
        return s1_errf(err, "a saved sequence lacks sample, rung, ids, kinds or state, or its "
                            "ids and kinds differ in length");
    size_t n = json_array_size(ids);
    *q = (s1_resume_seq){.sample = (int)json_integer_value(sample),
                         .rung = (int)json_integer_value(rung),
                         .n = n,
                         .ids = calloc(n ? n : 1, sizeof *q->ids),
                         .kinds = calloc(n ? n : 1, 1),
                         .state = strdup(state)};
    if (!q->ids || !q->kinds || !q->state)
        return s1_errf(err, "out of memory reading %zu saved tokens", n);
    for (size_t i = 0; i < n; i++) {
        q->ids[i] = (int32_t)json_integer_value(json_array_get(ids, i));
        q->kinds[i] = (uint8_t)json_integer_value(json_array_get(kinds, i));
    }
    return 0;
}

/* (s1_resume_free is the engine's, which store does not link.) */
static void drop_resume(s1_resume *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->seqs[i].ids), free(r->seqs[i].kinds), free(r->seqs[i].state);
    free(r->seqs);
    free(r);
}

s1_resume *s1_queue_parse_resume(const char *text, s1_err *err)
{
    json_error_t je;
    json_t *a = json_loads(text, 0, &je);
    if (!json_is_array(a)) {
        json_decref(a);
        s1_errf(err, "saved sequences are not a JSON array: %s", je.text);
        return NULL;
    }
    size_t n = json_array_size(a);
    s1_resume *r = calloc(1, sizeof *r);
    if (r) r->seqs = calloc(n ? n : 1, sizeof *r->seqs);
    int rc = r && r->seqs ? 0 : s1_errf(err, "out of memory reading %zu saved sequences", n);
    for (size_t i = 0; !rc && i < n; i++, r->n++)
        rc = resume_from_json(json_array_get(a, i), &r->seqs[i], err);
    json_decref(a);
    if (!rc) return r;
    if (r && r->seqs)
        drop_resume(r);
    else
        free(r);
    return NULL;
}
