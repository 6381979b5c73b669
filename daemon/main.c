/* s1d: runs s1 reasoning jobs from the PostgreSQL queue (DESIGN.md). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "notify_socket.h"
#include "runner.h"

/* The database must be reachable, its schema current and the worker name
 * free before the model is loaded: a wrong --db, a missing migration or a
 * copied config is found in a second, not after minutes of loading weights.
 * The connection returned holds the worker name until s1d exits. */
static PGconn *check_database(const s1d_config *cfg, s1_err *err)
{
    PGconn *c = s1_db_connect(cfg->db, err);
    if (c && !s1_db_check_schema(c, err) && !s1_db_hold_worker_name(c, cfg->worker_name, err))
        return c;
    if (c) PQfinish(c);
    return NULL;
}

/* Loading a large model takes minutes, longer than WatchdogSec: the loading
 * thread is making progress, so the watchdog is fed until it is done. The
 * feeds go out without waiting (notify_socket.h): a notify socket nobody
 * reads drops them, and never holds the feeder, hence the load, up. */
typedef struct {
    atomic_bool done;
    uint64_t every_us;
    s1d_notify_socket *sock; /* owned */
} feeder;

static void *feed_watchdog(void *arg)
{
    feeder *f = arg;
    bool warned = false;
    while (!atomic_load(&f->done)) {
        if (!s1d_notify_socket_send(f->sock, "WATCHDOG=1") && !warned) {
            warned = true;
            log_warning("systemd's notify socket is full (its reader lags); dropping watchdog "
                        "messages while the model loads");
        }
        for (uint64_t slept = 0; slept < f->every_us && !atomic_load(&f->done); slept += 10000)
            usleep(10000);
    }
    return NULL;
}

static s1d_runner *load_runner(const s1d_config *cfg, s1_err *err)
{
    uint64_t usec = 0;
    feeder f = {.done = false};
    pthread_t t;
    bool feeding = sd_watchdog_enabled(0, &usec) > 0 && (f.sock = s1d_notify_socket_open());
    f.every_us = usec / 4;
    if (feeding) feeding = !pthread_create(&t, NULL, feed_watchdog, &f);
    s1d_runner *r = s1d_runner_open(cfg, err);
    atomic_store(&f.done, true);
    if (feeding) pthread_join(t, NULL);
    s1d_notify_socket_close(f.sock);
    return r;
}

int main(int argc, char **argv)
{
    s1_log_set_ident("s1d");
    if (getenv("NOTIFY_SOCKET") || getenv("JOURNAL_STREAM")) s1_log_set_prefix(1);
    s1d_config cfg;
    s1_err err = {0};
    int rc = s1d_config_load(&cfg, argc, argv, &err);
    if (rc) {
        if (rc < 0) log_error("%s", err.msg);
        return rc < 0 ? 2 : 0;
    }
    if (cfg.check_only) {
        printf("%s: configuration OK\n", cfg.config_path ? cfg.config_path : "flags");
        s1d_config_free(&cfg);
        return 0;
    }
    s1d_runner *runner = NULL;
    _cleanup_pgconn_ PGconn *name_held = check_database(&cfg, &err);
    if (!name_held || !(runner = load_runner(&cfg, &err))) {
        log_error("%s", err.msg);
        s1d_config_free(&cfg);
        return 1;
    }
    rc = s1d_run(&cfg, runner, argc, argv);
    s1d_runner_close(runner);
    return rc;
}
