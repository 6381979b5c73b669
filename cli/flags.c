#include "flags.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "job.h"
#include "util.h"

/* A flag found in the tables: the entry and where its value goes. */
typedef struct {
    const s1ctl_flag *flag;
    void *target;
} found;

/* --help is every command's, without an entry in its tables. */
static const s1ctl_flag help_flag = {"help", NULL, "this text", NULL, 0, S1_PARAM_NONE, 0, 0};

static bool omitted(const s1ctl_flag_table *t, const char *name)
{
    for (const char *const *o = t->omit; o && *o; o++)
        if (!strcmp(*o, name)) return true;
    return false;
}

/* Calls visit on every flag the command takes, then on --help when
 * with_help; stops at the first nonzero answer and returns it. */
static int each_flag(const s1ctl_flag_table *tables, int n_tables, bool with_help,
                     int (*visit)(const s1ctl_flag *f, void *target, void *ud), void *ud)
{
    for (int t = 0; t < n_tables; t++)
        for (size_t i = 0; i < tables[t].n; i++) {
            const s1ctl_flag *f = &tables[t].flags[i];
            if (omitted(&tables[t], f->name)) continue;
            int rc = visit(f, (char *)tables[t].base + f->offset, ud);
            if (rc) return rc;
        }
    return with_help ? visit(&help_flag, NULL, ud) : 0;
}

/* What a name given on the command line matches: the exact flag, or every
 * flag it is a prefix of. */
typedef struct {
    const char *name;
    size_t len;
    found exact;
    found prefixed[64];
    int n_prefixed;
} match;

static int match_flag(const s1ctl_flag *f, void *target, void *ud)
{
    match *m = ud;
    if (strncmp(f->name, m->name, m->len)) return 0;
    if (!f->name[m->len])
        m->exact = (found){f, target};
    else if (m->n_prefixed < 64)
        m->prefixed[m->n_prefixed++] = (found){f, target};
    return 0;
}

size_t s1ctl_edit_distance(const char *a, const char *b)
{
    size_t n = strlen(b), row[64];
    if (n >= 64) n = 63;
    for (size_t j = 0; j <= n; j++)
        row[j] = j;
    for (size_t i = 1; a[i - 1]; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= n; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[n];
}

/* The flag to suggest for an unknown name: the nearest by edit distance
 * when near enough to be a typo, else one whose value or help names the
 * word (--svg finds --plot FILE.svg). */
typedef struct {
    char word[64];
    const s1ctl_flag *best;
    size_t distance;
    const s1ctl_flag *mentions;
} suggestion;

static bool mentions(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text; text && n >= 3 && *p; p++)
        if (!strncasecmp(p, word, n)) return true;
    return false;
}

static int suggest_flag(const s1ctl_flag *f, void *target, void *ud)
{
    (void)target;
    suggestion *s = ud;
    size_t d = s1ctl_edit_distance(s->word, f->name);
    if (d < s->distance) {
        s->distance = d;
        s->best = f;
    }
    if (!s->mentions && (mentions(f->value, s->word) || mentions(f->help, s->word)))
        s->mentions = f;
    return 0;
}

static int unknown_flag(const s1ctl_flag_table *tables, int n_tables, const char *name, size_t len)
{
    suggestion s = {.distance = SIZE_MAX};
    snprintf(s.word, sizeof s.word, "%.*s", (int)len, name);
    each_flag(tables, n_tables, true, suggest_flag, &s);
    const s1ctl_flag *hint = s.distance <= (len < 6 ? 2 : len / 3) ? s.best : s.mentions;
    if (hint)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "unknown flag --%s (did you mean --%s?)", s.word,
                          hint->name);
    return s1ctl_fail(S1CTL_EXIT_USAGE, "unknown flag --%s (see s1ctl %s --help)", s.word,
                      s1ctl_command());
}

/* A flag of a shared table that this command leaves out, named in full, is
 * refused with the command's reason rather than read as a prefix of another
 * (bench run's --budget is not --budgets). */
static int left_out(const s1ctl_flag_table *tables, int n_tables, const char *name, size_t len)
{
    for (int t = 0; t < n_tables; t++)
        for (const char *const *o = tables[t].omit; tables[t].omit_why && o && *o; o++)
            if (strlen(*o) == len && !strncmp(*o, name, len))
                return s1ctl_fail(S1CTL_EXIT_USAGE, "flag --%s is not taken by s1ctl %s: %s", *o,
                                  s1ctl_command(), tables[t].omit_why);
    return 0;
}

/* Resolves the name (len bytes) to one flag: 0, or the exit code after
 * saying why not. */
static int resolve(const s1ctl_flag_table *tables, int n_tables, const char *name, size_t len,
                   found *out)
{
    int rc = left_out(tables, n_tables, name, len);
    if (rc) return rc;
    match m = {.name = name, .len = len};
    each_flag(tables, n_tables, true, match_flag, &m);
    if (m.exact.flag)
        *out = m.exact;
    else if (m.n_prefixed == 1)
        *out = m.prefixed[0];
    else if (m.n_prefixed == 0)
        return unknown_flag(tables, n_tables, name, len);
    else {
        char list[1024] = "";
        for (int i = 0, o = 0; i < m.n_prefixed && o < (int)sizeof list; i++)
            o += snprintf(list + o, sizeof list - (size_t)o, "%s--%s", i ? ", " : "",
                          m.prefixed[i].flag->name);
        return s1ctl_fail(S1CTL_EXIT_USAGE, "flag --%.*s is ambiguous: %s", (int)len, name, list);
    }
    return 0;
}

/* Help column where the flags' texts begin. */
#define HELP_COLUMN 22

static int print_flag(const s1ctl_flag *f, void *target, void *ud)
{
    (void)target;
    (void)ud;
    char head[64];
    snprintf(head, sizeof head, "--%s%s%s", f->name, f->value ? " " : "", f->value ? f->value : "");
    printf("  %-*s ", HELP_COLUMN - 3, head);
    if (strlen(head) > HELP_COLUMN - 3) printf("\n%*s", HELP_COLUMN, "");
    for (const char *p = f->help; *p; p++) {
        putchar(*p);
        if (*p == '\n') printf("%*s", HELP_COLUMN, "");
    }
    putchar('\n');
    return 0;
}

/* The usage, then each table's flags under its heading; --help last. */
static void print_help(const char *usage, const s1ctl_flag_table *tables, int n_tables)
{
    fputs(usage, stdout);
    for (int t = 0; t < n_tables; t++) {
        if (tables[t].title) printf("\n%s\n", tables[t].title);
        each_flag(&tables[t], 1, false, print_flag, NULL);
    }
    print_flag(&help_flag, NULL, NULL);
}

/* One word that begins with "-": the flag it names, with its value (the
 * rest after '=', else the next word). 0; -1 after help; or the exit code. */
static int parse_flag(const s1ctl_flag_table *tables, int n_tables, const char *usage, int argc,
                      char **argv, int *i)
{
    const char *word = argv[*i];
    if (!strcmp(word, "-h")) word = "--help";
    if (word[1] != '-')
        return s1ctl_fail(S1CTL_EXIT_USAGE, "unknown flag %s (see s1ctl %s --help)", word,
                          s1ctl_command());
    const char *name = word + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    found f;
    int rc = resolve(tables, n_tables, name, len, &f);
    if (rc) return rc;
    if (f.flag == &help_flag) {
        print_help(usage, tables, n_tables);
        return -1;
    }
    const char *arg = eq ? eq + 1 : NULL;
    if (f.flag->value && !arg) {
        if (*i + 1 >= argc)
            return s1ctl_fail(S1CTL_EXIT_USAGE, "flag --%s needs a value (%s)", f.flag->name,
                              f.flag->value);
        arg = argv[++*i];
    }
    if (!f.flag->value && arg)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "flag --%s takes no value", f.flag->name);
    return f.flag->set(f.flag, arg, f.target) < 0 ? S1CTL_EXIT_USAGE : 0;
}

int s1ctl_flags_parse(const char *usage, const s1ctl_flag_table *tables, int n_tables, int argc,
                      char **argv, int *n_args)
{
    int k = 0;
    bool flags_end = false;
    for (int i = 1; i < argc; i++) {
        if (!flags_end && !strcmp(argv[i], "--")) {
            flags_end = true;
            continue;
        }
        /* Positionals move down in place: k never passes i. */
        if (flags_end || argv[i][0] != '-' || !argv[i][1]) {
            argv[++k] = argv[i];
            continue;
        }
        int rc = parse_flag(tables, n_tables, usage, argc, argv, &i);
        if (rc) return rc;
    }
    *n_args = k;
    return 0;
}

/* ---- setters ---- */

int s1ctl_set_switch(const s1ctl_flag *f, const char *arg, void *target)
{
    (void)f;
    (void)arg;
    *(int *)target = 1;
    return 0;
}

int s1ctl_set_bool(const s1ctl_flag *f, const char *arg, void *target)
{
    (void)f;
    (void)arg;
    *(bool *)target = true;
    return 0;
}

int s1ctl_set_string(const s1ctl_flag *f, const char *arg, void *target)
{
    (void)f;
    *(const char **)target = arg;
    return 0;
}

/* What s1ctl stores goes to text or JSON columns, which take UTF-8 only. */
int s1ctl_set_text(const s1ctl_flag *f, const char *arg, void *target)
{
    char name[64];
    snprintf(name, sizeof name, "--%s", f->name);
    return s1ctl_text_flag(name, arg, (const char **)target) < 0 ? -1 : 0;
}

int s1ctl_set_nonempty(const s1ctl_flag *f, const char *arg, void *target)
{
    if (!*arg) return s1ctl_fail(-1, "--%s: must not be empty", f->name);
    return s1ctl_set_text(f, arg, target);
}

int s1ctl_set_queue(const s1ctl_flag *f, const char *arg, void *target)
{
    s1_err err = {{0}};
    if (s1ctl_set_text(f, arg, target) < 0) return -1;
    if (s1_job_queue_check(arg, &err) < 0) return s1ctl_fail(-1, "--%s: %s", f->name, err.msg);
    *(const char **)target = arg;
    return 0;
}

/* A whole-word integer: 0 with *v, else -1 (no message). */
static int read_int(const char *s, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return *s && !*end && !errno ? 0 : -1;
}

int s1ctl_set_long(const s1ctl_flag *f, const char *arg, void *target)
{
    char name[64];
    snprintf(name, sizeof name, "--%s", f->name);
    return s1ctl_parse_int(name, arg, f->lo, f->hi, (long long *)target);
}

int s1ctl_set_int(const s1ctl_flag *f, const char *arg, void *target)
{
    long long v;
    if (s1ctl_set_long(f, arg, &v) < 0) return -1;
    *(int *)target = (int)v;
    return 0;
}

int s1ctl_set_param_int(const s1ctl_flag *f, const char *arg, void *target)
{
    const s1_param_rule *r = s1_param_rule_of(f->param);
    long long v;
    if (read_int(arg, &v) < 0)
        return s1ctl_fail(-1, "--%s: '%s' is not an integer from %lld to %lld", f->name, arg, r->lo,
                          r->hi);
    s1_err err = {{0}};
    if (s1_param_check_int(f->param, v, true, &err) < 0) return s1ctl_fail(-1, "%s", err.msg);
    *(int *)target = (int)v;
    return 0;
}

int s1ctl_set_param_real(const s1ctl_flag *f, const char *arg, void *target)
{
    const s1_param_rule *r = s1_param_rule_of(f->param);
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    s1_err err = {{0}};
    if (!*arg || *end || errno)
        return s1ctl_fail(-1, "--%s: '%s' is not a number in %c%g, %g]", f->name, arg,
                          r->lo_open ? '(' : '[', r->lo_real, r->hi_real);
    if (s1_param_check_real(f->param, v, true, &err) < 0) return s1ctl_fail(-1, "%s", err.msg);
    *(float *)target = (float)v;
    return 0;
}

int s1ctl_set_double(const s1ctl_flag *f, const char *arg, void *target)
{
    char name[64];
    snprintf(name, sizeof name, "--%s", f->name);
    return s1ctl_parse_double(name, arg, (double)f->lo, (double)f->hi, (double *)target);
}

int s1ctl_set_timeout(const s1ctl_flag *f, const char *arg, void *target)
{
    (void)f;
    return s1ctl_parse_timeout(arg, (double *)target);
}

const s1ctl_flag s1ctl_db_flags[2] = {
    {"db", "CONNINFO", "database (default $DATABASE_URL, then libpq's PG* variables)",
     s1ctl_set_string, offsetof(s1ctl_db_args, db)},
    {"json", NULL, "print JSON", s1ctl_set_switch, offsetof(s1ctl_db_args, json)},
};
