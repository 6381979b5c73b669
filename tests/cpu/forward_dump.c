/* forward_dump DIR --prompt IDS [options] — runs token ids through the CPU
 * backend, for the Python tests that compare it with a numpy reference and
 * with itself run other ways.
 *   --prompt A;B;...  comma-separated ids; several prompts (';') are run as
 *                     sequences interleaved in the same forwards
 *   --chunk N         feed at most N tokens of a sequence per forward (default
 *                     all; 1 = token by token)
 *   --generate N      greedy-decode N tokens after each prompt; prints
 *                     "seq S: ids" lines
 *   --scatter         hand out KV blocks in a scrambled order
 *   --fork-at N       run prompt 0's first N tokens, copy its blocks into fresh
 *                     ones (copy_block) for a second sequence that goes on with
 *                     the rest, while the first writes other tokens into its own
 *   --out FILE        the logits of every position fed, f32 [positions, vocab],
 *                     sequence after sequence (a fork: the second sequence's
 *                     positions follow the first's N)
 *   --tp N --threads N --block-size N --n-blocks N
 * Exit status 1 with the error line on stderr when the backend fails. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cleanup.h"
#include "model.h"

#define MAX_SEQS   8
#define MAX_BLOCKS 256

typedef struct {
    int32_t *ids; /* prompt then generated, owned */
    int n, cap, n_prompt;
    int fed; /* tokens already through a forward */
    int32_t blocks[MAX_BLOCKS];
    int n_blocks;
    float *logits; /* [cap, vocab], owned */
    int live;      /* still fed */
} seq;

typedef struct {
    s1_backend *b;
    int vocab, chunk, generate, scatter, next_block;
    seq seqs[MAX_SEQS];
    int n_seqs;
} run;

static int32_t new_block(run *r)
{
    int k = r->next_block++;
    /* a stride coprime with the cache scrambles the order of the blocks */
    return r->scatter ? (int32_t)((k * 7919L + 13) % r->b->n_blocks) : k;
}

static int parse_ids(seq *s, char *text, int extra, int vocab)
{
    s->cap = extra + 1;
    for (char *p = text; *p; p++)
        s->cap += *p == ',';
    s->ids = calloc((size_t)s->cap, sizeof *s->ids);
    s->logits = calloc((size_t)s->cap * vocab, sizeof(float));
    if (!s->ids || !s->logits) return -1;
    for (char *tok = strtok(text, ","); tok; tok = strtok(NULL, ","))
        s->ids[s->n++] = (int32_t)atoi(tok);
    s->n_prompt = s->n;
    s->live = s->n > 0;
    return 0;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Tokens of q the next forward takes. */
static int to_feed(const run *r, const seq *q)
{
    int left = q->live ? q->n - q->fed : 0;
    return left < r->chunk ? left : r->chunk;
}

/* One forward: up to `chunk` tokens of every live sequence, logits of all. */
static int step(run *r, s1_err *err)
{
    int n = 0;
    for (int s = 0; s < r->n_seqs; s++)
        n += to_feed(r, &r->seqs[s]);
    _cleanup_free_ int32_t *tok = calloc((size_t)n + 1, sizeof *tok),
                           *pos = calloc((size_t)n + 1, sizeof *pos);
    _cleanup_free_ int32_t *sq = calloc((size_t)n + 1, sizeof *sq),
                           *rows = calloc((size_t)n + 1, sizeof *rows);
    _cleanup_free_ float *logits = calloc((size_t)n * r->vocab + 1, sizeof(float));
    s1_block_table tables[MAX_SEQS];
    if (!tok || !pos || !sq || !rows || !logits) return s1_errf(err, "out of memory");
    int i = 0;
    for (int s = 0; s < r->n_seqs; s++) {
        seq *q = &r->seqs[s];
        for (int k = 0, feed = to_feed(r, q); k < feed; k++, i++) {
            int p = q->fed + k;
            while (p / r->b->block_size >= q->n_blocks) {
                if (q->n_blocks == MAX_BLOCKS) return s1_errf(err, "sequence %d: too long", s);
                q->blocks[q->n_blocks++] = new_block(r);
            }
            tok[i] = q->ids[p], pos[i] = p, sq[i] = s, rows[i] = i;
        }
        tables[s] = (s1_block_table){.blocks = q->blocks, .n_blocks = q->n_blocks};
    }
    s1_batch batch = {.n_tokens = n,
                      .tokens = tok,
                      .pos = pos,
                      .seq = sq,
                      .n_seqs = r->n_seqs,
                      .tables = tables,
                      .n_out = n,
                      .out_rows = rows,
                      .logits = logits};
    if (s1_backend_forward(r->b, &batch, err) < 0) return -1;
    for (i = 0; i < n; i++) {
        seq *q = &r->seqs[sq[i]];
        memcpy(q->logits + (size_t)pos[i] * r->vocab, logits + (size_t)i * r->vocab,
               (size_t)r->vocab * sizeof(float));
        q->fed = pos[i] + 1;
        if (q->fed == q->n && q->n - q->n_prompt < r->generate)
            q->ids[q->n++] = argmax(logits + (size_t)i * r->vocab, r->vocab);
        q->live = q->fed < q->n;
    }
    return 0;
}

static int any_live(const run *r)
{
    for (int s = 0; s < r->n_seqs; s++)
        if (r->seqs[s].live) return 1;
    return 0;
}

/* Sequence 1 (a copy of prompt 0) takes over sequence 0 after its first
 * `at` tokens, on copies of its blocks; sequence 0 then goes on with other
 * tokens, written into its own blocks. */
static int fork_at(run *r, int at, s1_err *err)
{
    seq *a = &r->seqs[0], *b = &r->seqs[1];
    *b = *a;
    b->ids = malloc((size_t)b->cap * sizeof *b->ids);
    b->logits = calloc((size_t)b->cap * r->vocab, sizeof(float));
    if (!b->ids || !b->logits) return s1_errf(err, "out of memory");
    memcpy(b->ids, a->ids, (size_t)a->n * sizeof *a->ids);
    b->live = 0;
    a->n = a->n_prompt = at;
    int generate = r->generate;
    r->generate = 0;
    while (any_live(r))
        if (step(r, err) < 0) return -1;
    r->generate = generate;
    b->fed = at;
    memcpy(b->logits, a->logits, (size_t)at * r->vocab * sizeof(float));
    for (int k = 0; k < a->n_blocks; k++) {
        b->blocks[b->n_blocks++] = new_block(r);
        if (s1_backend_copy_block(r->b, a->blocks[k], b->blocks[k], err) < 0) return -1;
    }
    for (int k = at; k < b->n_prompt; k++)
        a->ids[a->n++] = (b->ids[k] + 1) % r->vocab;
    a->live = 1;
    b->live = 1;
    return 0;
}

static int write_out(const run *r, const char *path, int first)
{
    _cleanup_fclose_ FILE *f = fopen(path, "wb");
    if (!f) return -1;
    for (int s = first; s < r->n_seqs; s++) {
        size_t cnt = (size_t)r->seqs[s].fed * r->vocab;
        if (fwrite(r->seqs[s].logits, sizeof(float), cnt, f) != cnt) return -1;
    }
    return 0;
}

static void print_ids(const run *r)
{
    for (int s = 0; s < r->n_seqs; s++) {
        printf("seq %d:", s);
        for (int k = r->seqs[s].n_prompt; k < r->seqs[s].n; k++)
            printf(" %d", r->seqs[s].ids[k]);
        printf("\n");
    }
}

typedef struct {
    const char *dir, *out;
    char *prompt;
    int fork;
    s1_backend_cfg cfg;
} opts;

static int parse(int argc, char **argv, opts *o, run *r)
{
    static const struct option lo[] = {{"prompt", 1, 0, 'p'},
                                       {"chunk", 1, 0, 'c'},
                                       {"generate", 1, 0, 'g'},
                                       {"scatter", 0, 0, 's'},
                                       {"fork-at", 1, 0, 'f'},
                                       {"out", 1, 0, 'o'},
                                       {"tp", 1, 0, 't'},
                                       {"threads", 1, 0, 'j'},
                                       {"block-size", 1, 0, 'b'},
                                       {"n-blocks", 1, 0, 'n'},
                                       {0, 0, 0, 0}};
    o->cfg = (s1_backend_cfg){.tp = 1, .block_size = 4, .n_blocks = 512};
    r->chunk = 1 << 30;
    for (int c; (c = getopt_long(argc, argv, "", lo, NULL)) != -1;) {
        switch (c) {
        case 'p':
            o->prompt = optarg;
            break;
        case 'c':
            r->chunk = atoi(optarg);
            break;
        case 'g':
            r->generate = atoi(optarg);
            break;
        case 's':
            r->scatter = 1;
            break;
        case 'f':
            o->fork = atoi(optarg);
            break;
        case 'o':
            o->out = optarg;
            break;
        case 't':
            o->cfg.tp = atoi(optarg);
            break;
        case 'j':
            o->cfg.threads = atoi(optarg);
            break;
        case 'b':
            o->cfg.block_size = atoi(optarg);
            break;
        case 'n':
            o->cfg.n_blocks = atoi(optarg);
            break;
        default:
            return -1;
        }
    }
    if (optind != argc - 1 || !o->prompt || r->chunk < 1) return -1;
    o->dir = argv[optind];
    return 0;
}

static int run_all(run *r, opts *o, s1_err *err)
{
    int n = 0;
    for (char *save = NULL, *p = strtok_r(o->prompt, ";", &save); p && n < MAX_SEQS;
         p = strtok_r(NULL, ";", &save))
        if (parse_ids(&r->seqs[n++], p, r->generate + 1, r->vocab) < 0)
            return s1_errf(err, "out of memory");
    r->n_seqs = n;
    if (o->fork) {
        if (n != 1 || o->fork >= r->seqs[0].n)
            return s1_errf(err, "--fork-at needs one prompt longer than it");
        r->n_seqs = 2;
        if (fork_at(r, o->fork, err) < 0) return -1;
    }
    while (any_live(r))
        if (step(r, err) < 0) return -1;
    if (o->out && write_out(r, o->out, o->fork ? 1 : 0) < 0)
        return s1_errf(err, "%s: cannot write", o->out);
    print_ids(r);
    return 0;
}

int main(int argc, char **argv)
{
    opts o = {0};
    run r = {0};
    if (parse(argc, argv, &o, &r) < 0) {
        fprintf(stderr, "usage: forward_dump DIR --prompt IDS[;IDS...] [--chunk N] [--generate N] "
                        "[--scatter] [--fork-at N] [--out FILE] [--tp N] [--threads N] "
                        "[--block-size N] [--n-blocks N]\n");
        return 2;
    }
    s1_err err = {{0}};
    s1_model *m = s1_model_load(o.dir, &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    r.vocab = m->cfg.vocab_size;
    r.b = s1_backend_open("cpu", m, &o.cfg, &err);
    int rc = r.b ? run_all(&r, &o, &err) : -1;
    if (rc < 0) fprintf(stderr, "%s\n", err.msg);
    for (int s = 0; s < MAX_SEQS; s++) {
        free(r.seqs[s].ids);
        free(r.seqs[s].logits);
    }
    s1_backend_close(r.b);
    s1_model_free(m);
    return rc < 0 ? 1 : 0;
}
