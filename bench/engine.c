/* bench/engine — figures of the CPU backend on one model, made to be read
 * on a shared machine: every figure is taken in rounds, interleaved with
 * the other kernel sets and with a measure of the memory read bandwidth,
 * and printed as min / median / max; comparisons are ratios within a round.
 *
 *   engine [MODEL_DIR] [--threads N] [--tp N] [--rounds N] [--steps N]
 *          [--prompt N] [--context N] [--profile]
 *
 * For the kernel set chosen at load (engine/cpu/choose.h): decode tokens/s
 * at batch 1 and 8 and their share of the bandwidth (decode reads every
 * weight once per step), prefill of a --prompt token prompt (warm: the first,
 * cold forward is printed apart), decode at position --context with its KV
 * reads counted. For every other set this CPU runs: decode at batch 1 and 8.
 * --profile adds where a step's time goes (matmul, attention, norm, other,
 * sampling) and the scheduler's share of a step of the engine.
 *
 * Without MODEL_DIR it generates the 0.5b preset (tools/gen_model.py) into
 * the build tree's bench-models/ once and uses that. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "cleanup.h"
#include "cpu/choose.h"
#include "cpu/profile.h"
#include "engine.h"
#include "membw.h"
#include "model.h"
#include "sampler.h"

/* KV blocks of 16 tokens each sequence may use: 16k positions. */
#define BLOCKS_PER_SEQ 1024
#define MAX_SEQS       8
/* Sequences of one set's workloads: batch 1, batch 8, long context, prefill. */
#define SEQS_PER_SET (1 + 8 + 1 + 1)
#define MAX_ROUNDS   64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Timings of one figure, in seconds. */
typedef struct {
    double v[MAX_ROUNDS * 16];
    int n;
} samples;

static void add(samples *s, double v)
{
    if (s->n < (int)(sizeof s->v / sizeof *s->v)) s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q in [0, 1]: 0 the smallest, 0.5 the median, 1 the largest. */
static double quantile(const samples *s, double q)
{
    double v[sizeof s->v / sizeof *s->v];
    memcpy(v, s->v, (size_t)s->n * sizeof *v);
    qsort(v, (size_t)s->n, sizeof *v, cmp_double);
    return s->n ? v[(int)(q * (s->n - 1) + 0.5)] : 0;
}

/* Sequences of one workload, each on its own blocks, from `base` on. */
typedef struct {
    s1_backend *b;
    int n_seqs, len[MAX_SEQS];
    int32_t blocks[MAX_SEQS][BLOCKS_PER_SEQ];
    s1_block_table tables[MAX_SEQS];
    float *logits; /* [n_seqs, vocab], owned */
} workload;

static int workload_init(workload *w, s1_backend *b, int n_seqs, int first_seq)
{
    memset(w, 0, sizeof *w);
    w->b = b;
    w->n_seqs = n_seqs;
    for (int s = 0; s < n_seqs; s++)
        for (int i = 0; i < BLOCKS_PER_SEQ; i++)
            w->blocks[s][i] = (first_seq + s) * BLOCKS_PER_SEQ + i;
    w->logits = malloc((size_t)n_seqs * (size_t)b->vocab_size * sizeof(float));
    return w->logits ? 0 : -1;
}

/* One forward feeding `per_seq` tokens to each sequence, logits of each
 * sequence's last row: seconds, or -1 with err set. */
static double feed(workload *w, int per_seq, s1_err *err)
{
    int n = per_seq * w->n_seqs;
    _cleanup_free_ int32_t *tok = calloc((size_t)n, 4), *pos = calloc((size_t)n, 4),
                           *seq = calloc((size_t)n, 4);
    int32_t rows[MAX_SEQS];
    if (!tok || !pos || !seq) return s1_errf(err, "out of memory");
    for (int s = 0, i = 0; s < w->n_seqs; s++) {
        for (int j = 0; j < per_seq; j++, i++) {
            tok[i] = (int32_t)((i * 7919 + s * 31) % w->b->vocab_size);
            pos[i] = w->len[s] + j;
            seq[i] = s;
        }
        rows[s] = i - 1;
        w->len[s] += per_seq;
        w->tables[s] =
            (s1_block_table){.blocks = w->blocks[s],
                             .n_blocks = (w->len[s] + w->b->block_size - 1) / w->b->block_size};
    }
    s1_batch batch = {.n_tokens = n,
                      .tokens = tok,
                      .pos = pos,
                      .seq = seq,
                      .n_seqs = w->n_seqs,
                      .tables = w->tables,
                      .n_out = w->n_seqs,
                      .out_rows = rows,
                      .logits = w->logits};
    double t0 = now();
    if (s1_backend_forward(w->b, &batch, err) < 0) return -1;
    return now() - t0;
}

/* Gives sequence 0 a context of n positions without computing them: one
 * token, its block copied over the others, so that attention reads n
 * positions of real memory. */
static int fill(workload *w, int n, s1_err *err)
{
    if (feed(w, 1, err) < 0) return -1;
    for (int i = 1; i < (n + w->b->block_size - 1) / w->b->block_size; i++)
        if (s1_backend_copy_block(w->b, w->blocks[0][0], w->blocks[0][i], err) < 0) return -1;
    w->len[0] = n;
    return 0;
}

/* Where the chosen set's time goes, per workload: seconds per op, and the
 * sampling of each step's rows as the engine would sample them. */
typedef struct {
    double op[S1_CPU_N_OPS], sampling;
    int tokens;
} profile;

enum { B1, B8, LONG, PREFILL, N_WORK };
static const char *const work_names[N_WORK] = {"decode batch 1", "decode batch 8",
                                               "decode at --context", "prefill (warm)"};

/* One kernel set: its backend and workloads, and their timings. */
typedef struct {
    const s1_cpu_kernels *k;
    s1_backend *b;
    bool full; /* all four workloads; else batch 1 and 8 only */
    workload w[N_WORK];
    samples t[N_WORK];
    samples round_b1; /* the median batch-1 step of each round */
    double cold_s;    /* the first forward: pages of the weights mapped in */
} rig;

typedef struct {
    int steps, prompt, context, rounds;
    bool profiling;
    profile prof[N_WORK];
    s1_sampler_ws *ws;
    s1_sampler sampler;
} run_cfg;

/* Samples every row of w's logits, as the engine does after a step. */
static void sample_rows(run_cfg *rc, workload *w, profile *p)
{
    double t0 = now();
    for (int s = 0; s < w->n_seqs; s++)
        s1_sampler_sample(&rc->sampler, rc->ws, w->logits + (size_t)s * w->b->vocab_size,
                          w->b->vocab_size);
    p->sampling += now() - t0;
}

static int rig_open(rig *g, const s1_model *m, const s1_backend_cfg *cfg, const s1_cpu_kernels *k,
                    bool full, const run_cfg *rc, s1_err *err)
{
    memset(g, 0, sizeof *g);
    g->k = k;
    g->full = full;
    setenv("S1_CPU_KERNELS", k->name, 1);
    g->b = s1_backend_open("cpu", m, cfg, err);
    unsetenv("S1_CPU_KERNELS");
    if (!g->b) return -1;
    const int first[N_WORK] = {0, 1, 9, 10}, n[N_WORK] = {1, 8, 1, 1};
    for (int i = 0; i < N_WORK; i++)
        if (workload_init(&g->w[i], g->b, n[i], first[i]) < 0) return s1_errf(err, "out of memory");
    g->cold_s = feed(&g->w[B1], 1, err);
    if (g->cold_s < 0 || feed(&g->w[B8], 1, err) < 0) return -1;
    return full ? fill(&g->w[LONG], rc->context, err) : 0;
}

static void rig_close(rig *g)
{
    for (int i = 0; i < N_WORK; i++)
        free(g->w[i].logits);
    s1_backend_close(g->b);
}

/* Runs `steps` decode steps of workload i, profiled when asked. */
static int decode_steps(rig *g, int i, run_cfg *rc, samples *round, s1_err *err)
{
    double op[S1_CPU_N_OPS];
    profile *p = &rc->prof[i];
    s1_cpu_profile_take(op);
    for (int s = 0; s < rc->steps; s++) {
        double t = feed(&g->w[i], 1, err);
        if (t < 0) return -1;
        add(&g->t[i], t);
        if (round) add(round, t);
        if (rc->profiling) sample_rows(rc, &g->w[i], p);
        p->tokens += g->w[i].n_seqs;
    }
    s1_cpu_profile_take(op);
    for (int o = 0; o < S1_CPU_N_OPS; o++)
        p->op[o] += op[o];
    return 0;
}

/* A prompt of rc->prompt tokens on the prefill sequence, from position 0. */
static int prefill(rig *g, run_cfg *rc, s1_err *err)
{
    double op[S1_CPU_N_OPS];
    s1_cpu_profile_take(op);
    g->w[PREFILL].len[0] = 0;
    double t = feed(&g->w[PREFILL], rc->prompt, err);
    if (t < 0) return -1;
    add(&g->t[PREFILL], t);
    s1_cpu_profile_take(op);
    for (int o = 0; o < S1_CPU_N_OPS; o++)
        rc->prof[PREFILL].op[o] += op[o];
    rc->prof[PREFILL].tokens += rc->prompt;
    return 0;
}

/* One round: each set's workloads in turn. Only the chosen set (the first
 * rig) is profiled. */
static int round_of(rig *rigs, int n_rigs, run_cfg *rc, s1_err *err)
{
    for (int r = 0; r < n_rigs; r++) {
        rig *g = &rigs[r];
        samples round = {.n = 0};
        s1_cpu_profile_enable(rc->profiling && r == 0);
        if (decode_steps(g, B1, rc, &round, err) < 0 || decode_steps(g, B8, rc, NULL, err) < 0)
            return -1;
        add(&g->round_b1, quantile(&round, 0.5));
        if (g->full && (decode_steps(g, LONG, rc, NULL, err) < 0 || prefill(g, rc, err) < 0))
            return -1;
    }
    s1_cpu_profile_enable(false);
    return 0;
}

static double tbytes(const s1_tensor *t)
{
    return (double)t->rows * (double)t->cols * (double)s1_dtype_size(t->dtype);
}

/* What one decode step reads: every matmul weight, the norms, and one
 * embedding row. */
static double decode_bytes(const s1_model *m)
{
    double b = tbytes(&m->w.lm_head) + tbytes(&m->w.final_norm) +
               (double)m->cfg.hidden_size * (double)s1_dtype_size(m->w.embed.dtype);
    for (int i = 0; i < m->cfg.n_layers; i++) {
        const s1_layer *l = &m->w.layers[i];
        const s1_tensor *ts[] = {&l->attn_norm, &l->wq,     &l->bq,   &l->wk,
                                 &l->bk,        &l->wv,     &l->bv,   &l->wo,
                                 &l->mlp_norm,  &l->w_gate, &l->w_up, &l->w_down};
        for (size_t k = 0; k < sizeof ts / sizeof *ts; k++)
            b += tbytes(ts[k]);
    }
    return b;
}

/* Bytes of K and V one token reads at position pos. */
static double kv_bytes(const s1_model_config *c, int pos)
{
    return 2.0 * 4 * c->n_layers * c->n_kv_heads * c->head_dim * (pos + 1.0);
}

/* "min / median / max" of tokens/s, from step times of `tokens` tokens. */
static void print_rate(const char *what, const samples *s, int tokens)
{
    printf("  %-26s %8.1f / %8.1f / %8.1f tokens/s (min / median / max of %d)\n", what,
           tokens / quantile(s, 1), tokens / quantile(s, 0.5), tokens / quantile(s, 0), s->n);
}

/* The share of the bandwidth a step of `bytes` achieves: at the median
 * step against the median bandwidth, and at the best against the best. */
static void print_share(double bytes, const samples *t, const samples *bw)
{
    printf("  %-26s %.1f GB/s = %.0f%% of the median bandwidth; best step %.0f%% of the best\n", "",
           bytes / quantile(t, 0.5) / 1e9, 100 * bytes / quantile(t, 0.5) / 1e9 / quantile(bw, 0.5),
           100 * bytes / quantile(t, 0) / 1e9 / quantile(bw, 1));
}

static void print_chosen(const rig *g, const s1_model *m, const run_cfg *rc, const samples *bw)
{
    double bytes = decode_bytes(m);
    printf("chosen set %s:\n", g->k->name);
    print_rate("decode batch 1", &g->t[B1], 1);
    print_share(bytes, &g->t[B1], bw);
    print_rate("decode batch 8", &g->t[B8], 8);
    print_share(bytes, &g->t[B8], bw);
    printf("  %-26s %.2fx the tokens/s of batch 1 (medians)\n", "",
           8 * quantile(&g->t[B1], 0.5) / quantile(&g->t[B8], 0.5));
    char what[64];
    snprintf(what, sizeof what, "prefill %d tokens (warm)", rc->prompt);
    print_rate(what, &g->t[PREFILL], rc->prompt);
    printf("  %-26s first (cold) forward of 1 token: %.1f ms\n", "", g->cold_s * 1e3);
    snprintf(what, sizeof what, "decode at position %d", rc->context);
    print_rate(what, &g->t[LONG], 1);
    print_share(bytes + kv_bytes(&m->cfg, rc->context + rc->rounds * rc->steps / 2), &g->t[LONG],
                bw);
}

/* Each set's batch-1 and batch-8 figures, and its batch-1 speed relative
 * to the chosen set: the median over rounds of the ratio of the two sets'
 * median steps in the same round. */
static void print_sets(const rig *rigs, int n_rigs)
{
    printf("every kernel set (decode tokens/s, median; vs %s: median of per-round ratios):\n",
           rigs[0].k->name);
    for (int r = 0; r < n_rigs; r++) {
        samples ratio = {.n = 0};
        for (int i = 0; i < rigs[r].round_b1.n; i++)
            add(&ratio, rigs[0].round_b1.v[i] / rigs[r].round_b1.v[i]);
        printf("  %-11s batch 1 %7.1f   batch 8 %7.1f   batch 1 vs %s %.2fx\n", rigs[r].k->name,
               1 / quantile(&rigs[r].t[B1], 0.5), 8 / quantile(&rigs[r].t[B8], 0.5),
               rigs[0].k->name, quantile(&ratio, 0.5));
    }
}

static void print_profile(const run_cfg *rc)
{
    printf("where the time goes (chosen set, ms per token):\n");
    printf("  %-22s %8s %8s %8s %8s %8s %8s\n", "", "matmul", "attn", "norm", "other", "sampling",
           "total");
    for (int i = 0; i < N_WORK; i++) {
        const profile *p = &rc->prof[i];
        if (!p->tokens) continue;
        double f = p->op[S1_CPU_OP_FORWARD], mm = p->op[S1_CPU_OP_MATMUL],
               at = p->op[S1_CPU_OP_ATTENTION], nm = p->op[S1_CPU_OP_NORM], k = 1e3 / p->tokens;
        printf("  %-22s %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f\n", work_names[i], mm * k, at * k,
               nm * k, (f - mm - at - nm) * k, p->sampling * k, (f + p->sampling) * k);
    }
}

/* Steps the engine on 8 short raw requests and splits a step into the
 * backend's forward and the rest (scheduler, sampling, budget forcing). */
static int profile_scheduler(const char *dir, const s1_cpu_kernels *k, int threads, s1_err *err)
{
    s1_engine_cfg cfg = {.model_dir = dir,
                         .backend = "cpu",
                         .threads = threads,
                         .max_seqs = 8,
                         .kv_blocks = 8 * 64,
                         .max_context = 1024};
    setenv("S1_CPU_KERNELS", k->name, 1);
    s1_engine *e = s1_engine_open(&cfg, err);
    unsetenv("S1_CPU_KERNELS");
    if (!e) return -1;
    for (int i = 0; i < 8; i++) {
        s1_request r = {.tag = (uint64_t)i + 1,
                        .text = "Count to ten.",
                        .raw = true,
                        .max_tokens = 24,
                        .sampling = {.temperature = 0.7f, .top_p = 0.95f, .seed = (uint64_t)i}};
        r.text_len = strlen(r.text);
        if (s1_engine_add(e, &r, err) < 0) {
            s1_engine_close(e);
            return -1;
        }
    }
    double op[S1_CPU_N_OPS], total = 0;
    int steps = 0, left = 1;
    s1_cpu_profile_enable(true);
    s1_cpu_profile_take(op);
    while (left > 0) {
        double t0 = now();
        left = s1_engine_step(e, err);
        total += now() - t0;
        steps++;
        for (s1_result *r; (r = s1_engine_take_result(e));)
            s1_result_free(r);
    }
    s1_cpu_profile_take(op);
    s1_cpu_profile_enable(false);
    s1_engine_close(e);
    if (left < 0) return -1;
    printf("engine steps (8 raw requests, 24 tokens each): %d steps, %.2f ms per step: forward "
           "%.2f ms, scheduler + sampling + budget forcing %.3f ms (%.1f%%)\n",
           steps, total / steps * 1e3, op[S1_CPU_OP_FORWARD] / steps * 1e3,
           (total - op[S1_CPU_OP_FORWARD]) / steps * 1e3,
           100 * (total - op[S1_CPU_OP_FORWARD]) / total);
    return 0;
}

static char *default_model(void)
{
    char *dir;
    if (asprintf(&dir, "%s/0.5b", S1_BENCH_MODELS) < 0) return NULL;
    struct stat st;
    if (stat(dir, &st) == 0) return dir;
    char *cmd;
    if (asprintf(&cmd, "/usr/bin/python3 '%s' --out '%s' --preset 0.5b", S1_GEN_MODEL, dir) < 0)
        return NULL;
    fprintf(stderr, "generating the 0.5b preset into %s (once)\n", dir);
    int rc = system(cmd);
    free(cmd);
    if (rc != 0) {
        free(dir);
        return NULL;
    }
    return dir;
}

/* The CPU's model name from /proc/cpuinfo, for the figures' heading. */
static void cpu_name(char *out, size_t n)
{
    snprintf(out, n, "unknown CPU");
    _cleanup_fclose_ FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(out, n, "%s", strchr(line, ':') + 2);
            out[strcspn(out, "\n")] = 0;
            return;
        }
}

/* Opens a rig per kernel set, the chosen one first, and runs the rounds. */
static int bench(const s1_model *m, const s1_backend_cfg *cfg, run_cfg *rc, rig *rigs, int *n_rigs,
                 samples *bw, s1_err *err)
{
    const s1_cpu_kernels *chosen = s1_cpu_kernels_choose(m, err), *sets[S1_CPU_MAX_KERNEL_SETS];
    if (!chosen) return -1;
    int n = s1_cpu_kernels_supported(sets, S1_CPU_MAX_KERNEL_SETS);
    if (rig_open(&rigs[(*n_rigs)++], m, cfg, chosen, true, rc, err) < 0) return -1;
    for (int i = 0; i < n; i++)
        if (sets[i] != chosen && rig_open(&rigs[(*n_rigs)++], m, cfg, sets[i], false, rc, err) < 0)
            return -1;
    s1_membw *mb = s1_membw_new(cfg->threads);
    if (!mb) return s1_errf(err, "out of memory for the bandwidth buffer");
    int rv = 0;
    for (int r = 0; r < rc->rounds && !rv; r++) {
        double a = s1_membw_pass(mb), b = s1_membw_pass(mb);
        add(bw, a > b ? a : b);
        rv = round_of(rigs, *n_rigs, rc, err);
    }
    s1_membw_free(mb);
    return rv;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: engine [MODEL_DIR] [--threads N] [--tp N] [--rounds 1..%d] [--steps "
            "1..16] [--prompt 1..4096] [--context 1..8192] [--profile]\n",
            MAX_ROUNDS);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"threads", 1, 0, 'j'}, {"tp", 1, 0, 't'},     {"prompt", 1, 0, 'p'},  {"steps", 1, 0, 's'},
        {"context", 1, 0, 'c'}, {"rounds", 1, 0, 'r'}, {"profile", 0, 0, 'P'}, {0, 0, 0, 0}};
    s1_backend_cfg cfg = {.tp = 1,
                          .block_size = 16,
                          .n_blocks = SEQS_PER_SET * BLOCKS_PER_SEQ,
                          .max_batch_tokens = 512};
    run_cfg rc = {.steps = 4, .prompt = 512, .context = 8192, .rounds = 7};
    for (int c; (c = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
        if (c == 'j')
            cfg.threads = atoi(optarg);
        else if (c == 't')
            cfg.tp = atoi(optarg);
        else if (c == 'c')
            rc.context = atoi(optarg);
        else if (c == 'p')
            rc.prompt = atoi(optarg);
        else if (c == 's')
            rc.steps = atoi(optarg);
        else if (c == 'r')
            rc.rounds = atoi(optarg);
        else if (c == 'P')
            rc.profiling = true;
        else
            return usage();
    }
    if (rc.prompt < 1 || rc.prompt > 4096 || rc.steps < 1 || rc.steps > 16 || rc.context < 1 ||
        rc.context > 8192 || rc.rounds < 1 || rc.rounds > MAX_ROUNDS || optind < argc - 1)
        return usage();
    if (!cfg.threads) cfg.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    _cleanup_free_ char *dir = optind < argc ? strdup(argv[optind]) : default_model();
    s1_err err = {{0}};
    s1_model *m = dir ? s1_model_load(dir, &err) : NULL;
    if (!m) {
        fprintf(stderr, "%s\n", dir ? err.msg : "cannot generate the benchmark model");
        return 1;
    }
    rc.ws = s1_sampler_ws_new(m->cfg.vocab_size);
    s1_sampler_init(&rc.sampler, &(s1_sampling){.temperature = 0.7f, .top_p = 0.95f, .seed = 1});
    rig rigs[S1_CPU_MAX_KERNEL_SETS];
    int n_rigs = 0;
    static samples bw;
    int ok = rc.ws && bench(m, &cfg, &rc, rigs, &n_rigs, &bw, &err) == 0;
    if (ok) {
        char cpu[128];
        cpu_name(cpu, sizeof cpu);
        printf("%s, %d threads, TP %d; %.1f MB of weights per decode step; %d rounds of %d steps\n",
               cpu, cfg.threads, cfg.tp, decode_bytes(m) / 1e6, rc.rounds, rc.steps);
        printf("memory read bandwidth: %.1f / %.1f / %.1f GB/s (min / median / max)\n",
               quantile(&bw, 0), quantile(&bw, 0.5), quantile(&bw, 1));
        print_chosen(&rigs[0], m, &rc, &bw);
        print_sets(rigs, n_rigs);
        if (rc.profiling) print_profile(&rc);
    }
    for (int i = 0; i < n_rigs; i++)
        rig_close(&rigs[i]);
    if (ok && rc.profiling) ok = profile_scheduler(dir, rigs[0].k, cfg.threads, &err) == 0;
    s1_sampler_ws_free(rc.ws);
    s1_model_free(m);
    if (!ok) fprintf(stderr, "%s\n", err.msg[0] ? err.msg : "out of memory");
    return ok ? 0 : 1;
}
