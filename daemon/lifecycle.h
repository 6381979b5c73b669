/* daemon/lifecycle.h — s1d's life as systemd sees it: READY=1 once the
 * database answered, STATUS= every two seconds, SIGHUP re-reads the
 * configuration, SIGTERM/SIGINT drain (claim nothing more, let running jobs
 * finish, hand back what is left at the drain timeout, write every end),
 * and the final stop that ends the loop. */
#ifndef S1D_LIFECYCLE_H
#define S1D_LIFECYCLE_H

#include <uv.h>

#include "config.h"
#include "conn.h"
#include "exec.h"
#include "jobs.h"
#include "leases.h"
#include "notify.h"
#include "writer.h"

typedef struct s1d_lifecycle s1d_lifecycle;

/* What the lifecycle works with; none of it owned except as said. */
typedef struct {
    uv_loop_t *loop;
    s1d_config *cfg; /* its live settings are replaced on SIGHUP */
    int argc;        /* argv is kept to re-read the configuration */
    char **argv;
    s1d_exec *exec;     /* stopped at the end */
    s1d_conn *db;       /* closed at the end */
    s1d_conn *write_db; /* the writer's; closed at the end */
    s1d_jobs *jobs;
    s1d_leases *leases;
    s1d_writer *writer;
    s1d_notify *notify;
    /* The configuration was re-read: settings derived from cfg are stale. */
    void (*reloaded)(void *ud);
    void *ud;
} s1d_lifecycle_deps;

/* Installs the signal handlers and the status timer. NULL when out of
 * memory. Free it after the loop has stopped. */
s1d_lifecycle *s1d_lifecycle_new(const s1d_lifecycle_deps *deps);
void s1d_lifecycle_free(s1d_lifecycle *lc);

/* The database answered the first worker beat: READY=1 (once). */
void s1d_lifecycle_ready(s1d_lifecycle *lc);

/* Sends STATUS= now (the database went away, or came back). */
void s1d_lifecycle_status(s1d_lifecycle *lc);

/* Something ended or was written: when draining and nothing is left, the
 * daemon stops. */
void s1d_lifecycle_check_drained(s1d_lifecycle *lc);

/* The engine broke: drain at once and exit with a failure. */
void s1d_lifecycle_fail(s1d_lifecycle *lc);

/* Ends the loop: stops the engine thread, closes the connection (failing
 * the statements in flight: their callbacks still run; either may be NULL) and every handle;
 * uv_run then returns. Also for a start that ran out of memory. */
void s1d_lifecycle_close(uv_loop_t *loop, s1d_exec *exec, s1d_conn *db, s1d_conn *write_db);

/* The exit status, once the loop has stopped. */
int s1d_lifecycle_exit_code(const s1d_lifecycle *lc);

#endif
