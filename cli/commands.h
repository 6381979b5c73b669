/* cli/commands.h — the subcommands of s1ctl and its exit codes. Each command
 * takes its own argv (argv[0] is the command name) and returns an exit code. */
#ifndef S1CTL_COMMANDS_H
#define S1CTL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "err.h"

enum {
    S1CTL_EXIT_OK = 0,
    S1CTL_EXIT_FAILED = 1, /* the operation ran and failed (e.g. the job failed) */
    S1CTL_EXIT_USAGE = 2,  /* bad flags or bad input (file, value) */
    S1CTL_EXIT_DB = 3,     /* the database cannot be reached or refused a statement */
    S1CTL_EXIT_SCHEMA = 4, /* the schema is missing or older than this s1ctl: run `s1ctl migrate` */
    S1CTL_EXIT_NOT_FOUND = 5, /* no such job, suite or benchmark run */
    S1CTL_EXIT_MODEL = 6,     /* the model directory cannot be used */
    S1CTL_EXIT_TIMEOUT = 7,   /* --timeout passed before the job ended */
};

/* Commands on the queue (cli/submit.c, cli/jobs.c, cli/wait.c, cli/migrate.c). */
int s1ctl_submit(int argc, char **argv);
int s1ctl_show(int argc, char **argv);
int s1ctl_list(int argc, char **argv);
int s1ctl_result(int argc, char **argv);
int s1ctl_cancel(int argc, char **argv);
int s1ctl_retry(int argc, char **argv);
int s1ctl_wait(int argc, char **argv);
int s1ctl_migrate(int argc, char **argv);

/* Commands that run the engine in-process (cli/generate.c, cli/tokenize.c). */
int s1ctl_generate(int argc, char **argv);
int s1ctl_tokenize(int argc, char **argv);

/* Benchmarks (cli/suite.c, cli/bench.c): `suite import|list|show` and
 * `bench run|report|list`, each dispatching to its subcommands. */
int s1ctl_suite(int argc, char **argv);
int s1ctl_suite_import(int argc, char **argv);
int s1ctl_suite_list(int argc, char **argv);
int s1ctl_suite_show(int argc, char **argv);
int s1ctl_bench(int argc, char **argv);
int s1ctl_bench_run(int argc, char **argv);
int s1ctl_bench_report(int argc, char **argv);
int s1ctl_bench_list(int argc, char **argv);
int s1ctl_bench_regrade(int argc, char **argv);
int s1ctl_bench_compare(int argc, char **argv);
int s1ctl_bench_wait(int argc, char **argv);
int s1ctl_bench_cancel(int argc, char **argv);
int s1ctl_bench_retry(int argc, char **argv);
int s1ctl_export(int argc, char **argv);

/* A subcommand of a command group: its word, the name messages use ("suite
 * import") and its entry point. */
typedef struct {
    const char *name;
    const char *command;
    int (*run)(int argc, char **argv);
} s1ctl_sub;

/* Runs the subcommand named by argv[1] (argv[0] is the group's word) with
 * argv + 1; prints help for --help, and one line for an unknown word. */
int s1ctl_subcommand(const char *group, const s1ctl_sub *subs, size_t n, const char *help, int argc,
                     char **argv);

/* When waiting gives up: timeout seconds after the deadline was set (on
 * CLOCK_MONOTONIC, in ms). timeout 0 waits forever. One deadline covers all
 * the jobs of `submit --wait`. */
typedef struct {
    double timeout;
    long long until_ms;
} s1ctl_deadline;

/* A deadline timeout seconds from now (0: none). */
s1ctl_deadline s1ctl_deadline_in(double timeout);

/* Milliseconds left before the deadline (0 once it passed), or -1 for none. */
long long s1ctl_deadline_left_ms(const s1ctl_deadline *d);

/* Blocks until a progress notification arrives (NOTIFY s1_progress, after
 * s1_ctl_listen_progress) whose job ours accepts (any, when ours is NULL),
 * most_ms pass, or the deadline comes. 0, or -1 with err. */
int s1ctl_wait_notify(PGconn *c, int (*ours)(long long id, void *ud), void *ud, long long most_ms,
                      const s1ctl_deadline *d, s1_err *err);

/* Follows benchmark run run until none of its jobs is pending (cli/runs.c,
 * for `bench wait` and `bench run --wait`): lines as jobs end (none with
 * quiet), then the counts, or JSON. 0 when every job succeeded, 1 when one
 * did not, 7 when the deadline passed first. */
int s1ctl_follow_run(PGconn *c, long long run, bool json, bool quiet,
                     const s1ctl_deadline *deadline);

/* Parses the value of --timeout: a positive number of seconds; prints why
 * not and returns -1. */
int s1ctl_parse_timeout(const char *s, double *out);

/* How `wait` and `submit --wait` show progress: JSON at the end; only the
 * last lines; progress lines (not on a terminal) at most every interval s. */
typedef struct {
    int json, quiet;
    double interval;
} s1ctl_wait_opts;

#define S1CTL_WAIT_INTERVAL 10.0

/* Follows the jobs until they end (bars redrawn on a terminal, lines
 * otherwise, JSON at the end with json); 0 when all succeeded, 1 when one
 * failed or was cancelled, 7 when the deadline passed first (a last line or
 * object says in which state). Shared by `wait` and `submit --wait`. */
int s1ctl_wait_jobs(PGconn *c, const long long *ids, int n, const s1ctl_wait_opts *o,
                    const s1ctl_deadline *deadline);

#endif
