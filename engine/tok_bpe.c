#include "tok_bpe.h"

#include <stdlib.h>
#include <string.h>

/* A candidate merge of the symbol at pos with the one after it. */
struct s1_tok_merge {
    int32_t rank, pos, id;
};

static int before(const struct s1_tok_merge *a, const struct s1_tok_merge *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct s1_tok_merge *h, size_t *n, struct s1_tok_merge m)
{
    size_t i = (*n)++;
    while (i > 0 && before(&m, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = m;
}

static struct s1_tok_merge heap_pop(struct s1_tok_merge *h, size_t *n)
{
    struct s1_tok_merge top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && before(&h[c + 1], &h[c])) c++;
        if (!before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

/* Each merge adds at most two candidates, so 3n entries always suffice. */
static int reserve(s1_tok_bpe_scratch *s, size_t n)
{
    if (n > s->cap) {
        int32_t *p = realloc(s->prev, n * sizeof *p);
        if (!p) return -1;
        s->prev = p;
        int32_t *q = realloc(s->next, n * sizeof *q);
        if (!q) return -1;
        s->next = q;
        s->cap = n;
    }
    if (3 * n > s->heap_cap) {
        struct s1_tok_merge *h = realloc(s->heap, 3 * n * sizeof *h);
        if (!h) return -1;
        s->heap = h;
        s->heap_cap = 3 * n;
    }
    return 0;
}

static void push_pair(const s1_tok_pairmap *merges, s1_tok_bpe_scratch *s, size_t *hn,
                      const int32_t *ids, int32_t pos, int32_t right)
{
    struct s1_tok_merge m = {.pos = pos};
    if (s1_tok_pairmap_get(merges, ids[pos], ids[right], &m.rank, &m.id)) heap_push(s->heap, hn, m);
}

/* Merged-away symbols get id -1; a popped candidate is stale when its left
 * symbol is gone or the pair it saw has changed. */
long s1_tok_bpe_merge(const s1_tok_pairmap *merges, int32_t *ids, size_t n, s1_tok_bpe_scratch *s)
{
    if (n < 2) return (long)n;
    if (reserve(s, n) < 0) return -1;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++)
        push_pair(merges, s, &hn, ids, (int32_t)i, (int32_t)i + 1);
    while (hn > 0) {
        struct s1_tok_merge m = heap_pop(s->heap, &hn);
        int32_t right = s->next[m.pos];
        int32_t rank, id;
        if (ids[m.pos] < 0 || right < 0) continue;
        if (!s1_tok_pairmap_get(merges, ids[m.pos], ids[right], &rank, &id) || id != m.id) continue;
        ids[m.pos] = m.id;
        ids[right] = -1;
        s->next[m.pos] = s->next[right];
        if (s->next[right] >= 0) s->prev[s->next[right]] = m.pos;
        if (s->prev[m.pos] >= 0) push_pair(merges, s, &hn, ids, s->prev[m.pos], m.pos);
        if (s->next[m.pos] >= 0) push_pair(merges, s, &hn, ids, m.pos, s->next[m.pos]);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0) ids[k++] = ids[i];
    return (long)k;
}

void s1_tok_bpe_scratch_free(s1_tok_bpe_scratch *s)
{
    free(s->prev);
    free(s->next);
    free(s->heap);
    memset(s, 0, sizeof *s);
}
