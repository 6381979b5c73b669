#include "daemon.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <uv.h>

#include "answer.h"
#include "conn.h"
#include "db.h"
#include "exec.h"
#include "job.h"
#include "log.h"
#include "queue.h"
#include "s1_config.h"

/* A request's tag is its job id and sample: samples are at most 1024. */
enum { SAMPLE_BITS = 10 };
enum {
    PROGRESS_MS = 500,     /* progress writes per job: at most 2/s */
    STATUS_MS = 2000,      /* systemd STATUS= updates */
    WRITE_BATCH = 256,     /* completions per statement */
    STOP_GRACE_MS = 10000, /* after the drain timeout, for the last writes */
};

static const char LISTEN_SQL[] = "LISTEN s1_jobs; LISTEN s1_cancel";

/* A claimed job. Owned by the daemon's job list while its requests run, then
 * by its pending completion. Its strings must outlive its engine requests. */
typedef struct job {
    s1_queue_job row;
    s1_job_params params;
    bool params_ok;
    s1_result **results;       /* [samples], owned */
    char **extracted;          /* [samples]: final answers found, owned */
    signed char *grade;        /* [samples]: -1 no reference, 0, 1 */
    int *thinking, *generated; /* [samples]: progress */
    int n_out;                 /* requests still in the engine */
    bool cancel;               /* cancel requested */
    bool lost;                 /* the lease was taken over: write nothing */
    bool hand_back;            /* drain timed out: requeue */
    bool progress_dirty;
    char error[512]; /* why the job fails, when it does */
    struct job *next;
} job;

/* A completion waiting to be written (the job is owned here). */
typedef struct pending {
    job *job;
    s1_queue_end end;
    bool solo;  /* its batch failed: write it alone */
    bool again; /* sent before, when the connection broke: it may be in */
    struct pending *next;
} pending;

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
    uv_timer_t heartbeat, progress, poll, status, watchdog, drain, hard_stop;
    uv_signal_t sigterm, sigint, sighup;
    job *jobs;
    pending *writes, *writes_tail;
    pending *writing;         /* the batch in flight */
    bool claiming, queue_hot; /* a claim in flight; jobs may be waiting */
    bool renewing, progressing;
    bool ready_sent, draining, stopping;
    int exit_code;
    long long jobs_done;
    uint64_t tokens, tokens_at_ms; /* tokens generated since tokens_at_ms */
    double tokens_per_s;
    uint64_t watchdog_usec;
} s1d;

static void claim_maybe(s1d *d);
static void flush_writes(s1d *d);
static void check_drained(s1d *d);

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static job *find_job(s1d *d, int64_t id)
{
    for (job *j = d->jobs; j; j = j->next)
        if (j->row.id == id) return j;
    return NULL;
}

static int running_jobs(const s1d *d)
{
    int n = 0;
    for (const job *j = d->jobs; j; j = j->next)
        n++;
    return n;
}

static void job_free(s1d *d, job *j)
{
    for (int i = 0; j->results && i < j->row.samples; i++)
        if (j->results[i]) s1d_runner_free_result(d->runner, j->results[i]);
    for (int i = 0; j->extracted && i < j->row.samples; i++)
        free(j->extracted[i]);
    free(j->results);
    free(j->extracted);
    free(j->grade);
    free(j->thinking);
    free(j->generated);
    if (j->params_ok) s1_job_params_free(&j->params);
    free(j->row.problem);
    free(j->row.reference);
    free(j->row.policy);
    free(j->row.sampling);
    free(j);
}

/* ---- systemd ---------------------------------------------------------- */

/* STATUS= follows READY=1: before it, systemd shows "activating". */
static void send_status(s1d *d)
{
    if (!d->ready_sent) return;
    sd_notifyf(0, "STATUS=%s%d jobs running, %lld done, %.0f tokens/s, database %s",
               d->draining ? "draining: " : "", running_jobs(d), d->jobs_done, d->tokens_per_s,
               s1d_conn_is_up(d->db) ? "up" : "unreachable");
}

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

/* The watchdog is fed only while the engine thread finishes steps or
 * idle-waits: a hung forward gets the daemon restarted. */
static void on_watchdog_timer(uv_timer_t *t)
{
    s1d *d = t->data;
    if (s1d_exec_stalled_ms(d->exec) * 1000 < d->watchdog_usec)
        sd_notify(0, "WATCHDOG=1");
    else
        log_warning("engine thread stalled for %" PRIu64 " ms; not feeding the watchdog",
                    s1d_exec_stalled_ms(d->exec));
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
static void end_job(s1d *d, job *j, s1_queue_end end)
{
    pending *p = calloc(1, sizeof *p);
    if (!p) {
        log_error("job %" PRId64 ": out of memory; its lease will expire and it will be retried",
                  j->row.id);
        return job_free(d, j);
    }
    p->job = j;
    p->end = end;
    if (d->writes_tail)
        d->writes_tail->next = p;
    else
        d->writes = p;
    d->writes_tail = p;
}

static void unlink_job(s1d *d, job *j)
{
    for (job **pp = &d->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            j->next = NULL;
            return;
        }
}

/* All of a job's requests are back: decide how it ends. */
static void job_finished(s1d *d, job *j)
{
    unlink_job(d, j);
    if (j->lost) {
        log_warning("job %" PRId64 " attempt %d: lease lost to another worker; dropped", j->row.id,
                    j->row.attempt);
        return job_free(d, j);
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

static void cancel_requests(s1d *d, job *j)
{
    for (int i = 0; i < j->row.samples; i++)
        if (!j->results[i])
            s1d_exec_cancel(d->exec, ((uint64_t)j->row.id << SAMPLE_BITS) | (uint64_t)i);
}

/* Hands a claimed job's samples to the engine, seeds seed, seed+1, ... */
static void start_job(s1d *d, job *j)
{
    for (int i = 0; i < j->row.samples; i++) {
        s1_request r = {.tag = ((uint64_t)j->row.id << SAMPLE_BITS) | (uint64_t)i,
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

static job *job_new(s1_queue_job *row)
{
    job *j = calloc(1, sizeof *j);
    int n = row->samples > 0 && row->samples <= (1 << SAMPLE_BITS) ? row->samples : 1;
    if (!j) return NULL;
    j->row = *row;
    j->row.samples = n;
    memset(row, 0, sizeof *row);
    j->results = calloc((size_t)n, sizeof *j->results);
    j->thinking = calloc((size_t)n, sizeof *j->thinking);
    j->generated = calloc((size_t)n, sizeof *j->generated);
    j->extracted = calloc((size_t)n, sizeof *j->extracted);
    j->grade = calloc((size_t)n, sizeof *j->grade);
    return j;
}

/* A claimed row: failed at once when its policy cannot be read, cancelled
 * when a cancel came while it was queued, else started. */
static void take_claimed(s1d *d, s1_queue_job *row)
{
    job *j = job_new(row);
    if (!j || !j->results || !j->thinking || !j->generated || !j->extracted || !j->grade) {
        log_error("job %" PRId64 ": out of memory; its lease will expire", row->id);
        if (j) job_free(d, j);
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
    flush_writes(d);
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

/* ---- completions ----------------------------------------------------------- */

/* The result rows of a succeeded job; NULL for other ends. */
static s1_queue_sample *job_samples(const job *j, const s1_queue_end end)
{
    if (end != S1_QUEUE_SUCCEEDED) return NULL;
    s1_queue_sample *x = calloc((size_t)j->row.samples, sizeof *x);
    for (int i = 0; x && i < j->row.samples; i++) {
        const s1_result *r = j->results[i];
        x[i] = (s1_queue_sample){.sample = i,
                                 .trace = r->trace,
                                 .answer = r->answer,
                                 .extracted_answer = j->extracted[i],
                                 .grade = j->grade[i],
                                 .prompt_tokens = r->prompt_tokens,
                                 .thinking_tokens = r->thinking_tokens,
                                 .forced_tokens = r->forced_tokens,
                                 .answer_tokens = r->answer_tokens,
                                 .waits = r->waits,
                                 .forced_end = r->forced_end,
                                 .stop_reason = s1_stop_reason_name(r->stop),
                                 .prompt_ids = r->prompt_ids,
                                 .n_prompt = r->n_prompt,
                                 .token_ids = r->gen_ids,
                                 .n_tokens = r->n_gen,
                                 .queue_wait_ms = j->row.queue_wait_ms,
                                 .ttft_ms = r->ttft_s * 1000.0,
                                 .decode_tps = r->decode_tps};
    }
    return x;
}

static const char *end_name(s1_queue_end e)
{
    static const char *const names[] = {"succeeded", "failed", "cancelled", "handed back"};
    return names[e];
}

/* Written (or fenced out): the job is gone from this daemon. */
static void write_settled(s1d *d, pending *p, bool written)
{
    job *j = p->job;
    if (!written && p->again)
        log_notice("job %" PRId64 " attempt %d: not written now; either the write before the "
                   "connection broke went in, or the lease was lost",
                   j->row.id, j->row.attempt);
    else if (!written)
        log_warning("job %" PRId64 " attempt %d: no longer held by %s (lease lost); "
                    "its %s result was not written",
                    j->row.id, j->row.attempt, d->who.worker, end_name(p->end));
    else if (p->end == S1_QUEUE_FAILED)
        log_warning("job %" PRId64 " failed: %s", j->row.id, j->error);
    else
        log_info("job %" PRId64 " %s", j->row.id, end_name(p->end));
    if (written && p->end != S1_QUEUE_REQUEUED) d->jobs_done++;
    job_free(d, j);
    free(p);
}

static void requeue_front(s1d *d, pending *batch, bool solo, bool again)
{
    pending *last = batch;
    for (pending *p = batch; p; p = p->next) {
        p->solo = p->solo || solo;
        p->again = p->again || again;
        last = p;
    }
    last->next = d->writes;
    d->writes = batch;
    if (!d->writes_tail) d->writes_tail = last;
}

/* A statement error on a live connection: split the batch; a job that fails
 * alone is failed without its results, so one bad row never stalls others. */
static void write_refused(s1d *d, pending *batch, const char *error)
{
    if (batch->next) return requeue_front(d, batch, true, false);
    pending *p = batch;
    if (p->end == S1_QUEUE_FAILED) {
        log_error("job %" PRId64 ": %s; giving up (its lease will expire)", p->job->row.id, error);
        job_free(d, p->job);
        free(p);
        return;
    }
    snprintf(p->job->error, sizeof p->job->error, "could not store the result: %.400s", error);
    p->end = S1_QUEUE_FAILED;
    requeue_front(d, p, true, false);
}

/* A batch of completions came back: written, fenced out, or to be retried
 * (connection lost: after the reconnect; statement refused: split up). */
static void write_done(void *ud, const PGresult *r, const char *error)
{
    s1d *d = ud;
    pending *batch = d->writing;
    d->writing = NULL;
    int64_t *ids = NULL;
    int n = 0;
    s1_err err = {0};
    if (!r && !s1d_conn_is_up(d->db)) {
        requeue_front(d, batch, false, true); /* written again after the reconnect */
    } else if (!r || s1_queue_parse_ids(r, &ids, &n, &err)) {
        write_refused(d, batch, r ? err.msg : error);
    } else {
        for (pending *p = batch, *next; p; p = next) {
            next = p->next;
            bool written = false;
            for (int i = 0; i < n && !written; i++)
                written = ids[i] == p->job->row.id;
            write_settled(d, p, written);
        }
    }
    free(ids);
    flush_writes(d);
    claim_maybe(d);
    check_drained(d);
}

/* Detaches the next batch: one solo completion or up to WRITE_BATCH others. */
static pending *next_batch(s1d *d, int *n)
{
    pending *batch = d->writes, *last = batch;
    *n = 1;
    if (!batch->solo)
        while (last->next && !last->next->solo && *n < WRITE_BATCH) {
            last = last->next;
            (*n)++;
        }
    d->writes = last->next;
    if (!d->writes) d->writes_tail = NULL;
    last->next = NULL;
    return batch;
}

/* Writes waiting completions, one batch at a time, while connected. */
static void flush_writes(s1d *d)
{
    if (d->writing || !d->writes || !s1d_conn_is_up(d->db)) return;
    int n = 0;
    pending *batch = next_batch(d, &n);
    s1_queue_done *done = calloc((size_t)n, sizeof *done);
    int i = 0, rc = !done;
    for (pending *p = batch; !rc && p; p = p->next, i++) {
        job *j = p->job;
        done[i] = (s1_queue_done){.id = j->row.id,
                                  .attempt = j->row.attempt,
                                  .end = p->end,
                                  .error = j->error[0] ? j->error : NULL,
                                  .n_samples = p->end == S1_QUEUE_SUCCEEDED ? j->row.samples : 0};
        done[i].samples = job_samples(j, p->end);
        rc = p->end == S1_QUEUE_SUCCEEDED && !done[i].samples;
    }
    s1_queue_origin o = {
        .model = d->who.model, .backend = d->info->backend, .gpus = d->info->n_devices};
    s1_queue_stmt s;
    s1_err err = {0};
    rc = rc || s1_queue_complete(&s, &d->who, &o, done, n, &err);
    for (int k = 0; done && k < n; k++)
        free((void *)done[k].samples);
    free(done);
    if (rc) {
        log_error("complete: out of memory; retrying");
        return requeue_front(d, batch, false, false);
    }
    d->writing = batch;
    s1d_conn_send(d->db, &s, write_done, d);
}

/* ---- engine events ---------------------------------------------------------- */

/* The final answer of a sample and its grade when the job has a reference
 * (no answer found grades false). Extraction trouble is logged, not fatal. */
static void grade_sample(job *j, int sample)
{
    const s1_result *r = j->results[sample];
    s1_err err = {0};
    j->grade[sample] = -1;
    if (r->answer && s1_answer_extract(r->answer, &j->extracted[sample], &err) < 0)
        log_warning("job %" PRId64 " sample %d: %s", j->row.id, sample, err.msg);
    if (!j->row.reference) return;
    int g =
        j->extracted[sample] ? s1_answer_grade(j->extracted[sample], j->row.reference, &err) : 0;
    if (g < 0) log_warning("job %" PRId64 " sample %d: grading: %s", j->row.id, sample, err.msg);
    j->grade[sample] = (signed char)(g > 0);
}

static void on_result(s1d *d, job *j, int sample, s1d_event *ev)
{
    j->results[sample] = ev->result;
    ev->result = NULL;
    j->n_out--;
    d->tokens += j->results[sample]->n_gen;
    if (j->results[sample]->stop != S1_STOP_CANCELLED) grade_sample(j, sample);
}

static void on_rejected(s1d *d, job *j, int sample, const char *why)
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
    job *j = find_job(d, (int64_t)(ev->tag >> SAMPLE_BITS));
    int sample = (int)(ev->tag & ((1u << SAMPLE_BITS) - 1));
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
        for (job *j; (j = d->jobs);) {
            j->hand_back = true;
            j->cancel = false;
            unlink_job(d, j);
            end_job(d, j, S1_QUEUE_REQUEUED);
        }
        begin_drain(d, 0);
    }
    flush_writes(d);
    claim_maybe(d);
    check_drained(d);
}

/* ---- heartbeat: leases, cancels, the reaper, the worker row ------------------ */

typedef struct {
    s1d *d;
    int n;
    s1_queue_held held[];
} renew_ctx;

static void lease_lost(s1d *d, job *j)
{
    if (j->lost) return;
    log_warning("job %" PRId64 " attempt %d: lease lost (reaped or taken over); stopping it",
                j->row.id, j->row.attempt);
    j->lost = true;
    cancel_requests(d, j);
}

static void request_cancel(s1d *d, job *j)
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
        job *j = find_job(d, c->held[i].id);
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
    for (job *j = d->jobs; j; j = j->next)
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
    for (job *j = d->jobs; j; j = j->next)
        n += j->progress_dirty && !j->lost;
    if (!n) return;
    s1_queue_held *h = calloc((size_t)n, sizeof *h);
    if (!h) return;
    n = 0;
    for (job *j = d->jobs; j; j = j->next) {
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
    if (d->ready_sent) return;
    d->ready_sent = true;
    log_info("ready: model %s on %s, queues served as worker %s", d->who.model, d->info->backend,
             d->who.worker);
    sd_notify(0, "READY=1");
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
    flush_writes(d);
    claim_maybe(d);
}

static void on_db_down(void *ud, const char *why)
{
    s1d *d = ud;
    int n = 0;
    for (const pending *p = d->writes; p; p = p->next)
        n++;
    log_warning("database connection lost (%s); reconnecting; %d completions wait in memory", why,
                n);
    send_status(d);
}

/* s1_cancel names a job (stop it if it is ours); s1_jobs names a queue. */
static void on_notify(void *ud, const char *channel, const char *payload)
{
    s1d *d = ud;
    if (!strcmp(channel, "s1_cancel")) {
        job *j = find_job(d, strtoll(payload, NULL, 10));
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
    flush_writes(d);
}

/* ---- stop and reload ------------------------------------------------------------ */

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Ends the loop: the engine thread is joined, the connection and every
 * handle closed; uv_run then returns. */
static void shut_down(s1d *d)
{
    if (!d->db) return;
    s1d_exec_stop(d->exec);
    s1d_conn_close(d->db);
    d->db = NULL;
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
    if (!d->draining || d->stopping || d->jobs || d->writes || d->writing) return;
    d->stopping = true;
    if (!s1d_conn_is_up(d->db)) return shut_down(d);
    send_worker_beat(d, stopped_beat_done);
}

static void on_drain_timeout(uv_timer_t *t)
{
    s1d *d = t->data;
    int n = 0;
    for (job *j = d->jobs; j; j = j->next, n++) {
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
              d->writes || d->writing ? "results" : "jobs");
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
    sd_notify(0, "STOPPING=1");
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
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, uv_hrtime() / 1000);
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
    sd_notify(0, "READY=1");
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
    uv_timer_t *timers[] = {&d->heartbeat, &d->progress, &d->poll,     &d->status,
                            &d->watchdog,  &d->drain,    &d->hard_stop};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
        init_timer(d, timers[i]);
    init_signal(d, &d->sigterm, on_stop_signal, SIGTERM);
    init_signal(d, &d->sigint, on_stop_signal, SIGINT);
    init_signal(d, &d->sighup, on_sighup, SIGHUP);
    start_timers(d);
    uv_timer_start(&d->progress, on_progress_timer, PROGRESS_MS, PROGRESS_MS);
    uv_timer_start(&d->status, on_status_timer, STATUS_MS, STATUS_MS);
    if (sd_watchdog_enabled(0, &d->watchdog_usec) > 0) {
        uint64_t every = d->watchdog_usec / 4000;
        uv_timer_start(&d->watchdog, on_watchdog_timer, every ? every : 1, every ? every : 1);
    }
}

static void free_leftovers(s1d *d)
{
    for (job *j; (j = d->jobs);) {
        d->jobs = j->next;
        job_free(d, j);
    }
    pending *lists[] = {d->writes, d->writing};
    for (int i = 0; i < 2; i++)
        for (pending *p = lists[i], *n; p; p = n) {
            n = p->next;
            job_free(d, p->job);
            free(p);
        }
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
    init_handles(&d);
    uv_run(&loop, UV_RUN_DEFAULT);
    free_leftovers(&d);
    uv_loop_close(&loop);
    s1d_config_free(cfg);
    return d.exit_code;
}
