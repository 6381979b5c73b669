/* s1ctl submit: problem files → queued jobs, all of them or none. */
#include <getopt.h>
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
    "All files are checked first and inserted in one transaction: all or none.\n"
    "\n" S1CTL_POLICY_HELP "Job:\n"
    "  --samples N         samples per problem (1..1024, default 1)\n"
    "  --priority N        higher runs first (-1000000..1000000, default 0)\n"
    "  --queue NAME        queue (default \"default\")\n"
    "  --model NAME        only a daemon serving this model runs it (default any)\n"
    "  --answer REF        the reference answer, to grade the result\n"
    "  --max-attempts N    attempts before the job fails (1..1000, default 3)\n"
    "  --max-bytes N       largest problem file accepted (default 1048576)\n"
    "  --wait              wait for the jobs to end (exit 1 when one did not succeed)\n"
    "  --timeout SECONDS   with --wait, give up after SECONDS (exit 7 when a job is\n"
    "                      still queued or running then)\n"
    "  --json              print [{\"id\": N, \"file\": F}, ...]\n"
    "  --db CONNINFO       database (default $DATABASE_URL, then libpq's PG* variables)\n"
    "  --help              this text\n";

enum {
    OPT_SAMPLES = 0x2000,
    OPT_PRIORITY,
    OPT_QUEUE,
    OPT_MODEL,
    OPT_ANSWER,
    OPT_MAX_ATTEMPTS,
    OPT_MAX_BYTES,
    OPT_WAIT,
    OPT_TIMEOUT,
    OPT_JSON,
    OPT_DB,
};

static const struct option options[] = {
    S1CTL_POLICY_OPTIONS,
    {"samples", required_argument, NULL, OPT_SAMPLES},
    {"priority", required_argument, NULL, OPT_PRIORITY},
    {"queue", required_argument, NULL, OPT_QUEUE},
    {"model", required_argument, NULL, OPT_MODEL},
    {"answer", required_argument, NULL, OPT_ANSWER},
    {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
    {"max-bytes", required_argument, NULL, OPT_MAX_BYTES},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"json", no_argument, NULL, OPT_JSON},
    {"db", required_argument, NULL, OPT_DB},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct {
    s1_policy_cfg policy;
    s1_sampling sampling;
    s1_ctl_job job;
    long long max_bytes;
    double timeout; /* --timeout; 0: wait forever */
    int wait, json;
    const char *db;
} submit_args;

/* The job flags (policy and sampling flags go to policy_flags.c). 1 when
 * handled, -1 after printing why the value is bad, 0 when unknown. */
static int job_flag(int code, const char *arg, submit_args *a)
{
    long long v;
    switch (code) {
    case OPT_SAMPLES:
        if (s1ctl_parse_int("--samples", arg, 1, 1024, &v) < 0) return -1;
        a->job.samples = (int)v;
        return 1;
    case OPT_PRIORITY:
        if (s1ctl_parse_int("--priority", arg, -S1_JOB_MAX_PRIORITY, S1_JOB_MAX_PRIORITY, &v) < 0)
            return -1;
        a->job.priority = (int)v;
        return 1;
    case OPT_MAX_ATTEMPTS:
        if (s1ctl_parse_int("--max-attempts", arg, 1, S1_JOB_MAX_ATTEMPTS, &v) < 0) return -1;
        a->job.max_attempts = (int)v;
        return 1;
    case OPT_MAX_BYTES:
        return s1ctl_parse_int("--max-bytes", arg, 1, 1LL << 30, &a->max_bytes) < 0 ? -1 : 1;
    case OPT_QUEUE:
        return s1ctl_text_flag("--queue", arg, &a->job.queue);
    case OPT_MODEL:
        return s1ctl_text_flag("--model", arg, &a->job.model);
    case OPT_ANSWER:
        return s1ctl_text_flag("--answer", arg, &a->job.reference_answer);
    case OPT_WAIT:
        a->wait = 1;
        return 1;
    case OPT_TIMEOUT:
        return s1ctl_parse_timeout(arg, &a->timeout) < 0 ? -1 : 1;
    case OPT_JSON:
        a->json = 1;
        return 1;
    case OPT_DB:
        a->db = arg;
        return 1;
    default:
        return 0;
    }
}

/* Parses the flags; 0, or the exit code after printing why (-1 after --help). */
static int parse_args(int argc, char **argv, submit_args *a)
{
    int o;
    while ((o = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (o == 'h') {
            fputs(usage, stdout);
            return -1;
        }
        if (o == '?' || o == ':') return s1ctl_bad_flag(argv, o);
        int rc = s1ctl_policy_flag(o, optarg, &a->policy, &a->sampling);
        if (rc == 0) rc = job_flag(o, optarg, a);
        if (rc < 0) return S1CTL_EXIT_USAGE;
    }
    if (a->timeout > 0 && !a->wait)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--timeout: only meaningful with --wait");
    s1_err err = {0};
    if (a->job.queue && s1_job_queue_check(a->job.queue, &err))
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--queue: %s", err.msg);
    if (s1ctl_policy_done(&a->policy, &a->sampling) < 0) return S1CTL_EXIT_USAGE;
    if (optind >= argc)
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
    _cleanup_free_ char *policy = s1_job_policy_json(&a->policy, &err);
    _cleanup_free_ char *sampling = policy ? s1_job_sampling_json(&a->sampling, &err) : NULL;
    if (!sampling) return s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
    a->job.policy_json = policy;
    a->job.template_name = s1_template_name(a->policy.template);
    a->job.sampling_json = sampling;
    const s1_ladder *l = &a->policy.ladder;
    int budget = l->kind == S1_LADDER_BUDGET ? l->rungs[l->n_rungs - 1] : a->policy.max_think;
    int rc = s1ctl_budget_fits(c, a->job.queue, a->job.model, budget, a->policy.max_answer);
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
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    int n = argc - optind;
    char **texts = calloc((size_t)n, sizeof *texts);
    long long *ids = calloc((size_t)n, sizeof *ids);
    _cleanup_pgconn_ PGconn *c = NULL;
    if (!texts || !ids)
        rc = s1ctl_fail(S1CTL_EXIT_FAILED, "out of memory");
    else if (!(rc = read_problems(argv + optind, n, (size_t)a.max_bytes, texts)) &&
             !(rc = s1ctl_connect(a.db, &c)) &&
             !(rc = insert_all(c, &a, argv + optind, texts, n, ids))) {
        /* With --wait --json the waits print one object per job instead. */
        if (!(a.wait && a.json)) print_ids(argv + optind, n, ids, a.json);
        s1ctl_warn_unserved(c, a.job.queue ? a.job.queue : "default", a.job.model);
        if (a.wait) rc = wait_all(c, ids, n, a.json, a.timeout);
    }
    if (texts) free_texts(texts, n);
    free(ids);
    return rc;
}
