/* s1ctl: the command line of s1d — submit jobs, follow and read them, manage
 * the schema, and run the engine in-process (generate, tokenize). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "db.h"
#include "log.h"
#include "s1_config.h"
#include "util.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"submit", s1ctl_submit, "queue problem files as jobs, print their ids"},
    {"show", s1ctl_show, "every field of a job"},
    {"list", s1ctl_list, "jobs, newest first"},
    {"result", s1ctl_result, "the answer(s) of a job, with --trace the whole trace"},
    {"wait", s1ctl_wait, "follow a job until it ends"},
    {"cancel", s1ctl_cancel, "cancel a queued or running job"},
    {"retry", s1ctl_retry, "queue a failed or cancelled job again"},
    {"migrate", s1ctl_migrate, "create or upgrade the database schema"},
    {"generate", s1ctl_generate, "run the engine on one problem, in-process"},
    {"tokenize", s1ctl_tokenize, "text to token ids, or back with --decode"},
    {"suite", s1ctl_suite, "benchmark suites: import a JSON-lines set, list, show"},
    {"bench", s1ctl_bench,
     "benchmark runs at a ladder of budgets: run, report, compare, wait, ..."},
    {"export", s1ctl_export, "results of a run or of jobs as JSON lines or CSV"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: s1ctl COMMAND [FLAGS] [ARGS]   (s1ctl COMMAND --help for its flags)\n\n"
               "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nThe database is --db CONNINFO, else $DATABASE_URL, else libpq's PG* variables.\n"
               "\nExit codes:\n"
               "  0  success\n"
               "  1  the operation ran and failed (the job failed or was cancelled, no result)\n"
               "  2  bad flags or bad input (file, value)\n"
               "  3  the database cannot be reached or refused a statement\n"
               "  4  the schema is missing, older or newer than s1ctl (run `s1ctl migrate`)\n"
               "  5  no such job, suite or benchmark run\n"
               "  6  the model directory cannot be used\n"
               "  7  timed out waiting: --timeout passed before the job ended\n");
}

int main(int argc, char **argv)
{
    s1_log_set_ident("s1ctl");
    if (argc < 2) {
        usage(stderr);
        return S1CTL_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return S1CTL_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("s1ctl %s (schema version %d)\n", S1_VERSION, s1_db_schema_target());
        return S1CTL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            s1ctl_set_command(commands[i].name);
            return commands[i].run(argc - 1, argv + 1);
        }
    return s1ctl_fail(S1CTL_EXIT_USAGE, "unknown %s '%s' (see s1ctl --help)",
                      argv[1][0] == '-' ? "flag" : "command", argv[1]);
}
