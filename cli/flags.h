/* cli/flags.h — the one flag parser of s1ctl. Each command declares its
 * flags in tables (name, value or not, help, where the value goes); the
 * parser reads argv from them and writes --help from them, so a command
 * accepts exactly the flags its help lists. A flag may be abbreviated to any
 * prefix that names one flag; an exact name wins over longer names it
 * begins (--wait is not --wait-string). An ambiguous prefix is refused with
 * its candidates, an unknown flag with the nearest name ("did you mean"). */
#ifndef S1CTL_FLAGS_H
#define S1CTL_FLAGS_H

#include <stddef.h>

#include "params.h"

typedef struct s1ctl_flag s1ctl_flag;

/* Stores arg (NULL for a switch) at target, the flag's place in the
 * command's arguments: 0, or -1 after printing why the value is bad. */
typedef int (*s1ctl_flag_set)(const s1ctl_flag *f, const char *arg, void *target);

struct s1ctl_flag {
    const char *name;  /* without the dashes: "budget" */
    const char *value; /* the value's name in help ("N"); NULL: a switch */
    const char *help;  /* its line(s) in --help; '\n' starts an indented line */
    s1ctl_flag_set set;
    size_t offset;    /* of the target in the base the command passes */
    s1_param param;   /* the range of an integer or number (store/params.h) */
    long long lo, hi; /* the range of s1ctl_set_long, for flags without a param */
};

/* A table of flags, the base its offsets are relative to, and the names of
 * flags of the table this command does not take (NULL-terminated, or NULL),
 * with the reason given when one is used anyway. */
typedef struct {
    const char *title; /* a heading in --help ("Sampling:"), or NULL */
    const s1ctl_flag *flags;
    size_t n;
    void *base;
    const char *const *omit;
    const char *omit_why; /* "a run is a ladder: give --budgets"; NULL: unknown */
} s1ctl_flag_table;

#define S1CTL_FLAGS(title, arr, base)                                                              \
    {                                                                                              \
        title, arr, sizeof arr / sizeof *arr, base, NULL, NULL                                     \
    }

/* Parses argv[1..argc) (argv[0] is the command) against the tables; the
 * words that are not flags (and every word after "--") are moved, in order,
 * to argv[1..*n_args]. 0; -1 after printing help (--help, -h: usage, then
 * the tables); or S1CTL_EXIT_USAGE after printing one line naming the flag. */
int s1ctl_flags_parse(const char *usage, const s1ctl_flag_table *tables, int n_tables, int argc,
                      char **argv, int *n_args);

/* Setters for the common kinds of value. */
int s1ctl_set_switch(const s1ctl_flag *f, const char *arg, void *target);   /* int = 1 */
int s1ctl_set_bool(const s1ctl_flag *f, const char *arg, void *target);     /* bool = true */
int s1ctl_set_string(const s1ctl_flag *f, const char *arg, void *target);   /* as given */
int s1ctl_set_text(const s1ctl_flag *f, const char *arg, void *target);     /* UTF-8 */
int s1ctl_set_nonempty(const s1ctl_flag *f, const char *arg, void *target); /* UTF-8, not "" */
int s1ctl_set_queue(const s1ctl_flag *f, const char *arg, void *target);    /* a servable name */
int s1ctl_set_long(const s1ctl_flag *f, const char *arg, void *target); /* long long in [lo, hi] */
int s1ctl_set_int(const s1ctl_flag *f, const char *arg, void *target);  /* int in [lo, hi] */
int s1ctl_set_param_int(const s1ctl_flag *f, const char *arg, void *target);  /* int, by param */
int s1ctl_set_param_real(const s1ctl_flag *f, const char *arg, void *target); /* float, by param */
int s1ctl_set_double(const s1ctl_flag *f, const char *arg, void *target);     /* in [lo, hi] */
int s1ctl_set_timeout(const s1ctl_flag *f, const char *arg, void *target);    /* double seconds */

/* The flags every database command shares, with offsets into s1ctl_db_args. */
typedef struct {
    const char *db;
    int json;
} s1ctl_db_args;

extern const s1ctl_flag s1ctl_db_flags[2]; /* --db, --json */

/* Edit distance between a and b (insertions, deletions, substitutions). */
size_t s1ctl_edit_distance(const char *a, const char *b);

#endif
