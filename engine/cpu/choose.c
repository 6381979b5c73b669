#include "choose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "place.h"

/* Weights one timing reads: the slices of one layer's matrices, about a
 * millisecond's worth. */
#define PROBE_BYTES (8.0 * (1 << 20))
/* Layers whose slices the timings take in turn (fewer on smaller models):
 * no set reads what another has just brought into the caches, and 16 slices
 * are more than the caches hold, so every timing includes memory. */
#define PROBE_LAYERS 16
/* Timed rounds per set, after one untimed round; the fastest counts: the
 * one the rest of the machine (sharing the memory) disturbed least. */
#define ROUNDS 8

enum { QKV, O, GATE_UP, DOWN, N_GROUPS };

/* The first rows of one layer's matrices, grouped by the input they share,
 * as a decode step runs them. */
typedef struct {
    s1_tensor w[N_GROUPS][3];
    int n[N_GROUPS];
    double bytes;
} probe_layer;

typedef struct {
    probe_layer layers[PROBE_LAYERS];
    int n_layers;
    int next; /* the layer the next timing reads */
    float *x, *out;
    void *xbuf;
    void *placed; /* the slices' copies, owned, placed_bytes long */
    size_t placed_bytes;
} probe;

/* The calling thread's CPU time: while the OS runs other processes on a
 * busy machine, the clock of a timing stops. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double tensor_bytes(const s1_tensor *t)
{
    return (double)t->rows * (double)t->cols * (double)s1_dtype_size(t->dtype);
}

/* Bytes of one layer's matrices. */
static double layer_bytes(const s1_layer *l)
{
    return tensor_bytes(&l->wq) + tensor_bytes(&l->wk) + tensor_bytes(&l->wv) +
           tensor_bytes(&l->wo) + tensor_bytes(&l->w_gate) + tensor_bytes(&l->w_up) +
           tensor_bytes(&l->w_down);
}

/* The first `share` of t's rows, whole row blocks of them. */
static s1_tensor first_rows(const s1_tensor *t, double share)
{
    s1_tensor v = *t;
    int64_t rows = (int64_t)(share * (double)t->rows) + S1_MM_ROW_BLOCK;
    rows -= rows % S1_MM_ROW_BLOCK;
    v.rows = rows < t->rows ? rows : t->rows;
    return v;
}

static void add(probe_layer *pl, int group, const s1_tensor *t, double share)
{
    s1_tensor v = first_rows(t, share);
    pl->w[group][pl->n[group]++] = v;
    pl->bytes += tensor_bytes(&v);
}

/* Slices of PROBE_BYTES of m's first layers, copied as a rank places its
 * weights (engine/cpu/place.h), so that the timings read what the kernels
 * will read and no page of the model's mapping is faulted in while timed. */
static int probe_slices(probe *p, const s1_model *m, s1_err *err)
{
    p->n_layers = m->cfg.n_layers < PROBE_LAYERS ? m->cfg.n_layers : PROBE_LAYERS;
    for (int i = 0; i < p->n_layers; i++) {
        const s1_layer *l = &m->w.layers[i];
        probe_layer *pl = &p->layers[i];
        double all = layer_bytes(l), share = all > PROBE_BYTES ? PROBE_BYTES / all : 1.0;
        add(pl, QKV, &l->wq, share);
        add(pl, QKV, &l->wk, share);
        add(pl, QKV, &l->wv, share);
        add(pl, O, &l->wo, share);
        add(pl, GATE_UP, &l->w_gate, share);
        add(pl, GATE_UP, &l->w_up, share);
        add(pl, DOWN, &l->w_down, share);
        for (int g = 0; g < N_GROUPS; g++)
            for (int j = 0; j < pl->n[g]; j++)
                p->placed_bytes += s1_cpu_placed_bytes(&pl->w[g][j]);
    }
    p->placed = s1_cpu_place_alloc(p->placed_bytes, err);
    if (!p->placed) return -1;
    size_t off = 0;
    for (int i = 0; i < p->n_layers; i++)
        for (int g = 0; g < N_GROUPS; g++)
            for (int j = 0; j < p->layers[i].n[g]; j++) {
                s1_tensor *t = &p->layers[i].w[g][j];
                size_t bytes = s1_cpu_placed_bytes(t);
                *t = s1_cpu_place(t, (char *)p->placed + off);
                off += bytes;
            }
    return 0;
}

/* Buffers for the widest input and output of the probe. */
static int probe_buffers(probe *p, const s1_model *m, s1_err *err)
{
    const s1_model_config *c = &m->cfg;
    int64_t widest = c->hidden_size, q = (int64_t)c->n_heads * c->head_dim;
    widest = q > widest ? q : widest;
    widest = c->intermediate_size > widest ? c->intermediate_size : widest;
    p->x = malloc((size_t)widest * sizeof(float));
    p->out = malloc((size_t)widest * sizeof(float));
    p->xbuf = malloc((size_t)widest * sizeof(float));
    if (!p->x || !p->out || !p->xbuf)
        return s1_errf(err, "cpu: out of memory for timing the kernel sets");
    for (int64_t i = 0; i < widest; i++)
        p->x[i] = 1.0f / (float)(1 + i % 7);
    return 0;
}

/* Set k on the next layer's slices, on the calling thread: bytes of
 * weights per second. One thread, because the hand-offs of a thread pool on
 * a busy machine would time the OS's scheduler rather than the kernels. */
static double probe_time(probe *p, const s1_cpu_kernels *k)
{
    const probe_layer *pl = &p->layers[p->next++ % p->n_layers];
    double t0 = now();
    for (int g = 0; g < N_GROUPS; g++) {
        const s1_tensor *w = &pl->w[g][0];
        s1_cpu_mm mm = {
            .out = p->out, .x = s1_cpu_prep_x(k, w->dtype, p->x, 1, w->cols, p->xbuf), .n = 1};
        for (int j = 0; j < pl->n[g]; j++) {
            mm.w = &pl->w[g][j];
            k->matmul(&mm, 0, mm.w->rows);
        }
    }
    return pl->bytes / (now() - t0);
}

static void probe_free(probe *p)
{
    free(p->x);
    free(p->out);
    free(p->xbuf);
    s1_cpu_place_free(p->placed, p->placed_bytes);
}

/* The set chosen from the figures: the first in feature order unless a
 * later one is S1_CPU_CHOOSE_MARGIN faster. */
static const s1_cpu_kernels *pick(const s1_cpu_kernel_time *times, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (times[i].bytes_per_s > S1_CPU_CHOOSE_MARGIN * times[best].bytes_per_s) best = i;
    return times[best].k;
}

const s1_cpu_kernels *s1_cpu_kernels_measure(const s1_model *m, s1_cpu_kernel_time *times,
                                             int *n_times, s1_err *err)
{
    const s1_cpu_kernels *sets[S1_CPU_MAX_KERNEL_SETS];
    int n = s1_cpu_kernels_supported(sets, S1_CPU_MAX_KERNEL_SETS);
    probe p = {0};
    if (probe_slices(&p, m, err) < 0 || probe_buffers(&p, m, err) < 0) {
        probe_free(&p);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        times[i] = (s1_cpu_kernel_time){.k = sets[i], .bytes_per_s = 0};
        probe_time(&p, sets[i]);
    }
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < n; i++) {
            double bps = probe_time(&p, sets[i]);
            times[i].bytes_per_s = bps > times[i].bytes_per_s ? bps : times[i].bytes_per_s;
        }
    probe_free(&p);
    *n_times = n;
    return pick(times, n);
}

/* The set $S1_CPU_KERNELS names, or NULL with the reason in err. */
static const s1_cpu_kernels *forced(const char *name, s1_err *err)
{
    const s1_cpu_kernels *k = s1_cpu_kernels_get(name);
    if (k) return k;
    if (s1_cpu_kernels_known(name))
        s1_errf(err, "cpu: S1_CPU_KERNELS=%s cannot run on this CPU (use %s, or unset it)", name,
                s1_cpu_kernels_best()->name);
    else
        s1_errf(err,
                "cpu: S1_CPU_KERNELS=%s is not a kernel set (use portable, avx2 or avx512bf16, or "
                "unset it)",
                name);
    return NULL;
}

const s1_cpu_kernels *s1_cpu_kernels_choose(const s1_model *m, s1_err *err)
{
    const char *want = getenv("S1_CPU_KERNELS");
    if (want && *want) return forced(want, err);
    double bytes = 0;
    for (int i = 0; i < m->cfg.n_layers; i++)
        bytes += layer_bytes(&m->w.layers[i]);
    if (bytes < S1_CPU_CHOOSE_MIN_BYTES) return s1_cpu_kernels_best();
    s1_cpu_kernel_time times[S1_CPU_MAX_KERNEL_SETS];
    int n = 0;
    const s1_cpu_kernels *k = s1_cpu_kernels_measure(m, times, &n, err);
    if (!k) return NULL;
    char figures[160] = "";
    for (int i = 0, at = 0; i < n && at < (int)sizeof figures; i++)
        at += snprintf(figures + at, sizeof figures - (size_t)at, "%s%s %.1f GB/s", i ? ", " : "",
                       times[i].k->name, times[i].bytes_per_s / 1e9);
    log_info("cpu kernels: %s, measured on this model's matrices at batch 1 (%s)", k->name,
             figures);
    return k;
}
