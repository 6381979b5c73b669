#include "daemon.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "conn.h"
#include "db.h"
#include "exec.h"
#include "jobs.h"
#include "leases.h"
#include "lifecycle.h"
#include "log.h"
#include "notify.h"
#include "writer.h"

static const char LISTEN_SQL[] = "LISTEN s1_jobs; LISTEN s1_cancel";

/* The parts of the daemon and what they share; each part is owned here. */
typedef struct {
    uv_loop_t *loop;
    s1d_config *cfg;
    const s1_engine_info *info;
    const char *fingerprint; /* the model's (runner's); NULL for noop */
    s1_queue_worker who;     /* derived from cfg; the parts read it in place */
    char host[256];
    s1d_exec *exec;
    s1d_conn *db;       /* claims, heartbeats, LISTEN */
    s1d_conn *write_db; /* completions only: a slow write holds up nothing else */
    s1d_writer *writer;
    s1d_notify *notify;
    s1d_jobs *jobs;
    s1d_leases *leases;
    s1d_lifecycle *life;
} s1d;

static void set_who(s1d *d)
{
    d->who = (s1_queue_worker){.worker = d->cfg->worker_name,
                               .model = d->cfg->model_name,
                               .fingerprint = d->fingerprint,
                               .queues = (const char *const *)d->cfg->queues,
                               .n_queues = d->cfg->n_queues,
                               .lease_ms = d->cfg->lease_ms};
}

/* SIGHUP changed cfg: the queues and the lease follow, the timers restart. */
static void on_reloaded(void *ud)
{
    s1d *d = ud;
    set_who(d);
    s1d_exec_save_every(d->exec, d->cfg->save_ms);
    s1d_leases_start(d->leases);
    s1d_jobs_start_poll(d->jobs);
}

/* The engine thread woke the loop: apply its events, then write what ended
 * and claim into the room that freed. */
static void on_engine_events(void *ud)
{
    s1d *d = ud;
    if (!s1d_jobs_take_events(d->jobs)) s1d_lifecycle_fail(d->life);
    s1d_writer_flush(d->writer);
    s1d_jobs_claim(d->jobs);
    s1d_lifecycle_check_drained(d->life);
}

static void on_write_settled(void *ud, s1d_job *j, s1_queue_end end, bool written)
{
    s1d *d = ud;
    s1d_jobs_settled(d->jobs, j, end, written);
}

/* A batch came back: what it ended left room to claim into, and the drain
 * may be over. */
static void on_write_back(void *ud)
{
    s1d *d = ud;
    s1d_jobs_claim(d->jobs);
    s1d_lifecycle_check_drained(d->life);
}

static void ready_beat_done(void *ud, const PGresult *r, const char *error)
{
    s1d *d = ud;
    if (!r) return log_warning("%s", error);
    if (s1d_notify_is_ready(d->notify)) return;
    log_info("ready: model %s on %s, queues served as worker %s", d->who.model, d->info->backend,
             d->who.worker);
    s1d_lifecycle_ready(d->life);
}

/* (Re)connected: announce the worker, re-check leases, write what waited. */
static void on_db_up(void *ud)
{
    s1d *d = ud;
    log_info("database connected");
    s1d_leases_beat(d->leases, ready_beat_done, d);
    s1d_leases_renew(d->leases);
    s1d_writer_flush(d->writer);
    s1d_jobs_wake(d->jobs);
}

static void on_db_down(void *ud, const char *why)
{
    s1d *d = ud;
    log_warning("database connection lost (%s); reconnecting; %d completions wait in memory", why,
                s1d_writer_waiting(d->writer));
    s1d_lifecycle_status(d->life);
}

/* A notification is a wake-up, never a command (anyone may NOTIFY): on
 * s1_cancel the rows of this worker's jobs are read again and only their
 * cancel flags stop anything; s1_jobs names a queue that may have work. */
static void on_notify(void *ud, const char *channel, const char *payload)
{
    s1d *d = ud;
    if (!strcmp(channel, "s1_cancel")) return s1d_leases_renew(d->leases);
    for (int i = 0; i < d->who.n_queues; i++)
        if (!strcmp(payload, d->who.queues[i])) return s1d_jobs_wake(d->jobs);
}

/* The writer's connection is back: what waited is written now. */
static void on_write_db_up(void *ud)
{
    s1d *d = ud;
    s1d_writer_flush(d->writer);
}

static void on_write_db_down(void *ud, const char *why)
{
    s1d *d = ud;
    log_warning("database connection of the writer lost (%s); reconnecting; %d completions "
                "wait in memory",
                why, s1d_writer_waiting(d->writer));
}

/* Everything but the engine thread and the connection; false when out of
 * memory (what was made is freed by free_parts). */
static bool make_parts(s1d *d, s1d_runner *runner, int argc, char **argv)
{
    s1d_writer_events wev = {.settled = on_write_settled, .batch_back = on_write_back, .ud = d};
    d->writer = s1d_writer_new(d->write_db, &d->who, d->info, &wev);
    d->notify = s1d_notify_new(d->loop, d->exec);
    s1d_jobs_deps jd = {.loop = d->loop,
                        .exec = d->exec,
                        .runner = runner,
                        .db = d->db,
                        .writer = d->writer,
                        .who = &d->who,
                        .cfg = d->cfg};
    if (!d->writer || !d->notify || !(d->jobs = s1d_jobs_new(&jd))) return false;
    s1d_leases_deps ld = {.loop = d->loop,
                          .db = d->db,
                          .jobs = d->jobs,
                          .writer = d->writer,
                          .who = &d->who,
                          .cfg = d->cfg,
                          .info = d->info,
                          .host = d->host};
    if (!(d->leases = s1d_leases_new(&ld))) return false;
    s1d_lifecycle_deps cd = {.loop = d->loop,
                             .cfg = d->cfg,
                             .argc = argc,
                             .argv = argv,
                             .exec = d->exec,
                             .db = d->db,
                             .write_db = d->write_db,
                             .jobs = d->jobs,
                             .leases = d->leases,
                             .writer = d->writer,
                             .notify = d->notify,
                             .reloaded = on_reloaded,
                             .ud = d};
    return (d->life = s1d_lifecycle_new(&cd)) != NULL;
}

/* After the loop: the writer hands its jobs back to the table, which frees
 * them with the ones still running. */
static void free_parts(s1d *d)
{
    s1d_writer_free(d->writer);
    s1d_jobs_free(d->jobs);
    s1d_leases_free(d->leases);
    s1d_lifecycle_free(d->life);
    s1d_notify_free(d->notify);
}

int s1d_run(s1d_config *cfg, s1d_runner *runner, int argc, char **argv)
{
    s1d d = {
        .cfg = cfg, .info = s1d_runner_info(runner), .fingerprint = s1d_runner_fingerprint(runner)};
    uv_loop_t loop;
    uv_loop_init(&loop);
    d.loop = &loop;
    gethostname(d.host, sizeof d.host - 1);
    set_who(&d);
    s1_err err = {0};
    int rc = 1;
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
    s1d_conn_events wev = {.on_up = on_write_db_up, .on_down = on_write_db_down, .ud = &d};
    d.write_db = s1d_conn_new(&loop, s1_db_conninfo(cfg->db), NULL, &wev);
    if (make_parts(&d, runner, argc, argv)) {
        s1d_exec_save_every(d.exec, cfg->save_ms);
        s1d_leases_start(d.leases);
        s1d_jobs_start_poll(d.jobs);
        s1d_notify_start_watchdog(d.notify);
    } else {
        log_error("out of memory starting the daemon");
        s1d_lifecycle_close(&loop, d.exec, d.db, d.write_db);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (d.life) rc = s1d_lifecycle_exit_code(d.life);
    free_parts(&d);
    uv_loop_close(&loop);
    s1d_config_free(cfg);
    return rc;
}
