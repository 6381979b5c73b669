#include "writer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "answer.h"
#include "log.h"
#include "s1_config.h"

/* A completion waiting to be written (the job is owned here). */
typedef struct pending {
    s1d_job *job;
    s1_queue_end end;
    size_t bytes; /* what its results add to a statement (s1_queue_done_bytes) */
    bool solo;    /* its batch failed: write it alone */
    bool again;   /* sent before, when the connection broke: it may be in */
    struct pending *next;
} pending;

struct s1d_writer {
    s1d_conn *db;
    const s1_queue_worker *who; /* the daemon's, changed in place on reload */
    const s1_engine_info *info;
    s1d_writer_events ev;
    pending *writes, *writes_tail; /* waiting, oldest first; owned */
    pending *writing;              /* the batch in flight; owned */
};

s1d_writer *s1d_writer_new(s1d_conn *db, const s1_queue_worker *who, const s1_engine_info *info,
                           const s1d_writer_events *ev)
{
    s1d_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->db = db;
    w->who = who;
    w->info = info;
    w->ev = *ev;
    return w;
}

/* The single-run setting a rung equals: its value in the field its ladder
 * replaces, the job's own value in the other. */
static int rung_value(const s1_policy_cfg *p, s1_ladder_kind kind, int rung, int own)
{
    return p->ladder.kind == kind ? p->ladder.rungs[rung] : own;
}

/* Marks, at each rung, the row of the majority answer of the job's samples
 * (store/answer.h's vote: grader-equivalent answers are one vote, a tie goes
 * to the lowest sample), so maj@k is one select away. Rows are by sample,
 * then rung. A vote that cannot be taken leaves the rung unmarked. */
static void mark_majority(const s1d_job *j, s1_queue_sample *x)
{
    int n = j->row.samples;
    const char **answers = calloc((size_t)n, sizeof *answers);
    for (int r = 0; answers && r < j->rungs; r++) {
        for (int s = 0; s < n; s++)
            answers[s] = j->extracted[s * j->rungs + r];
        int winner, votes;
        s1_err err = {0};
        if (s1_answer_vote(answers, n, &winner, &votes, &err) < 0)
            log_warning("job %" PRId64 " rung %d: voting: %s", j->row.id, r, err.msg);
        else if (winner >= 0)
            x[winner * j->rungs + r].majority = true, x[winner * j->rungs + r].votes = votes;
    }
    free(answers);
}

/* The result rows of a succeeded job, one per sample and rung; NULL for
 * other ends. */
static s1_queue_sample *job_samples(const s1d_job *j, const s1_queue_end end)
{
    if (end != S1_QUEUE_SUCCEEDED) return NULL;
    const s1_policy_cfg *p = &j->params.policy;
    s1_queue_sample *x = calloc((size_t)s1d_job_runs(j), sizeof *x);
    for (int i = 0; x && i < s1d_job_runs(j); i++) {
        const s1_result *r = j->results[i];
        x[i] =
            (s1_queue_sample){.sample = r->sample,
                              .rung = r->rung,
                              .budget = rung_value(p, S1_LADDER_BUDGET, r->rung, p->max_think),
                              .ignore_stop = rung_value(p, S1_LADDER_WAIT, r->rung, p->ignore_stop),
                              .context_end = r->context_end,
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
    if (x) mark_majority(j, x);
    return x;
}

/* The size of j's end in a completion statement, reckoned once. */
static size_t end_bytes(const s1d_job *j, s1_queue_end end)
{
    s1_queue_sample *x = job_samples(j, end);
    s1_queue_done d = {.end = end, .samples = x, .n_samples = x ? s1d_job_runs(j) : 0};
    size_t bytes = s1_queue_done_bytes(&d);
    free(x);
    return bytes;
}

/* Ends join the back of the queue: jobs are written in the order they ended. */
int s1d_writer_add(s1d_writer *w, s1d_job *j, s1_queue_end end)
{
    pending *p = calloc(1, sizeof *p);
    if (!p) return -1;
    p->job = j;
    p->end = end;
    p->bytes = end_bytes(j, end);
    if (w->writes_tail)
        w->writes_tail->next = p;
    else
        w->writes = p;
    w->writes_tail = p;
    return 0;
}

static const char *end_name(s1_queue_end e)
{
    static const char *const names[] = {"succeeded", "failed", "cancelled", "handed back"};
    return names[e];
}

/* Written (or fenced out): the job is gone from this daemon. */
static void write_settled(s1d_writer *w, pending *p, bool written)
{
    s1d_job *j = p->job;
    if (!written && p->again)
        log_notice("job %" PRId64 " attempt %d: not written now; either the write before the "
                   "connection broke went in, or the lease was lost",
                   j->row.id, j->row.attempt);
    else if (!written)
        log_warning("job %" PRId64 " attempt %d: no longer held by %s (lease lost); "
                    "its %s result was not written",
                    j->row.id, j->row.attempt, w->who->worker, end_name(p->end));
    else if (p->end == S1_QUEUE_FAILED)
        log_warning("job %" PRId64 " failed: %s", j->row.id, j->error);
    else
        log_info("job %" PRId64 " %s", j->row.id, end_name(p->end));
    w->ev.settled(w->ev.ud, j, p->end, written);
    free(p);
}

static void requeue_front(s1d_writer *w, pending *batch, bool solo, bool again)
{
    pending *last = batch;
    for (pending *p = batch; p; p = p->next) {
        p->solo = p->solo || solo;
        p->again = p->again || again;
        last = p;
    }
    last->next = w->writes;
    w->writes = batch;
    if (!w->writes_tail) w->writes_tail = last;
}

/* A statement error on a live connection: split the batch; a job that fails
 * alone is failed without its results, so one bad row never stalls others. */
static void write_refused(s1d_writer *w, pending *batch, const char *error)
{
    if (batch->next) return requeue_front(w, batch, true, false);
    pending *p = batch;
    if (p->end == S1_QUEUE_FAILED) {
        log_error("job %" PRId64 ": %s; giving up (its lease will expire)", p->job->row.id, error);
        w->ev.settled(w->ev.ud, p->job, p->end, false);
        free(p);
        return;
    }
    snprintf(p->job->error, sizeof p->job->error, "could not store the result: %.400s", error);
    p->end = S1_QUEUE_FAILED;
    requeue_front(w, p, true, false);
}

/* A batch of completions came back: written, fenced out, or to be retried
 * (connection lost: after the reconnect; statement refused: split up). */
static void write_done(void *ud, const PGresult *r, const char *error)
{
    s1d_writer *w = ud;
    pending *batch = w->writing;
    w->writing = NULL;
    int64_t *ids = NULL;
    int n = 0;
    s1_err err = {0};
    if (!r && !s1d_conn_is_up(w->db)) {
        requeue_front(w, batch, false, true); /* written again after the reconnect */
    } else if (!r || s1_queue_parse_ids(r, &ids, &n, &err)) {
        write_refused(w, batch, r ? err.msg : error);
    } else {
        for (pending *p = batch, *next; p; p = next) {
            next = p->next;
            bool written = false;
            for (int i = 0; i < n && !written; i++)
                written = ids[i] == p->job->row.id;
            write_settled(w, p, written);
        }
    }
    free(ids);
    s1d_writer_flush(w);
    w->ev.batch_back(w->ev.ud);
}

/* Detaches the next batch: one solo completion, or others as many as
 * s1_queue_batch_full allows (by count and by bytes). */
static pending *next_batch(s1d_writer *w, int *n)
{
    pending *batch = w->writes, *last = batch;
    size_t bytes = batch->bytes;
    *n = 1;
    if (!batch->solo)
        while (last->next && !last->next->solo &&
               !s1_queue_batch_full(*n, bytes, last->next->bytes)) {
            last = last->next;
            bytes += last->bytes;
            (*n)++;
        }
    w->writes = last->next;
    if (!w->writes) w->writes_tail = NULL;
    last->next = NULL;
    return batch;
}

/* Writes waiting completions, one batch at a time, while connected. */
void s1d_writer_flush(s1d_writer *w)
{
    if (w->writing || !w->writes || !s1d_conn_is_up(w->db)) return;
    int n = 0;
    pending *batch = next_batch(w, &n);
    s1_queue_done *done = calloc((size_t)n, sizeof *done);
    int i = 0, rc = !done;
    for (pending *p = batch; !rc && p; p = p->next, i++) {
        s1d_job *j = p->job;
        done[i] = (s1_queue_done){.id = j->row.id,
                                  .attempt = j->row.attempt,
                                  .end = p->end,
                                  .error = j->error[0] ? j->error : NULL,
                                  .n_samples = p->end == S1_QUEUE_SUCCEEDED ? s1d_job_runs(j) : 0};
        done[i].samples = job_samples(j, p->end);
        rc = p->end == S1_QUEUE_SUCCEEDED && !done[i].samples;
    }
    s1_queue_origin o = {.model = w->who->model,
                         .backend = w->info->backend,
                         .gpus = w->info->n_devices,
                         .fingerprint = w->who->fingerprint,
                         .version = S1_VERSION};
    s1_queue_stmt s;
    s1_err err = {0};
    rc = rc || s1_queue_complete(&s, w->who, &o, done, n, &err);
    for (int k = 0; done && k < n; k++)
        free((void *)done[k].samples);
    free(done);
    if (rc) {
        log_error("complete: out of memory; retrying");
        return requeue_front(w, batch, false, false);
    }
    w->writing = batch;
    s1d_conn_send(w->db, &s, write_done, w);
}

int s1d_writer_held(const s1d_writer *w, s1_queue_held *held, int cap)
{
    int n = 0;
    const pending *lists[] = {w->writing, w->writes};
    for (int i = 0; i < 2; i++)
        for (const pending *p = lists[i]; p; p = p->next, n++)
            if (n < cap)
                held[n] = (s1_queue_held){.id = p->job->row.id, .attempt = p->job->row.attempt};
    return n;
}

/* Counted for the log line of a lost connection. */
int s1d_writer_waiting(const s1d_writer *w)
{
    int n = 0;
    for (const pending *p = w->writes; p; p = p->next)
        n++;
    return n;
}

/* The drain waits for this, and a hard stop says what it left behind. */
bool s1d_writer_idle(const s1d_writer *w)
{
    return !w->writes && !w->writing;
}

/* At exit, what the database never took goes back unwritten: the leases
 * expire and the jobs run again elsewhere. */
void s1d_writer_free(s1d_writer *w)
{
    if (!w) return;
    pending *lists[] = {w->writes, w->writing};
    for (int i = 0; i < 2; i++)
        for (pending *p = lists[i], *n; p; p = n) {
            n = p->next;
            w->ev.settled(w->ev.ud, p->job, p->end, false);
            free(p);
        }
    free(w);
}
