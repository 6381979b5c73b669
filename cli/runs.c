/* s1ctl bench wait, cancel, retry: a benchmark run as a whole. wait follows
 * its jobs until the last one ends (woken by NOTIFY s1_progress, one query
 * per wake-up whatever the size of the run); cancel and retry change every
 * job of the run that allows it, each through the functions that check the
 * caller's rights. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cleanup.h"
#include "commands.h"
#include "ctl.h"
#include "db.h"
#include "flags.h"
#include "util.h"

/* A missed notification (a daemon died mid-write) costs at most this long. */
#define RUN_POLL_MS 5000

/* "run 3: 7 of 10 jobs ended (6 succeeded, 1 failed, 0 cancelled), 3 pending" */
static void progress_text(char *buf, size_t cap, long long run, const s1_bench_progress *p)
{
    snprintf(buf, cap,
             "run %lld: %lld of %lld jobs ended (%lld succeeded, %lld failed, %lld cancelled), "
             "%lld pending",
             run, p->jobs - p->pending, p->jobs, p->succeeded, p->failed, p->cancelled, p->pending);
}

/* 7 while jobs are pending (the wait gave up), 1 when one did not succeed. */
static int progress_exit(const s1_bench_progress *p)
{
    if (p->pending) return S1CTL_EXIT_TIMEOUT;
    return p->failed || p->cancelled ? S1CTL_EXIT_FAILED : S1CTL_EXIT_OK;
}

static json_t *progress_json(long long run, const s1_bench_progress *p)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "run", (json_int_t)run, "jobs",
                     (json_int_t)p->jobs, "succeeded", (json_int_t)p->succeeded, "failed",
                     (json_int_t)p->failed, "cancelled", (json_int_t)p->cancelled, "pending",
                     (json_int_t)p->pending, "timed_out", p->pending > 0);
}

/* Same counts as the line last shown: progress within a job is not news. */
static bool same_counts(const s1_bench_progress *a, const s1_bench_progress *b)
{
    return a->jobs == b->jobs && a->succeeded == b->succeeded && a->failed == b->failed &&
           a->cancelled == b->cancelled && a->pending == b->pending;
}

/* Shows a change: the line redrawn in place on a terminal, else a new line. */
static void show_progress(long long run, const s1_bench_progress *p, bool tty)
{
    char line[256];
    progress_text(line, sizeof line, run, p);
    printf(tty ? "\r%s\033[K" : "%s\n", line);
    fflush(stdout);
}

/* The last word: the counts (and, after a timeout, that jobs are still
 * pending), as a line or as JSON. */
static int conclude(long long run, const s1_bench_progress *p, bool json, bool tty, bool shown)
{
    if (json) {
        int rc = s1ctl_print_json(progress_json(run, p));
        return rc ? rc : progress_exit(p);
    }
    char line[256];
    progress_text(line, sizeof line, run, p);
    if (tty && shown) printf("\r\033[K");
    printf("%s%s\n", line, p->pending ? ": timed out" : "");
    return progress_exit(p);
}

int s1ctl_follow_run(PGconn *c, long long run, bool json, bool quiet,
                     const s1ctl_deadline *deadline)
{
    s1_err err = {{0}};
    s1_bench_progress now = {0}, shown = {.jobs = -1};
    bool tty = isatty(STDOUT_FILENO), first = true;
    if (s1_ctl_listen_progress(c, &err) < 0) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    for (;;) {
        int rc = s1_bench_run_progress(c, run, &now, &err);
        if (rc < 0) return s1ctl_fail(s1ctl_store_exit(rc), "%s", err.msg);
        if (first && now.queue[0]) s1ctl_warn_unserved(c, now.queue, now.model);
        first = false;
        if (!now.pending || s1ctl_deadline_left_ms(deadline) == 0) break;
        if (!json && !quiet && !same_counts(&now, &shown)) {
            show_progress(run, &now, tty);
            shown = now;
        }
        if (s1ctl_wait_notify(c, NULL, NULL, RUN_POLL_MS, deadline, &err) < 0)
            return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    }
    return conclude(run, &now, json, tty, shown.jobs >= 0);
}

/* ---- bench wait ---- */

static const char wait_usage[] =
    "Usage: s1ctl bench wait [--timeout SECONDS] [--quiet] [--json] [--db CONNINFO] RUN_ID\n"
    "Follows a benchmark run until none of its jobs is queued or running: a line\n"
    "whenever a job ends (redrawn in place on a terminal), then the counts. Exit 0\n"
    "when every job succeeded, 1 when one failed or was cancelled, 7 when --timeout\n"
    "passed first.\n\n";

typedef struct {
    s1ctl_db_args db;
    double timeout;
    int quiet;
    long long run;
} run_wait_args;

static const s1ctl_flag run_wait_flags[] = {
    {"timeout", "SECONDS", "give up after SECONDS (a positive number; default: never)",
     s1ctl_set_timeout, offsetof(run_wait_args, timeout)},
    {"quiet", NULL, "only the last line", s1ctl_set_switch, offsetof(run_wait_args, quiet)},
};

int s1ctl_bench_wait(int argc, char **argv)
{
    run_wait_args a = {0};
    const s1ctl_flag_table tables[] = {S1CTL_FLAGS(NULL, run_wait_flags, &a),
                                       {NULL, s1ctl_db_flags, 2, &a.db, NULL, NULL}};
    int n, rc = s1ctl_flags_parse(wait_usage, tables, 2, argc, argv, &n);
    if (!rc) rc = s1ctl_ids("run id", argv + 1, n, 1, 1, &a.run);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db.db, &c))) return rc;
    s1ctl_deadline deadline = s1ctl_deadline_in(a.timeout);
    return s1ctl_follow_run(c, a.run, a.db.json, a.quiet, &deadline);
}

/* ---- bench cancel, bench retry ---- */

static const char cancel_usage[] =
    "Usage: s1ctl bench cancel [--json] [--db CONNINFO] RUN_ID\n"
    "Cancels every queued job of the run at once and asks the daemons running its\n"
    "other jobs to stop them. Exit 1 when no job of the run was left to cancel, or\n"
    "some belong to another submitter.\n\n";

static const char retry_usage[] =
    "Usage: s1ctl bench retry [--json] [--db CONNINFO] RUN_ID\n"
    "Queues every failed or cancelled job of the run again (attempts reset, their\n"
    "earlier results removed), so the run can be completed. Exit 1 when no job of\n"
    "the run had failed or been cancelled, or some belong to another submitter.\n\n";

/* Prints what happened to the run's jobs; the exit code. */
static int print_changed(long long run, bool cancel, const s1_bench_run_changed *ch, bool json)
{
    const char *verb = cancel ? "cancelled" : "queued again";
    if (json) {
        int rc = s1ctl_print_json(
            json_pack("{s:I,s:I,s:I}", "run", (json_int_t)run, cancel ? "cancelled" : "queued",
                      (json_int_t)ch->changed, "refused", (json_int_t)ch->refused));
        if (rc) return rc;
    } else if (ch->changed) {
        printf("run %lld: %lld job%s %s%s\n", run, ch->changed, ch->changed == 1 ? "" : "s", verb,
               cancel ? " (running ones when their daemon stops them)" : "");
    }
    if (ch->refused)
        return s1ctl_fail(S1CTL_EXIT_FAILED,
                          "run %lld: %lld job%s not %s: another submitter's (ask an s1_admin)", run,
                          ch->refused, ch->refused == 1 ? "" : "s", verb);
    if (!ch->changed)
        return s1ctl_fail(S1CTL_EXIT_FAILED, "run %lld: no %s job to %s", run,
                          cancel ? "queued or running" : "failed or cancelled",
                          cancel ? "cancel" : "retry");
    return S1CTL_EXIT_OK;
}

static int change_run(int argc, char **argv, bool cancel)
{
    s1ctl_db_args db = {0};
    long long run;
    const s1ctl_flag_table tables[] = {{NULL, s1ctl_db_flags, 2, &db, NULL, NULL}};
    int n, rc = s1ctl_flags_parse(cancel ? cancel_usage : retry_usage, tables, 1, argc, argv, &n);
    if (!rc) rc = s1ctl_ids("run id", argv + 1, n, 1, 1, &run);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(db.db, &c))) return rc;
    s1_err err = {{0}};
    s1_bench_progress p;
    s1_bench_run_changed ch;
    if ((rc = s1_bench_run_progress(c, run, &p, &err)) < 0 ||
        (rc = s1_bench_run_change(c, run, cancel, &ch, &err)) < 0)
        return s1ctl_fail(s1ctl_store_exit(rc), "%s", err.msg);
    return print_changed(run, cancel, &ch, db.json);
}

int s1ctl_bench_cancel(int argc, char **argv)
{
    return change_run(argc, argv, true);
}

int s1ctl_bench_retry(int argc, char **argv)
{
    return change_run(argc, argv, false);
}
