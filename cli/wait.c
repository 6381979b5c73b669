/* s1ctl wait: follows a job until it ends, woken by NOTIFY s1_progress. */
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "flags.h"
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

long long s1ctl_deadline_left_ms(const s1ctl_deadline *d)
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

/* One job being followed: what was read last, what was shown last, and the
 * first reading of its generation, for the rate. */
typedef struct {
    long long id;
    s1_ctl_progress p, shown;
    int done;           /* its last word is said */
    int code;           /* its exit code once done */
    long long rate_ms;  /* when generation was first seen running, 0 before */
    int rate_tokens;    /* tokens generated then */
    long long shown_ms; /* when a line about it was printed last */
    int checked;        /* whether a live daemon serves it was asked */
} watched;

/* The jobs a notification may be about. */
typedef struct {
    const watched *ws;
    int n;
} watched_set;

/* How to show: bars redrawn on a terminal, plain lines otherwise (a change
 * of state at once, progress at most every interval_ms), nothing but the
 * last word with quiet, one JSON value with json. */
typedef struct {
    int tty, json, quiet;
    long long interval_ms;
    int drawn; /* bar lines on the terminal below which the cursor sits */
} display;

/* Tokens per second since the job was first seen generating; 0 until known. */
static double rate(const watched *w)
{
    long long ms = now_ms() - w->rate_ms;
    return w->rate_ms && ms >= 500 ? (w->p.generated - w->rate_tokens) * 1000.0 / (double)ms : 0;
}

/* ", 41 tokens/s, at most 12 s of thinking left" when the rate is known. */
static void speed_text(char *buf, size_t cap, const watched *w)
{
    double r = rate(w);
    int left = w->p.budget - w->p.thinking;
    if (r <= 0)
        *buf = '\0';
    else if (w->p.budget > 0 && left > 0)
        snprintf(buf, cap, ", %.0f tokens/s, at most %.0f s of thinking left", r, left / r);
    else
        snprintf(buf, cap, ", %.0f tokens/s", r);
}

/* The thinking part: "[####------] 50/100 thinking tokens" with a budget. */
static void progress_text(char *buf, size_t cap, const watched *w, int bar)
{
    const s1_ctl_progress *p = &w->p;
    char b[BAR_WIDTH + 1] = "";
    if (bar && p->budget > 0) {
        int filled = (int)((long long)p->thinking * BAR_WIDTH / p->budget);
        if (filled > BAR_WIDTH) filled = BAR_WIDTH;
        memset(b, '#', (size_t)filled);
        memset(b + filled, '-', (size_t)(BAR_WIDTH - filled));
        b[BAR_WIDTH] = '\0';
    }
    int n = p->budget > 0 ? snprintf(buf, cap, "%s%s%s%d/%d thinking tokens", bar ? "[" : "", b,
                                     bar ? "] " : "", p->thinking, p->budget)
                          : snprintf(buf, cap, "%d thinking tokens", p->thinking);
    /* Past thinking (the answer phase, or forced text) the count goes on. */
    if (n > 0 && (size_t)n < cap && p->generated > p->thinking)
        snprintf(buf + n, cap - (size_t)n, ", %d generated", p->generated);
}

/* A job's terminal line (no line break): its bar, or its last word. */
static void bar_line(const watched *w)
{
    char prog[128], speed[96];
    if (w->done) {
        printf("\r\033[Kjob %lld %s%s%s", w->id, w->p.state, *w->p.error ? ": " : "", w->p.error);
        return;
    }
    progress_text(prog, sizeof prog, w, 1);
    speed_text(speed, sizeof speed, w);
    printf("\r\033[Kjob %lld %-9s %s%s", w->id, w->p.state, prog, speed);
}

/* Redraws every job's line in place: up to the first line, then each. */
static void draw_bars(display *d, const watched *ws, int n)
{
    if (d->drawn > 1) printf("\033[%dA", d->drawn - 1);
    for (int i = 0; i < n; i++) {
        bar_line(&ws[i]);
        if (i + 1 < n) printf("\n");
    }
    d->drawn = n;
    fflush(stdout);
}

/* A plain line when the state changed, or progress did and the last line
 * about the job is interval_ms old. */
static void print_line(display *d, watched *w)
{
    int state_changed = strcmp(w->p.state, w->shown.state) != 0;
    int progressed = w->p.thinking != w->shown.thinking || w->p.generated != w->shown.generated;
    if (!state_changed && (!progressed || now_ms() - w->shown_ms < d->interval_ms)) return;
    char prog[128], speed[96];
    progress_text(prog, sizeof prog, w, 0);
    speed_text(speed, sizeof speed, w);
    printf("job %lld: %s, %s%s\n", w->id, w->p.state, prog, speed);
    fflush(stdout);
    w->shown = w->p;
    w->shown_ms = now_ms();
}

/* The last word of a job as a line. */
static void say_done(const watched *w, const s1ctl_deadline *dl)
{
    if (w->code == S1CTL_EXIT_TIMEOUT)
        /* A job still queued is one no daemon took: the likely fix is to start one. */
        printf("job %lld is still %s after %.10g s%s\n", w->id, w->p.state, dl->timeout,
               !strcmp(w->p.state, "queued") ? " (no daemon has claimed it)" : "");
    else
        printf("job %lld %s%s%s\n", w->id, w->p.state, *w->p.error ? ": " : "", w->p.error);
    fflush(stdout);
}

static json_t *job_json(const watched *w)
{
    json_t *o = json_pack("{s:I,s:s,s:i,s:i,s:i,s:s?}", "id", (json_int_t)w->id, "state",
                          w->p.state, "thinking", w->p.thinking, "generated", w->p.generated,
                          "budget", w->p.budget, "error", *w->p.error ? w->p.error : NULL);
    if (w->code == S1CTL_EXIT_TIMEOUT) json_object_set_new(o, "timed_out", json_true());
    return o;
}

/* The end of the wait: the terminal's bars with their last words (and why
 * a job was given up on), or the JSON value (an object for one job, an array
 * for several). The worst exit wins. */
static int conclude(display *d, const watched *ws, int n, const s1ctl_deadline *dl)
{
    int worst = S1CTL_EXIT_OK;
    for (int i = 0; i < n; i++)
        if (ws[i].code > worst) worst = ws[i].code;
    if (d->tty && !d->json && !d->quiet) {
        draw_bars(d, ws, n);
        printf("\n");
        for (int i = 0; i < n; i++)
            if (ws[i].code == S1CTL_EXIT_TIMEOUT) say_done(&ws[i], dl);
    }
    if (d->json) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(arr, job_json(&ws[i]));
        json_t *out = n == 1 ? json_incref(json_array_get(arr, 0)) : json_incref(arr);
        json_decref(arr);
        s1ctl_print_json(out);
    }
    fflush(stdout);
    return worst;
}

/* Whether the notified job is one of the watched jobs not done yet. */
static int watched_job(long long id, void *ud)
{
    const watched_set *set = ud;
    for (int i = 0; i < set->n; i++)
        if (set->ws[i].id == id && !set->ws[i].done) return 1;
    return 0;
}

/* Whether a notification that ours accepts waits in libpq's buffer (they
 * arrive with any result, so check before blocking). */
static int drain_notifies(PGconn *c, int (*ours)(long long id, void *ud), void *ud)
{
    PGnotify *note;
    int any = 0;
    while ((note = PQnotifies(c))) {
        any |= !ours || ours(strtoll(note->extra, NULL, 10), ud);
        PQfreemem(note);
    }
    return any;
}

int s1ctl_wait_notify(PGconn *c, int (*ours)(long long id, void *ud), void *ud, long long most_ms,
                      const s1ctl_deadline *d, s1_err *err)
{
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    while (!drain_notifies(c, ours, ud)) {
        long long left = s1ctl_deadline_left_ms(d), wait = most_ms;
        if (left == 0) return 0;
        if (left > 0 && left < wait) wait = left;
        int k = poll(&pfd, 1, (int)wait);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return s1_errf(err, "waiting for jobs: %s", strerror(errno));
        if (k == 0) return 0;
        if (!PQconsumeInput(c)) return s1_db_errf(err, c, NULL, "waiting for jobs");
    }
    return 0;
}

/* Reads every job not done yet; ends those that ended or, past the
 * deadline, the rest. 0 or the exit code after printing why. */
static int read_all(PGconn *c, display *d, watched *ws, int n, const s1ctl_deadline *dl)
{
    s1_err err = {{0}};
    for (int i = 0; i < n; i++) {
        watched *w = &ws[i];
        if (w->done) continue;
        int rc = s1_ctl_progress_get(c, w->id, &w->p, &err);
        if (rc < 0) return s1ctl_fail(s1ctl_store_exit(rc), "%s", err.msg);
        if (!w->checked && !strcmp(w->p.state, "queued"))
            s1ctl_warn_unserved(c, w->p.queue, w->p.model);
        w->checked = 1;
        if (!w->rate_ms && !strcmp(w->p.state, "running"))
            w->rate_ms = now_ms(), w->rate_tokens = w->p.generated;
        /* Checked after the read, so a job that ended in time never times out. */
        if (ended(&w->p) || s1ctl_deadline_left_ms(dl) == 0) {
            w->done = 1;
            w->code = !ended(&w->p)                      ? S1CTL_EXIT_TIMEOUT
                      : !strcmp(w->p.state, "succeeded") ? S1CTL_EXIT_OK
                                                         : S1CTL_EXIT_FAILED;
            if (!d->json && (!d->tty || d->quiet)) say_done(w, dl);
        } else if (!d->tty && !d->quiet && !d->json) {
            print_line(d, w);
        }
    }
    return 0;
}

int s1ctl_wait_jobs(PGconn *c, const long long *ids, int n, const s1ctl_wait_opts *o,
                    const s1ctl_deadline *deadline)
{
    watched *ws = calloc((size_t)n, sizeof *ws);
    if (!ws) return s1ctl_fail(S1CTL_EXIT_FAILED, "out of memory");
    display d = {.tty = isatty(STDOUT_FILENO),
                 .json = o->json,
                 .quiet = o->quiet,
                 .interval_ms = (long long)(o->interval * 1000)};
    for (int i = 0; i < n; i++)
        ws[i].id = ids[i];
    s1_err err = {{0}};
    int rc = 0, left = n;
    /* LISTEN before the first read, so no change after that read is missed. */
    if (s1_ctl_listen_progress(c, &err) < 0) rc = s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    while (!rc && left > 0) {
        if ((rc = read_all(c, &d, ws, n, deadline))) break;
        left = 0;
        for (int i = 0; i < n; i++)
            left += !ws[i].done;
        if (!left) break;
        if (d.tty && !d.json && !d.quiet) draw_bars(&d, ws, n);
        long long most =
            d.tty || !d.interval_ms || d.interval_ms > POLL_MS ? POLL_MS : d.interval_ms;
        watched_set set = {ws, n};
        if (s1ctl_wait_notify(c, watched_job, &set, most, deadline, &err) < 0)
            rc = s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    }
    if (!rc) rc = conclude(&d, ws, n, deadline);
    free(ws);
    return rc;
}

/* The most jobs one wait follows. */
enum { MAX_WAIT = 64 };

static const char wait_usage[] =
    "Usage: s1ctl wait [--timeout SECONDS] [--quiet] [--interval SECONDS] [--json]\n"
    "                  [--db CONNINFO] ID...\n"
    "Follows jobs until they end. On a terminal: a line per job redrawn in place,\n"
    "with a bar of thinking tokens against the budget, the tokens generated past\n"
    "thinking (forced text and answer), tokens/s and an upper bound on the thinking\n"
    "time left. Otherwise: a line at each change of state and at most one progress\n"
    "line per --interval, then a last line per job. Exit 0 when every job succeeded,\n"
    "1 when one failed or was cancelled, 7 when --timeout passed first. --json prints\n"
    "an object for one job, an array for several, when they end or the wait times out.\n\n";

typedef struct {
    s1ctl_db_args db;
    double timeout;
    s1ctl_wait_opts o;
    long long ids[MAX_WAIT];
    int n;
} wait_args;

#define WAIT(field) offsetof(wait_args, field)

static const s1ctl_flag wait_flags[] = {
    {"timeout", "SECONDS",
     "give up after SECONDS (a positive number; default: never),\n"
     "printing the state each unfinished job is still in",
     s1ctl_set_timeout, WAIT(timeout)},
    {"quiet", NULL, "only the last line of each job", s1ctl_set_switch, WAIT(o.quiet)},
    {"interval", "SECONDS",
     "progress lines when not on a terminal at most this often\n"
     "(default 10; 0: at every change)",
     s1ctl_set_double, WAIT(o.interval), S1_PARAM_NONE, 0, 86400},
};

/* The flags and the job ids; 0, -1 after --help, or the exit code after
 * printing why. */
static int parse_args(int argc, char **argv, wait_args *a)
{
    const s1ctl_flag_table tables[] = {S1CTL_FLAGS(NULL, wait_flags, a),
                                       {NULL, s1ctl_db_flags, 2, &a->db, NULL}};
    int rc = s1ctl_flags_parse(wait_usage, tables, 2, argc, argv, &a->n);
    if (rc) return rc;
    if (a->n == 0) return s1ctl_fail(S1CTL_EXIT_USAGE, "no job id given (see s1ctl wait --help)");
    if (a->n > MAX_WAIT)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "more than %d job ids; wait for them in groups",
                          MAX_WAIT);
    a->o.json = a->db.json;
    return s1ctl_ids("job id", argv + 1, a->n, 1, MAX_WAIT, a->ids);
}

int s1ctl_wait(int argc, char **argv)
{
    wait_args a = {.o = {.interval = S1CTL_WAIT_INTERVAL}};
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db.db, &c))) return rc;
    /* The clock starts once connected: --timeout bounds the wait, not the connect. */
    s1ctl_deadline deadline = s1ctl_deadline_in(a.timeout);
    return s1ctl_wait_jobs(c, a.ids, a.n, &a.o, &deadline);
}
