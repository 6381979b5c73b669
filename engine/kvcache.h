/* engine/kvcache.h — the paged KV cache's bookkeeping: which blocks are free,
 * who holds each (reference counts), and the prefix cache, which lets jobs
 * sharing a prompt prefix share its full KV blocks. No tensors: the backend
 * holds the K/V; this module only hands out block ids. */
#ifndef S1_KVCACHE_H
#define S1_KVCACHE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct s1_kv s1_kv;

/* The blocks of one sequence, in position order. */
typedef struct {
    int32_t *blocks; /* [cap], owned */
    int n, cap;
    int n_hashed;       /* leading blocks hashed for the prefix cache */
    uint64_t last_hash; /* the chain hash of block n_hashed - 1 */
} s1_kv_table;

/* A block whose contents must be copied before the sequence writes to it. */
typedef struct {
    int32_t src, dst;
} s1_kv_copy;

s1_kv *s1_kv_new(int n_blocks, int block_size, bool prefix_cache);
void s1_kv_free(s1_kv *kv);

int s1_kv_block_size(const s1_kv *kv);
/* Blocks that can be handed out now: free ones and cached ones nobody holds. */
int s1_kv_available(const s1_kv *kv);
/* Blocks held by sequences now (a block shared by forks counts once). */
int s1_kv_held(const s1_kv *kv);
int s1_kv_refcount(const s1_kv *kv, int32_t block);

/* Shares the longest run of cached full blocks that starts t's prompt, for a
 * sequence of n_tokens (the prompt, then what it generated before a
 * preemption). At most n_tokens - 1 count as cached, since the last token must
 * be fed again for its logits. t must be empty. Returns the tokens cached. */
int s1_kv_table_match(s1_kv *kv, s1_kv_table *t, const int32_t *prompt, int n_prompt, int n_tokens);

/* For a sequence still prefilling, with blocks reserved past n_computed: when
 * the next full prompt blocks were cached meanwhile (by a sequence admitted
 * alongside), shares them in place of its own. Returns the new n_computed. */
int s1_kv_table_rematch(s1_kv *kv, s1_kv_table *t, const int32_t *prompt, int n_prompt,
                        int n_computed, int n_tokens);

/* Adds blocks until t covers n_positions. Returns -1 when the cache runs out
 * (the blocks added so far stay in t). */
int s1_kv_table_reserve(s1_kv *kv, s1_kv_table *t, int n_positions);

/* Before t writes position pos: when its block is shared or cached, gives t a
 * private block, *copy saying what the backend must copy. Returns 1 when a
 * copy is needed, 0 when not, -1 when the cache has no block for it. */
int s1_kv_table_own(s1_kv *kv, s1_kv_table *t, int pos, s1_kv_copy *copy);

/* Makes dst (empty) share every block of src, for a copy-on-write fork: each
 * block gains a reference, and the first write to a shared block goes
 * through s1_kv_table_own. Returns -1 when out of memory (dst stays empty). */
int s1_kv_table_fork(s1_kv *kv, const s1_kv_table *src, s1_kv_table *dst);

/* Offers t's full prompt blocks among the first n_computed positions to the
 * prefix cache; call after the forward that wrote them. */
void s1_kv_table_publish(s1_kv *kv, s1_kv_table *t, const int32_t *prompt, int n_prompt,
                         int n_computed);

/* Drops t's references (cached blocks stay, reusable until evicted). */
void s1_kv_table_release(s1_kv *kv, s1_kv_table *t);
void s1_kv_table_free(s1_kv_table *t);

#endif
