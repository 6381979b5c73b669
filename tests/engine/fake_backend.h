/* tests/engine/fake_backend.h — an oracle backend for scheduler tests. It
 * stands in for s1_backend_open: each KV slot records the token and position
 * written to it, and the logits of a row are a pseudo-random function of the
 * sequence's tokens read back through its block table. So results are exact
 * and batch-independent by construction, and any paging mistake (a wrong
 * block table, a missed copy-on-write, a stale prefix block) changes the
 * output or fails the forward. */
#ifndef S1_FAKE_BACKEND_H
#define S1_FAKE_BACKEND_H

#include <stdint.h>

typedef struct {
    int32_t boost_id;  /* a token made likely; -1 = none */
    int boost_every;   /* ...in about one row of this many */
    int32_t boost2_id; /* a second one, e.g. eos; -1 = none */
    int boost2_every;
    int32_t quiet[4]; /* tokens made unlikely (unless boosted) */
} fake_knobs;

typedef struct {
    int forwards;
    long tokens;    /* tokens fed in all */
    int max_tokens; /* largest batch seen */
    int max_seqs;   /* most sequences in one batch */
    int copies;     /* copy_block calls */
} fake_stats;

extern fake_knobs fake_backend_knobs;
extern fake_stats fake_backend_stats;

#endif
