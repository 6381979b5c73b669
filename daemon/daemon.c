#include "daemon.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "answer.h"
#include "claimed.h"
#include "conn.h"
#include "db.h"
#include "exec.h"
#include "job.h"
#include "log.h"
#include "notify.h"
#include "queue.h"
#include "s1_config.h"
#include "writer.h"

enum {
    PROGRESS_MS = 500,     /* progress writes per job: at most 2/s */
    STATUS_MS = 2000,      /* systemd STATUS= updates */
    STOP_GRACE_MS = 10000, /* after the drain timeout, for the last writes */
};

static const char LISTEN_SQL[] = "LISTEN s1_jobs; LISTEN s1_cancel";

typedef struct {
    uv_loop_t *loop;
    s1d_config *cfg;
    int argc;
    char **argv;
    s1d_runner *runner;
    const s1_engine_info *info;
    s1d_exec *exec;
    s1d_conn *db;
    s1_queue_worker who;
    char host[256];
    uv_timer_t heartbeat, progress, poll, status, drain, hard_stop;
    uv_signal_t sigterm, sigint, sighup;
    s1d_job *jobs;
    s1d_writer *writer; /* owns the jobs that ended, until written */
    s1d_notify *notify;
    bool claiming, queue_hot; /* a claim in flight; jobs may be waiting */
    bool renewing, progressing;
    bool draining, stopping;
    int exit_code;
    long long jobs_done;
    uint64_t tokens, tokens_at_ms; /* tokens generated since tokens_at_ms */
    double tokens_per_s;
} s1d;

static void claim_maybe(s1d *d);
static void check_drained(s1d *d);

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static s1d_job *find_job(s1d *d, int64_t id)
{
    for (s1d_job *j = d->jobs; j; j = j->next)
        if (j->row.id == id) return j;
    return NULL;
}

static int running_jobs(const s1d *d)
{
    int n = 0;
    for (const s1d_job *j = d->jobs; j; j = j->next)
        n++;
    return n;
}

/* ---- systemd status ---------------------------------------------------- */

/* The live figures, for systemctl status (sent once READY=1 is). */
static void send_status(s1d *d)
{
    s1d_status s = {.draining = d->draining,
                    .running = running_jobs(d),
                    .done = d->jobs_done,
                    .tokens_per_s = d->tokens_per_s,
                    .db_up = s1d_conn_is_up(d->db)};
    s1d_notify_status(d->notify, &s);
}

/* Every STATUS_MS: the token rate since the last tick, then the status. */
static void on_status_timer(uv_timer_t *t)
{
    s1d *d = t->data;
    uint64_t now = now_ms();
    if (now > d->tokens_at_ms)
        d->tokens_per_s = d->tokens * 1000.0 / (double)(now - d->tokens_at_ms);
    d->tokens = 0;
    d->tokens_at_ms = now;
    send_status(d);
}

/* ---- the worker row ---------------------------------------------------- */

static const char *worker_state(const s1d *d)
{
    return d->stopping ? "stopped" : d->draining ? "draining" : "running";
}

static void send_worker_beat(s1d *d, s1d_conn_cb cb)
{
    s1_queue_figures f = {.host = d->host,
                          .version = S1_VERSION,
                          .backend = d->info->backend,
                          .state = worker_state(d),
                          .pid = (int)getpid(),
                          .gpus = d->info->n_devices,
                          .jobs_in_flight = running_jobs(d),
                          .jobs_done = d->jobs_done,
                          .tokens_per_s = d->tokens_per_s};
    s1_queue_stmt s;
    if (s1_queue_worker_beat(&s, &d->who, &f)) return log_error("worker heartbeat: out of memory");
    s1d_conn_send(d->db, &s, cb, d);
}

static void log_failure(void *ud, const PGresult *r, const char *error)
{
    (void)ud;
    if (!r) log_warning("database: %s", error);
}

/* ---- claiming ------------------------------------------------------------ */

/* Ends a job that never reached the engine (bad policy, cancelled while
 * queued, refused): its completion is queued like any other. */
static void end_job(s1d *d, s1d_job *j, s1_queue_end end)
{
    if (!s1d_writer_add(d->writer, j, end)) return;
    log_error("job %" PRId64 ": out of memory; its lease will expire and it will be retried",
              j->row.id);
    s1d_job_free(j, d->runner);
}

static void unlink_job(s1d *d, s1d_job *j)
{
    for (s1d_job **pp = &d->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            j->next = NULL;
            return;
        }
}

/* All of a job's requests are back: decide how it ends. */
static void job_finished(s1d *d, s1d_job *j)
{
    unlink_job(d, j);
    if (j->lost) {
        log_warning("job %" PRId64 " attempt %d: lease lost to another worker; dropped", j->row.id,
                    j->row.attempt);
        return s1d_job_free(j, d->runner);
    }
    bool cancelled = j->cancel;
    for (int i = 0; !cancelled && i < j->row.samples; i++)
        cancelled = j->results[i] && j->results[i]->stop == S1_STOP_CANCELLED && !j->error[0];
    if (j->hand_back && !j->cancel)
        end_job(d, j, S1_QUEUE_REQUEUED);
    else if (cancelled)
        end_job(d, j, S1_QUEUE_CANCELLED);
    else if (j->error[0])
        end_job(d, j, S1_QUEUE_FAILED);
    else
        end_job(d, j, S1_QUEUE_SUCCEEDED);
}

static void cancel_requests(s1d *d, s1d_job *j)
{
    for (int i = 0; i < j->row.samples; i++)
        if (!j->results[i])
            s1d_exec_cancel(d->exec, ((uint64_t)j->row.id << S1D_SAMPLE_BITS) | (uint64_t)i);
}

/* Hands a claimed job's samples to the engine, seeds seed, seed+1, ... */
static void start_job(s1d *d, s1d_job *j)
{
    for (int i = 0; i < j->row.samples; i++) {
        s1_request r = {.tag = ((uint64_t)j->row.id << S1D_SAMPLE_BITS) | (uint64_t)i,
                        .text = j->row.problem,
                        .text_len = strlen(j->row.problem),
                        .policy = j->params.policy,
                        .sampling = j->params.sampling};
        r.sampling.seed += (uint64_t)i;
        if (s1d_exec_add(d->exec, &r)) {
            snprintf(j->error, sizeof j->error, "out of memory queueing sample %d", i);
            j->cancel = false;
            cancel_requests(d, j);
            break;
        }
        j->n_out++;
    }
    j->next = d->jobs;
    d->jobs = j;
    if (!j->n_out) job_finished(d, j);
}

/* A claimed row: failed at once when its policy cannot be read, cancelled
 * when a cancel came while it was queued, else started. */
static void take_claimed(s1d *d, s1_queue_job *row)
{
    int64_t id = row->id; /* s1d_job_new takes the row */
    s1d_job *j = s1d_job_new(row);
    if (!j || !j->results || !j->thinking || !j->generated || !j->extracted || !j->grade) {
        log_error("job %" PRId64 ": out of memory; its lease will expire", id);
        if (j) s1d_job_free(j, d->runner);
        return;
    }
    log_info("job %" PRId64 " claimed (attempt %d, %d sample%s)", j->row.id, j->row.attempt,
             j->row.samples, j->row.samples == 1 ? "" : "s");
    s1_err err = {0};
    if (j->row.cancel_requested) return end_job(d, j, S1_QUEUE_CANCELLED);
    if (find_job(d, j->row.id)) {
        /* An earlier attempt that lost its lease is still leaving the
         * engine, under the same tags: give this one back for now. */
        log_notice("job %" PRId64 ": an earlier attempt is still stopping here; handing it back",
                   j->row.id);
        return end_job(d, j, S1_QUEUE_REQUEUED);
    }
    if (s1_job_params_parse(j->row.policy, j->row.sampling, &j->params, &err)) {
        snprintf(j->error, sizeof j->error, "%s", err.msg);
        return end_job(d, j, S1_QUEUE_FAILED);
    }
    j->params_ok = true;
    start_job(d, j);
}

/* Claimed rows start at once; a full claim means more may wait: claim again. */
static void claim_done(void *ud, const PGresult *r, const char *error)
{
    s1d *d = ud;
    d->claiming = false;
    s1_queue_job *rows = NULL;
    int n = 0;
    s1_err err = {0};
    if (!r) {
        log_warning("claim: %s", error);
        return;
    }
    if (s1_queue_parse_claim(r, &rows, &n, &err)) return log_error("%s", err.msg);
    for (int i = 0; i < n; i++)
        take_claimed(d, &rows[i]);
    s1_queue_jobs_free(rows, n);
    s1d_writer_flush(d->writer);
    d->queue_hot = n > 0;
    claim_maybe(d);
}

/* Claims as many jobs as the engine can take now, when jobs may be waiting. */
static void claim_maybe(s1d *d)
{
    if (d->claiming || d->draining || !d->queue_hot || !s1d_conn_is_up(d->db)) return;
    int n = s1d_exec_capacity(d->exec);
    if (d->cfg->max_batch > 0 && n > d->cfg->max_batch) n = d->cfg->max_batch;
    if (n <= 0) return;
    s1_queue_stmt s;
    if (s1_queue_claim(&s, &d->who, n)) return log_error("claim: out of memory");
    d->claiming = true;
    s1d_conn_send(d->db, &s, claim_done, d);
}

/* ---- completions ------------------------------------------------------------ */

/* A job's end was written, or never will be: the job is gone from here. */
static void on_write_settled(void *ud, s1d_job *j, s1_queue_end end, bool written)
{
    s1d *d = ud;
    if (written && end != S1_QUEUE_REQUEUED) d->jobs_done++;
    s1d_job_free(j, d->runner);
}

/* A batch came back: what it ended left room to claim into, and the drain
 * may be over. */
static void on_write_back(void *ud)
{
    s1d *d = ud;
    claim_maybe(d);
    check_drained(d);
}

/* ---- engine events ---------------------------------------------------------- */

/* The final answer of a sample and its grade when the job has a reference
 * (store/answer.h's one rule). Extraction trouble is logged, not fatal. */
static void grade_sample(s1d_job *j, int sample)
{
    s1_err err = {0};
    int grade;
    if (s1_answer_judge(j->results[sample]->answer, j->row.reference, &j->extracted[sample], &grade,
                        &err) < 0)
        log_warning("job %" PRId64 " sample %d: grading: %s", j->row.id, sample, err.msg);
    j->grade[sample] = (signed char)(j->row.reference ? grade > 0 : -1);
}

static void on_result(s1d *d, s1d_job *j, int sample, s1d_event *ev)
{
    j->results[sample] = ev->result;
    ev->result = NULL;
    j->n_out--;
    d->tokens += j->results[sample]->n_gen;
    if (j->results[sample]->stop != S1_STOP_CANCELLED) grade_sample(j, sample);
}

static void on_rejected(s1d *d, s1d_job *j, int sample, const char *why)
{
    j->n_out--;
    if (!j->error[0]) {
        snprintf(j->error, sizeof j->error, "the engine refused %s: %.400s",
                 j->row.samples > 1 ? "a sample" : "the job", why);
        log_warning("job %" PRId64 " sample %d: %s", j->row.id, sample, why);
        cancel_requests(d, j);
    }
}

/* One event of the engine thread, applied to the job its tag names. */
static void on_event(s1d *d, s1d_event *ev)
{
    if (ev->kind == S1D_EV_BROKEN) {
        log_error("engine: %s; handing back every job and exiting", ev->error);
        d->exit_code = 1;
        return;
    }
    s1d_job *j = find_job(d, (int64_t)(ev->tag >> S1D_SAMPLE_BITS));
    int sample = (int)(ev->tag & ((1u << S1D_SAMPLE_BITS) - 1));
    if (!j || sample >= j->row.samples) return;
    if (ev->kind == S1D_EV_PROGRESS) {
        j->thinking[sample] = ev->thinking;
        j->generated[sample] = ev->generated;
        j->progress_dirty = true;
        return;
    }
    if (ev->kind == S1D_EV_DONE)
        on_result(d, j, sample, ev);
    else
        on_rejected(d, j, sample, ev->error);
    if (!j->n_out) job_finished(d, j);
}

static void begin_drain(s1d *d, uint64_t timeout_ms);

/* The engine thread woke the loop: apply its events, then write what ended
 * and claim into the room that freed. */
static void on_engine_events(void *ud)
{
    s1d *d = ud;
    for (s1d_event *ev = s1d_exec_take(d->exec), *next; ev; ev = next) {
        next = ev->next;
        on_event(d, ev);
        s1d_exec_event_free(d->exec, ev);
    }
    if (d->exit_code) {
        /* A broken engine returns nothing more: hand every job back now. */
        for (s1d_job *j; (j = d->jobs);) {
            j->hand_back = true;
            j->cancel = false;
            unlink_job(d, j);
            end_job(d, j, S1_QUEUE_REQUEUED);
        }
        begin_drain(d, 0);
    }
    s1d_writer_flush(d->writer);
    claim_maybe(d);
    check_drained(d);
}

/* ---- heartbeat: leases, cancels, the reaper, the worker row ------------------ */

typedef struct {
    s1d *d;
    int n;
    s1_queue_held held[];
} renew_ctx;

static void lease_lost(s1d *d, s1d_job *j)
{
    if (j->lost) return;
    log_warning("job %" PRId64 " attempt %d: lease lost (reaped or taken over); stopping it",
                j->row.id, j->row.attempt);
    j->lost = true;
    cancel_requests(d, j);
}

static void request_cancel(s1d *d, s1d_job *j)
{
    if (j->cancel) return;
    log_info("job %" PRId64 ": cancel requested", j->row.id);
    j->cancel = true;
    cancel_requests(d, j);
}

/* Leases renewed: a held job missing from the answer was taken from this
 * worker (stop it, write nothing); a flagged one is cancelled. */
static void renew_done(void *ud, const PGresult *r, const char *error)
{
    renew_ctx *c = ud;
    s1d *d = c->d;
    d->renewing = false;
    s1_queue_lease *l = NULL;
    int n = 0;
    s1_err err = {0};
    if (!r)
        log_warning("%s", error);
    else if (s1_queue_parse_renew(r, &l, &n, &err))
        log_error("%s", err.msg);
    for (int i = 0; r && l && i < c->n; i++) {
        s1d_job *j = find_job(d, c->held[i].id);
        int k = 0;
        while (k < n && l[k].id != c->held[i].id)
            k++;
        if (!j || j->row.attempt != c->held[i].attempt) continue;
        if (k == n)
            lease_lost(d, j);
        else if (l[k].cancel_requested)
            request_cancel(d, j);
    }
    free(l);
    free(c);
}

static void renew_leases(s1d *d)
{
    int n = running_jobs(d);
    if (!n || d->renewing) return;
    renew_ctx *c = malloc(sizeof *c + (size_t)n * sizeof c->held[0]);
    if (!c) return log_error("renew leases: out of memory");
    c->d = d;
    c->n = 0;
    for (s1d_job *j = d->jobs; j; j = j->next)
        if (!j->lost) c->held[c->n++] = (s1_queue_held){.id = j->row.id, .attempt = j->row.attempt};
    s1_queue_stmt s;
    if (s1_queue_renew(&s, &d->who, c->held, c->n)) {
        free(c);
        return log_error("renew leases: out of memory");
    }
    d->renewing = true;
    s1d_conn_send(d->db, &s, renew_done, c);
}

static void reap_done(void *ud, const PGresult *r, const char *error)
{
    s1d *d = ud;
    if (!r) return log_warning("%s", error);
    for (int i = 0; i < PQntuples(r); i++)
        log_notice("job %s: lease expired on attempt %s; now %s", PQgetvalue(r, i, 0),
                   PQgetvalue(r, i, 2), PQgetvalue(r, i, 1));
    if (PQntuples(r)) {
        d->queue_hot = true;
        claim_maybe(d);
    }
}

/* Every heartbeat: leases, the worker row, and the reaper for everyone. */
static void on_heartbeat(uv_timer_t *t)
{
    s1d *d = t->data;
    if (!s1d_conn_is_up(d->db)) return;
    renew_leases(d);
    send_worker_beat(d, log_failure);
    s1_queue_stmt s;
    s1_queue_reap(&s);
    s1d_conn_send(d->db, &s, reap_done, d);
}

/* ---- progress ------------------------------------------------------------------ */

static void progress_done(void *ud, const PGresult *r, const char *error)
{
    s1d *d = ud;
    d->progressing = false;
    if (!r) log_warning("%s", error);
}

/* Writes the progress that changed since the last tick (PROGRESS_MS). */
static void on_progress_timer(uv_timer_t *t)
{
    s1d *d = t->data;
    if (d->progressing || !s1d_conn_is_up(d->db)) return;
    int n = 0;
    for (s1d_job *j = d->jobs; j; j = j->next)
        n += j->progress_dirty && !j->lost;
    if (!n) return;
    s1_queue_held *h = calloc((size_t)n, sizeof *h);
    if (!h) return;
    n = 0;
    for (s1d_job *j = d->jobs; j; j = j->next) {
        if (!j->progress_dirty || j->lost) continue;
        j->progress_dirty = false;
        h[n] = (s1_queue_held){.id = j->row.id, .attempt = j->row.attempt};
        for (int i = 0; i < j->row.samples; i++) {
            if (j->thinking[i] > h[n].thinking) h[n].thinking = j->thinking[i];
            h[n].generated += j->generated[i];
        }
        n++;
    }
    s1_queue_stmt s;
    if (!s1_queue_progress(&s, &d->who, h, n)) {
        d->progressing = true;
        s1d_conn_send(d->db, &s, progress_done, d);
    }
    free(h);
}

/* ---- database connection ------------------------------------------------------ */

static void ready_beat_done(void *ud, const PGresult *r, const char *error)
{
    s1d *d = ud;
    if (!r) return log_warning("%s", error);
    if (s1d_notify_is_ready(d->notify)) return;
    log_info("ready: model %s on %s, queues served as worker %s", d->who.model, d->info->backend,
             d->who.worker);
    s1d_notify_ready(d->notify);
    send_status(d);
}

/* (Re)connected: announce the worker, re-check leases, write what waited. */
static void on_db_up(void *ud)
{
    s1d *d = ud;
    log_info("database connected");
    send_worker_beat(d, ready_beat_done);
    renew_leases(d);
    d->queue_hot = true;
    s1d_writer_flush(d->writer);
    claim_maybe(d);
}

static void on_db_down(void *ud, const char *why)
{
    s1d *d = ud;
    log_warning("database connection lost (%s); reconnecting; %d completions wait in memory", why,
                s1d_writer_waiting(d->writer));
    send_status(d);
}

/* s1_cancel names a job (stop it if it is ours); s1_jobs names a queue. */
static void on_notify(void *ud, const char *channel, const char *payload)
{
    s1d *d = ud;
    if (!strcmp(channel, "s1_cancel")) {
        s1d_job *j = find_job(d, strtoll(payload, NULL, 10));
        if (j) request_cancel(d, j);
        return;
    }
    for (int i = 0; i < d->who.n_queues; i++)
        if (!strcmp(payload, d->who.queues[i])) {
            d->queue_hot = true;
            claim_maybe(d);
            return;
        }
}

static void on_poll_timer(uv_timer_t *t)
{
    s1d *d = t->data;
    d->queue_hot = true;
    claim_maybe(d);
    s1d_writer_flush(d->writer);
}

/* ---- stop and reload ------------------------------------------------------------ */

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Ends the loop: the engine thread is joined, the connection and every
 * handle closed; uv_run then returns. */
/* Runs once: closing the connection fails the statements in flight, and
 * their callbacks (the final worker beat) come back here. */
static void shut_down(s1d *d)
{
    s1d_conn *db = d->db;
    if (!db) return;
    d->db = NULL;
    s1d_exec_stop(d->exec);
    s1d_conn_close(db);
    uv_walk(d->loop, close_handle, NULL);
}

static void stopped_beat_done(void *ud, const PGresult *r, const char *error)
{
    s1d *d = ud;
    if (!r) log_warning("%s", error);
    log_info("stopped");
    shut_down(d);
}

/* Drained when no job runs and every completion is written. */
static void check_drained(s1d *d)
{
    if (!d->draining || d->stopping || d->jobs || !s1d_writer_idle(d->writer)) return;
    d->stopping = true;
    if (!s1d_conn_is_up(d->db)) return shut_down(d);
    send_worker_beat(d, stopped_beat_done);
}

static void on_drain_timeout(uv_timer_t *t)
{
    s1d *d = t->data;
    int n = 0;
    for (s1d_job *j = d->jobs; j; j = j->next, n++) {
        j->hand_back = true;
        cancel_requests(d, j);
    }
    if (n) log_notice("drain timeout: handing %d running jobs back to the queue", n);
}

static void on_hard_stop(uv_timer_t *t)
{
    s1d *d = t->data;
    d->exit_code = 1;
    log_error("stopping with %s unwritten (database unreachable); their leases will expire",
              !s1d_writer_idle(d->writer) ? "results" : "jobs");
    shut_down(d);
}

/* Claims nothing more; what does not finish within timeout_ms is handed back. */
static void begin_drain(s1d *d, uint64_t timeout_ms)
{
    if (d->draining) {
        uv_timer_start(&d->drain, on_drain_timeout, 0, 0);
        return;
    }
    d->draining = true;
    s1d_notify_stopping();
    log_info("stopping: draining %d running jobs (timeout %.1f s)", running_jobs(d),
             (double)timeout_ms / 1000.0);
    uv_timer_start(&d->drain, on_drain_timeout, timeout_ms, 0);
    uv_timer_start(&d->hard_stop, on_hard_stop, timeout_ms + STOP_GRACE_MS, 0);
    if (s1d_conn_is_up(d->db)) send_worker_beat(d, log_failure);
    check_drained(d);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    s1d *d = s->data;
    log_info("%s received", signum == SIGINT ? "SIGINT" : "SIGTERM");
    begin_drain(d, (uint64_t)d->cfg->drain_timeout_ms);
}

static void start_timers(s1d *d)
{
    uv_timer_start(&d->heartbeat, on_heartbeat, (uint64_t)d->cfg->heartbeat_ms,
                   (uint64_t)d->cfg->heartbeat_ms);
    uv_timer_start(&d->poll, on_poll_timer, (uint64_t)d->cfg->poll_ms, (uint64_t)d->cfg->poll_ms);
}

static void set_who(s1d *d)
{
    d->who = (s1_queue_worker){.worker = d->cfg->worker_name ? d->cfg->worker_name : d->host,
                               .model = d->cfg->model_name,
                               .queues = (const char *const *)d->cfg->queues,
                               .n_queues = d->cfg->n_queues,
                               .lease_ms = d->cfg->lease_ms};
}

static bool differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/* Takes the settings that can change live from fresh; logs the others. */
static void apply_reload(s1d *d, s1d_config *fresh)
{
    s1d_config *c = d->cfg;
    const struct {
        const char *key;
        bool changed;
    } fixed[] = {
        {"db", differs(c->db, fresh->db)},
        {"model", differs(c->model, fresh->model)},
        {"model-name", differs(c->model_name, fresh->model_name)},
        {"backend", differs(c->backend, fresh->backend)},
        {"engine", differs(c->engine, fresh->engine)},
        {"worker-name", differs(c->worker_name, fresh->worker_name)},
        {"threads", c->threads != fresh->threads},
        {"tp", c->tp != fresh->tp},
        {"max-seqs", c->max_seqs != fresh->max_seqs},
        {"noop-rate", c->noop_rate != fresh->noop_rate},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (fixed[i].changed)
            log_warning("reload: %s changed; it takes effect after a restart", fixed[i].key);
    for (int i = 0; i < c->n_queues; i++)
        free(c->queues[i]);
    memcpy(c->queues, fresh->queues, sizeof c->queues);
    c->n_queues = fresh->n_queues;
    fresh->n_queues = 0;
    c->max_batch = fresh->max_batch;
    c->lease_ms = fresh->lease_ms;
    c->heartbeat_ms = fresh->heartbeat_ms;
    c->drain_timeout_ms = fresh->drain_timeout_ms;
    c->poll_ms = fresh->poll_ms;
    set_who(d);
    start_timers(d);
}

/* SIGHUP: RELOADING=1, re-read the file (a bad one keeps the old settings),
 * READY=1. */
static void on_sighup(uv_signal_t *s, int signum)
{
    (void)signum;
    s1d *d = s->data;
    s1d_notify_reloading();
    s1d_config fresh;
    s1_err err = {0};
    if (s1d_config_load(&fresh, d->argc, d->argv, &err)) {
        log_error("reload: %s; keeping the running configuration", err.msg);
    } else {
        apply_reload(d, &fresh);
        s1d_config_free(&fresh);
        log_info("configuration reloaded: queues %s%s, lease %.1f s", d->cfg->queues[0],
                 d->cfg->n_queues > 1 ? ", ..." : "", d->cfg->lease_ms / 1000.0);
    }
    s1d_notify_reloaded();
    send_status(d);
    d->queue_hot = true;
    claim_maybe(d);
}

/* ---- setup ---------------------------------------------------------------------- */

static void init_timer(s1d *d, uv_timer_t *t)
{
    uv_timer_init(d->loop, t);
    t->data = d;
}

static void init_signal(s1d *d, uv_signal_t *s, uv_signal_cb cb, int signum)
{
    uv_signal_init(d->loop, s);
    s->data = d;
    uv_signal_start(s, cb, signum);
}

static void init_handles(s1d *d)
{
    uv_timer_t *timers[] = {&d->heartbeat, &d->progress, &d->poll,
                            &d->status,    &d->drain,    &d->hard_stop};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
        init_timer(d, timers[i]);
    init_signal(d, &d->sigterm, on_stop_signal, SIGTERM);
    init_signal(d, &d->sigint, on_stop_signal, SIGINT);
    init_signal(d, &d->sighup, on_sighup, SIGHUP);
    start_timers(d);
    uv_timer_start(&d->progress, on_progress_timer, PROGRESS_MS, PROGRESS_MS);
    uv_timer_start(&d->status, on_status_timer, STATUS_MS, STATUS_MS);
    s1d_notify_start_watchdog(d->notify);
}

static void free_leftovers(s1d *d)
{
    for (s1d_job *j; (j = d->jobs);) {
        d->jobs = j->next;
        s1d_job_free(j, d->runner);
    }
    s1d_writer_free(d->writer);
    s1d_notify_free(d->notify);
}

int s1d_run(s1d_config *cfg, s1d_runner *runner, int argc, char **argv)
{
    s1d d = {.cfg = cfg,
             .argc = argc,
             .argv = argv,
             .runner = runner,
             .info = s1d_runner_info(runner),
             .tokens_at_ms = now_ms()};
    uv_loop_t loop;
    uv_loop_init(&loop);
    d.loop = &loop;
    gethostname(d.host, sizeof d.host - 1);
    set_who(&d);
    s1_err err = {0};
    d.exec = s1d_exec_start(runner, &loop, on_engine_events, &d, &err);
    if (!d.exec) {
        log_error("%s", err.msg);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    s1d_conn_events ev = {
        .on_up = on_db_up, .on_down = on_db_down, .on_notify = on_notify, .ud = &d};
    d.db = s1d_conn_new(&loop, s1_db_conninfo(cfg->db), LISTEN_SQL, &ev);
    s1d_writer_events wev = {.settled = on_write_settled, .batch_back = on_write_back, .ud = &d};
    d.writer = s1d_writer_new(d.db, &d.who, d.info, &wev);
    d.notify = s1d_notify_new(&loop, d.exec);
    if (d.writer && d.notify) {
        init_handles(&d);
    } else {
        log_error("out of memory starting the daemon");
        d.exit_code = 1;
        shut_down(&d);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    free_leftovers(&d);
    uv_loop_close(&loop);
    s1d_config_free(cfg);
    return d.exit_code;
}
