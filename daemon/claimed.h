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

/* A request's tag is its job id and sample: samples are at most 1024. */
enum { S1D_SAMPLE_BITS = 10 };

/* Its strings must outlive its engine requests. */
typedef struct s1d_job {
    s1_queue_job row;
    s1_job_params params;
    bool params_ok;
    s1_result **results;       /* [samples], owned */
    char **extracted;          /* [samples]: final answers found, owned */
    signed char *grade;        /* [samples]: -1 no reference, 0, 1 */
    int *thinking, *generated; /* [samples]: progress */
    s1_resume **resume;        /* [samples]: saved by an earlier attempt, NULL = none; owned */
    s1_resume **saved;         /* [samples]: saved now, not yet written; owned */
    int n_out;                 /* requests still in the engine */
    bool cancel;               /* cancel requested */
    bool lost;                 /* the lease was taken over: write nothing */
    bool hand_back;            /* drain timed out: requeue */
    bool progress_dirty;
    bool save_dirty; /* saved holds states not yet written */
    char error[512]; /* why the job fails, when it does */
    struct s1d_job *next;
} s1d_job;

/* Takes row (cleared here). NULL, or a job with a NULL array, when out of
 * memory: the caller checks every array and frees what came back. */
s1d_job *s1d_job_new(s1_queue_job *row);

/* Frees j, its results through r (the runner that made them). */
void s1d_job_free(s1d_job *j, const s1d_runner *r);

#endif
