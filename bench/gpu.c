/* bench/gpu — figures of the CUDA backend on one GPU: prefill tokens/s, and
 * decode tokens/s at batch 1, 8 and 64 with the HBM bandwidth each achieves
 * (decode is memory-bound: every bf16 weight is read once per step, plus
 * each sequence's K/V), as a share of the device's peak (from its memory
 * clock and bus width: 3.35 TB/s on an H100 SXM) and of a device-to-device
 * copy measured here (the practical ceiling; bytes read + written). Target:
 * batch 1 at >= 85% of the copy.
 *
 *   gpu [MODEL_DIR] [--tp N] [--context N] [--steps N]
 *
 * Without MODEL_DIR it generates the 7b preset (tools/gen_model.py, bf16,
 * about 15 GB) into the build tree's bench-models/ once and uses that.
 * S1_CUDA_GEMV=0 runs small batches through cuBLASLt instead of the GEMV
 * kernel; S1_CUDA_NO_GRAPHS=1 turns CUDA graphs off; S1_CUDA_PDL=0 turns
 * programmatic dependent launch off; S1_PYTHON names the python3 (with
 * numpy) that generates the model. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cuda_runtime_api.h>

#include "backend.h"
#include "cleanup.h"
#include "model.h"

#define COPY_BYTES ((size_t)2 << 30)
#define MAX_SEQS   64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int check(cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return 0;
    fprintf(stderr, "gpu: %s: %s\n", what, cudaGetErrorString(e));
    return -1;
}

/* The median of 9 device-to-device copies of COPY_BYTES, in bytes/s moved
 * (read + written). */
static double copy_bandwidth(void)
{
    void *a = NULL, *b = NULL;
    cudaEvent_t e0, e1;
    double t[9], bw = 0;
    if (check(cudaMalloc(&a, COPY_BYTES), "cudaMalloc") ||
        check(cudaMalloc(&b, COPY_BYTES), "cudaMalloc") ||
        check(cudaMemset(a, 1, COPY_BYTES), "cudaMemset") ||
        check(cudaEventCreate(&e0), "cudaEventCreate") ||
        check(cudaEventCreate(&e1), "cudaEventCreate"))
        goto out;
    for (int i = -2; i < 9; i++) { /* two warm-up copies */
        float ms;
        if (check(cudaEventRecord(e0, 0), "cudaEventRecord") ||
            check(cudaMemcpyAsync(b, a, COPY_BYTES, cudaMemcpyDeviceToDevice, 0),
                  "cudaMemcpyAsync") ||
            check(cudaEventRecord(e1, 0), "cudaEventRecord") ||
            check(cudaEventSynchronize(e1), "sync") ||
            check(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime"))
            goto out;
        if (i >= 0) t[i] = ms * 1e-3;
    }
    for (int i = 0; i < 9; i++)
        for (int j = i + 1; j < 9; j++)
            if (t[j] < t[i]) {
                double x = t[i];
                t[i] = t[j], t[j] = x;
            }
    bw = 2.0 * COPY_BYTES / t[4];
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
out:
    cudaFree(a);
    cudaFree(b);
    return bw;
}

/* Peak HBM bandwidth from the memory clock (kHz, double data rate) and bus. */
static double peak_bandwidth(void)
{
    int khz = 0, bits = 0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, 0) != cudaSuccess ||
        cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, 0) != cudaSuccess || !khz)
        return 3.35e12;
    return 2.0 * khz * 1e3 * bits / 8;
}

/* Bytes of bf16 weights one decode step reads on the GPU, all ranks. */
static double weight_bytes(const s1_model_config *c)
{
    const double H = c->hidden_size, hd = c->head_dim, I = c->intermediate_size;
    const double q = c->n_heads * hd, kv = c->n_kv_heads * hd;
    const double layer = H * (q + 2 * kv) + q * H + 3 * H * I;
    return 2 * (c->n_layers * layer + (double)c->vocab_size * H);
}

/* Bytes of K/V a step reads for n sequences at context ctx. */
static double kv_bytes(const s1_model_config *c, int n, int ctx)
{
    return 2.0 * 2 * c->n_layers * c->n_kv_heads * c->head_dim * (double)n * ctx;
}

typedef struct {
    s1_backend *b;
    int n_seqs, len[MAX_SEQS], per_seq_blocks;
    int32_t *blocks; /* [MAX_SEQS * per_seq_blocks] */
    s1_block_table tables[MAX_SEQS];
    float *logits; /* [MAX_SEQS, vocab] */
} bench;

/* One forward of `per_seq` tokens for each sequence; seconds or -1. */
static double feed(bench *k, int per_seq, s1_err *err)
{
    const int n = per_seq * k->n_seqs;
    _cleanup_free_ int32_t *tok = calloc((size_t)n, 4), *pos = calloc((size_t)n, 4),
                           *seq = calloc((size_t)n, 4);
    int32_t rows[MAX_SEQS];
    if (!tok || !pos || !seq) return -1;
    for (int s = 0, i = 0; s < k->n_seqs; s++) {
        for (int j = 0; j < per_seq; j++, i++) {
            tok[i] = (int32_t)((i * 7919 + s * 31 + k->len[s]) % k->b->vocab_size);
            pos[i] = k->len[s] + j;
            seq[i] = s;
        }
        rows[s] = i - 1;
        k->len[s] += per_seq;
        k->tables[s] = (s1_block_table){.blocks = k->blocks + (size_t)s * k->per_seq_blocks,
                                        .n_blocks = k->per_seq_blocks};
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
    const double t0 = now();
    if (s1_backend_forward(k->b, &batch, err) < 0) return -1;
    return now() - t0;
}

static int bench_init(bench *k, s1_backend *b, int n_seqs, int max_len, s1_err *err)
{
    memset(k, 0, sizeof *k);
    k->b = b;
    k->n_seqs = n_seqs;
    k->per_seq_blocks = (max_len + b->block_size - 1) / b->block_size;
    if ((long long)k->per_seq_blocks * n_seqs > b->n_blocks)
        return s1_errf(err, "%d sequences of %d tokens need %d KV blocks; the GPU has %d", n_seqs,
                       max_len, k->per_seq_blocks * n_seqs, b->n_blocks);
    k->blocks = malloc(sizeof *k->blocks * (size_t)k->per_seq_blocks * n_seqs);
    k->logits = malloc((size_t)n_seqs * b->vocab_size * sizeof(float));
    if (!k->blocks || !k->logits) return s1_errf(err, "out of memory");
    for (int i = 0; i < k->per_seq_blocks * n_seqs; i++)
        k->blocks[i] = i;
    return 0;
}

static void bench_free(bench *k)
{
    free(k->blocks);
    free(k->logits);
}

/* Prefills n_seqs prompts of ctx tokens in chunks of at most `chunk` tokens
 * per forward; returns the prefill seconds. */
static double prefill(bench *k, int ctx, int chunk, s1_err *err)
{
    double t = 0;
    const int per = chunk / k->n_seqs > 0 ? chunk / k->n_seqs : 1;
    for (int done = 0; done < ctx;) {
        const int n = ctx - done < per ? ctx - done : per;
        const double s = feed(k, n, err);
        if (s < 0) return -1;
        t += s;
        done += n;
    }
    return t;
}

typedef struct {
    int batch;
    double step_s, bytes;
} decode_result;

/* Decode at batch n after a prompt of ctx tokens per sequence: warm-up
 * steps (graph capture) first, then the mean of `steps` steps. */
static int decode(s1_backend *b, const s1_model_config *c, int n, int ctx, int steps, int chunk,
                  decode_result *r, s1_err *err)
{
    bench k;
    int rc = bench_init(&k, b, n, ctx + steps + 4, err);
    if (!rc && prefill(&k, ctx, chunk, err) < 0) rc = -1;
    for (int i = 0; !rc && i < 3; i++)
        if (feed(&k, 1, err) < 0) rc = -1;
    double total = 0;
    for (int i = 0; !rc && i < steps; i++) {
        const double s = feed(&k, 1, err);
        if (s < 0) rc = -1;
        total += s;
    }
    if (!rc) {
        r->batch = n;
        r->step_s = total / steps;
        r->bytes = weight_bytes(c) + kv_bytes(c, n, ctx + 3 + steps / 2);
    }
    bench_free(&k);
    return rc;
}

static char *default_model(void)
{
    char *dir;
    if (asprintf(&dir, "%s/7b", S1_BENCH_MODELS) < 0) return NULL;
    struct stat st;
    if (stat(dir, &st) == 0) return dir;
    char *cmd;
    const char *py = getenv("S1_PYTHON"); /* a python3 with numpy; default /usr/bin/python3 */
    if (asprintf(&cmd, "%s '%s' --out '%s' --preset 7b", py ? py : "/usr/bin/python3", S1_GEN_MODEL,
                 dir) < 0)
        return NULL;
    fprintf(stderr, "generating the 7b preset into %s (once, about 15 GB)\n", dir);
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
    static const struct option lo[] = {
        {"tp", 1, 0, 't'}, {"context", 1, 0, 'c'}, {"steps", 1, 0, 's'}, {0, 0, 0, 0}};
    s1_backend_cfg cfg = {.tp = 1, .block_size = 16, .max_batch_tokens = 512};
    int ctx = 512, steps = 64;
    for (int c; (c = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
        if (c == 't')
            cfg.tp = atoi(optarg);
        else if (c == 'c')
            ctx = atoi(optarg);
        else if (c == 's')
            steps = atoi(optarg);
        else
            return 2;
    }
    if (ctx < 1 || ctx > 16384 || steps < 1 || optind < argc - 1) {
        fprintf(stderr, "usage: gpu [MODEL_DIR] [--tp N] [--context 1..16384] [--steps N]\n");
        return 2;
    }
    struct cudaDeviceProp prop;
    if (check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties")) return 1;
    const double copy = copy_bandwidth(), peak = peak_bandwidth();
    if (copy <= 0) return 1;

    _cleanup_free_ char *dir = optind < argc ? strdup(argv[optind]) : default_model();
    s1_err err = {{0}};
    s1_model *m = dir ? s1_model_load(dir, &err) : NULL;
    if (!m) {
        fprintf(stderr, "%s\n", dir ? err.msg : "cannot generate the benchmark model");
        return 1;
    }
    double t0 = now();
    s1_backend *b = s1_backend_open("cuda", m, &cfg, &err);
    if (!b) {
        fprintf(stderr, "%s\n", err.msg);
        s1_model_free(m);
        return 1;
    }
    printf("%s: %s, tp %d, loaded in %.1f s, %d KV blocks of %d\n", prop.name, dir, cfg.tp,
           now() - t0, b->n_blocks, b->block_size);

    /* prefill: one sequence of 4 x max_batch_tokens tokens, chunked; the
     * first run warms up (module loading, cuBLASLt plans) and is not shown */
    const int pn = 4 * cfg.max_batch_tokens;
    double pt = -1;
    int rc = 0;
    for (int run = 0; !rc && run < 2; run++) {
        bench k;
        rc = bench_init(&k, b, 1, pn, &err);
        if (!rc && (pt = prefill(&k, pn, cfg.max_batch_tokens, &err)) < 0) rc = -1;
        bench_free(&k);
    }
    if (!rc)
        printf("prefill: %d tokens in chunks of %d: %.0f tokens/s\n", pn, cfg.max_batch_tokens,
               pn / pt);

    static const int batches[] = {1, 8, 64};
    decode_result res[3];
    for (int i = 0; !rc && i < 3; i++)
        rc = decode(b, &m->cfg, batches[i], ctx, steps, cfg.max_batch_tokens, &res[i], &err);
    const double wb = weight_bytes(&m->cfg);
    const int vocab = m->cfg.vocab_size;
    s1_backend_close(b);
    s1_model_free(m);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("device-to-device copy: %.0f GB/s (read + write) = %.0f%% of the peak %.0f GB/s\n",
           copy / 1e9, 100 * copy / peak, peak / 1e9);
    printf("%-8s %10s %12s %12s %8s %8s\n", "batch", "ms/step", "tokens/s", "GB/s", "%peak",
           "%copy");
    for (int i = 0; i < 3; i++) {
        const double bw = res[i].bytes / res[i].step_s;
        printf("%-8d %10.2f %12.1f %12.0f %7.0f%% %7.0f%%\n", res[i].batch, res[i].step_s * 1e3,
               res[i].batch / res[i].step_s, bw / 1e9, 100 * bw / peak, 100 * bw / copy);
    }
    printf("(bytes per step: bf16 weights %.2f GB plus K/V at context ~%d; the logits, batch x %d\n"
           " f32, are copied to the host each step: counted in the time, not in the bytes)\n",
           wb / 1e9, ctx, vocab);
    return 0;
}
