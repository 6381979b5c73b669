/* engine/tok_bpe.h — the BPE merge loop of one pre-tokenized word, with the
 * exact order of Hugging Face tokenizers: lowest rank first, leftmost first
 * among equal ranks, new pairs ranked as they form. */
#ifndef S1_TOK_BPE_H
#define S1_TOK_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "tok_map.h"

/* Work arrays reused across the words of one encode call. */
typedef struct {
    int32_t *prev, *next;      /* owned; linked list over the symbols */
    struct s1_tok_merge *heap; /* owned */
    size_t cap, heap_cap;
} s1_tok_bpe_scratch;

/* Merges ids[0..n) in place; returns the number of ids left, or -1 when out of
 * memory. */
long s1_tok_bpe_merge(const s1_tok_pairmap *merges, int32_t *ids, size_t n, s1_tok_bpe_scratch *s);
void s1_tok_bpe_scratch_free(s1_tok_bpe_scratch *s);

#endif
