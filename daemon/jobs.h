/* daemon/jobs.h — the jobs this daemon runs, and their life: claimed from
 * the queue (as many as the engine can take), handed to the engine thread
 * (exec.h), fed its events, and ended (succeeded, failed, cancelled, handed
 * back) into the completion writer (writer.h), which owns them until their
 * end is written. Also the slow poll that covers missed notifies. */
#ifndef S1D_JOBS_H
#define S1D_JOBS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "claimed.h"
#include "config.h"
#include "conn.h"
#include "exec.h"
#include "queue.h"
#include "runner.h"
#include "writer.h"

typedef struct s1d_jobs s1d_jobs;

/* What the table works with; none of it owned. who and cfg are read at
 * every use: a reload changes them in place. */
typedef struct {
    uv_loop_t *loop;
    s1d_exec *exec;
    s1d_runner *runner;
    s1d_conn *db;
    s1d_writer *writer;
    const s1_queue_worker *who;
    const s1d_config *cfg;
} s1d_jobs_deps;

/* NULL when out of memory. Its poll timer is closed with the loop's other
 * handles; free the table after the loop has stopped. */
s1d_jobs *s1d_jobs_new(const s1d_jobs_deps *deps);
void s1d_jobs_free(s1d_jobs *t);

/* (Re)starts the slow poll at cfg's poll interval. */
void s1d_jobs_start_poll(s1d_jobs *t);

/* Jobs may be waiting (a notify, a reconnect, a reap): claim what fits. */
void s1d_jobs_wake(s1d_jobs *t);

/* Claims what fits now, if jobs may be waiting (room freed in the engine). */
void s1d_jobs_claim(s1d_jobs *t);

/* Draining: nothing more is claimed. */
void s1d_jobs_stop_claiming(s1d_jobs *t);

/* Applies the engine thread's events. Returns false when the engine broke:
 * every job was then handed back and nothing more will run. */
bool s1d_jobs_take_events(s1d_jobs *t);

/* The running jobs (linked by next), NULL when none. */
s1d_job *s1d_jobs_first(const s1d_jobs *t);
s1d_job *s1d_jobs_find(const s1d_jobs *t, int64_t id);
int s1d_jobs_running(const s1d_jobs *t);

/* Stops j's requests; it ends cancelled. */
void s1d_jobs_cancel(s1d_jobs *t, s1d_job *j);

/* j's lease was taken: stop its requests, write nothing for it. */
void s1d_jobs_lose(s1d_jobs *t, s1d_job *j);

/* Drain timeout: stops every running job, to be handed back. Returns how many. */
int s1d_jobs_hand_back(s1d_jobs *t);

/* The writer is done with j (written or not): counted when written, freed. */
void s1d_jobs_settled(s1d_jobs *t, s1d_job *j, s1_queue_end end, bool written);

/* Jobs ended and written here since start (hand-backs not counted). */
long long s1d_jobs_done(const s1d_jobs *t);

/* Generated tokens per second: measure_rate takes the rate since its last
 * call; rate returns what it took. */
void s1d_jobs_measure_rate(s1d_jobs *t);
double s1d_jobs_rate(const s1d_jobs *t);

#endif
