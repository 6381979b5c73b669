/* s1ctl bench run, report, list: a suite run at a ladder of budgets (one job
 * per problem and budget), and the s1 paper's view of it: accuracy against
 * thinking tokens, with Control, Scaling and Performance, as text, JSON or
 * an SVG plot. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cleanup.h"
#include "commands.h"
#include "ctl.h"
#include "db.h"
#include "job.h"
#include "policy_flags.h"
#include "util.h"

/* More rungs than this is a typo, not a ladder (the paper uses a handful). */
#define BENCH_MAX_BUDGETS 64

#define DB_HELP                                                                                    \
    "  --db CONNINFO       database (default $DATABASE_URL, then libpq's PG* variables)\n"         \
    "  --help              this text\n"

static int by_value(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* "2048,512,1024" → 512 1024 2048: positive integers, sorted, repeats
 * dropped, so the ladder is strictly increasing. *n gets the count; -1
 * after printing why the list is bad. */
static int parse_budgets(const char *list, int *out, int *n)
{
    long long v[BENCH_MAX_BUDGETS];
    int k;
    if (s1ctl_parse_int_list("--budgets", list, 1, INT32_MAX, v, BENCH_MAX_BUDGETS, &k) < 0)
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

static const char run_usage[] =
    "Usage: s1ctl bench run [FLAGS] SUITE --budgets N,N,...\n"
    "Queues a run of SUITE: one job per problem and budget, each with max_think =\n"
    "the budget and the problem's reference answer, all in one transaction. Prints\n"
    "the run's id; follow it with `s1ctl bench report ID`.\n\n"
    "  --budgets LIST      thinking budgets, e.g. 512,1024,2048 (sorted, repeats dropped)\n"
    "  --model NAME        only a daemon serving this model runs the jobs (default any)\n"
    "  --queue NAME        queue (default \"default\")\n"
    "  --priority N        higher runs first (default 0)\n"
    "  --samples N         samples per job (1..1024, default 1)\n"
    "  --limit N           only the first N problems of the suite\n"
    "  --note TEXT         stored with the run (e.g. what changed)\n"
    "  --json              print {\"run\": ID, \"jobs\": N}\n" DB_HELP
    "The policy and sampling flags apply to every job (not --budget: use --budgets):\n"
    "\n" S1CTL_POLICY_HELP;

enum {
    OPT_BUDGETS = 0x2000,
    OPT_MODEL,
    OPT_QUEUE,
    OPT_PRIORITY,
    OPT_SAMPLES,
    OPT_LIMIT,
    OPT_NOTE,
    OPT_JSON,
    OPT_DB,
    OPT_SUITE,
    OPT_PLOT,
};

typedef struct {
    s1_policy_cfg policy;
    s1_sampling sampling;
    s1_bench_run_spec spec;
    int budgets[BENCH_MAX_BUDGETS];
    const char *budget_list;
    const char *db;
    int json;
} run_args;

/* The run's own flags. 1 when handled, -1 after printing why, 0 when unknown. */
static int run_flag(int code, const char *arg, run_args *a)
{
    long long v;
    switch (code) {
    case OPT_BUDGETS:
        a->budget_list = arg;
        return 1;
    case OPT_MODEL:
        a->spec.model = arg;
        return 1;
    case OPT_QUEUE:
        a->spec.queue = arg;
        return 1;
    case OPT_PRIORITY:
        if (s1ctl_parse_int("--priority", arg, INT32_MIN, INT32_MAX, &v) < 0) return -1;
        a->spec.priority = (int)v;
        return 1;
    case OPT_SAMPLES:
        if (s1ctl_parse_int("--samples", arg, 1, 1024, &v) < 0) return -1;
        a->spec.samples = (int)v;
        return 1;
    case OPT_LIMIT:
        return s1ctl_parse_int("--limit", arg, 1, INT64_MAX, &a->spec.limit) < 0 ? -1 : 1;
    case OPT_NOTE:
        a->spec.note = arg;
        return 1;
    case OPT_JSON:
        a->json = 1;
        return 1;
    case OPT_DB:
        a->db = arg;
        return 1;
    default:
        return 0;
    }
}

/* The checks once every flag is read: a ladder, one suite, and a policy that
 * holds at every rung (--min-think within the smallest budget). */
static int run_check(int argc, char **argv, run_args *a)
{
    if (a->spec.queue && !*a->spec.queue)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--queue: must not be empty");
    if (a->policy.max_think)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--budget sets one budget; a run takes a ladder: "
                                            "--budgets N,N,...");
    if (!a->budget_list)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--budgets is required (e.g. --budgets 512,1024,2048)");
    if (parse_budgets(a->budget_list, a->budgets, &a->spec.n_budgets) < 0) return S1CTL_EXIT_USAGE;
    a->spec.budgets = a->budgets;
    if (a->policy.min_think > a->budgets[0])
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--min-think %d is above the smallest budget %d",
                          a->policy.min_think, a->budgets[0]);
    if (s1ctl_policy_done(&a->policy, &a->sampling) < 0) return S1CTL_EXIT_USAGE;
    if (argc - optind != 1)
        return s1ctl_fail(S1CTL_EXIT_USAGE,
                          "expected one SUITE, got %d arguments "
                          "(see s1ctl bench run --help)",
                          argc - optind);
    a->spec.suite = argv[optind];
    return 0;
}

/* 0; -1 after --help; or the exit code after printing why. */
static int run_parse(int argc, char **argv, run_args *a)
{
    static const struct option options[] = {
        S1CTL_POLICY_OPTIONS,
        {"budgets", required_argument, NULL, OPT_BUDGETS},
        {"model", required_argument, NULL, OPT_MODEL},
        {"queue", required_argument, NULL, OPT_QUEUE},
        {"priority", required_argument, NULL, OPT_PRIORITY},
        {"samples", required_argument, NULL, OPT_SAMPLES},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"note", required_argument, NULL, OPT_NOTE},
        {"json", no_argument, NULL, OPT_JSON},
        {"db", required_argument, NULL, OPT_DB},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (o == 'h') {
            fputs(run_usage, stdout);
            return -1;
        }
        if (o == '?' || o == ':') return s1ctl_bad_flag(argv, o);
        int rc = s1ctl_policy_flag(o, optarg, &a->policy, &a->sampling);
        if (rc == 0) rc = run_flag(o, optarg, a);
        if (rc < 0) return S1CTL_EXIT_USAGE;
    }
    return run_check(argc, argv, a);
}

int s1ctl_bench_run(int argc, char **argv)
{
    run_args a = {0};
    int rc = run_parse(argc, argv, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    s1_err err = {{0}};
    _cleanup_free_ char *policy = s1_job_policy_json(&a.policy, &err);
    _cleanup_free_ char *sampling = policy ? s1_job_sampling_json(&a.sampling, &err) : NULL;
    if (!sampling) return s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
    a.spec.policy_json = policy;
    a.spec.sampling_json = sampling;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db, &c))) return rc;
    long long run_id, jobs;
    if ((rc = s1_bench_run_create(c, &a.spec, &run_id, &jobs, &err)) < 0)
        return s1ctl_fail(s1ctl_store_exit(rc), "%s; nothing was queued", err.msg);
    if (a.json)
        return s1ctl_print_json(json_pack("{s:I,s:I,s:s}", "run", (json_int_t)run_id, "jobs",
                                          (json_int_t)jobs, "suite", a.spec.suite));
    printf("%lld\n", run_id);
    return S1CTL_EXIT_OK;
}

/* ---- bench list ---- */

static const char list_usage[] =
    "Usage: s1ctl bench list [--suite NAME] [--limit N] [--json] [--db CONNINFO]\n"
    "Lists benchmark runs, newest first, with their suite, model, budgets and progress\n"
    "(jobs succeeded, failed or cancelled, and still pending).\n\n"
    "  --suite NAME        only runs of this suite\n"
    "  --limit N           at most N runs (default 50)\n"
    "  --json              print JSON\n" DB_HELP;

typedef struct {
    const char *db, *suite, *plot;
    long long limit, run_id;
    int json;
} view_args;

static const struct option list_options[] = {
    {"suite", required_argument, NULL, OPT_SUITE},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"json", no_argument, NULL, OPT_JSON},
    {"db", required_argument, NULL, OPT_DB},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option report_options[] = {
    {"suite", required_argument, NULL, OPT_SUITE},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"json", no_argument, NULL, OPT_JSON},
    {"db", required_argument, NULL, OPT_DB},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One flag of list or report (options says which are known). 1 when
 * handled, -1 after --help, or the exit code after printing why. */
static int view_flag(int o, char **argv, const char *usage, view_args *a)
{
    switch (o) {
    case OPT_SUITE:
        a->suite = optarg;
        return 1;
    case OPT_LIMIT:
        return s1ctl_parse_int("--limit", optarg, 1, 1000000, &a->limit) < 0 ? S1CTL_EXIT_USAGE : 1;
    case OPT_PLOT:
        a->plot = optarg;
        return 1;
    case OPT_JSON:
        a->json = 1;
        return 1;
    case OPT_DB:
        a->db = optarg;
        return 1;
    case 'h':
        fputs(usage, stdout);
        return -1;
    default:
        return s1ctl_bad_flag(argv, o);
    }
}

/* Flags of list, report and regrade, from options; RUN_ID is the one
 * argument when takes_run. 0; -1 after --help; or the exit code after
 * printing why. */
static int view_parse(int argc, char **argv, const char *usage, const struct option *options,
                      int takes_run, view_args *a)
{
    int o;
    while ((o = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        int rc = view_flag(o, argv, usage, a);
        if (rc != 1) return rc;
    }
    int max_pos = takes_run ? 1 : 0;
    if (argc - optind > max_pos)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "unexpected argument '%s' (see s1ctl bench --help)",
                          argv[optind + max_pos]);
    if (optind < argc && s1ctl_parse_int("run id", argv[optind], 1, INT64_MAX, &a->run_id) < 0)
        return S1CTL_EXIT_USAGE;
    if (a->run_id && a->suite)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "give a RUN_ID or --suite NAME, not both");
    if (a->plot && !*a->plot) return s1ctl_fail(S1CTL_EXIT_USAGE, "--plot: must not be empty");
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

int s1ctl_bench_list(int argc, char **argv)
{
    view_args a = {.limit = 50};
    int rc = view_parse(argc, argv, list_usage, list_options, 0, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db, &c))) return rc;
    s1_err err = {{0}};
    _cleanup_pgresult_ PGresult *r = s1_bench_run_list(c, a.suite, (long)a.limit, &err);
    if (!r) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (a.json) return s1ctl_print_json(rows_json(r));
    s1ctl_print_table(r);
    return S1CTL_EXIT_OK;
}

/* ---- bench report ---- */

/* A report: the run, its curve, and the figures computed from the curve. */
typedef struct {
    PGresult *run;   /* one row of s1_bench_run_get; owned */
    PGresult *curve; /* s1_bench_run_curve; owned */
    s1_bench_point pts[BENCH_MAX_BUDGETS];
    int n;
    int has_scaling, has_performance;
    double scaling, performance;
} report;

static void report_free(report *r)
{
    PQclear(r->run);
    PQclear(r->curve);
}

static const char *col(const PGresult *r, int row, const char *name)
{
    return PQgetvalue(r, row, PQfnumber(r, name));
}

static int null(const PGresult *r, int row, const char *name)
{
    return PQgetisnull(r, row, PQfnumber(r, name));
}

/* Points from the curve's rows, then the paper's figures from the points. */
static void report_compute(report *rp)
{
    const PGresult *c = rp->curve;
    rp->n = PQntuples(c) < BENCH_MAX_BUDGETS ? PQntuples(c) : BENCH_MAX_BUDGETS;
    for (int i = 0; i < rp->n; i++) {
        s1_bench_point *p = &rp->pts[i];
        p->budget = atoi(col(c, i, "budget"));
        p->has_accuracy = !null(c, i, "accuracy");
        p->accuracy = p->has_accuracy ? strtod(col(c, i, "accuracy"), NULL) : 0;
        p->has_thinking = !null(c, i, "mean_thinking_tokens");
        p->thinking = p->has_thinking ? strtod(col(c, i, "mean_thinking_tokens"), NULL) : 0;
    }
    rp->has_scaling = s1_bench_scaling(rp->pts, rp->n, &rp->scaling);
    rp->has_performance = s1_bench_performance(rp->pts, rp->n, &rp->performance);
}

/* Reads the run (by id, latest of a suite, or latest of all) and its curve.
 * 0, or the exit code after printing why. */
static int report_load(PGconn *c, const view_args *a, report *rp)
{
    s1_err err = {{0}};
    rp->run = s1_bench_run_get(c, a->run_id, a->suite, &err);
    if (!rp->run) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (PQntuples(rp->run) == 0) {
        if (a->run_id)
            return s1ctl_fail(S1CTL_EXIT_NOT_FOUND,
                              "run %lld: no such benchmark run "
                              "(see s1ctl bench list)",
                              a->run_id);
        if (a->suite)
            return s1ctl_fail(S1CTL_EXIT_NOT_FOUND,
                              "suite %s has no benchmark run "
                              "(start one with s1ctl bench run)",
                              a->suite);
        return s1ctl_fail(S1CTL_EXIT_NOT_FOUND, "no benchmark run yet (start one with "
                                                "s1ctl bench run)");
    }
    rp->curve = s1_bench_run_curve(c, atoll(PQgetvalue(rp->run, 0, 0)), &err);
    if (!rp->curve) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    report_compute(rp);
    return 0;
}

/* NULL when the figure is undefined (no graded sample, no pair of budgets). */
static json_t *maybe_real(int has, double v)
{
    return has ? json_real(v) : json_null();
}

static int report_json(const report *rp)
{
    json_t *o = s1ctl_row_json(rp->run, 0);
    json_object_set_new(o, "curve", rows_json(rp->curve));
    json_object_set_new(o, "scaling", maybe_real(rp->has_scaling, rp->scaling));
    json_object_set_new(o, "scaling_unit", json_string("accuracy points per 1000 thinking tokens"));
    json_object_set_new(o, "performance", maybe_real(rp->has_performance, rp->performance));
    return s1ctl_print_json(o);
}

/* A 0..1 column as "56.7%", or "-" when NULL. */
static const char *pct(char *buf, size_t cap, const PGresult *r, int row, const char *name)
{
    if (null(r, row, name)) return "-";
    snprintf(buf, cap, "%.1f%%", 100 * strtod(col(r, row, name), NULL));
    return buf;
}

static void print_header(const PGresult *run)
{
    printf("run %s: suite %s, model %s, %s sample%s per job, created %s\n", col(run, 0, "id"),
           col(run, 0, "suite"), null(run, 0, "model") ? "any" : col(run, 0, "model"),
           col(run, 0, "samples"), strcmp(col(run, 0, "samples"), "1") ? "s" : "",
           col(run, 0, "created_at"));
    if (!null(run, 0, "note")) printf("note: %s\n", col(run, 0, "note"));
    if (strcmp(col(run, 0, "policy"), "{}")) printf("policy: %s\n", col(run, 0, "policy"));
    if (strcmp(col(run, 0, "sampling"), "{}")) printf("sampling: %s\n", col(run, 0, "sampling"));
    printf("jobs: %s, %s succeeded, %s failed or cancelled, %s pending\n\n", col(run, 0, "jobs"),
           col(run, 0, "succeeded"), col(run, 0, "failed"), col(run, 0, "pending"));
}

static void print_curve(const PGresult *c)
{
    char acc[16], ctl[16], think[24], done[40];
    printf("%8s  %11s  %7s  %6s  %8s  %8s  %7s\n", "budget", "done/total", "samples", "graded",
           "accuracy", "thinking", "control");
    for (int i = 0; i < PQntuples(c); i++) {
        snprintf(done, sizeof done, "%s/%s", col(c, i, "succeeded"), col(c, i, "jobs"));
        if (null(c, i, "mean_thinking_tokens"))
            snprintf(think, sizeof think, "-");
        else
            snprintf(think, sizeof think, "%.1f", strtod(col(c, i, "mean_thinking_tokens"), NULL));
        printf("%8s  %11s  %7s  %6s  %8s  %8s  %7s\n", col(c, i, "budget"), done,
               col(c, i, "samples"), col(c, i, "graded"), pct(acc, sizeof acc, c, i, "accuracy"),
               think, pct(ctl, sizeof ctl, c, i, "control"));
    }
}

static void print_figures(const report *rp)
{
    char ctl[16];
    printf("\nControl %s   ", pct(ctl, sizeof ctl, rp->run, 0, "control"));
    if (rp->has_scaling)
        printf("Scaling %.2f (accuracy points per 1000 thinking tokens)   ", rp->scaling);
    else
        printf("Scaling -   ");
    if (rp->has_performance)
        printf("Performance %.1f%%\n", 100 * rp->performance);
    else
        printf("Performance -\n");
}

/* Bar width of the terminal chart at 100% accuracy. */
#define CHART_WIDTH 40

/* Accuracy per budget as bars, with the thinking actually spent: the plot's
 * content for a terminal. */
static void print_chart(const report *rp)
{
    printf("\naccuracy by budget (mean thinking tokens)\n");
    for (int i = 0; i < rp->n; i++) {
        const s1_bench_point *p = &rp->pts[i];
        int w = p->has_accuracy ? (int)lround(p->accuracy * CHART_WIDTH) : 0;
        printf("%8d |", p->budget);
        for (int k = 0; k < CHART_WIDTH; k++)
            putchar(k < w ? '#' : ' ');
        if (p->has_accuracy)
            printf("| %5.1f%%", 100 * p->accuracy);
        else
            printf("|     -");
        if (p->has_thinking)
            printf("  (%.0f)\n", p->thinking);
        else
            printf("  (-)\n");
    }
}

/* ---- the SVG plot ---- */

/* Canvas and plot area, in SVG user units. */
enum { SVG_W = 720, SVG_H = 440, SVG_LEFT = 70, SVG_RIGHT = 30, SVG_TOP = 72, SVG_BOTTOM = 60 };

/* s with the five XML special characters escaped, for text and attributes. */
static void svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* The log-x range of the plot: the points' mean thinking tokens with a
 * margin, so no point sits on the frame. Thinking below 1 token is drawn at
 * 1 (log 0 has no place). */
typedef struct {
    double lo, hi; /* log10 of the axis ends */
} svg_xrange;

static double svg_thinking(const s1_bench_point *p)
{
    return p->thinking < 1 ? 1 : p->thinking;
}

static int svg_plotted(const s1_bench_point *p)
{
    return p->has_accuracy && p->has_thinking;
}

static svg_xrange svg_range(const report *rp)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < rp->n; i++)
        if (svg_plotted(&rp->pts[i])) {
            lo = fmin(lo, log10(svg_thinking(&rp->pts[i])));
            hi = fmax(hi, log10(svg_thinking(&rp->pts[i])));
        }
    if (!isfinite(lo)) lo = 2, hi = 4; /* nothing plotted: 100..10000 */
    double pad = fmax((hi - lo) * 0.08, 0.1);
    return (svg_xrange){lo - pad, hi + pad};
}

static double svg_x(svg_xrange r, double tokens)
{
    return SVG_LEFT + (log10(tokens) - r.lo) / (r.hi - r.lo) * (SVG_W - SVG_LEFT - SVG_RIGHT);
}

static double svg_y(double accuracy)
{
    return SVG_TOP + (1 - accuracy) * (SVG_H - SVG_TOP - SVG_BOTTOM);
}

/* Grid and tick labels: accuracy every 20 points; thinking tokens at powers
 * of two (budgets usually are), every other one when they would crowd. */
static void svg_axes(FILE *f, svg_xrange r)
{
    int x0 = SVG_LEFT, x1 = SVG_W - SVG_RIGHT, y0 = SVG_TOP, y1 = SVG_H - SVG_BOTTOM;
    fprintf(f, "<g stroke=\"#ddd\" stroke-width=\"1\">\n");
    for (int a = 0; a <= 100; a += 20)
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", x0, svg_y(a / 100.0),
                x1, svg_y(a / 100.0));
    int e0 = (int)ceil(r.lo / log10(2)), e1 = (int)floor(r.hi / log10(2));
    int step = e1 - e0 > 8 ? 2 : 1;
    for (int e = e0; e <= e1; e += step)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", svg_x(r, ldexp(1, e)),
                y0, svg_x(r, ldexp(1, e)), y1);
    fprintf(f, "</g>\n<g font-family=\"sans-serif\" font-size=\"12\" fill=\"#333\">\n");
    for (int a = 0; a <= 100; a += 20)
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n", x0 - 6,
                svg_y(a / 100.0) + 4, a);
    for (int e = e0; e <= e1; e += step)
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>\n",
                svg_x(r, ldexp(1, e)), y1 + 18, ldexp(1, e));
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">mean thinking tokens (log scale)"
            "</text>\n",
            (x0 + x1) / 2, SVG_H - 14);
    fprintf(f,
            "<text x=\"18\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 18 %d)\">"
            "accuracy</text>\n",
            (y0 + y1) / 2, (y0 + y1) / 2);
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n"
            "</g>\n",
            x0, y0, x1 - x0, y1 - y0);
}

/* The curve in budget order, each point labelled with its budget. */
static void svg_points(FILE *f, const report *rp, svg_xrange r)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"");
    for (int i = 0; i < rp->n; i++)
        if (svg_plotted(&rp->pts[i]))
            fprintf(f, "%.1f,%.1f ", svg_x(r, svg_thinking(&rp->pts[i])),
                    svg_y(rp->pts[i].accuracy));
    fprintf(f, "\"/>\n<g font-family=\"sans-serif\" font-size=\"11\" fill=\"#1f77b4\">\n");
    for (int i = 0; i < rp->n; i++) {
        const s1_bench_point *p = &rp->pts[i];
        if (!svg_plotted(p)) continue;
        double x = svg_x(r, svg_thinking(p)), y = svg_y(p->accuracy);
        fprintf(f,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\"><title>budget %d: %.1f%% at %.0f "
                "thinking tokens</title></circle>\n",
                x, y, p->budget, 100 * p->accuracy, p->thinking);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", x, y - 9,
                p->budget);
    }
    fprintf(f, "</g>\n");
}

/* Title and the three figures under it. */
static void svg_title(FILE *f, const report *rp)
{
    char ctl[16], perf[32], scal[32];
    pct(ctl, sizeof ctl, rp->run, 0, "control");
    snprintf(perf, sizeof perf, rp->has_performance ? "%.1f%%" : "-", 100 * rp->performance);
    snprintf(scal, sizeof scal, rp->has_scaling ? "%.2f" : "-", rp->scaling);
    fprintf(f,
            "<g font-family=\"sans-serif\" fill=\"#000\">\n<text x=\"%d\" y=\"22\" "
            "font-size=\"15\">",
            SVG_LEFT);
    svg_text(f, col(rp->run, 0, "suite"));
    fprintf(f, ", run %s", col(rp->run, 0, "id"));
    if (!null(rp->run, 0, "model")) {
        fputs(", ", f);
        svg_text(f, col(rp->run, 0, "model"));
    }
    fprintf(f,
            ": accuracy vs thinking tokens</text>\n<text x=\"%d\" y=\"42\" font-size=\"12\">"
            "Control %s   Scaling %s   Performance %s</text>\n",
            SVG_LEFT, null(rp->run, 0, "control") ? "-" : ctl, scal, perf);
    if (rp->has_performance == 0)
        fprintf(f,
                "<text x=\"%d\" y=\"%d\" font-size=\"14\" text-anchor=\"middle\" "
                "fill=\"#888\">no graded results yet</text>\n",
                (SVG_LEFT + SVG_W - SVG_RIGHT) / 2, SVG_H / 2);
    fprintf(f, "</g>\n");
}

/* Writes the whole SVG to path; 0, or the exit code after printing why. */
static int write_svg(const char *path, const report *rp)
{
    FILE *f = fopen(path, "w");
    if (!f) return s1ctl_fail(S1CTL_EXIT_USAGE, "--plot %s: %s", path, strerror(errno));
    svg_xrange r = svg_range(rp);
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
            SVG_W, SVG_H, SVG_W, SVG_H);
    svg_title(f, rp);
    svg_axes(f, r);
    svg_points(f, rp, r);
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "--plot %s: write failed: %s", path, strerror(errno));
    return 0;
}

static const char report_usage[] =
    "Usage: s1ctl bench report [RUN_ID | --suite NAME] [--json] [--plot FILE.svg]\n"
    "Prints a benchmark run (RUN_ID, else the latest run of --suite, else the latest\n"
    "run) per budget: jobs done/total, accuracy over graded samples, mean thinking\n"
    "tokens, and control (share of samples within their budget); then the s1 paper's\n"
    "figures: Control, Scaling (mean slope of accuracy over thinking tokens between\n"
    "budgets, in accuracy points per 1000 tokens) and Performance (best accuracy).\n"
    "On a terminal a text chart follows, unless --plot writes an SVG chart instead.\n\n"
    "  --suite NAME        the latest run of this suite\n"
    "  --plot FILE.svg     write accuracy against thinking tokens (log scale) as SVG\n"
    "  --json              print JSON\n" DB_HELP;

int s1ctl_bench_report(int argc, char **argv)
{
    view_args a = {0};
    int rc = view_parse(argc, argv, report_usage, report_options, 1, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db, &c))) return rc;
    report rp = {0};
    if ((rc = report_load(c, &a, &rp))) goto done;
    if (a.plot && (rc = write_svg(a.plot, &rp))) goto done;
    if (a.json) {
        rc = report_json(&rp);
        goto done;
    }
    print_header(rp.run);
    print_curve(rp.curve);
    print_figures(&rp);
    if (!a.plot && isatty(STDOUT_FILENO)) print_chart(&rp);
done:
    report_free(&rp);
    return rc;
}

/* ---- bench regrade ---- */

static const char regrade_usage[] =
    "Usage: s1ctl bench regrade RUN_ID [--json] [--db CONNINFO]\n"
    "Extracts and grades every result of the run again with this s1ctl's grader\n"
    "(docs/grading.md), after the grader has improved; stores only the extracted\n"
    "answers and grades that change, all in one transaction, and prints how many.\n\n"
    "  --json              print JSON\n" DB_HELP;

static const struct option regrade_options[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {"db", required_argument, NULL, OPT_DB},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int s1ctl_bench_regrade(int argc, char **argv)
{
    view_args a = {0};
    int rc = view_parse(argc, argv, regrade_usage, regrade_options, 1, &a);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    if (!a.run_id) return s1ctl_fail(S1CTL_EXIT_USAGE, "no RUN_ID given (see s1ctl bench list)");
    _cleanup_pgconn_ PGconn *c = NULL;
    if ((rc = s1ctl_connect(a.db, &c))) return rc;
    s1_err err = {{0}};
    _cleanup_pgresult_ PGresult *run = s1_bench_run_get(c, a.run_id, NULL, &err);
    if (!run) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (PQntuples(run) == 0)
        return s1ctl_fail(S1CTL_EXIT_NOT_FOUND,
                          "run %lld: no such benchmark run (see s1ctl bench list)", a.run_id);
    s1_bench_regraded g;
    if (s1_bench_regrade(c, a.run_id, &g, &err)) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    if (a.json)
        return s1ctl_print_json(json_pack("{s:I,s:I,s:I,s:I}", "run", (json_int_t)a.run_id,
                                          "results", (json_int_t)g.results, "correct",
                                          (json_int_t)g.correct, "changed", (json_int_t)g.changed));
    printf("run %lld: %lld results regraded, %lld correct, %lld changed\n", a.run_id, g.results,
           g.correct, g.changed);
    return S1CTL_EXIT_OK;
}

static const char bench_help[] =
    "Usage: s1ctl bench COMMAND [FLAGS] [ARGS]   (s1ctl bench COMMAND --help for its flags)\n\n"
    "Benchmark runs: a suite at a ladder of thinking budgets.\n"
    "  run SUITE --budgets N,N,...   queue one job per problem and budget\n"
    "  report [RUN_ID | --suite S]   accuracy against thinking tokens, and a plot\n"
    "  list                          runs with their progress\n"
    "  regrade RUN_ID                grade every result again with this grader\n";

int s1ctl_bench(int argc, char **argv)
{
    static const s1ctl_sub subs[] = {
        {"run", "bench run", s1ctl_bench_run},
        {"report", "bench report", s1ctl_bench_report},
        {"list", "bench list", s1ctl_bench_list},
        {"regrade", "bench regrade", s1ctl_bench_regrade},
    };
    return s1ctl_subcommand("bench", subs, sizeof subs / sizeof *subs, bench_help, argc, argv);
}
