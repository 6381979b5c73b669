#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ctl.h"
#include "db.h"
#include "job.h"
#include "log.h"

static const char *command = "";

void s1ctl_set_command(const char *name)
{
    /* Log lines (ours and the engine's) then read "s1ctl submit: ...". */
    static char ident[64];
    command = name;
    snprintf(ident, sizeof ident, "s1ctl %s", name);
    s1_log_set_ident(ident);
}

int s1ctl_fail(int code, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_error("%s", line);
    return code;
}

const char *s1ctl_command(void)
{
    return command;
}

int s1ctl_parse_int(const char *flag, const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) {
        s1ctl_fail(S1CTL_EXIT_USAGE, "%s: '%s' is not an integer from %lld to %lld", flag, s, min,
                   max);
        return -1;
    }
    *out = v;
    return 0;
}

static int by_value(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int s1ctl_parse_list(const char *flag, const char *list, int min, int max_n, int *out, int *n)
{
    long long v[S1CTL_MAX_LIST];
    int k;
    if (s1ctl_parse_int_list(flag, list, min, INT32_MAX, v,
                             max_n < S1CTL_MAX_LIST ? max_n : S1CTL_MAX_LIST, &k) < 0)
        return -1;
    for (int i = 0; i < k; i++)
        out[i] = (int)v[i];
    qsort(out, (size_t)k, sizeof *out, by_value);
    int m = 0;
    for (int i = 0; i < k; i++)
        if (m == 0 || out[i] != out[m - 1]) out[m++] = out[i];
    *n = m;
    return 0;
}

int s1ctl_budget_fits(PGconn *c, const char *queue, const char *model, int budget, int max_answer)
{
    if (budget <= 0) return 0;
    int context = 0, reserve = max_answer > 0 ? max_answer : S1_DEFAULT_ANSWER_RESERVE;
    s1_err err = {{0}};
    if (s1_ctl_queue_context(c, queue, model, &context, &err) < 0)
        return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (context == 0 || (long long)budget + reserve < context) return 0;
    return s1ctl_fail(S1CTL_EXIT_USAGE,
                      "a budget of %d thinking tokens and an answer reserve of %d (--max-answer, "
                      "else %d) do not fit the context of %d tokens of the model serving queue "
                      "%s: lower the budget or the answer reserve, or serve a longer context "
                      "(s1d --max-context)",
                      budget, reserve, S1_DEFAULT_ANSWER_RESERVE, context,
                      queue ? queue : "default");
}

int s1ctl_parse_double(const char *flag, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < min || v > max) {
        s1ctl_fail(S1CTL_EXIT_USAGE, "%s: '%s' is not a number from %g to %g", flag, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int s1ctl_text_flag(const char *flag, const char *arg, const char **out)
{
    s1_err err = {{0}};
    if (s1_job_text_check(flag, arg, &err) < 0) {
        s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
        return -1;
    }
    *out = arg;
    return 1;
}

int s1ctl_ids(const char *what, char **args, int n, int min_n, int max_n, long long *ids)
{
    if (n < min_n)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "missing the %s (see s1ctl %s --help)", what, command);
    if (n > max_n)
        return s1ctl_fail(S1CTL_EXIT_USAGE,
                          max_n == 1 ? "unexpected argument '%s' after the %s"
                                     : "unexpected argument '%s': at most so many %ss",
                          args[max_n], what);
    for (int i = 0; i < n; i++)
        if (s1ctl_parse_int(what, args[i], 1, INT64_MAX, &ids[i]) < 0) return S1CTL_EXIT_USAGE;
    return 0;
}

int s1ctl_connect(const char *db, PGconn **out)
{
    s1_err err = {{0}};
    PGconn *c = s1_db_connect(db, &err);
    if (!c) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    int rc = s1_db_check_schema(c, &err);
    if (rc < 0) {
        PQfinish(c);
        return s1ctl_fail(rc == S1_DB_SCHEMA_MISMATCH ? S1CTL_EXIT_SCHEMA : S1CTL_EXIT_DB, "%s",
                          err.msg);
    }
    *out = c;
    return 0;
}

int s1ctl_store_exit(int rc)
{
    switch (rc) {
    case S1_CTL_NOT_FOUND:
        return S1CTL_EXIT_NOT_FOUND;
    case S1_CTL_REFUSED:
        return S1CTL_EXIT_FAILED;
    default:
        return S1CTL_EXIT_DB;
    }
}

/* PostgreSQL type oids (pg_type.h is a server header). */
enum {
    OID_BOOL = 16,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_JSON = 114,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_INT4_ARRAY = 1007,
    OID_NUMERIC = 1700,
    OID_JSONB = 3802,
};

/* "{1,2,3}" (an int[] in text form) as a JSON array. */
static json_t *int_array(const char *s)
{
    json_t *a = json_array();
    for (const char *p = s + (*s == '{'); *p && *p != '}';) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) break;
        json_array_append_new(a, json_integer(v));
        p = end + (*end == ',');
    }
    return a;
}

/* libpq gives every value as text; the column's type says what JSON it is,
 * so scripts read numbers as numbers and the policy as an object. */
static json_t *value_json(const char *v, Oid type)
{
    switch (type) {
    case OID_BOOL:
        return json_boolean(*v == 't');
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
        return json_integer(strtoll(v, NULL, 10));
    case OID_FLOAT4:
    case OID_FLOAT8:
    case OID_NUMERIC:
        return json_real(strtod(v, NULL));
    case OID_JSON:
    case OID_JSONB: {
        json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
        return j ? j : json_string(v);
    }
    case OID_INT4_ARRAY:
        return int_array(v);
    default:
        return json_string(v);
    }
}

json_t *s1ctl_row_json(const PGresult *r, int row)
{
    json_t *o = json_object();
    for (int i = 0; i < PQnfields(r); i++) {
        json_t *v =
            PQgetisnull(r, row, i) ? json_null() : value_json(PQgetvalue(r, row, i), PQftype(r, i));
        json_object_set_new(o, PQfname(r, i), v);
    }
    return o;
}

int s1ctl_print_json(json_t *j)
{
    if (!j)
        return s1ctl_fail(S1CTL_EXIT_FAILED, "cannot print the output as JSON (text not UTF-8?)");
    json_dumpf(j, stdout,
               JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7) | JSON_ENCODE_ANY);
    fputc('\n', stdout);
    json_decref(j);
    return S1CTL_EXIT_OK;
}

void s1ctl_print_record(const PGresult *r, int row)
{
    for (int i = 0; i < PQnfields(r); i++) {
        if (PQgetisnull(r, row, i)) continue;
        printf("%-18s ", PQfname(r, i));
        s1ctl_print_text(PQgetvalue(r, row, i));
        putchar('\n');
    }
}

/* The length of the control character at s (C0 but line break and tab, DEL,
 * or a two-byte C1 such as U+009B, which terminals read as ESC '['), or 0.
 * Model text printed raw could move the cursor, recolour or retitle the
 * terminal, or worse. */
static size_t control_at(const char *s)
{
    unsigned char c = (unsigned char)*s;
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) return 1;
    return c == 0xc2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9f ? 2 : 0;
}

void s1ctl_print_text(const char *s)
{
    for (; *s; s++) {
        size_t n = control_at(s);
        if (!n) {
            putchar(*s);
            continue;
        }
        printf(n == 1 ? "\\x%02x" : "\\u%04x", n == 1 ? (unsigned char)*s : (unsigned char)s[1]);
        s += n - 1;
    }
}

/* Table cells are cut to this many bytes (at a character boundary). */
#define CELL_MAX 40

/* Writes v as one table cell into buf: newlines as spaces, cut to CELL_MAX. */
/* Prints one cell of a table row, padded unless it ends the line. */
static void print_cell(const char *v, size_t width, int last)
{
    if (last)
        printf("%s\n", v);
    else
        printf("%-*s  ", (int)width, v);
}

static size_t cell(const char *v, char *buf)
{
    size_t n = strlen(v);
    if (n > CELL_MAX) {
        n = CELL_MAX - 3;
        while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
            n--;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++, o++) {
        size_t ctl = control_at(v + i);
        buf[o] = ctl ? '?' : (v[i] == '\n' || v[i] == '\t') ? ' ' : v[i];
        if (ctl) i += ctl - 1;
    }
    buf[o] = '\0';
    if (n < strlen(v)) {
        memcpy(buf + o, "...", 4);
        o += 3;
    }
    return o;
}

void s1ctl_print_table(const PGresult *r)
{
    int nf = PQnfields(r), nr = PQntuples(r);
    size_t width[64] = {0};
    char buf[CELL_MAX + 4];
    if (nf > 64) nf = 64;
    for (int i = 0; i < nf; i++)
        width[i] = strlen(PQfname(r, i));
    for (int row = 0; row < nr; row++)
        for (int i = 0; i < nf; i++) {
            size_t n = cell(PQgetvalue(r, row, i), buf);
            if (n > width[i]) width[i] = n;
        }
    for (int i = 0; i < nf; i++)
        print_cell(PQfname(r, i), width[i], i + 1 == nf);
    for (int row = 0; row < nr; row++)
        for (int i = 0; i < nf; i++) {
            cell(PQgetvalue(r, row, i), buf);
            print_cell(buf, width[i], i + 1 == nf);
        }
}

/* Item by item rather than strtok, which would skip the empty item of a
 * "512,,1024" typo instead of refusing it. */
int s1ctl_parse_int_list(const char *flag, const char *list, long long min, long long max,
                         long long *out, int cap, int *n)
{
    if (!*list) {
        s1ctl_fail(S1CTL_EXIT_USAGE, "%s: the list is empty", flag);
        return -1;
    }
    int k = 0;
    for (const char *item = list;;) {
        const char *comma = strchr(item, ',');
        size_t len = comma ? (size_t)(comma - item) : strlen(item);
        char word[32];
        if (k == cap) {
            s1ctl_fail(S1CTL_EXIT_USAGE, "%s: more than %d values", flag, cap);
            return -1;
        }
        /* A word too long for any number is cut, and still refused as too large. */
        snprintf(word, sizeof word, "%.*s", (int)len, item);
        if (s1ctl_parse_int(flag, word, min, max, &out[k++]) < 0) return -1;
        if (!comma) break;
        item = comma + 1;
    }
    *n = k;
    return 0;
}

/* A job no daemon serves waits for ever without a word: say so. A failed
 * check says nothing; it is advice, not the command's work. */
void s1ctl_warn_unserved(PGconn *c, const char *queue, const char *model)
{
    s1_err err = {{0}};
    _cleanup_free_ char *live = NULL;
    if (s1_ctl_served(c, queue, model && *model ? model : NULL, &live, &err) != 0) return;
    char what[512];
    if (model && *model)
        snprintf(what, sizeof what, "queue \"%s\" with model \"%s\"", queue, model);
    else
        snprintf(what, sizeof what, "queue \"%s\"", queue);
    if (*live)
        log_warning("warning: no live s1d serves %s (live ones serve: %s); the job waits until "
                    "one does",
                    what, live);
    else
        log_warning("warning: no live s1d serves %s: none is connected to this database (start "
                    "one, e.g. systemctl start s1d)",
                    what);
}
