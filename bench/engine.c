/* bench/engine — figures of the CPU backend on one model: prefill tokens/s,
 * decode tokens/s at batch 1 and 8, the bytes of weights one decode step
 * streams, this machine's memory read bandwidth (measured here), and the
 * share of it that decode achieves (decode is memory-bound: every weight is
 * read once per step).
 *
 *   engine [MODEL_DIR] [--threads N] [--tp N] [--prompt N] [--steps N]
 *
 * Without MODEL_DIR it generates the 0.5b preset (tools/gen_model.py) into
 * the build tree's bench-models/ once and uses that. */
#include <getopt.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "cleanup.h"
#include "model.h"

#define BW_BYTES (1ull << 30)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const uint8_t *p;
    size_t n;
    uint64_t sink;
    pthread_t th;
} bw_part;

__attribute__((target("avx2"))) static void *read_part(void *arg)
{
    bw_part *b = arg;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= b->n; i += 128) {
        const __m256i *v = (const __m256i *)(b->p + i);
        a0 = _mm256_add_epi64(a0, _mm256_load_si256(v));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256(v + 1));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256(v + 2));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256(v + 3));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, s);
    b->sink = out[0] + out[1] + out[2] + out[3];
    return NULL;
}

/* The best of 10 passes reading BW_BYTES on `threads` threads, in GB/s. */
static double read_bandwidth(int threads)
{
    _cleanup_free_ uint8_t *buf = aligned_alloc(64, BW_BYTES);
    _cleanup_free_ bw_part *parts = calloc((size_t)threads, sizeof *parts);
    if (!buf || !parts || !__builtin_cpu_supports("avx2")) return 0;
    memset(buf, 1, BW_BYTES);
    double best = 0;
    for (int rep = 0; rep < 10; rep++) {
        double t0 = now();
        for (int i = 0; i < threads; i++) {
            parts[i].n = BW_BYTES / threads / 128 * 128;
            parts[i].p = buf + parts[i].n * i;
            pthread_create(&parts[i].th, NULL, read_part, &parts[i]);
        }
        for (int i = 0; i < threads; i++)
            pthread_join(parts[i].th, NULL);
        double gbs = BW_BYTES / (now() - t0) / 1e9;
        best = gbs > best ? gbs : best;
    }
    return best;
}

static size_t tbytes(const s1_tensor *t)
{
    return (size_t)(t->rows * t->cols) * s1_dtype_size(t->dtype);
}

/* What one decode step reads: every matmul weight, the norms, and one
 * embedding row. */
static double decode_bytes(const s1_model *m)
{
    double b = tbytes(&m->w.lm_head) + tbytes(&m->w.final_norm) +
               (double)m->cfg.hidden_size * s1_dtype_size(m->w.embed.dtype);
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

/* KV blocks of 16 tokens each sequence may use: 32k positions. */
#define BLOCKS_PER_SEQ 2048

/* n_seqs sequences, each with its own contiguous blocks. */
typedef struct {
    s1_backend *b;
    int n_seqs, len[8];
    int32_t blocks[8][BLOCKS_PER_SEQ];
    s1_block_table tables[8];
    float *logits;
} bench;

/* One forward feeding `per_seq` tokens to each sequence; logits of each
 * sequence's last row. Returns seconds, or -1. */
static double feed(bench *k, int per_seq, s1_err *err)
{
    int n = per_seq * k->n_seqs;
    _cleanup_free_ int32_t *tok = calloc((size_t)n, 4), *pos = calloc((size_t)n, 4),
                           *seq = calloc((size_t)n, 4);
    int32_t rows[8];
    if (!tok || !pos || !seq) return -1;
    for (int s = 0, i = 0; s < k->n_seqs; s++) {
        for (int j = 0; j < per_seq; j++, i++) {
            tok[i] = (int32_t)((i * 7919 + s * 31) % k->b->vocab_size);
            pos[i] = k->len[s] + j;
            seq[i] = s;
        }
        rows[s] = i - 1;
        k->len[s] += per_seq;
        k->tables[s] =
            (s1_block_table){.blocks = k->blocks[s],
                             .n_blocks = (k->len[s] + k->b->block_size - 1) / k->b->block_size};
    }
    s1_batch batch = {.n_tokens = n,
                      .tokens = tok,
                      .pos = pos,
                      .seq = seq,
                      .n_seqs = k->n_seqs,
                      .tables = k->tables,
                      .n_out = k->n_seqs,
                      .out_rows = rows,
                      .logits = k->logits};
    double t0 = now();
    if (s1_backend_forward(k->b, &batch, err) < 0) return -1;
    return now() - t0;
}

static int bench_init(bench *k, s1_backend *b, int n_seqs)
{
    memset(k, 0, sizeof *k);
    k->b = b;
    k->n_seqs = n_seqs;
    for (int s = 0; s < n_seqs; s++)
        for (int i = 0; i < BLOCKS_PER_SEQ; i++)
            k->blocks[s][i] = s * BLOCKS_PER_SEQ + i;
    k->logits = malloc((size_t)n_seqs * b->vocab_size * sizeof(float));
    return k->logits ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Gives sequence 0 a context of n positions without computing them: one
 * token, its block copied over the others (copy_block), so that attention
 * reads n positions of real memory. Returns 0, or -1. */
static double fill(bench *k, int n, s1_err *err)
{
    if (feed(k, 1, err) < 0) return -1;
    for (int i = 1; i < (n + k->b->block_size - 1) / k->b->block_size; i++)
        if (s1_backend_copy_block(k->b, k->blocks[0][0], k->blocks[0][i], err) < 0) return -1;
    k->len[0] = n;
    return 0;
}

/* Prefills a prompt per sequence (or, with prompt 0, fills a context of
 * `context` positions: see fill), then times `steps` decode steps;
 * prints and returns (in *best_s) the fastest step: on a shared machine the
 * fastest is the one least disturbed, and the bandwidth is a best too. */
static int run(s1_backend *b, int n_seqs, int prompt, int context, int steps, double *best_s,
               s1_err *err)
{
    bench k;
    _cleanup_free_ double *t = calloc((size_t)steps, sizeof *t);
    if (!t || bench_init(&k, b, n_seqs) < 0) return s1_errf(err, "out of memory");
    double pre = prompt ? feed(&k, prompt, err) : fill(&k, context, err);
    for (int i = 0; i < steps && pre >= 0; i++)
        t[i] = feed(&k, 1, err);
    free(k.logits);
    qsort(t, (size_t)steps, sizeof *t, cmp_double);
    if (pre < 0 || t[0] < 0) return -1;
    if (prompt && n_seqs == 1)
        printf("prefill: %d tokens in %.2f s: %.1f tokens/s\n", prompt, pre, prompt / pre);
    *best_s = t[0];
    printf("decode batch %d at position %d: median %.1f ms per step (%.1f tokens/s), best %.1f ms "
           "(%.1f tokens/s)\n",
           n_seqs, k.len[0] - steps, t[steps / 2] * 1e3, n_seqs / t[steps / 2], t[0] * 1e3,
           n_seqs / t[0]);
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

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"threads", 1, 0, 'j'}, {"tp", 1, 0, 't'},
                                       {"prompt", 1, 0, 'p'},  {"steps", 1, 0, 's'},
                                       {"context", 1, 0, 'c'}, {0, 0, 0, 0}};
    s1_backend_cfg cfg = {
        .tp = 1, .block_size = 16, .n_blocks = 8 * BLOCKS_PER_SEQ, .max_batch_tokens = 512};
    int prompt = 512, steps = 16, context = 8192;
    for (int c; (c = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
        if (c == 'j')
            cfg.threads = atoi(optarg);
        else if (c == 't')
            cfg.tp = atoi(optarg);
        else if (c == 'c')
            context = atoi(optarg);
        else if (c == 'p')
            prompt = atoi(optarg);
        else if (c == 's')
            steps = atoi(optarg);
        else
            return 2;
    }
    if (prompt < 1 || prompt > 4096 || steps < 1 || context < 0 ||
        context + steps > 16 * BLOCKS_PER_SEQ || optind < argc - 1) {
        fprintf(stderr,
                "usage: engine [MODEL_DIR] [--threads N] [--tp N] [--prompt 1..4096] [--steps N] "
                "[--context N]\n");
        return 2;
    }
    _cleanup_free_ char *dir = optind < argc ? strdup(argv[optind]) : default_model();
    s1_err err = {{0}};
    s1_model *m = dir ? s1_model_load(dir, &err) : NULL;
    if (!m) {
        fprintf(stderr, "%s\n", dir ? err.msg : "cannot generate the benchmark model");
        return 1;
    }
    int threads = cfg.threads ? cfg.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    /* measured before and after the model runs, the better kept: on a
     * shared machine a neighbour's burst must not pass for the hardware */
    double bw = read_bandwidth(threads);
    s1_backend *b = s1_backend_open("cpu", m, &cfg, &err);
    double step1 = 0, step8 = 0, step_long = 0;
    int rc = b ? 0 : -1;
    if (!rc) rc = run(b, 1, prompt, 0, steps, &step1, &err);
    if (!rc) rc = run(b, 8, 64, 0, steps, &step8, &err);
    if (!rc && context) rc = run(b, 1, 0, context, steps, &step_long, &err);
    s1_backend_close(b);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err.msg);
        s1_model_free(m);
        return 1;
    }
    double bytes = decode_bytes(m), bw2 = read_bandwidth(threads);
    bw = bw2 > bw ? bw2 : bw;
    printf("weights streamed per decode step: %.1f MB\n", bytes / 1e6);
    printf("memory read bandwidth (%d threads, 1 GiB): %.1f GB/s\n", threads, bw);
    printf("decode batch 1 (best step): %.1f GB/s of weights = %.0f%% of the bandwidth\n",
           bytes / step1 / 1e9, 100 * bytes / step1 / 1e9 / bw);
    printf("decode batch 8 (best step): %.1f GB/s of weights = %.0f%% of the bandwidth (%.1fx the "
           "tokens/s of batch 1)\n",
           bytes / step8 / 1e9, 100 * bytes / step8 / 1e9 / bw, 8 * step1 / step8);
    if (context) {
        const s1_model_config *c = &m->cfg;
        double kv = 2.0 * 4 * c->n_layers * c->n_kv_heads * c->head_dim * (context + steps / 2);
        printf("decode batch 1 at position %d (best step): %.1f MB of weights + %.1f MB of KV = "
               "%.1f GB/s = %.0f%% of the bandwidth\n",
               context, bytes / 1e6, kv / 1e6, (bytes + kv) / step_long / 1e9,
               100 * (bytes + kv) / step_long / 1e9 / bw);
    }
    s1_model_free(m);
    return 0;
}
