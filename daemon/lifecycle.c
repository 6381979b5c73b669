#include "lifecycle.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

enum {
    STATUS_MS = 2000,      /* systemd STATUS= updates */
    STOP_GRACE_MS = 10000, /* after the drain timeout, for the last writes */
};

struct s1d_lifecycle {
    s1d_lifecycle_deps on;
    uv_timer_t status, drain, hard_stop;
    uv_signal_t sigterm, sigint, sighup;
    bool draining, stopping, closed;
    int exit_code;
};

static void on_stop_signal(uv_signal_t *s, int signum);
static void on_sighup(uv_signal_t *s, int signum);
static void on_status_timer(uv_timer_t *t);

static void init_signal(s1d_lifecycle *lc, uv_signal_t *s, uv_signal_cb cb, int signum)
{
    uv_signal_init(lc->on.loop, s);
    s->data = lc;
    uv_signal_start(s, cb, signum);
}

s1d_lifecycle *s1d_lifecycle_new(const s1d_lifecycle_deps *deps)
{
    s1d_lifecycle *lc = calloc(1, sizeof *lc);
    if (!lc) return NULL;
    lc->on = *deps;
    uv_timer_t *timers[] = {&lc->status, &lc->drain, &lc->hard_stop};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(deps->loop, timers[i]);
        timers[i]->data = lc;
    }
    init_signal(lc, &lc->sigterm, on_stop_signal, SIGTERM);
    init_signal(lc, &lc->sigint, on_stop_signal, SIGINT);
    init_signal(lc, &lc->sighup, on_sighup, SIGHUP);
    uv_timer_start(&lc->status, on_status_timer, STATUS_MS, STATUS_MS);
    return lc;
}

void s1d_lifecycle_free(s1d_lifecycle *lc)
{
    free(lc);
}

int s1d_lifecycle_exit_code(const s1d_lifecycle *lc)
{
    return lc->exit_code;
}

/* ---- systemd status ---------------------------------------------------------- */

/* The live figures, for systemctl status (sent once READY=1 is). */
void s1d_lifecycle_status(s1d_lifecycle *lc)
{
    if (lc->closed) return;
    s1d_status s = {.draining = lc->draining,
                    .running = s1d_jobs_running(lc->on.jobs),
                    .done = s1d_jobs_done(lc->on.jobs),
                    .tokens_per_s = s1d_jobs_rate(lc->on.jobs),
                    .db_up = s1d_conn_is_up(lc->on.db)};
    s1d_notify_status(lc->on.notify, &s);
}

/* Every STATUS_MS: the token rate since the last tick, then the status. */
static void on_status_timer(uv_timer_t *t)
{
    s1d_lifecycle *lc = t->data;
    s1d_jobs_measure_rate(lc->on.jobs);
    s1d_lifecycle_status(lc);
}

void s1d_lifecycle_ready(s1d_lifecycle *lc)
{
    if (s1d_notify_is_ready(lc->on.notify)) return;
    s1d_notify_ready(lc->on.notify);
    s1d_lifecycle_status(lc);
}

/* ---- stop -------------------------------------------------------------------- */

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

void s1d_lifecycle_close(uv_loop_t *loop, s1d_exec *exec, s1d_conn *db, s1d_conn *write_db)
{
    s1d_exec_stop(exec);
    if (db) s1d_conn_close(db);
    if (write_db) s1d_conn_close(write_db);
    uv_walk(loop, close_handle, NULL);
}

/* Runs once: closing the connection fails the statements in flight, and
 * their callbacks (the final worker beat) come back here. */
static void shut_down(s1d_lifecycle *lc)
{
    if (lc->closed) return;
    lc->closed = true;
    s1d_lifecycle_close(lc->on.loop, lc->on.exec, lc->on.db, lc->on.write_db);
}

static void stopped_beat_done(void *ud, const PGresult *r, const char *error)
{
    s1d_lifecycle *lc = ud;
    if (!r) log_warning("%s", error);
    log_info("stopped");
    shut_down(lc);
}

/* Drained when no job runs and every completion is written: the worker row
 * says "stopped", then the loop ends. */
void s1d_lifecycle_check_drained(s1d_lifecycle *lc)
{
    if (!lc->draining || lc->stopping || s1d_jobs_first(lc->on.jobs) ||
        !s1d_writer_idle(lc->on.writer))
        return;
    lc->stopping = true;
    s1d_leases_set_state(lc->on.leases, "stopped");
    if (lc->closed || !s1d_conn_is_up(lc->on.db)) return shut_down(lc);
    s1d_leases_beat(lc->on.leases, stopped_beat_done, lc);
}

static void on_drain_timeout(uv_timer_t *t)
{
    s1d_lifecycle *lc = t->data;
    int n = s1d_jobs_hand_back(lc->on.jobs);
    if (n) log_notice("drain timeout: handing %d running jobs back to the queue", n);
}

static void on_hard_stop(uv_timer_t *t)
{
    s1d_lifecycle *lc = t->data;
    lc->exit_code = 1;
    log_error("stopping with %s unwritten (database unreachable); their leases will expire",
              !s1d_writer_idle(lc->on.writer) ? "results" : "jobs");
    shut_down(lc);
}

/* Claims nothing more; what does not finish within timeout_ms is handed back. */
static void begin_drain(s1d_lifecycle *lc, uint64_t timeout_ms)
{
    if (lc->draining) {
        uv_timer_start(&lc->drain, on_drain_timeout, 0, 0);
        return;
    }
    lc->draining = true;
    s1d_jobs_stop_claiming(lc->on.jobs);
    s1d_leases_set_state(lc->on.leases, "draining");
    s1d_notify_stopping(lc->on.notify);
    log_info("stopping: draining %d running jobs (timeout %.1f s)", s1d_jobs_running(lc->on.jobs),
             (double)timeout_ms / 1000.0);
    uv_timer_start(&lc->drain, on_drain_timeout, timeout_ms, 0);
    uv_timer_start(&lc->hard_stop, on_hard_stop, timeout_ms + STOP_GRACE_MS, 0);
    if (s1d_conn_is_up(lc->on.db)) s1d_leases_beat(lc->on.leases, NULL, NULL);
    s1d_lifecycle_check_drained(lc);
}

void s1d_lifecycle_fail(s1d_lifecycle *lc)
{
    lc->exit_code = 1;
    begin_drain(lc, 0);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    s1d_lifecycle *lc = s->data;
    log_info("%s received", signum == SIGINT ? "SIGINT" : "SIGTERM");
    begin_drain(lc, (uint64_t)lc->on.cfg->drain_timeout_ms);
}

/* ---- reload -------------------------------------------------------------------- */

static bool differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/* The settings only a restart can change are logged when they differ. */
static void warn_fixed(const s1d_config *c, const s1d_config *fresh)
{
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
        {"max-context", c->max_context != fresh->max_context},
        {"template", differs(c->template_name, fresh->template_name)},
        {"noop-rate", c->noop_rate != fresh->noop_rate},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (fixed[i].changed)
            log_warning("reload: %s changed; it takes effect after a restart", fixed[i].key);
}

/* Takes the settings that can change live from fresh. */
static void apply_reload(s1d_lifecycle *lc, s1d_config *fresh)
{
    s1d_config *c = lc->on.cfg;
    warn_fixed(c, fresh);
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
    c->save_ms = fresh->save_ms;
    lc->on.reloaded(lc->on.ud);
}

/* SIGHUP: RELOADING=1, re-read the file (a bad one keeps the old settings),
 * READY=1. */
static void on_sighup(uv_signal_t *s, int signum)
{
    (void)signum;
    s1d_lifecycle *lc = s->data;
    s1d_notify_reloading(lc->on.notify);
    s1d_config fresh;
    s1_err err = {0};
    if (s1d_config_load(&fresh, lc->on.argc, lc->on.argv, &err)) {
        log_error("reload: %s; keeping the running configuration", err.msg);
    } else {
        apply_reload(lc, &fresh);
        s1d_config_free(&fresh);
        log_info("configuration reloaded: queues %s%s, lease %.1f s", lc->on.cfg->queues[0],
                 lc->on.cfg->n_queues > 1 ? ", ..." : "", lc->on.cfg->lease_ms / 1000.0);
    }
    s1d_notify_reloaded(lc->on.notify);
    s1d_lifecycle_status(lc);
    s1d_jobs_wake(lc->on.jobs);
}
