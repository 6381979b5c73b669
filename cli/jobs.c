/* s1ctl show, list, result, cancel, retry: one job or a list of them. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ctl.h"
#include "db.h"
#include "util.h"

#define DB_HELP                                                                                    \
    "  --json              print JSON\n"                                                           \
    "  --db CONNINFO       database (default $DATABASE_URL, then libpq's PG* variables)\n"         \
    "  --help              this text\n"

static const char show_usage[] = "Usage: s1ctl show [--json] [--db CONNINFO] ID\n"
                                 "Prints every field of job ID.\n\n" DB_HELP;

int s1ctl_show(int argc, char **argv)
{
    const char *db = NULL;
    int json = 0;
    long long id;
    int rc = s1ctl_id_args(argc, argv, show_usage, &db, &json, &id);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(db, &c))) return rc;
    s1_err err = {{0}};
    _cleanup_pgresult_ PGresult *r = s1_ctl_show(c, id, &err);
    if (!r) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (PQntuples(r) == 0) return s1ctl_fail(S1CTL_EXIT_NOT_FOUND, "job %lld: no such job", id);
    if (json) return s1ctl_print_json(s1ctl_row_json(r, 0));
    s1ctl_print_record(r, 0);
    return S1CTL_EXIT_OK;
}

static const char list_usage[] =
    "Usage: s1ctl list [--state S] [--queue Q] [--limit N] [--json] [--db CONNINFO]\n"
    "Lists jobs, newest first, from s1.job_summary.\n\n"
    "  --state S           queued, running, succeeded, failed or cancelled\n"
    "  --queue Q           only this queue\n"
    "  --limit N           at most N jobs (default 50)\n" DB_HELP;

static const char *const job_states[] = {"queued", "running", "succeeded", "failed", "cancelled"};

static int check_state(const char *s)
{
    for (size_t i = 0; i < sizeof job_states / sizeof *job_states; i++)
        if (!strcmp(s, job_states[i])) return 0;
    return s1ctl_fail(S1CTL_EXIT_USAGE,
                      "--state: '%s' is not one of queued, running, succeeded, failed, cancelled",
                      s);
}

typedef struct {
    const char *db, *state, *queue;
    long long limit;
    int json;
} list_args;

/* 0; -1 after --help; or the exit code after printing why. */
static int list_parse(int argc, char **argv, list_args *a)
{
    static const struct option options[] = {
        {"state", required_argument, NULL, 's'},
        {"queue", required_argument, NULL, 'q'},
        {"limit", required_argument, NULL, 'l'},
        {"db", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (o) {
        case 's':
            if (check_state(optarg)) return S1CTL_EXIT_USAGE;
            a->state = optarg;
            break;
        case 'q':
            a->queue = optarg;
            break;
        case 'l':
            if (s1ctl_parse_int("--limit", optarg, 1, 1000000, &a->limit) < 0)
                return S1CTL_EXIT_USAGE;
            break;
        case 'd':
            a->db = optarg;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'h':
            fputs(list_usage, stdout);
            return -1;
        default:
            return s1ctl_bad_flag(argv, o);
        }
    }
    if (optind < argc)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "unexpected argument '%s' (see s1ctl list --help)",
                          argv[optind]);
    return 0;
}

int s1ctl_list(int argc, char **argv)
{
    list_args a = {.limit = 50};
    int rc = list_parse(argc, argv, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db, &c))) return rc;
    s1_err err = {{0}};
    _cleanup_pgresult_ PGresult *r = s1_ctl_list(c, a.state, a.queue, (long)a.limit, &err);
    if (!r) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (!a.json) {
        s1ctl_print_table(r);
        return S1CTL_EXIT_OK;
    }
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(arr, s1ctl_row_json(r, i));
    return s1ctl_print_json(arr);
}

static const char result_usage[] =
    "Usage: s1ctl result [--trace] [--json] [--db CONNINFO] ID\n"
    "Prints the answer of each sample of job ID with its token counts; a ladder job\n"
    "has one per sample and rung, each with the budget and ignore-stop it equals.\n"
    "Exit 1 when the job has no result (yet).\n\n"
    "  --trace             also print the whole trace (thinking, forced text, answer)\n" DB_HELP;

static const char *col(const PGresult *r, int row, const char *name)
{
    return PQgetvalue(r, row, PQfnumber(r, name));
}

/* How the thinking ended: forced by the budget or the context, or not. */
static const char *forced_end(const PGresult *r, int row)
{
    if (*col(r, row, "forced_end") != 't') return "no";
    return *col(r, row, "context_end") == 't' ? "yes (context)" : "yes";
}

/* One sample at one rung as text: the run it equals (budget, ignore-stop), a
 * line of counts, the trace when asked, the answer. */
static void print_sample(const PGresult *r, int row, int trace)
{
    const char *grade = *col(r, row, "grade") == '\0'  ? "ungraded"
                        : *col(r, row, "grade") == 't' ? "correct"
                                                       : "wrong";
    const char *budget = col(r, row, "budget");
    printf("sample %s, budget %s, ignore-stop %s: answer ", col(r, row, "sample"),
           *budget ? budget : "none", col(r, row, "ignore_stop"));
    s1ctl_print_text(col(r, row, "extracted_answer"));
    printf(" (%s); thinking %s, forced %s, answer %s tokens, %s waits, forced end %s, stop %s\n",
           grade, col(r, row, "thinking_tokens"), col(r, row, "forced_tokens"),
           col(r, row, "answer_tokens"), col(r, row, "waits"), forced_end(r, row),
           col(r, row, "stop_reason"));
    if (trace) {
        printf("--- trace\n");
        s1ctl_print_text(col(r, row, "trace"));
        printf("\n");
    }
    printf("--- answer\n");
    s1ctl_print_text(col(r, row, "answer"));
    printf("\n");
}

typedef struct {
    const char *db;
    int json, trace;
    long long id;
} result_args;

static int result_parse(int argc, char **argv, result_args *a)
{
    static const struct option options[] = {
        {"trace", no_argument, NULL, 't'},
        {"db", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (o) {
        case 't':
            a->trace = 1;
            break;
        case 'd':
            a->db = optarg;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'h':
            fputs(result_usage, stdout);
            return -1;
        default:
            return s1ctl_bad_flag(argv, o);
        }
    }
    return s1ctl_one_id(argc, argv, &a->id);
}

int s1ctl_result(int argc, char **argv)
{
    result_args a = {0};
    int rc = result_parse(argc, argv, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db, &c))) return rc;
    s1_err err = {{0}};
    char state[16];
    _cleanup_pgresult_ PGresult *r = s1_ctl_results(c, a.id, a.trace, state, sizeof state, &err);
    if (!r) return s1ctl_fail(state[0] ? S1CTL_EXIT_DB : S1CTL_EXIT_NOT_FOUND, "%s", err.msg);
    if (PQntuples(r) == 0)
        return s1ctl_fail(S1CTL_EXIT_FAILED, "job %lld is %s and has no result", a.id, state);
    if (a.json) {
        json_t *arr = json_array();
        for (int i = 0; i < PQntuples(r); i++)
            json_array_append_new(arr, s1ctl_row_json(r, i));
        return s1ctl_print_json(
            json_pack("{s:I,s:s,s:o}", "id", (json_int_t)a.id, "state", state, "results", arr));
    }
    for (int i = 0; i < PQntuples(r); i++)
        print_sample(r, i, a.trace);
    return S1CTL_EXIT_OK;
}

/* Prints what a cancel or retry did, as a line or as JSON. */
static void print_change(long long id, const char *state, const char *what, int json)
{
    if (json)
        s1ctl_print_json(json_pack("{s:I,s:s}", "id", (json_int_t)id, "state", state));
    else
        printf("job %lld %s\n", id, what);
}

static const char cancel_usage[] =
    "Usage: s1ctl cancel [--json] [--db CONNINFO] ID\n"
    "Cancels job ID: a queued job is cancelled at once; a running job is asked to stop\n"
    "(its daemon ends it as cancelled). Exit 1 when the job already ended.\n\n" DB_HELP;

int s1ctl_cancel(int argc, char **argv)
{
    const char *db = NULL, *state = NULL;
    int json = 0;
    long long id;
    int rc = s1ctl_id_args(argc, argv, cancel_usage, &db, &json, &id);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(db, &c))) return rc;
    s1_err err = {{0}};
    if ((rc = s1_ctl_cancel(c, id, &state, &err)) < 0)
        return s1ctl_fail(s1ctl_store_exit(rc), "%s", err.msg);
    print_change(id, state,
                 strcmp(state, "cancelled") ? "is running: cancel requested" : "cancelled", json);
    return S1CTL_EXIT_OK;
}

static const char retry_usage[] =
    "Usage: s1ctl retry [--json] [--db CONNINFO] ID\n"
    "Queues failed or cancelled job ID again, attempts reset, earlier results removed.\n\n" DB_HELP;

int s1ctl_retry(int argc, char **argv)
{
    const char *db = NULL;
    int json = 0;
    long long id;
    int rc = s1ctl_id_args(argc, argv, retry_usage, &db, &json, &id);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(db, &c))) return rc;
    s1_err err = {{0}};
    if ((rc = s1_ctl_retry(c, id, &err)) < 0)
        return s1ctl_fail(s1ctl_store_exit(rc), "%s", err.msg);
    print_change(id, "queued", "queued again", json);
    return S1CTL_EXIT_OK;
}
