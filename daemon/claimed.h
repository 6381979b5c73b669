/* daemon/claimed.h — a job this daemon claimed: its queue row, its parsed
 * policy, and what its samples produced so far. The daemon's job list owns it
 * while its requests run (jobs.h), the completion writer (writer.h) until
 * its end is written. Its fields are open: both read them. (Not "job.h": that
 * name is store's, the job parameters.) */
#ifndef S1D_CLAIMED_H
#define S1D_CLAIMED_H

#include <stdbool.h>

#include "job.h"
#include "queue.h"
#include "runner.h"

/* A request's tag is its job id, shifted as when each sample was a request
 * of its own: samples are at most 1024. A job is one request now: the engine
 * forks its samples and ladder rungs. */
enum { S1D_SAMPLE_BITS = 10 };

/* Its strings must outlive its engine requests. */
typedef struct s1d_job {
    s1_queue_job row;
    s1_job_params params;
    bool params_ok;
    int rungs;               /* of its ladder; 1 without one */
    s1_result **results;     /* [samples * rungs] by sample, then rung; owned */
    char **extracted;        /* [samples * rungs]: final answers found, owned */
    signed char *grade;      /* [samples * rungs]: -1 no reference, 0, 1 */
    int thinking, generated; /* progress: the furthest of its forks */
    s1_resume *resume;       /* saved by an earlier attempt, NULL = none; owned */
    s1_resume *saved;        /* saved now, not yet written; owned */
    int n_out;               /* results still to come from the engine */
    bool cancel;             /* cancel requested */
    bool lost;               /* the lease was taken over: write nothing */
    bool hand_back;          /* drain timed out: requeue */
    bool progress_dirty;
    bool save_dirty; /* saved holds states not yet written */
    char error[512]; /* why the job fails, when it does */
    struct s1d_job *next;
} s1d_job;

/* Takes row (cleared here). NULL when out of memory. */
s1d_job *s1d_job_new(s1_queue_job *row);

/* Sizes the result arrays once its params are parsed: one slot per sample
 * and rung. -1 when out of memory. */
int s1d_job_size(s1d_job *j);

/* Result slots: samples × rungs (0 before s1d_job_size). */
int s1d_job_runs(const s1d_job *j);

/* Frees j, its results through r (the runner that made them). */
void s1d_job_free(s1d_job *j, const s1d_runner *r);

#endif
