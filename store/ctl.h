/* store/ctl.h — the statements s1ctl runs on jobs: submit, read, cancel,
 * retry, wait. Each takes an open connection (schema checked by the caller)
 * and fills err with one line naming the job on failure. */
#ifndef S1_CTL_H
#define S1_CTL_H

#include <libpq-fe.h>

#include "err.h"

/* Returned besides -1 (database error): */
enum {
    S1_CTL_NOT_FOUND = -3, /* no job has this id */
    S1_CTL_REFUSED = -4,   /* the job's state does not allow the operation */
};

/* A job to insert. NULL strings take the column defaults. */
typedef struct {
    const char *problem;
    const char *queue; /* NULL = 'default' */
    const char *model; /* NULL = any model */
    const char *reference_answer;
    const char *policy_json; /* from s1_job_policy_json() */
    const char *sampling_json;
    int priority;
    int samples;               /* 0 = 1 */
    int max_attempts;          /* 0 = 3 */
    const char *template_name; /* s1_template_name(); NULL = the serving model's default */
} s1_ctl_job;

/* Inserts a job (the caller wraps several in one transaction); *id gets its id. */
int s1_ctl_insert(PGconn *c, const s1_ctl_job *j, long long *id, s1_err *err);

/* The context of the models serving queue (and model, when not NULL): the
 * smallest max_context among live workers that report one; *context is 0
 * when none does. */
int s1_ctl_queue_context(PGconn *c, const char *queue, const char *model, int *context,
                         s1_err *err);

/* Every column of the job: one row, or none when no job has this id. */
PGresult *s1_ctl_show(PGconn *c, long long id, s1_err *err);

/* Rows of s1.job_summary, newest first; state and queue may be NULL (any). */
PGresult *s1_ctl_list(PGconn *c, const char *state, const char *queue, long limit, s1_err *err);

/* The job's result rows, one per sample (the trace only when with_trace).
 * state gets the job's state, or "" (and NULL is returned) when no job has
 * this id. */
PGresult *s1_ctl_results(PGconn *c, long long id, int with_trace, char *state, size_t cap,
                         s1_err *err);

/* queued → cancelled at once; running → cancel_requested, which the job's
 * daemon reads (a NOTIFY s1_cancel wakes it). *now_state gets "cancelled" or
 * "running". S1_CTL_REFUSED also when the caller is neither the job's
 * submitter nor a member of s1_admin (s1.cancel_job, 0003_roles). */
int s1_ctl_cancel(PGconn *c, long long id, const char **now_state, s1_err *err);

/* failed or cancelled → queued with attempts reset and old results removed;
 * the requeue trigger notifies s1_jobs. Same ownership rule as cancel
 * (s1.retry_job). */
int s1_ctl_retry(PGconn *c, long long id, s1_err *err);

/* What `s1ctl wait` shows: state, thinking progress, tokens generated so
 * far (thinking, forced and answer; the most of any sample), budget (0 =
 * none), error. */
typedef struct {
    char state[16];
    int thinking;
    int generated;
    int budget;
    char error[256];
    char queue[256], model[256]; /* model "" = any */
} s1_ctl_progress;

/* LISTEN s1_progress, so no state change after this call is missed. */
int s1_ctl_listen_progress(PGconn *c, s1_err *err);
int s1_ctl_progress_get(PGconn *c, long long id, s1_ctl_progress *p, s1_err *err);

/* Whether a live daemon (s1.worker_status.alive) serves jobs of queue and
 * model (NULL: any model). 1 when one does; 0 when none does, with *live
 * (malloc'ed) saying what the live daemons serve ("s1-32B on default, gpu;
 * ...", or "" when none is alive); -1 with err. */
int s1_ctl_served(PGconn *c, const char *queue, const char *model, char **live, s1_err *err);

#endif
