/* s1ctl suite import, list, show: benchmark sets of problems with reference
 * answers, loaded from JSON lines. An import checks the whole file before it
 * writes anything, then upserts every problem in one transaction. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cleanup.h"
#include "commands.h"
#include "flags.h"
#include "db.h"
#include "file.h"
#include "job.h"
#include "util.h"

/* The largest JSON-lines file an import reads (MATH500 with solutions is
 * under 1 MiB; this leaves room for much larger sets). */
#define SUITE_MAX_FILE_BYTES ((size_t)256 << 20)

int s1ctl_subcommand(const char *group, const s1ctl_sub *subs, size_t n, const char *help, int argc,
                     char **argv)
{
    if (argc < 2) {
        fputs(help, stderr);
        return S1CTL_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(help, stdout);
        return S1CTL_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], subs[i].name)) {
            /* Messages then read "s1ctl suite import: ...". */
            s1ctl_set_command(subs[i].command);
            return subs[i].run(argc - 1, argv + 1);
        }
    return s1ctl_fail(S1CTL_EXIT_USAGE, "unknown %s command '%s' (see s1ctl %s --help)", group,
                      argv[1], group);
}

/* One problem of a file being imported; every string owned here. */
typedef struct {
    char *id, *problem, *answer;
    long line;
} suite_item;

typedef struct {
    suite_item *items;
    size_t n, cap;
} suite_items;

static void suite_items_free(suite_items *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].id);
        free(s->items[i].problem);
        free(s->items[i].answer);
    }
    free(s->items);
}

typedef struct {
    const char *problem_key, *answer_key, *id_key;
} suite_keys;

/* An id or answer may be written as a JSON string or number ("answer": 204
 * means "204"); *out is malloc'ed. 0, or -1 when v is another type. */
static int scalar_text(const json_t *v, char **out)
{
    char buf[64];
    if (json_is_string(v)) {
        *out = strdup(json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        *out = strdup(buf);
    } else if (json_is_real(v)) {
        /* 15 digits: 0.1 reads back as "0.1", not 0.10000000000000001. */
        snprintf(buf, sizeof buf, "%.15g", json_real_value(v));
        *out = strdup(buf);
    } else {
        return -1;
    }
    return 0;
}

/* The text of key in line's object: a string, or a number when numbers are
 * allowed. err names file:line, the key and the flag that picks another. */
static int item_field(const json_t *o, const char *key, const char *flag, int numbers_ok,
                      const char *where, char **out, s1_err *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v) return s1_errf(err, "%s: no \"%s\" key (name another with %s)", where, key, flag);
    if ((!numbers_ok && !json_is_string(v)) || scalar_text(v, out) < 0)
        return s1_errf(err, "%s: \"%s\" is not a %s", where, key,
                       numbers_ok ? "string or a number" : "string");
    if (!*out) return s1_errf(err, "%s: out of memory", where);
    return 0;
}

/* One non-blank line: a JSON object with the id, problem and answer keys,
 * the problem text the engine can take and a non-empty answer and id. */
static int parse_line(const char *path, long line, const char *text, size_t len,
                      const suite_keys *k, suite_item *it, s1_err *err)
{
    char where[320];
    snprintf(where, sizeof where, "%s:%ld", path, line);
    json_error_t jerr;
    json_auto_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) return s1_errf(err, "%s: not JSON: %s", where, jerr.text);
    if (!json_is_object(o)) return s1_errf(err, "%s: not a JSON object", where);
    it->line = line;
    if (item_field(o, k->id_key, "--id-key", 1, where, &it->id, err) < 0 ||
        item_field(o, k->problem_key, "--problem-key", 0, where, &it->problem, err) < 0 ||
        item_field(o, k->answer_key, "--answer-key", 1, where, &it->answer, err) < 0)
        return -1;
    if (!*it->id) return s1_errf(err, "%s: the id (\"%s\") is empty", where, k->id_key);
    if (s1_job_problem_check(where, it->problem, strlen(it->problem), S1_JOB_MAX_PROBLEM_BYTES,
                             err) < 0)
        return -1;
    if (!it->answer[strspn(it->answer, " \t\r\n")])
        return s1_errf(err, "%s: the answer (\"%s\") is empty", where, k->answer_key);
    return 0;
}

/* Appends a zeroed item; NULL when out of memory. */
static suite_item *items_push(suite_items *s)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        suite_item *p = realloc(s->items, cap * sizeof *p);
        if (!p) return NULL;
        s->items = p;
        s->cap = cap;
    }
    suite_item *it = &s->items[s->n++];
    memset(it, 0, sizeof *it);
    return it;
}

/* Every line of text in order; blank lines (a trailing newline, spacing)
 * are skipped but still counted, so messages name the line an editor shows. */
static int parse_lines(const char *path, const char *text, size_t len, const suite_keys *k,
                       suite_items *out, s1_err *err)
{
    long line = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - at;
        line++;
        if (n > 0 && text[at + n - 1] == '\r') n--;
        size_t lead = 0;
        while (lead < n && strchr(" \t", text[at + lead]))
            lead++;
        if (lead < n) {
            suite_item *it = items_push(out);
            if (!it) return s1_errf(err, "%s:%ld: out of memory", path, line);
            if (parse_line(path, line, text + at, n, k, it, err) < 0) return -1;
        }
        at = end + 1;
    }
    if (out->n == 0) return s1_errf(err, "%s: no problems in the file", path);
    return 0;
}

static int by_id_then_line(const void *a, const void *b)
{
    const suite_item *x = *(const suite_item *const *)a, *y = *(const suite_item *const *)b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Problems are keyed by id, so two lines with one id would silently keep
 * only the last. Sorting finds repeats in n log n; the message names the
 * first line (in file order) that repeats an earlier id. */
static int check_unique_ids(const char *path, const suite_items *s, s1_err *err)
{
    _cleanup_free_ const suite_item **v = malloc(s->n * sizeof *v);
    if (!v) return s1_errf(err, "%s: out of memory", path);
    for (size_t i = 0; i < s->n; i++)
        v[i] = &s->items[i];
    qsort(v, s->n, sizeof *v, by_id_then_line);
    const suite_item *dup = NULL, *first = NULL;
    for (size_t i = 1; i < s->n; i++)
        if (!strcmp(v[i]->id, v[i - 1]->id) && (!dup || v[i]->line < dup->line)) dup = v[i];
    if (!dup) return 0;
    for (size_t i = 0; !first; i++)
        if (!strcmp(s->items[i].id, dup->id)) first = &s->items[i];
    return s1_errf(err, "%s:%ld: duplicate id \"%s\" (first on line %ld)", path, dup->line, dup->id,
                   first->line);
}

/* Reads and checks the whole file; nothing is written when this fails. */
static int load_file(const char *path, const suite_keys *k, suite_items *out, s1_err *err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (!strcmp(path, "-")) return s1_errf(err, "-: the set must be a file, not stdin");
    if (s1_read_file(path, SUITE_MAX_FILE_BYTES, &text, &len, err) < 0) return -1;
    if (parse_lines(path, text, len, k, out, err) < 0) return -1;
    return check_unique_ids(path, out, err);
}

typedef struct {
    int added, updated, unchanged;
} import_counts;

/* The suite row and every problem in one transaction: all or none. */
static int store_items(PGconn *c, const char *name, const char *description, const suite_items *s,
                       import_counts *n, s1_err *err)
{
    long long suite_id;
    if (s1_db_run(c, "beginning the import", "BEGIN", 0, NULL, err) < 0) return -1;
    if (s1_bench_suite_upsert(c, name, description, &suite_id, err) < 0) goto fail;
    for (size_t i = 0; i < s->n; i++) {
        s1_bench_change ch;
        const suite_item *it = &s->items[i];
        if (s1_bench_problem_upsert(c, suite_id, it->id, it->problem, it->answer, &ch, err) < 0) {
            s1_err_prefix(err, "problem %s", it->id);
            goto fail;
        }
        if (ch == S1_BENCH_ADDED) n->added++;
        if (ch == S1_BENCH_UPDATED) n->updated++;
        if (ch == S1_BENCH_UNCHANGED) n->unchanged++;
    }
    return s1_db_run(c, "committing the import", "COMMIT", 0, NULL, err);
fail:
    PQclear(PQexec(c, "ROLLBACK"));
    return -1;
}

static const char import_usage[] =
    "Usage: s1ctl suite import [FLAGS] NAME FILE.jsonl\n"
    "Loads a benchmark set, one JSON object per line, into suite NAME (created when\n"
    "new). Problems are keyed by their id: importing again adds new ids and updates\n"
    "changed problems. The whole file is checked first, then stored in one\n"
    "transaction: all or nothing.\n\n";

typedef struct {
    suite_keys keys;
    s1ctl_db_args db;
    const char *description, *name, *file;
} import_args;

#define IMPORT(field) offsetof(import_args, field)

static const s1ctl_flag import_flags[] = {
    {"id-key", "K", "the key of each problem's unique id (default \"id\")", s1ctl_set_string,
     IMPORT(keys.id_key)},
    {"problem-key", "K", "the key of the problem text (default \"problem\")", s1ctl_set_string,
     IMPORT(keys.problem_key)},
    {"answer-key", "K", "the key of the reference answer (default \"answer\")", s1ctl_set_string,
     IMPORT(keys.answer_key)},
    {"description", "TEXT", "the suite's description", s1ctl_set_text, IMPORT(description)},
};

/* 0; -1 after --help; or the exit code after printing why. */
static int import_parse(int argc, char **argv, import_args *a)
{
    const s1ctl_flag_table tables[] = {S1CTL_FLAGS(NULL, import_flags, a),
                                       {NULL, s1ctl_db_flags, 2, &a->db, NULL}};
    int n, rc = s1ctl_flags_parse(import_usage, tables, 2, argc, argv, &n);
    if (rc) return rc;
    if (n != 2)
        return s1ctl_fail(S1CTL_EXIT_USAGE,
                          "expected NAME and FILE.jsonl, got %d argument%s "
                          "(see s1ctl suite import --help)",
                          n, n == 1 ? "" : "s");
    a->name = argv[1];
    a->file = argv[2];
    if (!*a->name) return s1ctl_fail(S1CTL_EXIT_USAGE, "the suite name must not be empty");
    if (s1ctl_text_flag("the suite name", a->name, &a->name) < 0) return S1CTL_EXIT_USAGE;
    return 0;
}

static void print_import(const import_args *a, size_t total, const import_counts *n)
{
    if (a->db.json) {
        s1ctl_print_json(json_pack("{s:s,s:s,s:I,s:i,s:i,s:i}", "suite", a->name, "file", a->file,
                                   "problems", (json_int_t)total, "added", n->added, "updated",
                                   n->updated, "unchanged", n->unchanged));
        return;
    }
    printf("suite %s: %zu problems from %s: %d added, %d updated, %d unchanged\n", a->name, total,
           a->file, n->added, n->updated, n->unchanged);
}

int s1ctl_suite_import(int argc, char **argv)
{
    import_args a = {.keys = {"problem", "answer", "id"}};
    int rc = import_parse(argc, argv, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    s1_err err = {{0}};
    suite_items items = {0};
    import_counts n = {0};
    _cleanup_pgconn_ PGconn *c = NULL;
    if (load_file(a.file, &a.keys, &items, &err) < 0)
        rc = s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
    else if (!(rc = s1ctl_connect(a.db.db, &c))) {
        if (store_items(c, a.name, a.description, &items, &n, &err) < 0)
            rc = s1ctl_fail(S1CTL_EXIT_DB, "suite %s: %s; nothing was imported", a.name, err.msg);
        else
            print_import(&a, items.n, &n);
    }
    suite_items_free(&items);
    return rc;
}

static const char list_usage[] = "Usage: s1ctl suite list [--json] [--db CONNINFO]\n"
                                 "Lists the benchmark suites with their problem and run counts.\n\n"
                                 "\n";

/* Flags of list and show: --db, --json and npos positionals (then in
 * argv[1..npos]). 0; -1 after --help; or the exit code after printing why. */
static int simple_parse(int argc, char **argv, const char *usage, int npos, s1ctl_db_args *db)
{
    const s1ctl_flag_table tables[] = {{NULL, s1ctl_db_flags, 2, db, NULL}};
    int n, rc = s1ctl_flags_parse(usage, tables, 1, argc, argv, &n);
    if (rc) return rc;
    if (n > npos)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "unexpected argument '%s' (see s1ctl %s --help)",
                          argv[1 + npos], s1ctl_command());
    if (n < npos)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "missing the suite name (see s1ctl suite --help)");
    return 0;
}

/* The rows of r as a JSON array. */
static json_t *rows_json(const PGresult *r)
{
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(arr, s1ctl_row_json(r, i));
    return arr;
}

int s1ctl_suite_list(int argc, char **argv)
{
    s1ctl_db_args db = {0};
    int rc = simple_parse(argc, argv, list_usage, 0, &db);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(db.db, &c))) return rc;
    s1_err err = {{0}};
    _cleanup_pgresult_ PGresult *r = s1_bench_suite_list(c, &err);
    if (!r) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (db.json) return s1ctl_print_json(rows_json(r));
    s1ctl_print_table(r);
    return S1CTL_EXIT_OK;
}

static const char show_usage[] =
    "Usage: s1ctl suite show [--json] [--db CONNINFO] NAME\n"
    "Prints suite NAME and its problems (id, reference answer, the start of the text;\n"
    "the whole text with --json).\n\n";

int s1ctl_suite_show(int argc, char **argv)
{
    s1ctl_db_args db = {0};
    int rc = simple_parse(argc, argv, show_usage, 1, &db);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    const char *name = argv[1];
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(db.db, &c))) return rc;
    s1_err err = {{0}};
    _cleanup_pgresult_ PGresult *s = s1_bench_suite_get(c, name, &err);
    if (!s) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (PQntuples(s) == 0)
        return s1ctl_fail(S1CTL_EXIT_NOT_FOUND, "suite %s: no such suite (see s1ctl suite list)",
                          name);
    _cleanup_pgresult_ PGresult *p = s1_bench_suite_problems(c, atoll(PQgetvalue(s, 0, 0)), &err);
    if (!p) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (db.json) {
        json_t *o = s1ctl_row_json(s, 0);
        json_object_set_new(o, "problems", rows_json(p));
        return s1ctl_print_json(o);
    }
    s1ctl_print_record(s, 0);
    putchar('\n');
    s1ctl_print_table(p);
    return S1CTL_EXIT_OK;
}

static const char suite_help[] =
    "Usage: s1ctl suite COMMAND [FLAGS] [ARGS]   (s1ctl suite COMMAND --help for its flags)\n\n"
    "Benchmark suites: named problems with reference answers.\n"
    "  import NAME FILE.jsonl   load or update a suite from JSON lines\n"
    "  list                     the suites, with problem and run counts\n"
    "  show NAME                a suite and its problems\n";

int s1ctl_suite(int argc, char **argv)
{
    static const s1ctl_sub subs[] = {
        {"import", "suite import", s1ctl_suite_import},
        {"list", "suite list", s1ctl_suite_list},
        {"show", "suite show", s1ctl_suite_show},
    };
    return s1ctl_subcommand("suite", subs, sizeof subs / sizeof *subs, suite_help, argc, argv);
}
