/* s1ctl export: the results of a benchmark run or of jobs as JSON lines or
 * CSV, one row per result, streamed, for pandas and R. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cleanup.h"
#include "commands.h"
#include "db.h"
#include "export.h"
#include "util.h"

enum { MAX_JOBS = 100000 };

enum { OPT_JOBS = 0x2000, OPT_FORMAT, OPT_TRACE, OPT_DB };

static const char export_usage[] =
    "Usage: s1ctl export (RUN_ID | --jobs ID,ID,...) [--format jsonl|csv] [--trace]\n"
    "                    [--db CONNINFO]\n"
    "Writes one row per result (a sample of a job) to standard output, oldest job\n"
    "first: the run, job, problem id and text, reference answer, budget, sample,\n"
    "every token count, stop reason, answer text, extracted answer, grade, policy,\n"
    "sampling, model, backend and timings. Rows are streamed: a run of any size\n"
    "needs the memory of one row.\n\n"
    "  --jobs LIST         these jobs (comma-separated ids) instead of a run\n"
    "  --format F          jsonl (default: one JSON object per line, typed values)\n"
    "                      or csv (RFC 4180, a header row, NULL as an empty field)\n"
    "  --trace             add the whole trace of each result (large)\n"
    "  --db CONNINFO       database (default $DATABASE_URL, else libpq's PG* variables)\n";

static const struct option export_options[] = {
    {"jobs", required_argument, NULL, OPT_JOBS},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"trace", no_argument, NULL, OPT_TRACE},
    {"db", required_argument, NULL, OPT_DB},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct {
    const char *db, *jobs_list;
    int csv;
    s1_export_query q;
    long long *jobs; /* owned */
} export_args;

/* One flag: 0, -1 after --help, or the exit code after printing why. */
static int export_flag(int o, char **argv, export_args *a)
{
    switch (o) {
    case OPT_JOBS:
        a->jobs_list = optarg;
        return 0;
    case OPT_FORMAT:
        if (strcmp(optarg, "jsonl") && strcmp(optarg, "csv"))
            return s1ctl_fail(S1CTL_EXIT_USAGE, "--format: '%s' is not jsonl or csv", optarg);
        a->csv = !strcmp(optarg, "csv");
        return 0;
    case OPT_TRACE:
        a->q.trace = true;
        return 0;
    case OPT_DB:
        a->db = optarg;
        return 0;
    case 'h':
        fputs(export_usage, stdout);
        return -1;
    default:
        return s1ctl_bad_flag(argv, o);
    }
}

static int export_parse(int argc, char **argv, export_args *a)
{
    int o, rc;
    while ((o = getopt_long(argc, argv, ":h", export_options, NULL)) != -1)
        if ((rc = export_flag(o, argv, a))) return rc;
    if (argc - optind > 1)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "unexpected argument '%s' (see s1ctl export --help)",
                          argv[optind + 1]);
    if (optind < argc && a->jobs_list)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "give a RUN_ID or --jobs, not both");
    if (optind == argc && !a->jobs_list)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "no RUN_ID or --jobs given (see s1ctl bench list)");
    if (optind < argc)
        return s1ctl_parse_int("run id", argv[optind], 1, INT64_MAX, &a->q.run) < 0
                   ? S1CTL_EXIT_USAGE
                   : 0;
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
    if (!rc) rc = s1ctl_connect(a.db, &c);
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
