/* store/job.h — a job's parameters as s1ctl writes them and s1d reads them:
 * the policy and sampling jsonb columns <-> the engine's s1_policy_cfg and
 * s1_sampling, and the checks both sides share. The ranges come from
 * store/params.h, whose rules are those of s1.policy_is_valid /
 * s1.sampling_is_valid, so what one side accepts the other does too. */
#ifndef S1_JOB_H
#define S1_JOB_H

#include <stddef.h>

#include "engine_params.h"
#include "err.h"

/* s1ctl submit's default limit on a problem's size (--max-bytes). */
#define S1_JOB_MAX_PROBLEM_BYTES ((size_t)1 << 20)

/* A job's policy and sampling. The policy's strings are owned by this struct
 * when it was filled by s1_job_params_parse (release with s1_job_params_free). */
typedef struct {
    s1_policy_cfg policy;
    s1_sampling sampling;
} s1_job_params;

/* Parses the text of the policy and sampling columns (NULL = {}): unknown
 * keys, wrong types and out-of-range values fail with err naming the key.
 * Missing keys keep the engine's defaults (zero / NULL). */
int s1_job_params_parse(const char *policy_json, const char *sampling_json, s1_job_params *out,
                        s1_err *err);
void s1_job_params_free(s1_job_params *p);

/* The template called name (the jobs' template column, --template, s1d's
 * template setting); NULL is S1_TEMPLATE_DEFAULT. Fails for any other name,
 * naming what is allowed. */
int s1_job_template_parse(const char *name, s1_template *out, s1_err *err);

/* The range checks of the CHECK functions, for values built by flags. */
int s1_job_policy_check(const s1_policy_cfg *p, s1_err *err);
int s1_job_sampling_check(const s1_sampling *s, s1_err *err);

/* JSON objects of the fields that differ from the defaults, as stored in the
 * columns (malloc'ed text, owned by the caller); NULL with err on failure. */
char *s1_job_policy_json(const s1_policy_cfg *p, s1_err *err);
char *s1_job_sampling_json(const s1_sampling *s, s1_err *err);

/* 0 when text is valid UTF-8, else err = "name: not valid UTF-8 at byte N":
 * every string s1ctl stores is checked, since PostgreSQL and jansson refuse
 * text that is not UTF-8 (jansson by returning NULL). */
int s1_job_text_check(const char *name, const char *text, s1_err *err);

/* A queue name s1d can serve: 1 to S1_JOB_MAX_QUEUE_BYTES of UTF-8, with no
 * comma (s1d's queue setting is a comma-separated list), no control
 * character and no blank at either end. The same rule is s1.jobs' CHECK. */
enum { S1_JOB_MAX_QUEUE_BYTES = 200 };
int s1_job_queue_check(const char *queue, s1_err *err);

/* A problem the engine can take: valid UTF-8 without NUL bytes, not empty
 * (whitespace only counts as empty), at most max_bytes. name is the file the
 * text came from, for the message. */
int s1_job_problem_check(const char *name, const char *text, size_t len, size_t max_bytes,
                         s1_err *err);

#endif
