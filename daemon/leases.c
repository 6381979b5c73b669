#include "leases.h"

#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "s1_config.h"

enum { PROGRESS_MS = 500 }; /* progress writes per job: at most 2/s */

struct s1d_leases {
    s1d_leases_deps on;
    uv_timer_t heartbeat, progress, saves;
    const char *state;                  /* static string */
    bool renewing, progressing, saving; /* one of each in flight */
    bool renew_again;                   /* asked for while one was in flight */
};

static void on_heartbeat(uv_timer_t *t);
static void on_progress_timer(uv_timer_t *t);
static void on_save_timer(uv_timer_t *t);

s1d_leases *s1d_leases_new(const s1d_leases_deps *deps)
{
    s1d_leases *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->on = *deps;
    l->state = "running";
    uv_timer_init(deps->loop, &l->heartbeat);
    uv_timer_init(deps->loop, &l->progress);
    uv_timer_init(deps->loop, &l->saves);
    l->heartbeat.data = l->progress.data = l->saves.data = l;
    return l;
}

void s1d_leases_free(s1d_leases *l)
{
    free(l);
}

void s1d_leases_start(s1d_leases *l)
{
    uint64_t every = (uint64_t)l->on.cfg->heartbeat_ms;
    uv_timer_start(&l->heartbeat, on_heartbeat, every, every);
    uv_timer_start(&l->progress, on_progress_timer, PROGRESS_MS, PROGRESS_MS);
    /* Saves are written at their own pace, so that a crash loses at most
     * save-every seconds of thinking, even when that is less than the
     * progress interval. */
    uint64_t save = (uint64_t)l->on.cfg->save_ms;
    if (save)
        uv_timer_start(&l->saves, on_save_timer, save, save);
    else
        uv_timer_stop(&l->saves);
}

void s1d_leases_set_state(s1d_leases *l, const char *state)
{
    l->state = state;
}

/* A failed beat or reap is logged; the next heartbeat tries again. */
static void log_failure(void *ud, const PGresult *r, const char *error)
{
    (void)ud;
    if (!r) log_warning("database: %s", error);
}

void s1d_leases_beat(s1d_leases *l, s1d_conn_cb cb, void *ud)
{
    s1_queue_figures f = {.host = l->on.host,
                          .version = S1_VERSION,
                          .backend = l->on.info->backend,
                          .state = l->state,
                          .pid = (int)getpid(),
                          .gpus = l->on.info->n_devices,
                          .jobs_in_flight = s1d_jobs_running(l->on.jobs),
                          .jobs_done = s1d_jobs_done(l->on.jobs),
                          .tokens_per_s = s1d_jobs_rate(l->on.jobs),
                          .max_context = l->on.info->max_context};
    s1_queue_stmt s;
    if (s1_queue_worker_beat(&s, l->on.who, &f))
        return log_error("worker heartbeat: out of memory");
    s1d_conn_send(l->on.db, &s, cb ? cb : log_failure, ud);
}

/* ---- leases -------------------------------------------------------------------- */

typedef struct {
    s1d_leases *l;
    int n;
    s1_queue_held held[];
} renew_ctx;

/* Leases renewed: a running job missing from the answer was taken from this
 * worker (stop it, write nothing); a flagged one is cancelled. Jobs in the
 * writer are fenced there when they were taken. */
static void renew_done(void *ud, const PGresult *r, const char *error)
{
    renew_ctx *c = ud;
    s1d_leases *l = c->l;
    l->renewing = false;
    s1_queue_lease *got = NULL;
    int n = 0;
    s1_err err = {0};
    if (!r)
        log_warning("%s", error);
    else if (s1_queue_parse_renew(r, &got, &n, &err))
        log_error("%s", err.msg);
    for (int i = 0; r && got && i < c->n; i++) {
        s1d_job *j = s1d_jobs_find(l->on.jobs, c->held[i].id);
        int k = 0;
        while (k < n && got[k].id != c->held[i].id)
            k++;
        if (!j || j->row.attempt != c->held[i].attempt) continue;
        if (k == n)
            s1d_jobs_lose(l->on.jobs, j);
        else if (got[k].cancel_requested)
            s1d_jobs_cancel(l->on.jobs, j);
    }
    free(got);
    free(c);
    if (l->renew_again && s1d_conn_is_up(l->on.db)) s1d_leases_renew(l);
}

/* The fencing keys of the jobs running here and of those in the writer. */
static renew_ctx *held_jobs(s1d_leases *l)
{
    int cap = s1d_jobs_running(l->on.jobs) + s1d_writer_held(l->on.writer, NULL, 0);
    renew_ctx *c = malloc(sizeof *c + (size_t)cap * sizeof c->held[0]);
    if (!c) return NULL;
    c->l = l;
    c->n = 0;
    for (s1d_job *j = s1d_jobs_first(l->on.jobs); j; j = j->next)
        if (!j->lost) c->held[c->n++] = (s1_queue_held){.id = j->row.id, .attempt = j->row.attempt};
    c->n += s1d_writer_held(l->on.writer, c->held + c->n, cap - c->n);
    return c;
}

void s1d_leases_renew(s1d_leases *l)
{
    l->renew_again = l->renewing;
    if (l->renewing) return;
    renew_ctx *c = held_jobs(l);
    if (!c) return log_error("renew leases: out of memory");
    s1_queue_stmt s;
    if (!c->n || s1_queue_renew(&s, l->on.who, c->held, c->n)) {
        if (c->n) log_error("renew leases: out of memory");
        return free(c);
    }
    l->renewing = true;
    s1d_conn_send(l->on.db, &s, renew_done, c);
}

/* ---- the reaper ------------------------------------------------------------------ */

/* What the reaper requeued may be claimed here at once. */
static void reap_done(void *ud, const PGresult *r, const char *error)
{
    s1d_leases *l = ud;
    if (!r) return log_warning("%s", error);
    for (int i = 0; i < PQntuples(r); i++)
        log_notice("job %s: lease expired on attempt %s; now %s", PQgetvalue(r, i, 0),
                   PQgetvalue(r, i, 2), PQgetvalue(r, i, 1));
    if (PQntuples(r)) s1d_jobs_wake(l->on.jobs);
}

/* Every heartbeat: leases, the worker row, and the reaper for everyone. */
static void on_heartbeat(uv_timer_t *t)
{
    s1d_leases *l = t->data;
    if (!s1d_conn_is_up(l->on.db)) return;
    s1d_leases_renew(l);
    s1d_leases_beat(l, NULL, NULL);
    s1_queue_stmt s;
    s1_queue_reap(&s);
    s1d_conn_send(l->on.db, &s, reap_done, l);
}

/* ---- progress ------------------------------------------------------------------- */

static void progress_done(void *ud, const PGresult *r, const char *error)
{
    s1d_leases *l = ud;
    l->progressing = false;
    if (!r) log_warning("%s", error);
}

/* A job's progress: the furthest of its forks. */
static s1_queue_held job_progress(const s1d_job *j)
{
    return (s1_queue_held){.id = j->row.id,
                           .attempt = j->row.attempt,
                           .thinking = j->thinking,
                           .generated = j->generated};
}

static void save_done(void *ud, const PGresult *r, const char *error)
{
    s1d_leases *l = ud;
    l->saving = false;
    if (!r) log_warning("%s", error);
}

/* A save worth writing: one with sequences, of a job still held. */
static bool worth_writing(const s1d_job *j)
{
    return j->save_dirty && !j->lost && j->saved && j->saved->n > 0;
}

/* The jobs saved since the last write, their states taken from them: the
 * caller's now (free_saves). */
static s1_queue_saved *take_saves(s1d_leases *l, int *n)
{
    *n = 0;
    for (s1d_job *j = s1d_jobs_first(l->on.jobs); j; j = j->next)
        *n += worth_writing(j);
    s1_queue_saved *v = *n ? calloc((size_t)*n, sizeof *v) : NULL;
    if (!v) return NULL;
    *n = 0;
    for (s1d_job *j = s1d_jobs_first(l->on.jobs); j; j = j->next) {
        if (worth_writing(j)) {
            v[(*n)++] =
                (s1_queue_saved){.id = j->row.id, .attempt = j->row.attempt, .state = j->saved};
            j->saved = NULL;
        }
        j->save_dirty = false;
    }
    return v;
}

static void free_saves(s1_queue_saved *v, int n)
{
    for (int i = 0; i < n; i++)
        s1_resume_free((s1_resume *)v[i].state);
    free(v);
}

/* Writes where the running jobs stand (fenced); the statement holds its
 * own copy of the states. */
static void write_saves(s1d_leases *l)
{
    int n;
    if (l->saving) return;
    s1_queue_saved *v = take_saves(l, &n);
    if (!v) return;
    s1_queue_stmt s;
    s1_err err = {0};
    int rc = s1_queue_save(&s, l->on.who, v, n, &err);
    free_saves(v, n);
    if (rc) return log_error("%s", err.msg);
    l->saving = true;
    s1d_conn_send(l->on.db, &s, save_done, l);
}

static void on_save_timer(uv_timer_t *t)
{
    s1d_leases *l = t->data;
    if (s1d_conn_is_up(l->on.db)) write_saves(l);
}

/* Writes the progress that changed since the last tick (PROGRESS_MS). */
static void on_progress_timer(uv_timer_t *t)
{
    s1d_leases *l = t->data;
    if (!s1d_conn_is_up(l->on.db) || l->progressing) return;
    int n = 0;
    for (s1d_job *j = s1d_jobs_first(l->on.jobs); j; j = j->next)
        n += j->progress_dirty && !j->lost;
    if (!n) return;
    s1_queue_held *h = calloc((size_t)n, sizeof *h);
    if (!h) return;
    n = 0;
    for (s1d_job *j = s1d_jobs_first(l->on.jobs); j; j = j->next) {
        if (!j->progress_dirty || j->lost) continue;
        j->progress_dirty = false;
        h[n++] = job_progress(j);
    }
    s1_queue_stmt s;
    if (!s1_queue_progress(&s, l->on.who, h, n)) {
        l->progressing = true;
        s1d_conn_send(l->on.db, &s, progress_done, l);
    }
    free(h);
}
