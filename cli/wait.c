/* s1ctl wait: follows a job until it ends, woken by NOTIFY s1_progress. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "ctl.h"
#include "db.h"
#include "util.h"

/* A missed notification (the daemon died mid-write) costs at most this long. */
#define POLL_MS   5000
#define BAR_WIDTH 30
/* The longest --timeout: far beyond any job, and its milliseconds fit a long long. */
#define TIMEOUT_MAX 1e9

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

s1ctl_deadline s1ctl_deadline_in(double timeout)
{
    s1ctl_deadline d = {.timeout = timeout};
    if (timeout > 0) d.until_ms = now_ms() + (long long)ceil(timeout * 1000);
    return d;
}

/* Milliseconds left before the deadline (0 once it passed), or -1 for none. */
static long long left_ms(const s1ctl_deadline *d)
{
    if (!d || d->timeout <= 0) return -1;
    long long left = d->until_ms - now_ms();
    return left > 0 ? left : 0;
}

int s1ctl_parse_timeout(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v <= 0 || v > TIMEOUT_MAX) {
        s1ctl_fail(S1CTL_EXIT_USAGE,
                   "--timeout: '%s' is not a number of seconds above 0 and at most %.0f", s,
                   TIMEOUT_MAX);
        return -1;
    }
    *out = v;
    return 0;
}

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

/* Blocks until a notification about job id arrives, POLL_MS pass or the
 * deadline does. */
static int wait_notify(PGconn *c, long long id, const s1ctl_deadline *d, s1_err *err)
{
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    while (!drain_notifies(c, id)) {
        long long left = left_ms(d);
        if (left == 0) return 0;
        int n = poll(&pfd, 1, left > 0 && left < POLL_MS ? (int)left : POLL_MS);
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

/* The last word when the deadline passed before the job ended; the object
 * gains "timed_out": true. */
static int give_up(long long id, const s1_ctl_progress *p, const s1ctl_deadline *d, int tty,
                   int json)
{
    if (json) {
        s1ctl_print_json(json_pack("{s:I,s:s,s:i,s:i,s:s?,s:b}", "id", (json_int_t)id, "state",
                                   p->state, "thinking", p->thinking, "budget", p->budget, "error",
                                   *p->error ? p->error : NULL, "timed_out", 1));
    } else {
        if (tty) printf("\n");
        /* A job still queued is one no daemon took: the likely fix is to start one. */
        printf("job %lld is still %s after %.10g s%s\n", id, p->state, d->timeout,
               !strcmp(p->state, "queued") ? " (no daemon has claimed it)" : "");
    }
    fflush(stdout);
    return S1CTL_EXIT_TIMEOUT;
}

int s1ctl_wait_job(PGconn *c, long long id, int json, const s1ctl_deadline *deadline)
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
        /* Checked after the read, so a job that ended in time never times out. */
        if (left_ms(deadline) == 0) return give_up(id, &p, deadline, tty, json);
        show(id, &p, &last, tty, json);
        if (wait_notify(c, id, deadline, &err) < 0) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    }
}

static const char wait_usage[] =
    "Usage: s1ctl wait [--timeout SECONDS] [--json] [--db CONNINFO] ID\n"
    "Follows job ID until it ends: a progress bar of thinking tokens against the budget\n"
    "on a terminal, a line per change otherwise. Exit 0 when it succeeded, 1 when it\n"
    "failed or was cancelled, 7 when --timeout passed first.\n\n"
    "  --timeout SECONDS   give up after SECONDS (a positive number; default: never),\n"
    "                      printing the state the job is still in\n"
    "  --json              print one JSON object when the job ends or the wait times out\n"
    "  --db CONNINFO       database (default $DATABASE_URL, then libpq's PG* variables)\n"
    "  --help              this text\n";

/* The flags and the job id; 0, -1 after --help, or the exit code after
 * printing why. */
static int parse_args(int argc, char **argv, const char **db, int *json, double *timeout,
                      long long *id)
{
    static const struct option options[] = {
        {"timeout", required_argument, NULL, 't'},
        {"db", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (o) {
        case 't':
            if (s1ctl_parse_timeout(optarg, timeout) < 0) return S1CTL_EXIT_USAGE;
            break;
        case 'd':
            *db = optarg;
            break;
        case 'j':
            *json = 1;
            break;
        case 'h':
            fputs(wait_usage, stdout);
            return -1;
        default:
            return s1ctl_bad_flag(argv, o);
        }
    }
    return s1ctl_one_id(argc, argv, id);
}

int s1ctl_wait(int argc, char **argv)
{
    const char *db = NULL;
    int json = 0;
    double timeout = 0;
    long long id;
    int rc = parse_args(argc, argv, &db, &json, &timeout, &id);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(db, &c))) return rc;
    /* The clock starts once connected: --timeout bounds the wait, not the connect. */
    s1ctl_deadline deadline = s1ctl_deadline_in(timeout);
    return s1ctl_wait_job(c, id, json, &deadline);
}
