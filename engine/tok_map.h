/* engine/tok_map.h — the tokenizer's hash maps: byte strings to ids (vocab,
 * per-call word cache) and id pairs to merges. Open addressing, linear probing;
 * keys are not copied, they live in storage the caller owns. */
#ifndef S1_TOK_MAP_H
#define S1_TOK_MAP_H

#include <stddef.h>
#include <stdint.h>

/* Byte string -> int32. Keys point into memory the caller keeps alive. */
typedef struct {
    const char **keys; /* owned array; the strings are not */
    uint32_t *lens;
    int32_t *vals;
    size_t cap, n; /* cap is a power of two */
} s1_tok_strmap;

int s1_tok_strmap_init(s1_tok_strmap *m, size_t expected);
void s1_tok_strmap_free(s1_tok_strmap *m);
/* Inserts or overwrites; returns -1 when out of memory. */
int s1_tok_strmap_put(s1_tok_strmap *m, const char *key, size_t len, int32_t val);
/* The value of key, or -1. */
int32_t s1_tok_strmap_get(const s1_tok_strmap *m, const char *key, size_t len);

/* (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t *keys; /* owned; UINT64_MAX marks an empty slot */
    int32_t *ranks, *ids;
    size_t cap, n;
} s1_tok_pairmap;

int s1_tok_pairmap_init(s1_tok_pairmap *m, size_t expected);
void s1_tok_pairmap_free(s1_tok_pairmap *m);
/* Inserts or overwrites (a later duplicate merge wins, as in Hugging Face). */
void s1_tok_pairmap_put(s1_tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id);
/* Returns 1 and fills rank and id when the pair merges, else 0. */
int s1_tok_pairmap_get(const s1_tok_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *id);

#endif
