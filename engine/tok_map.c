#include "tok_map.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a: short keys dominate (BPE words average a few bytes). */
static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* A table at most half full keeps probe runs short. */
static size_t cap_for(size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2)
        cap *= 2;
    return cap;
}

int s1_tok_strmap_init(s1_tok_strmap *m, size_t expected)
{
    memset(m, 0, sizeof *m);
    m->cap = cap_for(expected);
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->lens = calloc(m->cap, sizeof *m->lens);
    m->vals = calloc(m->cap, sizeof *m->vals);
    if (!m->keys || !m->lens || !m->vals) {
        s1_tok_strmap_free(m);
        return -1;
    }
    return 0;
}

void s1_tok_strmap_free(s1_tok_strmap *m)
{
    free(m->keys);
    free(m->lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static size_t str_slot(const s1_tok_strmap *m, const char *key, size_t len)
{
    size_t i = hash_bytes(key, len) & (m->cap - 1);
    while (m->keys[i] && !(m->lens[i] == len && !memcmp(m->keys[i], key, len)))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int str_grow(s1_tok_strmap *m)
{
    s1_tok_strmap bigger;
    if (s1_tok_strmap_init(&bigger, m->cap) < 0) return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) s1_tok_strmap_put(&bigger, m->keys[i], m->lens[i], m->vals[i]);
    s1_tok_strmap_free(m);
    *m = bigger;
    return 0;
}

int s1_tok_strmap_put(s1_tok_strmap *m, const char *key, size_t len, int32_t val)
{
    if ((m->n + 1) * 2 > m->cap && str_grow(m) < 0) return -1;
    size_t i = str_slot(m, key, len);
    if (!m->keys[i]) {
        m->keys[i] = key ? key : "";
        m->lens[i] = (uint32_t)len;
        m->n++;
    }
    m->vals[i] = val;
    return 0;
}

int32_t s1_tok_strmap_get(const s1_tok_strmap *m, const char *key, size_t len)
{
    if (!m->cap) return -1;
    size_t i = str_slot(m, key ? key : "", len);
    return m->keys[i] ? m->vals[i] : -1;
}

int s1_tok_pairmap_init(s1_tok_pairmap *m, size_t expected)
{
    memset(m, 0, sizeof *m);
    m->cap = cap_for(expected);
    m->keys = malloc(m->cap * sizeof *m->keys);
    m->ranks = malloc(m->cap * sizeof *m->ranks);
    m->ids = malloc(m->cap * sizeof *m->ids);
    if (!m->keys || !m->ranks || !m->ids) {
        s1_tok_pairmap_free(m);
        return -1;
    }
    memset(m->keys, 0xff, m->cap * sizeof *m->keys);
    return 0;
}

void s1_tok_pairmap_free(s1_tok_pairmap *m)
{
    free(m->keys);
    free(m->ranks);
    free(m->ids);
    memset(m, 0, sizeof *m);
}

static size_t pair_slot(const s1_tok_pairmap *m, uint64_t key)
{
    size_t i = hash_u64(key) & (m->cap - 1);
    while (m->keys[i] != UINT64_MAX && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* Callers size the map for all merges up front (init), so it never grows. */
void s1_tok_pairmap_put(s1_tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = pair_slot(m, key);
    if (m->keys[i] == UINT64_MAX) m->n++;
    m->keys[i] = key;
    m->ranks[i] = rank;
    m->ids[i] = id;
}

int s1_tok_pairmap_get(const s1_tok_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *id)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = pair_slot(m, key);
    if (m->keys[i] == UINT64_MAX) return 0;
    *rank = m->ranks[i];
    *id = m->ids[i];
    return 1;
}
