/* cli/commands.h — the subcommands of s1ctl and its exit codes. Each command
 * takes its own argv (argv[0] is the command name) and returns an exit code. */
#ifndef S1CTL_COMMANDS_H
#define S1CTL_COMMANDS_H

enum {
    S1CTL_EXIT_OK = 0,
    S1CTL_EXIT_FAILED = 1,    /* the operation ran and failed (e.g. the job failed) */
    S1CTL_EXIT_USAGE = 2,     /* bad flags or bad input (file, value) */
    S1CTL_EXIT_DB = 3,        /* the database cannot be reached or refused a statement */
    S1CTL_EXIT_SCHEMA = 4,    /* the schema is missing or older than this s1ctl: run `s1ctl migrate` */
    S1CTL_EXIT_NOT_FOUND = 5, /* no such job */
    S1CTL_EXIT_MODEL = 6,     /* the model directory cannot be used */
};

/* Commands that run the engine in-process (cli/generate.c, cli/tokenize.c). */
int s1ctl_generate(int argc, char **argv);
int s1ctl_tokenize(int argc, char **argv);

#endif
