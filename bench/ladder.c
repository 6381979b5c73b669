/* bench/ladder — what a budget ladder saves: one ladder request against the
 * same rungs as separate requests (run together, as a queue of separate jobs
 * would be), on the CPU backend. Prints tokens computed, positions attended,
 * wall and CPU time and the KV blocks held at peak for both, their ratios,
 * and whether every rung's tokens equal its separate run (the ladder's
 * contract). --problems N runs N problems at once on each side: N ladders
 * against N times as many separate requests, the engine kept busy, as a
 * queue of many jobs keeps it.
 *
 *   ladder [MODEL_DIR] [--budgets 512,1024,...] [--answer N] [--threads N] [--problems N]
 *
 * Without MODEL_DIR it generates the tiny preset with a 20480-token context
 * into the build tree's bench-models/ once. Every stop is suppressed
 * (ignore_stop), so a random model's early stops become waits and every rung
 * thinks to its budget: the case the ladder is for. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"

enum { MAX_PROBLEMS = 64 };

static const char problem[] = "Find the number of positive integers n less than 1000 such that "
                              "n is divisible by 7 and n + 1 is divisible by 11.";

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One run of requests in a fresh engine: its figures and results. */
typedef struct {
    s1_engine_stats st;
    double wall, cpu; /* seconds; CPU time of every thread, which a busy machine disturbs less */
    s1_result *res[MAX_PROBLEMS * S1_MAX_RUNGS]; /* by problem, then rung */
} run_out;

/* Requests tagged with their problem (ladders) or problem * n_rungs + rung
 * (separate requests): where each result goes. */
static int run(const s1_engine_cfg *cfg, const s1_request *reqs, int n, int n_rungs, bool ladders,
               run_out *out, s1_err *err)
{
    memset(out, 0, sizeof *out);
    s1_engine *e = s1_engine_open(cfg, err);
    if (!e) return -1;
    double t0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    int rc = 0, n_res = ladders ? n * n_rungs : n;
    for (int i = 0; i < n && rc == 0; i++)
        rc = s1_engine_add(e, &reqs[i], err);
    for (int left = 1; rc == 0 && left > 0;) {
        left = s1_engine_step(e, err);
        rc = left < 0 ? -1 : 0;
        for (s1_result *r; (r = s1_engine_take_result(e));) {
            int at = ladders ? (int)r->tag * n_rungs + r->rung : (int)r->tag;
            if (at < n_res && !out->res[at])
                out->res[at] = r;
            else
                s1_result_free(r);
        }
    }
    out->wall = seconds(CLOCK_MONOTONIC) - t0;
    out->cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
    s1_engine_get_stats(e, &out->st);
    s1_engine_close(e);
    return rc;
}

static void free_run(run_out *o, int n)
{
    for (int i = 0; i < n; i++)
        s1_result_free(o->res[i]);
}

static bool same_run(const s1_result *a, const s1_result *b)
{
    return a && b && a->n_gen == b->n_gen && a->thinking_tokens == b->thinking_tokens &&
           a->answer_tokens == b->answer_tokens && a->stop == b->stop &&
           !memcmp(a->gen_ids, b->gen_ids, sizeof *a->gen_ids * a->n_gen);
}

static int parse_budgets(const char *s, s1_ladder *l)
{
    l->kind = S1_LADDER_BUDGET;
    l->n_rungs = 0;
    for (char *end; *s; s = *end ? end + 1 : end) {
        long v = strtol(s, &end, 10);
        if (end == s || (*end && *end != ',') || v < 1 || v > 1 << 20 ||
            l->n_rungs == S1_MAX_RUNGS || (l->n_rungs && v <= l->rungs[l->n_rungs - 1]))
            return -1;
        l->rungs[l->n_rungs++] = (int)v;
    }
    return l->n_rungs ? 0 : -1;
}

static char *default_model(void)
{
    char *dir, *cmd;
    if (asprintf(&dir, "%s/tiny-20k", S1_BENCH_MODELS) < 0) return NULL;
    struct stat st;
    if (stat(dir, &st) == 0) return dir;
    if (asprintf(&cmd, "/usr/bin/python3 '%s' --out '%s' --preset tiny --max-position 20480",
                 S1_GEN_MODEL, dir) < 0)
        return NULL;
    fprintf(stderr, "generating the tiny preset into %s (once)\n", dir);
    int rc = system(cmd);
    free(cmd);
    if (rc == 0) return dir;
    free(dir);
    return NULL;
}

/* The CPU the figures were measured on, as lscpu names it: "model name"
 * of /proc/cpuinfo, and how many CPUs this process may use. */
static void print_cpu(void)
{
    char line[256], name[200] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "model name : %199[^\n]", name) == 1) break;
    if (f) fclose(f);
    printf("cpu: %s, %ld CPUs\n", name, sysconf(_SC_NPROCESSORS_ONLN));
}

static void print_run(const char *name, const run_out *o)
{
    printf("%-20s %8lld tokens computed, %11lld positions attended, %7.2f s (%.2f s of CPU), "
           "%5d KV blocks at peak, %lld forks, %lld preemptions\n",
           name, (long long)o->st.tokens_computed, (long long)o->st.kv_attended, o->wall, o->cpu,
           o->st.kv_blocks_peak, (long long)o->st.forks, (long long)o->st.preemptions);
}

/* Problem i's text: the same question, numbered, so that no two share a
 * prompt. */
static void problem_text(int i, char *buf, size_t size, s1_request *r)
{
    int len = snprintf(buf, size, "%s (Problem %d.)", problem, i + 1);
    r->text = buf;
    r->text_len = (size_t)len;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: ladder [MODEL_DIR] [--budgets B1,B2,... ascending] [--answer N] "
            "[--threads N] [--problems N (1..%d)]\n",
            MAX_PROBLEMS);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"budgets", 1, 0, 'b'},
                                       {"answer", 1, 0, 'a'},
                                       {"threads", 1, 0, 'j'},
                                       {"problems", 1, 0, 'p'},
                                       {0, 0, 0, 0}};
    s1_request ladder = {0};
    ladder.policy.max_answer = 64;
    int threads = 1, problems = 1;
    if (parse_budgets("512,1024,2048,4096,8192,16000", &ladder.policy.ladder) < 0) return 1;
    for (int c; (c = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
        if (c == 'b' && parse_budgets(optarg, &ladder.policy.ladder) == 0) continue;
        if (c == 'a' && (ladder.policy.max_answer = atoi(optarg)) > 0) continue;
        if (c == 'j' && (threads = atoi(optarg)) > 0) continue;
        if (c == 'p' && (problems = atoi(optarg)) > 0 && problems <= MAX_PROBLEMS) continue;
        usage();
        return 2;
    }
    _cleanup_free_ char *dir = optind < argc ? strdup(argv[optind]) : default_model();
    if (!dir) {
        fprintf(stderr, "cannot generate the benchmark model\n");
        return 1;
    }
    const s1_ladder *l = &ladder.policy.ladder;
    int n = l->n_rungs;
    ladder.policy.ignore_stop = 1 << 30;
    static char texts[MAX_PROBLEMS][256];
    static s1_request ladders[MAX_PROBLEMS], sep[MAX_PROBLEMS * S1_MAX_RUNGS];
    for (int p = 0; p < problems; p++) {
        ladders[p] = ladder;
        ladders[p].tag = (uint64_t)p;
        problem_text(p, texts[p], sizeof texts[p], &ladders[p]);
        for (int i = 0; i < n; i++) {
            s1_request *r = &sep[p * n + i];
            *r = ladders[p];
            r->tag = (uint64_t)(p * n + i);
            r->policy.ladder = (s1_ladder){0};
            r->policy.max_think = l->rungs[i];
        }
    }
    /* Blocks for all separate runs at once, so neither side is preempted. */
    int64_t tokens = 0;
    for (int i = 0; i < n; i++)
        tokens += l->rungs[i] + ladder.policy.max_answer + 256;
    s1_engine_cfg cfg = {.model_dir = dir,
                         .threads = threads,
                         .kv_blocks = (int)(problems * tokens / 16 + 64),
                         .max_seqs = problems * n};
    s1_err err = {{0}};
    static run_out one, many;
    if (run(&cfg, ladders, problems, n, true, &one, &err) < 0 ||
        run(&cfg, sep, problems * n, n, false, &many, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int same = 0, early = 0, all = problems * n;
    for (int i = 0; i < all; i++) {
        same += same_run(one.res[i], many.res[i]);
        early += many.res[i] && many.res[i]->thinking_tokens < l->rungs[i % n];
    }
    print_cpu();
    printf("model %s, %d problem%s, %d budgets from %d to %d, answers of at most %d tokens, %d "
           "thread%s\n",
           dir, problems, problems == 1 ? "" : "s", n, l->rungs[0], l->rungs[n - 1],
           ladder.policy.max_answer, threads, threads == 1 ? "" : "s");
    print_run(problems == 1 ? "one ladder request:" : "ladder requests:", &one);
    print_run("separate requests:", &many);
    printf("ladder / separate: %.3f of the tokens, %.3f of the attention, %.3f of the time (%.3f "
           "of the CPU time), %.3f of the peak KV blocks\n",
           (double)one.st.tokens_computed / (double)many.st.tokens_computed,
           (double)one.st.kv_attended / (double)many.st.kv_attended, one.wall / many.wall,
           one.cpu / many.cpu, (double)one.st.kv_blocks_peak / many.st.kv_blocks_peak);
    printf("rungs equal to their separate run: %d of %d; rungs that stopped thinking early: %d\n",
           same, all, early);
    free_run(&one, all);
    free_run(&many, all);
    return same == all ? 0 : 1;
}
