/* cli/commands.h — the subcommands of s1ctl and its exit codes. Each command
 * takes its own argv (argv[0] is the command name) and returns an exit code. */
#ifndef S1CTL_COMMANDS_H
#define S1CTL_COMMANDS_H

#include <libpq-fe.h>

enum {
    S1CTL_EXIT_OK = 0,
    S1CTL_EXIT_FAILED = 1, /* the operation ran and failed (e.g. the job failed) */
    S1CTL_EXIT_USAGE = 2,  /* bad flags or bad input (file, value) */
    S1CTL_EXIT_DB = 3,     /* the database cannot be reached or refused a statement */
    S1CTL_EXIT_SCHEMA = 4, /* the schema is missing or older than this s1ctl: run `s1ctl migrate` */
    S1CTL_EXIT_NOT_FOUND = 5, /* no such job */
    S1CTL_EXIT_MODEL = 6,     /* the model directory cannot be used */
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

/* Follows job id until it ends (progress bar on a terminal, lines otherwise,
 * one JSON object with json); 0 when it succeeded, 1 when it failed or was
 * cancelled. Shared by `wait` and `submit --wait`. */
int s1ctl_wait_job(PGconn *c, long long id, int json);

#endif
