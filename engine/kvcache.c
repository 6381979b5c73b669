#include "kvcache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Each block is in exactly one of: the free stack (ref 0, not cached), held
 * (ref > 0), or the idle list (ref 0, cached: reusable as is until evicted,
 * least recently released first). Cached blocks are found through the hash
 * table by the chain hash of the prompt up to and including them. */
typedef struct {
    int ref;
    bool cached;
    uint64_t hash, parent;
    int32_t prev, next; /* idle list */
    int32_t hnext;      /* hash bucket chain */
} block_meta;

struct s1_kv {
    int n_blocks, block_size;
    bool prefix_cache;
    block_meta *m;     /* [n_blocks], owned */
    int32_t *tokens;   /* [n_blocks * block_size] contents of cached blocks, owned */
    int32_t *free_ids; /* [n_blocks] stack, owned */
    int n_free;
    int32_t idle_head, idle_tail; /* -1 when empty */
    int n_idle;
    int32_t *buckets;   /* [n_buckets], owned */
    uint32_t n_buckets; /* a power of two */
};

s1_kv *s1_kv_new(int n_blocks, int block_size, bool prefix_cache)
{
    if (n_blocks < 1 || block_size < 1) return NULL;
    s1_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return NULL;
    kv->n_blocks = n_blocks;
    kv->block_size = block_size;
    kv->prefix_cache = prefix_cache;
    kv->n_buckets = 1;
    while (kv->n_buckets < (uint32_t)n_blocks)
        kv->n_buckets <<= 1;
    kv->m = calloc((size_t)n_blocks, sizeof *kv->m);
    kv->tokens = malloc(sizeof *kv->tokens * (size_t)n_blocks * (size_t)block_size);
    kv->free_ids = malloc(sizeof *kv->free_ids * (size_t)n_blocks);
    kv->buckets = malloc(sizeof *kv->buckets * kv->n_buckets);
    if (!kv->m || !kv->tokens || !kv->free_ids || !kv->buckets) {
        s1_kv_free(kv);
        return NULL;
    }
    /* Popped from the top: block 0 is handed out first. */
    for (int i = 0; i < n_blocks; i++)
        kv->free_ids[i] = n_blocks - 1 - i;
    kv->n_free = n_blocks;
    kv->idle_head = kv->idle_tail = -1;
    for (uint32_t i = 0; i < kv->n_buckets; i++)
        kv->buckets[i] = -1;
    return kv;
}

void s1_kv_free(s1_kv *kv)
{
    if (!kv) return;
    free(kv->m);
    free(kv->tokens);
    free(kv->free_ids);
    free(kv->buckets);
    free(kv);
}

int s1_kv_block_size(const s1_kv *kv)
{
    return kv->block_size;
}

int s1_kv_available(const s1_kv *kv)
{
    return kv->n_free + kv->n_idle;
}

int s1_kv_held(const s1_kv *kv)
{
    return kv->n_blocks - kv->n_free - kv->n_idle;
}

int s1_kv_refcount(const s1_kv *kv, int32_t block)
{
    return kv->m[block].ref;
}

static void idle_unlink(s1_kv *kv, int32_t b)
{
    block_meta *m = &kv->m[b];
    if (m->prev >= 0)
        kv->m[m->prev].next = m->next;
    else
        kv->idle_head = m->next;
    if (m->next >= 0)
        kv->m[m->next].prev = m->prev;
    else
        kv->idle_tail = m->prev;
    kv->n_idle--;
}

static void idle_append(s1_kv *kv, int32_t b)
{
    block_meta *m = &kv->m[b];
    m->prev = kv->idle_tail;
    m->next = -1;
    if (kv->idle_tail >= 0)
        kv->m[kv->idle_tail].next = b;
    else
        kv->idle_head = b;
    kv->idle_tail = b;
    kv->n_idle++;
}

static int32_t *bucket_of(s1_kv *kv, uint64_t hash)
{
    return &kv->buckets[hash & (kv->n_buckets - 1)];
}

static void uncache(s1_kv *kv, int32_t b)
{
    int32_t *link = bucket_of(kv, kv->m[b].hash);
    while (*link != b)
        link = &kv->m[*link].hnext;
    *link = kv->m[b].hnext;
    kv->m[b].cached = false;
}

/* A free block if there is one, else the least recently idle cached block,
 * which leaves the prefix cache. */
static int32_t alloc_block(s1_kv *kv)
{
    int32_t b;
    if (kv->n_free > 0) {
        b = kv->free_ids[--kv->n_free];
    } else if (kv->idle_head >= 0) {
        b = kv->idle_head;
        idle_unlink(kv, b);
        uncache(kv, b);
    } else {
        return -1;
    }
    kv->m[b].ref = 1;
    return b;
}

static void release_block(s1_kv *kv, int32_t b)
{
    assert(kv->m[b].ref > 0);
    if (--kv->m[b].ref > 0) return;
    if (kv->m[b].cached)
        idle_append(kv, b);
    else
        kv->free_ids[kv->n_free++] = b;
}

/* FNV-1a over the parent's hash and the block's tokens: a chain hash, so a
 * block matches only when everything before it matched too. */
static uint64_t chain_hash(uint64_t parent, const int32_t *tokens, int n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *p = (const unsigned char *)&parent;
    for (size_t i = 0; i < sizeof parent; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    p = (const unsigned char *)tokens;
    for (size_t i = 0; i < sizeof *tokens * (size_t)n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The cached block holding exactly these tokens after this parent, or -1;
 * the tokens are compared too, so a hash collision cannot alias a block. */
static int32_t find_cached(s1_kv *kv, uint64_t hash, uint64_t parent, const int32_t *tokens)
{
    size_t bytes = sizeof *tokens * (size_t)kv->block_size;
    for (int32_t b = *bucket_of(kv, hash); b >= 0; b = kv->m[b].hnext) {
        const block_meta *m = &kv->m[b];
        if (m->hash == hash && m->parent == parent &&
            !memcmp(&kv->tokens[(size_t)b * kv->block_size], tokens, bytes))
            return b;
    }
    return -1;
}

static int table_push(s1_kv_table *t, int32_t b)
{
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 8;
        int32_t *nb = realloc(t->blocks, sizeof *nb * (size_t)cap);
        if (!nb) return -1;
        t->blocks = nb;
        t->cap = cap;
    }
    t->blocks[t->n++] = b;
    return 0;
}

/* The cached block that continues t's hashed chain with these tokens, or -1;
 * *hash gets the chain hash of that block. */
static int32_t next_cached(s1_kv *kv, const s1_kv_table *t, const int32_t *toks, uint64_t *hash)
{
    *hash = chain_hash(t->last_hash, toks, kv->block_size);
    return find_cached(kv, *hash, t->last_hash, toks);
}

/* Takes a reference on a cached block, which leaves the idle list if idle. */
static void hold(s1_kv *kv, int32_t b)
{
    if (kv->m[b].ref++ == 0) idle_unlink(kv, b);
}

int s1_kv_table_match(s1_kv *kv, s1_kv_table *t, const int32_t *prompt, int n_prompt, int n_tokens)
{
    assert(t->n == 0);
    t->n_hashed = 0;
    t->last_hash = 0;
    if (!kv->prefix_cache) return 0;
    int bs = kv->block_size;
    for (int i = 0; (i + 1) * bs <= n_prompt; i++) {
        uint64_t h;
        int32_t b = next_cached(kv, t, prompt + (size_t)i * bs, &h);
        if (b < 0 || table_push(t, b) < 0) break;
        hold(kv, b);
        t->n_hashed++;
        t->last_hash = h;
    }
    int cached = t->n * bs;
    return cached < n_tokens ? cached : n_tokens - 1;
}

int s1_kv_table_rematch(s1_kv *kv, s1_kv_table *t, const int32_t *prompt, int n_prompt,
                        int n_computed, int n_tokens)
{
    int bs = kv->block_size;
    while (kv->prefix_cache && n_computed % bs == 0 && t->n_hashed == n_computed / bs &&
           n_computed + bs <= n_prompt && n_computed + bs < n_tokens) {
        int i = n_computed / bs;
        uint64_t h;
        int32_t b = next_cached(kv, t, prompt + (size_t)i * bs, &h);
        if (b < 0) break;
        assert(i < t->n && b != t->blocks[i]);
        hold(kv, b);
        release_block(kv, t->blocks[i]);
        t->blocks[i] = b;
        t->n_hashed++;
        t->last_hash = h;
        n_computed += bs;
    }
    return n_computed;
}

int s1_kv_table_reserve(s1_kv *kv, s1_kv_table *t, int n_positions)
{
    while ((int64_t)t->n * kv->block_size < n_positions) {
        int32_t b = alloc_block(kv);
        if (b < 0) return -1;
        if (table_push(t, b) < 0) {
            release_block(kv, b);
            return -1;
        }
    }
    return 0;
}

int s1_kv_table_own(s1_kv *kv, s1_kv_table *t, int pos, s1_kv_copy *copy)
{
    int i = pos / kv->block_size;
    assert(i < t->n);
    int32_t b = t->blocks[i];
    if (kv->m[b].ref == 1 && !kv->m[b].cached) return 0;
    int32_t nb = alloc_block(kv);
    if (nb < 0) return -1;
    copy->src = b;
    copy->dst = nb;
    t->blocks[i] = nb;
    release_block(kv, b);
    return 1;
}

int s1_kv_table_fork(s1_kv *kv, const s1_kv_table *src, s1_kv_table *dst)
{
    assert(dst->n == 0);
    for (int i = 0; i < src->n; i++)
        if (table_push(dst, src->blocks[i]) < 0) {
            dst->n = 0;
            return -1;
        }
    for (int i = 0; i < src->n; i++)
        kv->m[src->blocks[i]].ref++;
    dst->n_hashed = src->n_hashed;
    dst->last_hash = src->last_hash;
    return 0;
}

void s1_kv_table_publish(s1_kv *kv, s1_kv_table *t, const int32_t *prompt, int n_prompt,
                         int n_computed)
{
    if (!kv->prefix_cache) return;
    int bs = kv->block_size;
    int limit = (n_computed < n_prompt ? n_computed : n_prompt) / bs;
    if (limit > t->n) limit = t->n;
    for (int i = t->n_hashed; i < limit; i++) {
        const int32_t *toks = prompt + (size_t)i * bs;
        uint64_t h = chain_hash(t->last_hash, toks, bs);
        int32_t b = t->blocks[i];
        /* Another sequence may have cached the same prefix first: keep its. */
        if (!kv->m[b].cached && find_cached(kv, h, t->last_hash, toks) < 0) {
            block_meta *m = &kv->m[b];
            m->cached = true;
            m->hash = h;
            m->parent = t->last_hash;
            memcpy(&kv->tokens[(size_t)b * bs], toks, sizeof *toks * (size_t)bs);
            int32_t *head = bucket_of(kv, h);
            m->hnext = *head;
            *head = b;
        }
        t->last_hash = h;
        t->n_hashed = i + 1;
    }
}

void s1_kv_table_release(s1_kv *kv, s1_kv_table *t)
{
    /* Last blocks first, so the idle list evicts a prompt's tail before its head. */
    for (int i = t->n - 1; i >= 0; i--)
        release_block(kv, t->blocks[i]);
    t->n = 0;
    t->n_hashed = 0;
    t->last_hash = 0;
}

void s1_kv_table_free(s1_kv_table *t)
{
    free(t->blocks);
    *t = (s1_kv_table){0};
}
