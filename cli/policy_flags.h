/* cli/policy_flags.h — the budget-forcing and sampling flags, shared by
 * `s1ctl submit` (stored as the job's policy), `s1ctl bench run` (every job
 * of the run) and `s1ctl generate` (run in-process): two flag tables whose
 * targets are the fields of an s1_job_params. */
#ifndef S1CTL_POLICY_FLAGS_H
#define S1CTL_POLICY_FLAGS_H

#include "flags.h"
#include "job.h"

enum { S1CTL_N_POLICY_FLAGS = 12, S1CTL_N_SAMPLING_FLAGS = 4 };
extern const s1ctl_flag s1ctl_policy_flags[S1CTL_N_POLICY_FLAGS];     /* "Budget forcing:" */
extern const s1ctl_flag s1ctl_sampling_flags[S1CTL_N_SAMPLING_FLAGS]; /* "Sampling:" */

/* The two tables with base p, leaving out the flags named in omit
 * (NULL-terminated, or NULL) for the reason why. */
#define S1CTL_POLICY_TABLES(p, omit, why)                                                          \
    {"Budget forcing:", s1ctl_policy_flags, S1CTL_N_POLICY_FLAGS, (p), (omit), (why)},             \
    {                                                                                              \
        "Sampling:", s1ctl_sampling_flags, S1CTL_N_SAMPLING_FLAGS, (p), (omit), (why)              \
    }

/* The checks across flags, once all are read (--min-think within --budget
 * and the smallest of --budgets, by store/params.h's orders). 0, or -1
 * after printing why. */
int s1ctl_policy_done(const s1_job_params *p);

#endif
