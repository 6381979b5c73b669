/* cli/util.h — what the s1ctl commands share: one-line messages, flag value
 * parsing, the database connection with its exit codes, and rows printed as
 * text or JSON. Messages go to stderr as "s1ctl CMD: ...". */
#ifndef S1CTL_UTIL_H
#define S1CTL_UTIL_H

#include <jansson.h>
#include <libpq-fe.h>

/* The command named in messages ("submit"); set by main. */
void s1ctl_set_command(const char *name);

/* Logs "s1ctl CMD: message" as an error (stderr) and returns code. */
__attribute__((format(printf, 2, 3))) int s1ctl_fail(int code, const char *fmt, ...);

/* The command named in messages ("bench run"). */
const char *s1ctl_command(void);

/* Parses s as an integer in [min, max]; prints why not (naming flag) and
 * returns -1. */
int s1ctl_parse_int(const char *flag, const char *s, long long min, long long max, long long *out);
/* "2048,512,1024" → 512 1024 2048: integers from min, sorted, repeats
 * dropped, so a ladder is strictly increasing; at most max_n. *n gets the
 * count; -1 after printing why the list is bad. */
int s1ctl_parse_list(const char *flag, const char *list, int min, int max_n, int *out, int *n);
enum { S1CTL_MAX_LIST = 256 }; /* the longest sorted list s1ctl_parse_list takes */

/* 0 when budget thinking tokens and the answer reserve (max_answer, else
 * the engine's default) fit the context of the models serving queue, or
 * when that is unknown (no live worker reports one) or there is no budget;
 * else the exit code after printing both numbers. */
int s1ctl_budget_fits(PGconn *c, const char *queue, const char *model, int budget, int max_answer);

int s1ctl_parse_double(const char *flag, const char *s, double min, double max, double *out);

/* A string flag's value, stored as text or JSON, both of which take UTF-8
 * only: 1 with *out = arg, or -1 after printing "FLAG: not valid UTF-8 at
 * byte N". */
int s1ctl_text_flag(const char *flag, const char *arg, const char **out);

/* A comma-separated list of integers in [min, max], at most cap of them, in
 * the order given: 0, or -1 after printing why (naming flag). */
int s1ctl_parse_int_list(const char *flag, const char *list, long long min, long long max,
                         long long *out, int cap, int *n);

/* The n positional arguments as ids of what (a "job id", a "run id"): from
 * min_n to max_n of them, into ids. 0, or the exit code after printing why. */
int s1ctl_ids(const char *what, char **args, int n, int min_n, int max_n, long long *ids);

/* Connects to --db (or DATABASE_URL, PG*) and checks the schema. 0, or the
 * exit code after printing why (unreachable: 3; schema: 4). */
int s1ctl_connect(const char *db, PGconn **out);

/* Maps a store/ return code (-1, S1_CTL_NOT_FOUND, S1_CTL_REFUSED) to an exit code. */
int s1ctl_store_exit(int rc);

/* Warns on stderr when no live s1d serves queue and model (NULL or "": any),
 * naming what the live ones serve. */
void s1ctl_warn_unserved(PGconn *c, const char *queue, const char *model);

/* A row as a JSON object, values typed after their columns (numbers,
 * booleans, json, int arrays; the rest as strings; NULL as null). */
json_t *s1ctl_row_json(const PGresult *r, int row);
/* Prints j indented on stdout and releases it. Returns the exit code: 0, or
 * 1 when j is NULL (text that is not UTF-8 cannot be JSON). */
int s1ctl_print_json(json_t *j);
/* Prints the row as "column  value" lines (NULLs skipped). */
void s1ctl_print_record(const PGresult *r, int row);
/* Prints model or user text (a trace, an answer) to stdout with control
 * characters shown as \\xNN or \\uNNNN, so no text can drive the terminal;
 * line breaks and tabs stay. --json and export give the text as it is. */
void s1ctl_print_text(const char *s);
/* Prints the rows as an aligned table with a header; long values are cut. */
void s1ctl_print_table(const PGresult *r);

#endif
