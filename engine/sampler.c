#include "sampler.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float w; /* unnormalised probability */
    int32_t id;
} cand;

struct s1_sampler_ws {
    int cap;
    cand *c;   /* [cap], owned */
    cand *tmp; /* [cap], owned: the other half of each radix pass */
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void s1_sampler_init(s1_sampler *s, const s1_sampling *cfg)
{
    s->cfg = *cfg;
    /* splitmix64 spreads any seed (0 included) over the whole state. */
    uint64_t x = cfg->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
}

double s1_sampler_uniform(s1_sampler *s)
{
    return (double)(xoshiro_next(s->rng) >> 11) * 0x1.0p-53;
}

void s1_sampler_rng_get(const s1_sampler *s, uint64_t rng[4])
{
    memcpy(rng, s->rng, sizeof s->rng);
}

void s1_sampler_rng_set(s1_sampler *s, const uint64_t rng[4])
{
    memcpy(s->rng, rng, sizeof s->rng);
}

void s1_sampler_rng_format(const uint64_t rng[4], char buf[S1_SAMPLER_RNG_TEXT])
{
    snprintf(buf, S1_SAMPLER_RNG_TEXT, "%016" PRIx64 ":%016" PRIx64 ":%016" PRIx64 ":%016" PRIx64,
             rng[0], rng[1], rng[2], rng[3]);
}

static int bad_rng(const char *text, s1_err *err)
{
    return s1_errf(err, "sampler state \"%.80s\" is not four 16-digit hex words joined by ':'",
                   text);
}

static int hex_digit(char c)
{
    if (isdigit((unsigned char)c)) return c - '0';
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Exactly 16 hex digits per word: anything shorter is a damaged state. */
int s1_sampler_rng_parse(const char *text, uint64_t rng[4], s1_err *err)
{
    const char *p = text;
    for (int i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (int k = 0; k < 16; k++, p++) {
            if (hex_digit(*p) < 0) return bad_rng(text, err);
            v = v << 4 | (uint64_t)hex_digit(*p);
        }
        if (i < 3 && *p++ != ':') return bad_rng(text, err);
        rng[i] = v;
    }
    if (!(rng[0] | rng[1] | rng[2] | rng[3]))
        return s1_errf(err, "sampler state is all zeros: xoshiro256** never leaves it");
    return (int)(p - text);
}

s1_sampler_ws *s1_sampler_ws_new(int n_vocab)
{
    s1_sampler_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->cap = n_vocab;
    ws->c = malloc(sizeof *ws->c * (size_t)(n_vocab > 0 ? n_vocab : 1));
    ws->tmp = malloc(sizeof *ws->tmp * (size_t)(n_vocab > 0 ? n_vocab : 1));
    if (!ws->c || !ws->tmp) {
        s1_sampler_ws_free(ws);
        return NULL;
    }
    return ws;
}

void s1_sampler_ws_free(s1_sampler_ws *ws)
{
    if (!ws) return;
    free(ws->c);
    free(ws->tmp);
    free(ws);
}

/* Lowest id among the largest logits, so ties never depend on anything but
 * the logits. NaN rows never win. */
static int32_t argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best] || isnan(logits[best])) best = i;
    return best;
}

/* The candidates' total order: more probable first, then lower id. */
static bool before(const cand *a, const cand *b)
{
    return a->w > b->w || (a->w == b->w && a->id < b->id);
}

/* A candidate's place in the total order as one integer, smaller first:
 * weights are positive floats, whose bits grow with them, so the inverted
 * bits come first for the more probable; the id breaks ties. */
static uint64_t order_key(const cand *c)
{
    uint32_t bits;
    memcpy(&bits, &c->w, sizeof bits);
    return (uint64_t)~bits << 32 | (uint32_t)c->id;
}

#define RADIX_BITS 11
#define RADIX_SIZE (1 << RADIX_BITS)

/* One stable counting pass of c[0..n) into out by the key's digit at shift;
 * false, with nothing moved, when every candidate has the same digit. */
static bool radix_pass(const cand *c, cand *out, int n, int shift)
{
    int count[RADIX_SIZE] = {0};
    for (int i = 0; i < n; i++)
        count[order_key(&c[i]) >> shift & (RADIX_SIZE - 1)]++;
    if (count[order_key(&c[0]) >> shift & (RADIX_SIZE - 1)] == n) return false;
    for (int d = 0, at = 0; d < RADIX_SIZE; d++) {
        int k = count[d];
        count[d] = at;
        at += k;
    }
    for (int i = 0; i < n; i++)
        out[count[order_key(&c[i]) >> shift & (RADIX_SIZE - 1)]++] = c[i];
    return true;
}

/* Sorts c[0..n) into the total order, with tmp as scratch. A radix sort:
 * a near-flat distribution (a random model, a high temperature) keeps most
 * of a 150k vocabulary in the nucleus, which qsort took ~30 ms a row to
 * order. Digits of 11 bits: three for the id, three for the weight; a digit
 * all candidates share (the id's top one, for any real vocabulary) costs
 * only its count. */
static void sort_cands(cand *c, cand *tmp, int n)
{
    static const int shifts[] = {0, 11, 22, 32, 43, 54};
    cand *from = c, *to = tmp;
    for (size_t i = 0; i < sizeof shifts / sizeof *shifts; i++)
        if (n > 1 && radix_pass(from, to, n, shifts[i])) {
            cand *t = from;
            from = to;
            to = t;
        }
    if (from != c) memcpy(c, from, (size_t)n * sizeof *c);
}

static void swap(cand *a, cand *b)
{
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Moves the k first candidates in the total order to c[0..k), in O(n) on
 * average (quickselect), so top-k over a 150k vocabulary needs no full sort. */
static void select_top(cand *c, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        swap(&c[(lo + hi) / 2], &c[hi]);
        int store = lo;
        for (int i = lo; i < hi; i++)
            if (before(&c[i], &c[hi])) swap(&c[i], &c[store++]);
        swap(&c[store], &c[hi]);
        if (store == k - 1 || store == k) return;
        if (store < k)
            lo = store + 1;
        else
            hi = store - 1;
    }
}

static double total_weight(const cand *c, int n)
{
    double t = 0;
    for (int i = 0; i < n; i++)
        t += c[i].w;
    return t;
}

/* Keeps the smallest most-probable set whose mass reaches top_p. Candidates
 * below (1 - top_p) * total / n together weigh less than 1 - top_p, so they
 * are dropped before sorting what is left. */
static int nucleus(cand *c, cand *tmp, int n, double top_p)
{
    double total = total_weight(c, n);
    double floor_w = (1.0 - top_p) * total / n;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (c[i].w >= floor_w) c[m++] = c[i];
    sort_cands(c, tmp, m);
    double acc = 0;
    for (int i = 0; i < m; i++) {
        acc += c[i].w;
        if (acc >= top_p * total) return i + 1;
    }
    return m;
}

int32_t s1_sampler_sample(s1_sampler *s, s1_sampler_ws *ws, const float *logits, int n_vocab)
{
    if (n_vocab > ws->cap) n_vocab = ws->cap;
    int32_t best = argmax(logits, n_vocab);
    float t = s->cfg.temperature;
    if (!(t > 0)) return best;

    cand *c = ws->c;
    int n = 0;
    for (int i = 0; i < n_vocab; i++) {
        float w = expf((logits[i] - logits[best]) / t);
        if (w > 0) c[n++] = (cand){w, i};
    }
    if (n == 0) return best;
    if (s->cfg.top_k > 0 && s->cfg.top_k < n) {
        select_top(c, n, s->cfg.top_k);
        n = s->cfg.top_k;
    }
    if (s->cfg.top_p > 0 && s->cfg.top_p < 1) n = nucleus(c, ws->tmp, n, s->cfg.top_p);

    double u = s1_sampler_uniform(s) * total_weight(c, n);
    for (int i = 0; i < n; i++) {
        u -= c[i].w;
        if (u < 0) return c[i].id;
    }
    return c[n - 1].id;
}
