/* s1ctl export: the results of a benchmark run or of jobs as JSON lines or
 * CSV, one row per result, streamed, for pandas and R. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cleanup.h"
#include "commands.h"
#include "db.h"
#include "export.h"
#include "flags.h"
#include "util.h"

enum { MAX_JOBS = 100000 };

static const char export_usage[] =
    "Usage: s1ctl export (RUN_ID | --jobs ID,ID,...) [--format jsonl|csv] [--trace]\n"
    "                    [--db CONNINFO]\n"
    "Writes one row per result (a sample of a job) to standard output, oldest job\n"
    "first: the run, job, problem id and text, reference answer, budget, sample,\n"
    "every token count, stop reason, answer text, extracted answer, grade, policy,\n"
    "sampling, model, backend and timings. Rows are streamed: a run of any size\n"
    "needs the memory of one row.\n\n";

typedef struct {
    s1ctl_db_args db;
    const char *jobs_list;
    int csv;
    s1_export_query q;
    long long *jobs; /* owned */
} export_args;

static int set_format(const s1ctl_flag *f, const char *arg, void *target)
{
    (void)f;
    if (strcmp(arg, "jsonl") && strcmp(arg, "csv"))
        return s1ctl_fail(-1, "--format: '%s' is not jsonl or csv", arg);
    *(int *)target = !strcmp(arg, "csv");
    return 0;
}

static const s1ctl_flag export_flags[] = {
    {"jobs", "LIST", "these jobs (comma-separated ids) instead of a run", s1ctl_set_string,
     offsetof(export_args, jobs_list)},
    {"format", "F",
     "jsonl (default: one JSON object per line, typed values)\n"
     "or csv (RFC 4180, a header row, NULL as an empty field)",
     set_format, offsetof(export_args, csv)},
    {"trace", NULL, "add the whole trace of each result (large)", s1ctl_set_bool,
     offsetof(export_args, q.trace)},
};

/* Export writes rows, never a JSON summary. */
static const char *const no_json[] = {"json", NULL};

static int export_parse(int argc, char **argv, export_args *a)
{
    const s1ctl_flag_table tables[] = {
        S1CTL_FLAGS(NULL, export_flags, a),
        {NULL, s1ctl_db_flags, 2, &a->db, no_json, "it writes rows (--format jsonl|csv)"}};
    int n, rc = s1ctl_flags_parse(export_usage, tables, 2, argc, argv, &n);
    if (rc) return rc;
    if (n > 1)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "unexpected argument '%s' (see s1ctl export --help)",
                          argv[2]);
    if (n && a->jobs_list) return s1ctl_fail(S1CTL_EXIT_USAGE, "give a RUN_ID or --jobs, not both");
    if (!n && !a->jobs_list)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "no RUN_ID or --jobs given (see s1ctl bench list)");
    if (n) return s1ctl_ids("run id", argv + 1, 1, 1, 1, &a->q.run);
    a->jobs = malloc(MAX_JOBS * sizeof *a->jobs);
    if (!a->jobs) return s1ctl_fail(S1CTL_EXIT_FAILED, "out of memory");
    a->q.jobs = a->jobs;
    return s1ctl_parse_int_list("--jobs", a->jobs_list, 1, INT64_MAX, a->jobs, MAX_JOBS,
                                &a->q.n_jobs) < 0
               ? S1CTL_EXIT_USAGE
               : 0;
}

/* One CSV field: quoted when it holds a separator, quote or line break. */
static void csv_field(const char *v, FILE *f)
{
    if (!strpbrk(v, ",\"\r\n")) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '"') fputc('"', f);
        fputc(*v, f);
    }
    fputc('"', f);
}

/* Booleans read as words in pandas and R ("true"), not PostgreSQL's t/f. */
static const char *csv_value(const PGresult *r, int col)
{
    const char *v = PQgetvalue(r, 0, col);
    if (PQftype(r, col) == 16 /* bool */) return *v == 't' ? "true" : "false";
    return v;
}

typedef struct {
    int csv, header_done;
} writer;

static int write_row(void *ud, const PGresult *r)
{
    writer *w = ud;
    int n = PQnfields(r);
    if (!w->csv) {
        json_t *o = s1ctl_row_json(r, 0);
        int rc = !o || json_dumpf(o, stdout,
                                  JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        json_decref(o);
        fputc('\n', stdout);
        return rc || ferror(stdout);
    }
    for (int i = 0; !w->header_done && i < n; i++) {
        csv_field(PQfname(r, i), stdout);
        fputs(i + 1 < n ? "," : "\r\n", stdout);
    }
    w->header_done = 1;
    for (int i = 0; i < n; i++) {
        if (!PQgetisnull(r, 0, i)) csv_field(csv_value(r, i), stdout);
        fputs(i + 1 < n ? "," : "\r\n", stdout);
    }
    return ferror(stdout);
}

/* Exit 5 when the run or any job does not exist: a typo must not look like an
 * empty export. */
static int check_exists(PGconn *c, const export_args *a)
{
    s1_err err = {{0}};
    if (a->q.run) {
        _cleanup_pgresult_ PGresult *run = s1_bench_run_get(c, a->q.run, NULL, &err);
        if (!run) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
        if (PQntuples(run) == 0)
            return s1ctl_fail(S1CTL_EXIT_NOT_FOUND,
                              "run %lld: no such benchmark run (see s1ctl bench list)", a->q.run);
        return 0;
    }
    _cleanup_free_ char *missing = s1_export_missing_jobs(c, a->q.jobs, a->q.n_jobs, &err);
    if (!missing) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (*missing) return s1ctl_fail(S1CTL_EXIT_NOT_FOUND, "no such job: %s", missing);
    return 0;
}

int s1ctl_export(int argc, char **argv)
{
    export_args a = {0};
    int rc = export_parse(argc, argv, &a);
    _cleanup_pgconn_ PGconn *c = NULL;
    if (!rc) rc = s1ctl_connect(a.db.db, &c);
    if (!rc) rc = check_exists(c, &a);
    writer w = {.csv = a.csv};
    s1_err err = {{0}};
    if (!rc && s1_export_rows(c, &a.q, write_row, &w, &err) < 0)
        rc = s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (!rc && (fflush(stdout) || ferror(stdout)))
        rc = s1ctl_fail(S1CTL_EXIT_FAILED, "writing the export failed (disk full or closed pipe?)");
    free(a.jobs);
    return rc < 0 ? S1CTL_EXIT_OK : rc;
}
