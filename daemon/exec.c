#include "exec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum { PROGRESS_EVERY_MS = 250, IDLE_WAIT_MS = 200 };

typedef struct cmd {
    bool cancel;
    s1_request req; /* add: strings owned by the caller (exec.h) */
    struct cmd *next;
} cmd;

/* A tag in flight and the progress last reported for it. */
typedef struct {
    uint64_t tag;
    int thinking, generated;
    int saved; /* generated tokens at its last save */
} flight;

struct s1d_exec {
    s1d_runner *runner;
    uv_async_t async; /* wakes the loop; closed by s1d_exec_stop */
    void (*wake)(void *ud);
    void *ud;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* Under mu: */
    cmd *cmds, *cmds_tail;
    int queued_adds;
    s1d_event *events, *events_tail;
    int capacity;
    bool stop;
    /* Engine thread only: */
    flight *flights;
    int n_flights, cap_flights;
    uint64_t last_progress_ms, last_save_ms;
    _Atomic uint64_t alive_ms;
    _Atomic int save_ms; /* set by the loop */
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void on_async(uv_async_t *a)
{
    s1d_exec *x = a->data;
    x->wake(x->ud);
}

static void post(s1d_exec *x, s1d_event *ev)
{
    pthread_mutex_lock(&x->mu);
    if (x->events_tail)
        x->events_tail->next = ev;
    else
        x->events = ev;
    x->events_tail = ev;
    pthread_mutex_unlock(&x->mu);
}

static void post_error(s1d_exec *x, s1d_event_kind kind, uint64_t tag, const char *msg)
{
    s1d_event *ev = calloc(1, sizeof *ev);
    if (!ev) return log_error("engine: out of memory reporting \"%s\"", msg);
    ev->kind = kind;
    ev->tag = tag;
    snprintf(ev->error, sizeof ev->error, "%s", msg);
    post(x, ev);
}

static void track(s1d_exec *x, uint64_t tag)
{
    if (x->n_flights == x->cap_flights) {
        int cap = x->cap_flights ? 2 * x->cap_flights : 64;
        flight *f = realloc(x->flights, (size_t)cap * sizeof *f);
        if (!f) return; /* progress of this request will not be reported */
        x->flights = f;
        x->cap_flights = cap;
    }
    x->flights[x->n_flights++] = (flight){.tag = tag};
}

static void untrack(s1d_exec *x, uint64_t tag)
{
    for (int i = 0; i < x->n_flights; i++)
        if (x->flights[i].tag == tag) {
            x->flights[i] = x->flights[--x->n_flights];
            return;
        }
}

/* Applies the commands the loop queued: adds (a refusal becomes an event)
 * and cancels. */
static void apply_cmds(s1d_exec *x, cmd *c)
{
    while (c) {
        cmd *next = c->next;
        s1_err err = {0};
        if (c->cancel) {
            s1d_runner_cancel(x->runner, c->req.tag);
        } else if (s1d_runner_add(x->runner, &c->req, &err)) {
            post_error(x, S1D_EV_REJECTED, c->req.tag, err.msg);
        } else {
            track(x, c->req.tag);
        }
        free(c);
        c = next;
    }
}

static void collect_results(s1d_exec *x)
{
    for (s1_result *r; (r = s1d_runner_take_result(x->runner));) {
        s1d_event *ev = calloc(1, sizeof *ev);
        if (!ev) {
            log_error("engine: out of memory; the result of request %llu is lost",
                      (unsigned long long)r->tag);
            s1d_runner_free_result(x->runner, r);
            continue;
        }
        /* A job of several samples or rungs has more results to come: its
         * progress and saves go on until its last sequence is done. */
        int thinking, generated;
        if (s1d_runner_progress(x->runner, r->tag, &thinking, &generated) < 0) untrack(x, r->tag);
        ev->kind = S1D_EV_DONE;
        ev->tag = r->tag;
        ev->result = r;
        post(x, ev);
    }
}

/* Reports the token counts that changed, at most every PROGRESS_EVERY_MS. */
static void collect_progress(s1d_exec *x)
{
    uint64_t t = now_ms();
    if (t - x->last_progress_ms < PROGRESS_EVERY_MS) return;
    x->last_progress_ms = t;
    for (int i = 0; i < x->n_flights; i++) {
        flight *f = &x->flights[i];
        int th = 0, gen = 0;
        if (s1d_runner_progress(x->runner, f->tag, &th, &gen) ||
            (th == f->thinking && gen == f->generated))
            continue;
        f->thinking = th;
        f->generated = gen;
        s1d_event *ev = calloc(1, sizeof *ev);
        if (!ev) return;
        *ev = (s1d_event){.kind = S1D_EV_PROGRESS, .tag = f->tag, .thinking = th, .generated = gen};
        post(x, ev);
    }
}

/* Saves the requests that generated tokens since their last save, every
 * save_ms: what a rescued attempt will resume from. */
static void collect_saves(s1d_exec *x)
{
    uint64_t t = now_ms(), every = (uint64_t)atomic_load(&x->save_ms);
    if (!every || t - x->last_save_ms < every) return;
    x->last_save_ms = t;
    for (int i = 0; i < x->n_flights; i++) {
        flight *f = &x->flights[i];
        s1_err err = {0};
        /* Counted afresh: the reported progress lags by up to
         * PROGRESS_EVERY_MS, which may be longer than save_ms. */
        int thinking, generated;
        if (s1d_runner_progress(x->runner, f->tag, &thinking, &generated) || generated == f->saved)
            continue;
        s1d_event *ev = calloc(1, sizeof *ev);
        if (!ev) return;
        *ev = (s1d_event){.kind = S1D_EV_SAVED, .tag = f->tag};
        ev->saved = s1d_runner_save(x->runner, f->tag, &err);
        if (!ev->saved) {
            free(ev);
            continue;
        }
        f->saved = generated;
        post(x, ev);
    }
}

void s1d_exec_save_every(s1d_exec *x, int ms)
{
    atomic_store(&x->save_ms, ms);
}

/* Takes the queued commands, or waits a little for some when idle. */
static cmd *next_cmds(s1d_exec *x, bool idle, bool *stop)
{
    pthread_mutex_lock(&x->mu);
    if (idle && !x->cmds && !x->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += IDLE_WAIT_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&x->cond, &x->mu, &ts);
    }
    cmd *c = x->cmds;
    x->cmds = x->cmds_tail = NULL;
    x->queued_adds = 0;
    *stop = x->stop;
    pthread_mutex_unlock(&x->mu);
    return c;
}

static void publish_capacity(s1d_exec *x)
{
    int cap = s1d_runner_capacity(x->runner);
    pthread_mutex_lock(&x->mu);
    x->capacity = cap;
    bool wake = x->events != NULL;
    pthread_mutex_unlock(&x->mu);
    if (wake) uv_async_send(&x->async);
}

/* The engine thread: apply what the loop queued, step, hand back results
 * and progress. It waits only when nothing is in flight (and at most
 * IDLE_WAIT_MS, so the watchdog sees it alive). A failed step leaves the
 * engine broken: the daemon hands every job back and exits. */
static void *engine_main(void *arg)
{
    s1d_exec *x = arg;
    bool stop = false, idle = true, broken = false;
    for (;;) {
        cmd *c = next_cmds(x, idle || broken, &stop);
        if (stop) {
            for (cmd *n; c; c = n)
                n = c->next, free(c);
            break;
        }
        apply_cmds(x, c);
        if (!broken) {
            s1_err err = {0};
            int left = s1d_runner_step(x->runner, &err);
            if (left < 0) {
                broken = true;
                post_error(x, S1D_EV_BROKEN, 0, err.msg);
            }
            idle = left <= 0;
            collect_results(x);
            collect_progress(x);
            collect_saves(x);
        }
        atomic_store(&x->alive_ms, now_ms());
        publish_capacity(x);
    }
    return NULL;
}

static void free_exec(uv_handle_t *h)
{
    s1d_exec *x = h->data;
    for (s1d_event *ev = s1d_exec_take(x), *n; ev; ev = n) {
        n = ev->next;
        s1d_exec_event_free(x, ev);
    }
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cond);
    free(x->flights);
    free(x);
}

s1d_exec *s1d_exec_start(s1d_runner *r, uv_loop_t *loop, void (*wake)(void *ud), void *ud,
                         s1_err *err)
{
    s1d_exec *x = calloc(1, sizeof *x);
    if (!x) {
        s1_errf(err, "out of memory starting the engine thread");
        return NULL;
    }
    x->runner = r;
    x->wake = wake;
    x->ud = ud;
    x->capacity = s1d_runner_capacity(r);
    atomic_store(&x->alive_ms, now_ms());
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cond, NULL);
    uv_async_init(loop, &x->async, on_async);
    x->async.data = x;
    if (pthread_create(&x->thread, NULL, engine_main, x)) {
        s1_errf(err, "cannot start the engine thread");
        uv_close((uv_handle_t *)&x->async, free_exec);
        return NULL;
    }
    return x;
}

static int queue_cmd(s1d_exec *x, bool cancel, const s1_request *req, uint64_t tag)
{
    cmd *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->cancel = cancel;
    if (req) c->req = *req;
    c->req.tag = tag;
    pthread_mutex_lock(&x->mu);
    if (x->cmds_tail)
        x->cmds_tail->next = c;
    else
        x->cmds = c;
    x->cmds_tail = c;
    if (!cancel) x->queued_adds++;
    pthread_cond_signal(&x->cond);
    pthread_mutex_unlock(&x->mu);
    return 0;
}

int s1d_exec_add(s1d_exec *x, const s1_request *req)
{
    return queue_cmd(x, false, req, req->tag);
}

void s1d_exec_cancel(s1d_exec *x, uint64_t tag)
{
    if (queue_cmd(x, true, NULL, tag))
        log_error("engine: out of memory cancelling request %llu", (unsigned long long)tag);
}

s1d_event *s1d_exec_take(s1d_exec *x)
{
    pthread_mutex_lock(&x->mu);
    s1d_event *ev = x->events;
    x->events = x->events_tail = NULL;
    pthread_mutex_unlock(&x->mu);
    return ev;
}

void s1d_exec_event_free(s1d_exec *x, s1d_event *ev)
{
    if (ev->result) s1d_runner_free_result(x->runner, ev->result);
    s1_resume_free(ev->saved);
    free(ev);
}

int s1d_exec_capacity(s1d_exec *x)
{
    pthread_mutex_lock(&x->mu);
    int cap = x->capacity - x->queued_adds;
    pthread_mutex_unlock(&x->mu);
    return cap > 0 ? cap : 0;
}

uint64_t s1d_exec_stalled_ms(s1d_exec *x)
{
    uint64_t t = now_ms(), a = atomic_load(&x->alive_ms);
    return t > a ? t - a : 0;
}

void s1d_exec_stop(s1d_exec *x)
{
    pthread_mutex_lock(&x->mu);
    x->stop = true;
    pthread_cond_signal(&x->cond);
    pthread_mutex_unlock(&x->mu);
    pthread_join(x->thread, NULL);
    uv_close((uv_handle_t *)&x->async, free_exec);
}
