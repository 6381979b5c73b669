#include "jobs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "log.h"

struct s1d_jobs {
    s1d_jobs_deps on;
    uv_timer_t poll;
    s1d_job *jobs;            /* running: requests in the engine; owned */
    bool claiming, queue_hot; /* a claim in flight; jobs may be waiting */
    bool draining;
    long long done;
    uint64_t tokens, tokens_at_ms; /* tokens generated since tokens_at_ms */
    double tokens_per_s;
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void on_poll_timer(uv_timer_t *timer)
{
    s1d_jobs *t = timer->data;
    s1d_jobs_wake(t);
    s1d_writer_flush(t->on.writer);
}

s1d_jobs *s1d_jobs_new(const s1d_jobs_deps *deps)
{
    s1d_jobs *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->on = *deps;
    t->tokens_at_ms = now_ms();
    uv_timer_init(deps->loop, &t->poll);
    t->poll.data = t;
    return t;
}

/* What is still here at exit never reached the writer: its leases expire. */
void s1d_jobs_free(s1d_jobs *t)
{
    if (!t) return;
    for (s1d_job *j; (j = t->jobs);) {
        t->jobs = j->next;
        s1d_job_free(j, t->on.runner);
    }
    free(t);
}

void s1d_jobs_start_poll(s1d_jobs *t)
{
    uint64_t every = (uint64_t)t->on.cfg->poll_ms;
    uv_timer_start(&t->poll, on_poll_timer, every, every);
}

s1d_job *s1d_jobs_first(const s1d_jobs *t)
{
    return t->jobs;
}

s1d_job *s1d_jobs_find(const s1d_jobs *t, int64_t id)
{
    for (s1d_job *j = t->jobs; j; j = j->next)
        if (j->row.id == id) return j;
    return NULL;
}

int s1d_jobs_running(const s1d_jobs *t)
{
    int n = 0;
    for (const s1d_job *j = t->jobs; j; j = j->next)
        n++;
    return n;
}

/* ---- how a job ends -------------------------------------------------------- */

/* Its end is queued like any other; out of memory, the lease will expire. */
static void end_job(s1d_jobs *t, s1d_job *j, s1_queue_end end)
{
    if (!s1d_writer_add(t->on.writer, j, end)) return;
    log_error("job %" PRId64 ": out of memory; its lease will expire and it will be retried",
              j->row.id);
    s1d_job_free(j, t->on.runner);
}

static void unlink_job(s1d_jobs *t, s1d_job *j)
{
    for (s1d_job **pp = &t->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            j->next = NULL;
            return;
        }
}

/* All of a job's requests are back: decide how it ends. */
static void job_finished(s1d_jobs *t, s1d_job *j)
{
    unlink_job(t, j);
    if (j->lost) {
        log_warning("job %" PRId64 " attempt %d: lease lost to another worker; dropped", j->row.id,
                    j->row.attempt);
        return s1d_job_free(j, t->on.runner);
    }
    bool cancelled = j->cancel;
    for (int i = 0; !cancelled && j->results && i < s1d_job_runs(j); i++)
        cancelled = j->results[i] && j->results[i]->stop == S1_STOP_CANCELLED && !j->error[0];
    if (j->hand_back && !j->cancel)
        end_job(t, j, S1_QUEUE_REQUEUED);
    else if (cancelled)
        end_job(t, j, S1_QUEUE_CANCELLED);
    else if (j->error[0])
        end_job(t, j, S1_QUEUE_FAILED);
    else
        end_job(t, j, S1_QUEUE_SUCCEEDED);
}

static uint64_t job_tag(const s1d_job *j)
{
    return (uint64_t)j->row.id << S1D_SAMPLE_BITS;
}

/* The runs still in the engine stop; their results come back cancelled. */
static void cancel_requests(s1d_jobs *t, s1d_job *j)
{
    if (j->n_out > 0) s1d_exec_cancel(t->on.exec, job_tag(j));
}

void s1d_jobs_cancel(s1d_jobs *t, s1d_job *j)
{
    if (j->cancel) return;
    log_info("job %" PRId64 ": cancel requested", j->row.id);
    j->cancel = true;
    cancel_requests(t, j);
}

void s1d_jobs_lose(s1d_jobs *t, s1d_job *j)
{
    if (j->lost) return;
    log_warning("job %" PRId64 " attempt %d: lease lost (reaped or taken over); stopping it",
                j->row.id, j->row.attempt);
    j->lost = true;
    cancel_requests(t, j);
}

int s1d_jobs_hand_back(s1d_jobs *t)
{
    int n = 0;
    for (s1d_job *j = t->jobs; j; j = j->next, n++) {
        j->hand_back = true;
        cancel_requests(t, j);
    }
    return n;
}

/* A broken engine returns nothing more: every job goes back at once. */
static void hand_back_now(s1d_jobs *t)
{
    for (s1d_job *j; (j = t->jobs);) {
        j->hand_back = true;
        j->cancel = false;
        unlink_job(t, j);
        end_job(t, j, S1_QUEUE_REQUEUED);
    }
}

void s1d_jobs_settled(s1d_jobs *t, s1d_job *j, s1_queue_end end, bool written)
{
    if (written && end != S1_QUEUE_REQUEUED) t->done++;
    s1d_job_free(j, t->on.runner);
}

long long s1d_jobs_done(const s1d_jobs *t)
{
    return t->done;
}

/* ---- claiming ---------------------------------------------------------------- */

/* The state an earlier attempt saved: every sample and ladder branch it
 * had. A save without sequences (taken before the samples forked) is none. */
static const s1_resume *saved_state(const s1d_job *j)
{
    return j->resume && j->resume->n > 0 ? j->resume : NULL;
}

/* Saved tokens, summed over the sequences, for the log. */
static size_t saved_tokens(const s1_resume *r)
{
    size_t n = 0;
    for (int i = 0; i < r->n; i++)
        n += r->seqs[i].n;
    return n;
}

/* The job's one request: its samples (seeded seed, seed+1, ...) and ladder
 * rungs fork from it, one result each; it goes on from where an earlier
 * attempt saved it when it can. */
static int add_request(s1d_jobs *t, s1d_job *j)
{
    s1_request r = {.tag = job_tag(j),
                    .text = j->row.problem,
                    .text_len = strlen(j->row.problem),
                    .samples = j->row.samples,
                    .policy = j->params.policy,
                    .sampling = j->params.sampling,
                    .resume = saved_state(j)};
    if (r.resume)
        log_info("job %" PRId64 ": resuming %d sequence%s from %zu saved tokens", j->row.id,
                 r.resume->n, r.resume->n == 1 ? "" : "s", saved_tokens(r.resume));
    return s1d_exec_add(t->on.exec, &r);
}

static void start_job(s1d_jobs *t, s1d_job *j)
{
    if (add_request(t, j))
        snprintf(j->error, sizeof j->error, "out of memory queueing the job");
    else
        j->n_out = s1d_job_runs(j);
    j->next = t->jobs;
    t->jobs = j;
    if (!j->n_out) job_finished(t, j);
}

/* A claimed row: failed at once when its policy cannot be read, cancelled
 * when a cancel came while it was queued, else started. */
static void take_claimed(s1d_jobs *t, s1_queue_job *row)
{
    int64_t id = row->id; /* s1d_job_new takes the row */
    s1d_job *j = s1d_job_new(row);
    if (!j) {
        if (j) s1d_job_free(j, t->on.runner);
        log_error("job %" PRId64 ": out of memory; its lease will expire", id);
        return;
    }
    log_info("job %" PRId64 " claimed (attempt %d, %d sample%s)", j->row.id, j->row.attempt,
             j->row.samples, j->row.samples == 1 ? "" : "s");
    s1_err err = {0};
    if (j->row.cancel_requested) return end_job(t, j, S1_QUEUE_CANCELLED);
    if (s1d_jobs_find(t, j->row.id)) {
        /* An earlier attempt that lost its lease is still leaving the
         * engine, under the same tags: give this one back for now. */
        log_notice("job %" PRId64 ": an earlier attempt is still stopping here; handing it back",
                   j->row.id);
        return end_job(t, j, S1_QUEUE_REQUEUED);
    }
    int unreadable = s1_job_params_parse(j->row.policy, j->row.sampling, &j->params, &err);
    j->params_ok = !unreadable;
    if (!unreadable)
        unreadable = s1_job_template_parse(j->row.template_name, &j->params.policy.template, &err);
    if (unreadable) {
        snprintf(j->error, sizeof j->error, "%s", err.msg);
        return end_job(t, j, S1_QUEUE_FAILED);
    }
    if (s1d_job_size(j) < 0) {
        log_error("job %" PRId64 ": out of memory; its lease will expire", id);
        return s1d_job_free(j, t->on.runner);
    }
    if (j->row.resume && !(j->resume = s1_queue_parse_resume(j->row.resume, &err)))
        log_warning("job %" PRId64 ": its saved sequences cannot be read (%s); starting over",
                    j->row.id, err.msg);
    start_job(t, j);
}

/* Claimed rows start at once; a full claim means more may wait: claim again. */
static void claim_done(void *ud, const PGresult *r, const char *error)
{
    s1d_jobs *t = ud;
    t->claiming = false;
    s1_queue_job *rows = NULL;
    int n = 0;
    s1_err err = {0};
    if (!r) {
        log_warning("claim: %s", error);
        return;
    }
    if (s1_queue_parse_claim(r, &rows, &n, &err)) return log_error("%s", err.msg);
    for (int i = 0; i < n; i++)
        take_claimed(t, &rows[i]);
    s1_queue_jobs_free(rows, n);
    s1d_writer_flush(t->on.writer);
    t->queue_hot = n > 0;
    s1d_jobs_claim(t);
}

void s1d_jobs_claim(s1d_jobs *t)
{
    if (t->claiming || t->draining || !t->queue_hot || !s1d_conn_is_up(t->on.db)) return;
    int n = s1d_exec_capacity(t->on.exec);
    if (t->on.cfg->max_batch > 0 && n > t->on.cfg->max_batch) n = t->on.cfg->max_batch;
    if (n <= 0) return;
    s1_queue_stmt s;
    if (s1_queue_claim(&s, t->on.who, n)) return log_error("claim: out of memory");
    t->claiming = true;
    s1d_conn_send(t->on.db, &s, claim_done, t);
}

void s1d_jobs_wake(s1d_jobs *t)
{
    t->queue_hot = true;
    s1d_jobs_claim(t);
}

void s1d_jobs_stop_claiming(s1d_jobs *t)
{
    t->draining = true;
}

/* ---- engine events ------------------------------------------------------------ */

/* The final answer of run i (a sample at a rung) and its grade when the job
 * has a reference (store/answer.h's one rule, as `bench regrade` applies
 * it). Extraction trouble is logged, not fatal. */
static void grade_run(s1d_job *j, int i)
{
    const s1_result *r = j->results[i];
    s1_err err = {0};
    int grade;
    if (s1_answer_judge(r->answer, j->row.reference, &j->extracted[i], &grade, &err) < 0)
        log_warning("job %" PRId64 " sample %d rung %d: grading: %s", j->row.id, r->sample, r->rung,
                    err.msg);
    j->grade[i] = (signed char)(j->row.reference ? grade > 0 : -1);
}

/* A result lands in the slot of its sample and rung; one the job has no
 * slot for (or has already) is dropped, so a bad count cannot end it early. */
static void on_result(s1d_jobs *t, s1d_job *j, s1d_event *ev)
{
    const s1_result *r = ev->result;
    int i = r->sample * j->rungs + r->rung;
    if (r->sample < 0 || r->sample >= j->row.samples || r->rung < 0 || r->rung >= j->rungs ||
        j->results[i]) {
        log_warning("job %" PRId64 ": dropped an unexpected result (sample %d, rung %d)", j->row.id,
                    r->sample, r->rung);
        return;
    }
    j->results[i] = ev->result;
    ev->result = NULL;
    j->n_out--;
    t->tokens += j->results[i]->n_gen;
    if (j->results[i]->stop != S1_STOP_CANCELLED) grade_run(j, i);
}

/* A saved state the engine refuses (another model, a damaged row) costs the
 * saved tokens, not the job: it starts over from its prompt. */
static bool start_over(s1d_jobs *t, s1d_job *j, const char *why)
{
    if (!saved_state(j) || j->cancel || j->lost || j->hand_back) return false;
    log_warning("job %" PRId64 ": its saved state was refused (%s); starting over", j->row.id, why);
    s1_resume_free(j->resume);
    j->resume = NULL;
    return add_request(t, j) == 0;
}

/* The engine refused the job's request: none of its results will come. */
static void on_rejected(s1d_jobs *t, s1d_job *j, const char *why)
{
    if (start_over(t, j, why)) return;
    j->n_out = 0;
    snprintf(j->error, sizeof j->error, "the engine refused the job: %.400s", why);
    log_warning("job %" PRId64 ": %s", j->row.id, why);
}

/* One event of the engine thread, applied to the job its tag names.
 * Returns false when the engine broke. */
static bool on_event(s1d_jobs *t, s1d_event *ev)
{
    if (ev->kind == S1D_EV_BROKEN) {
        log_error("engine: %s; handing back every job and exiting", ev->error);
        return false;
    }
    s1d_job *j = s1d_jobs_find(t, (int64_t)(ev->tag >> S1D_SAMPLE_BITS));
    if (!j || ev->tag != job_tag(j)) return true;
    if (ev->kind == S1D_EV_PROGRESS) {
        j->thinking = ev->thinking;
        j->generated = ev->generated;
        j->progress_dirty = true;
        return true;
    }
    if (ev->kind == S1D_EV_SAVED) {
        s1_resume_free(j->saved);
        j->saved = ev->saved;
        ev->saved = NULL;
        j->save_dirty = true;
        return true;
    }
    if (ev->kind == S1D_EV_DONE)
        on_result(t, j, ev);
    else
        on_rejected(t, j, ev->error);
    if (!j->n_out) job_finished(t, j);
    return true;
}

bool s1d_jobs_take_events(s1d_jobs *t)
{
    bool alive = true;
    for (s1d_event *ev = s1d_exec_take(t->on.exec), *next; ev; ev = next) {
        next = ev->next;
        alive = on_event(t, ev) && alive;
        s1d_exec_event_free(t->on.exec, ev);
    }
    if (!alive) hand_back_now(t);
    return alive;
}

/* ---- figures ------------------------------------------------------------------- */

void s1d_jobs_measure_rate(s1d_jobs *t)
{
    uint64_t now = now_ms();
    if (now > t->tokens_at_ms)
        t->tokens_per_s = (double)t->tokens * 1000.0 / (double)(now - t->tokens_at_ms);
    t->tokens = 0;
    t->tokens_at_ms = now;
}

double s1d_jobs_rate(const s1d_jobs *t)
{
    return t->tokens_per_s;
}
