/* s1ctl show, list, result, cancel, retry: one job or a list of them. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ctl.h"
#include "db.h"
#include "flags.h"
#include "util.h"

/* At most this many ids in one cancel or retry. */
enum { MAX_IDS = 1000 };

/* The arguments of a command that takes --db, --json and job ids: from 1 to
 * max_ids of them into ids, *n their count. 0; -1 after --help; or the exit
 * code after printing why. */
static int id_args(int argc, char **argv, const char *usage, s1ctl_db_args *db, long long *ids,
                   int max_ids, int *n)
{
    const s1ctl_flag_table tables[] = {{NULL, s1ctl_db_flags, 2, db, NULL}};
    int rc = s1ctl_flags_parse(usage, tables, 1, argc, argv, n);
    return rc ? rc : s1ctl_ids("job id", argv + 1, *n, 1, max_ids, ids);
}

static const char show_usage[] = "Usage: s1ctl show [--json] [--db CONNINFO] ID\n"
                                 "Prints every field of job ID.\n\n";

int s1ctl_show(int argc, char **argv)
{
    s1ctl_db_args db = {0};
    long long id;
    int n, rc = id_args(argc, argv, show_usage, &db, &id, 1, &n);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    int json = db.json;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(db.db, &c))) return rc;
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
    "Lists jobs, newest first, from s1.job_summary.\n\n";

static const char *const job_states[] = {"queued", "running", "succeeded", "failed", "cancelled"};

static int set_state(const s1ctl_flag *f, const char *arg, void *target)
{
    (void)f;
    for (size_t i = 0; i < sizeof job_states / sizeof *job_states; i++)
        if (!strcmp(arg, job_states[i])) {
            *(const char **)target = arg;
            return 0;
        }
    return s1ctl_fail(
        -1, "--state: '%s' is not one of queued, running, succeeded, failed, cancelled", arg);
}

typedef struct {
    s1ctl_db_args db;
    const char *state, *queue;
    long long limit;
} list_args;

static const s1ctl_flag list_flags[] = {
    {"state", "S", "queued, running, succeeded, failed or cancelled", set_state,
     offsetof(list_args, state)},
    {"queue", "Q", "only this queue", s1ctl_set_string, offsetof(list_args, queue)},
    {"limit", "N", "at most N jobs (default 50)", s1ctl_set_long, offsetof(list_args, limit),
     S1_PARAM_NONE, 1, 1000000},
};

/* 0; -1 after --help; or the exit code after printing why. */
static int list_parse(int argc, char **argv, list_args *a)
{
    const s1ctl_flag_table tables[] = {S1CTL_FLAGS(NULL, list_flags, a),
                                       {NULL, s1ctl_db_flags, 2, &a->db, NULL}};
    int n, rc = s1ctl_flags_parse(list_usage, tables, 2, argc, argv, &n);
    if (rc) return rc;
    if (n > 0)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "unexpected argument '%s' (see s1ctl list --help)",
                          argv[1]);
    return 0;
}

int s1ctl_list(int argc, char **argv)
{
    list_args a = {.limit = 50};
    int rc = list_parse(argc, argv, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db.db, &c))) return rc;
    s1_err err = {{0}};
    _cleanup_pgresult_ PGresult *r = s1_ctl_list(c, a.state, a.queue, (long)a.limit, &err);
    if (!r) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (!a.db.json) {
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
    "\n";

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
    s1ctl_db_args db;
    int trace;
    long long id;
} result_args;

static const s1ctl_flag result_flags[] = {
    {"trace", NULL, "also print the whole trace (thinking, forced text, answer)", s1ctl_set_switch,
     offsetof(result_args, trace)},
};

static int result_parse(int argc, char **argv, result_args *a)
{
    const s1ctl_flag_table tables[] = {S1CTL_FLAGS(NULL, result_flags, a),
                                       {NULL, s1ctl_db_flags, 2, &a->db, NULL}};
    int n, rc = s1ctl_flags_parse(result_usage, tables, 2, argc, argv, &n);
    return rc ? rc : s1ctl_ids("job id", argv + 1, n, 1, 1, &a->id);
}

int s1ctl_result(int argc, char **argv)
{
    result_args a = {0};
    int rc = result_parse(argc, argv, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db.db, &c))) return rc;
    s1_err err = {{0}};
    char state[16];
    _cleanup_pgresult_ PGresult *r = s1_ctl_results(c, a.id, a.trace, state, sizeof state, &err);
    if (!r) return s1ctl_fail(state[0] ? S1CTL_EXIT_DB : S1CTL_EXIT_NOT_FOUND, "%s", err.msg);
    if (PQntuples(r) == 0)
        return s1ctl_fail(S1CTL_EXIT_FAILED, "job %lld is %s and has no result", a.id, state);
    if (a.db.json) {
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

/* Cancels or retries one job: its state then, or NULL when refused (the
 * message is printed and *rc set). */
static const char *change_one(PGconn *c, long long id, bool cancel, int *rc)
{
    s1_err err = {{0}};
    const char *state = "queued";
    int r = cancel ? s1_ctl_cancel(c, id, &state, &err) : s1_ctl_retry(c, id, &err);
    if (r < 0) *rc = s1ctl_fail(s1ctl_store_exit(r), "%s", err.msg);
    return r < 0 ? NULL : state;
}

/* The line of a change: a running job is only asked to stop. */
static const char *change_text(const char *state)
{
    if (!strcmp(state, "queued")) return "queued again";
    return strcmp(state, "cancelled") ? "is running: cancel requested" : "cancelled";
}

/* Cancels (or retries) every id, each on its own (one refused job does not
 * stop the others); prints a line per job, or JSON (an object for one id,
 * an array for several). The exit code of the first failure, else 0. */
static int change_jobs(int argc, char **argv, const char *usage, bool cancel)
{
    s1ctl_db_args db = {0};
    long long ids[MAX_IDS];
    int n, rc = id_args(argc, argv, usage, &db, ids, MAX_IDS, &n);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(db.db, &c))) return rc;
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        int one = 0;
        const char *state = change_one(c, ids[i], cancel, &one);
        if (!rc) rc = one;
        if (!state) continue;
        if (db.json)
            json_array_append_new(arr,
                                  json_pack("{s:I,s:s}", "id", (json_int_t)ids[i], "state", state));
        else
            printf("job %lld %s\n", ids[i], change_text(state));
    }
    if (!db.json || (n == 1 && rc)) {
        json_decref(arr);
        return rc;
    }
    int out = s1ctl_print_json(n == 1 ? json_incref(json_array_get(arr, 0)) : json_incref(arr));
    json_decref(arr);
    return rc ? rc : out;
}

static const char cancel_usage[] =
    "Usage: s1ctl cancel [--json] [--db CONNINFO] ID...\n"
    "Cancels each job ID: a queued job is cancelled at once; a running job is asked\n"
    "to stop (its daemon ends it as cancelled). Exit 1 when a job already ended.\n\n";

int s1ctl_cancel(int argc, char **argv)
{
    return change_jobs(argc, argv, cancel_usage, true);
}

static const char retry_usage[] =
    "Usage: s1ctl retry [--json] [--db CONNINFO] ID...\n"
    "Queues each failed or cancelled job ID again, attempts reset, earlier results\n"
    "removed.\n\n";

int s1ctl_retry(int argc, char **argv)
{
    return change_jobs(argc, argv, retry_usage, false);
}
