/* s1ctl wait: follows a job until it ends, woken by NOTIFY s1_progress. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "ctl.h"
#include "db.h"
#include "util.h"

/* A missed notification (the daemon died mid-write) costs at most this long. */
#define POLL_MS   5000
#define BAR_WIDTH 30

static int ended(const s1_ctl_progress *p)
{
    return !strcmp(p->state, "succeeded") || !strcmp(p->state, "failed") ||
           !strcmp(p->state, "cancelled");
}

/* Redraws the terminal's progress line in place. */
static void draw_bar(long long id, const s1_ctl_progress *p)
{
    char bar[BAR_WIDTH + 1];
    int filled = p->budget > 0 ? (int)((long long)p->thinking * BAR_WIDTH / p->budget) : 0;
    if (filled > BAR_WIDTH) filled = BAR_WIDTH;
    memset(bar, '#', (size_t)filled);
    memset(bar + filled, '-', (size_t)(BAR_WIDTH - filled));
    bar[BAR_WIDTH] = '\0';
    if (p->budget > 0)
        printf("\r\033[Kjob %lld %-9s [%s] %d/%d thinking tokens", id, p->state, bar, p->thinking,
               p->budget);
    else
        printf("\r\033[Kjob %lld %-9s %d thinking tokens", id, p->state, p->thinking);
    fflush(stdout);
}

/* Plain lines (stdout is a file or a pipe): one per change. */
static void print_line(long long id, const s1_ctl_progress *p)
{
    if (p->budget > 0)
        printf("job %lld: %s, %d/%d thinking tokens\n", id, p->state, p->thinking, p->budget);
    else
        printf("job %lld: %s, %d thinking tokens\n", id, p->state, p->thinking);
    fflush(stdout);
}

/* Shows p unless it is what was shown last. */
static void show(long long id, const s1_ctl_progress *p, s1_ctl_progress *last, int tty, int json)
{
    if (json || (!strcmp(p->state, last->state) && p->thinking == last->thinking)) return;
    *last = *p;
    if (tty)
        draw_bar(id, p);
    else
        print_line(id, p);
}

/* Whether a notification about job id is waiting in libpq's buffer (they
 * also arrive during queries); consumes all of them. */
static int drain_notifies(PGconn *c, long long id)
{
    PGnotify *note;
    int ours = 0;
    while ((note = PQnotifies(c))) {
        ours |= strtoll(note->extra, NULL, 10) == id;
        PQfreemem(note);
    }
    return ours;
}

/* Blocks until a notification about job id arrives or POLL_MS pass. */
static int wait_notify(PGconn *c, long long id, s1_err *err)
{
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    while (!drain_notifies(c, id)) {
        int n = poll(&pfd, 1, POLL_MS);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return s1_errf(err, "waiting for job %lld: %s", id, strerror(errno));
        if (n == 0) return 0;
        if (!PQconsumeInput(c)) return s1_db_errf(err, c, NULL, "waiting for job %lld", id);
    }
    return 0;
}

/* The last word: one line, or the JSON object. */
static int finish(long long id, const s1_ctl_progress *p, int tty, int json)
{
    int ok = !strcmp(p->state, "succeeded");
    if (json) {
        s1ctl_print_json(json_pack("{s:I,s:s,s:i,s:i,s:s?}", "id", (json_int_t)id, "state",
                                   p->state, "thinking", p->thinking, "budget", p->budget, "error",
                                   *p->error ? p->error : NULL));
    } else {
        if (tty) printf("\n");
        printf("job %lld %s%s%s\n", id, p->state, *p->error ? ": " : "", p->error);
    }
    fflush(stdout);
    return ok ? S1CTL_EXIT_OK : S1CTL_EXIT_FAILED;
}

int s1ctl_wait_job(PGconn *c, long long id, int json)
{
    s1_err err = {{0}};
    s1_ctl_progress p, last = {{0}};
    int tty = isatty(STDOUT_FILENO);
    /* LISTEN before the first read, so no change after that read is missed. */
    if (s1_ctl_listen_progress(c, &err) < 0) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    for (;;) {
        int rc = s1_ctl_progress_get(c, id, &p, &err);
        if (rc < 0) return s1ctl_fail(s1ctl_store_exit(rc), "%s", err.msg);
        if (ended(&p)) return finish(id, &p, tty, json);
        show(id, &p, &last, tty, json);
        if (wait_notify(c, id, &err) < 0) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    }
}

static const char wait_usage[] =
    "Usage: s1ctl wait [--json] [--db CONNINFO] ID\n"
    "Follows job ID until it ends: a progress bar of thinking tokens against the budget\n"
    "on a terminal, a line per change otherwise. Exit 0 when it succeeded, 1 when it\n"
    "failed or was cancelled.\n\n"
    "  --json              print one JSON object when the job ends\n"
    "  --db CONNINFO       database (default $DATABASE_URL, then libpq's PG* variables)\n"
    "  --help              this text\n";

int s1ctl_wait(int argc, char **argv)
{
    const char *db = NULL;
    int json = 0;
    long long id;
    int rc = s1ctl_id_args(argc, argv, wait_usage, &db, &json, &id);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(db, &c))) return rc;
    return s1ctl_wait_job(c, id, json);
}
