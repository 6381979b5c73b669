/* s1ctl submit: problem files → queued jobs, all of them or none. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "commands.h"
#include "ctl.h"
#include "db.h"
#include "file.h"
#include "job.h"
#include "policy_flags.h"
#include "util.h"

static const char usage[] =
    "Usage: s1ctl submit [FLAGS] FILE...\n"
    "Queues one job per problem file (- reads stdin) and prints each new job id.\n"
    "All files are checked first and inserted in one transaction: all or none.\n\n";

typedef struct {
    s1_job_params params;
    s1_ctl_job job;
    s1ctl_db_args db;
    long long max_bytes;
    double timeout; /* --timeout; 0: wait forever */
    int wait;
} submit_args;

#define ARG(field) offsetof(submit_args, field)

static const s1ctl_flag job_flags[] = {
    {"samples", "N", "samples per problem (1..1024, default 1)", s1ctl_set_param_int,
     ARG(job.samples), S1_PARAM_SAMPLES},
    {"priority", "N", "higher runs first (-1000000..1000000, default 0)", s1ctl_set_param_int,
     ARG(job.priority), S1_PARAM_PRIORITY},
    {"queue", "NAME", "queue (default \"default\")", s1ctl_set_queue, ARG(job.queue)},
    {"model", "NAME", "only a daemon serving this model runs it (default any)", s1ctl_set_text,
     ARG(job.model)},
    {"answer", "REF", "the reference answer, to grade the result", s1ctl_set_text,
     ARG(job.reference_answer)},
    {"max-attempts", "N", "attempts before the job fails (1..1000, default 3)", s1ctl_set_param_int,
     ARG(job.max_attempts), S1_PARAM_MAX_ATTEMPTS},
    {"max-bytes", "N", "largest problem file accepted (default 1048576)", s1ctl_set_long,
     ARG(max_bytes), S1_PARAM_NONE, 1, 1LL << 30},
    {"wait", NULL, "wait for the jobs to end (exit 1 when one did not succeed)", s1ctl_set_switch,
     ARG(wait)},
    {"timeout", "SECONDS",
     "with --wait, give up after SECONDS (exit 7 when a job is\n"
     "still queued or running then)",
     s1ctl_set_timeout, ARG(timeout)},
};

/* Parses the flags; 0, or the exit code after printing why (-1 after
 * --help). The problem files end up in argv[1..*n]. */
static int parse_args(int argc, char **argv, submit_args *a, int *n)
{
    const s1ctl_flag_table tables[] = {
        S1CTL_POLICY_TABLES(&a->params, NULL, NULL),
        S1CTL_FLAGS("Job:", job_flags, a),
        {NULL, s1ctl_db_flags, 2, &a->db, NULL},
    };
    int rc = s1ctl_flags_parse(usage, tables, sizeof tables / sizeof *tables, argc, argv, n);
    if (rc) return rc;
    if (a->timeout > 0 && !a->wait)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--timeout: only meaningful with --wait");
    if (s1ctl_policy_done(&a->params) < 0) return S1CTL_EXIT_USAGE;
    if (*n == 0)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "no problem file given (see s1ctl submit --help)");
    return 0;
}

/* Reads and checks every file before anything is written. */
static int read_problems(char **files, int n, size_t max_bytes, char **texts)
{
    s1_err err = {{0}};
    for (int i = 0; i < n; i++) {
        size_t len;
        if (s1_read_file(files[i], max_bytes, &texts[i], &len, &err) < 0 ||
            s1_job_problem_check(strcmp(files[i], "-") ? files[i] : "<stdin>", texts[i], len,
                                 max_bytes, &err) < 0)
            return s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
    }
    return 0;
}

/* Inserts one job per text in one transaction; ids[] gets their ids. */
static int insert_all(PGconn *c, submit_args *a, char **files, char **texts, int n, long long *ids)
{
    s1_err err = {{0}};
    _cleanup_free_ char *policy = s1_job_policy_json(&a->params.policy, &err);
    _cleanup_free_ char *sampling = policy ? s1_job_sampling_json(&a->params.sampling, &err) : NULL;
    if (!sampling) return s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
    a->job.policy_json = policy;
    a->job.template_name = s1_template_name(a->params.policy.template);
    a->job.sampling_json = sampling;
    const s1_policy_cfg *p = &a->params.policy;
    int budget =
        p->ladder.kind == S1_LADDER_BUDGET ? p->ladder.rungs[p->ladder.n_rungs - 1] : p->max_think;
    int rc = s1ctl_budget_fits(c, a->job.queue, a->job.model, budget, p->max_answer);
    if (rc) return rc;
    if (s1_db_run(c, "beginning the submit", "BEGIN", 0, NULL, &err) < 0)
        return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    for (int i = 0; i < n; i++) {
        a->job.problem = texts[i];
        if (s1_ctl_insert(c, &a->job, &ids[i], &err) < 0) {
            PQclear(PQexec(c, "ROLLBACK"));
            return s1ctl_fail(S1CTL_EXIT_DB, "%s: %s; no job was queued", files[i], err.msg);
        }
    }
    if (s1_db_run(c, "committing the submit", "COMMIT", 0, NULL, &err) < 0)
        return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    return 0;
}

static void print_ids(char **files, int n, const long long *ids, int json)
{
    if (!json) {
        for (int i = 0; i < n; i++)
            printf("%lld\n", ids[i]);
        fflush(stdout);
        return;
    }
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a,
                              json_pack("{s:I,s:s}", "id", (json_int_t)ids[i], "file", files[i]));
    s1ctl_print_json(a);
}

/* Follows every job at once, all under one --timeout; the highest exit code
 * wins (7 when a job was left unfinished, else 1 when any did not succeed). */
static int wait_all(PGconn *c, const long long *ids, int n, int json, double timeout)
{
    s1ctl_deadline deadline = s1ctl_deadline_in(timeout);
    s1ctl_wait_opts o = {.json = json, .interval = S1CTL_WAIT_INTERVAL};
    return s1ctl_wait_jobs(c, ids, n, &o, &deadline);
}

static void free_texts(char **texts, int n)
{
    for (int i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
}

int s1ctl_submit(int argc, char **argv)
{
    submit_args a = {.max_bytes = (long long)S1_JOB_MAX_PROBLEM_BYTES};
    int n;
    int rc = parse_args(argc, argv, &a, &n);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    char **files = argv + 1;
    char **texts = calloc((size_t)n, sizeof *texts);
    long long *ids = calloc((size_t)n, sizeof *ids);
    _cleanup_pgconn_ PGconn *c = NULL;
    if (!texts || !ids)
        rc = s1ctl_fail(S1CTL_EXIT_FAILED, "out of memory");
    else if (!(rc = read_problems(files, n, (size_t)a.max_bytes, texts)) &&
             !(rc = s1ctl_connect(a.db.db, &c)) &&
             !(rc = insert_all(c, &a, files, texts, n, ids))) {
        /* With --wait --json the waits print one object per job instead. */
        if (!(a.wait && a.db.json)) print_ids(files, n, ids, a.db.json);
        s1ctl_warn_unserved(c, a.job.queue ? a.job.queue : "default", a.job.model);
        if (a.wait) rc = wait_all(c, ids, n, a.db.json, a.timeout);
    }
    if (texts) free_texts(texts, n);
    free(ids);
    return rc;
}
