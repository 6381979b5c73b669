/* daemon/leases.h — what keeps this daemon's claims alive and visible: every
 * heartbeat renews the leases of its jobs, running or waiting to be written
 * (learning of cancels and of leases taken over), beats its worker row and runs the reaper for
 * every worker; progress (tokens so far) is written at most twice a second,
 * the saved sequences of running jobs every save-every seconds. */
#ifndef S1D_LEASES_H
#define S1D_LEASES_H

#include <uv.h>

#include "config.h"
#include "conn.h"
#include "engine.h"
#include "jobs.h"
#include "queue.h"
#include "writer.h"

typedef struct s1d_leases s1d_leases;

/* What the heartbeat works with; none of it owned. who and cfg are read at
 * every use: a reload changes them in place. */
typedef struct {
    uv_loop_t *loop;
    s1d_conn *db;
    s1d_jobs *jobs;
    s1d_writer *writer; /* its jobs hold leases until written */
    const s1_queue_worker *who;
    const s1d_config *cfg;
    const s1_engine_info *info;
    const char *host;
} s1d_leases_deps;

/* NULL when out of memory. Its timers close with the loop's other handles;
 * free it after the loop has stopped. */
s1d_leases *s1d_leases_new(const s1d_leases_deps *deps);
void s1d_leases_free(s1d_leases *l);

/* (Re)starts the heartbeat and the save writes at cfg's intervals, and the
 * progress writes. */
void s1d_leases_start(s1d_leases *l);

/* Renews at once, or right after the renewal in flight: after a reconnect
 * (before the leases could run out), and to re-read the cancel flags (a
 * NOTIFY on s1_cancel is a wake-up; only the rows say what to stop). */
void s1d_leases_renew(s1d_leases *l);

/* The state the worker row shows: "running", "draining" or "stopped". */
void s1d_leases_set_state(s1d_leases *l, const char *state);

/* Beats the worker row now; cb (may be NULL) gets the statement's result. */
void s1d_leases_beat(s1d_leases *l, s1d_conn_cb cb, void *ud);

#endif
