/* engine/sampler.h — picks the next token from a row of logits: greedy,
 * temperature, top-k, top-p. Each sequence has its own random generator
 * seeded from its request, so what it samples never depends on batch-mates. */
#ifndef S1_SAMPLER_H
#define S1_SAMPLER_H

#include <stdint.h>

#include "engine.h"
#include "err.h"

/* Per-sequence state, embedded in the sequence. */
typedef struct {
    s1_sampling cfg;
    uint64_t rng[4]; /* xoshiro256** */
} s1_sampler;

/* Scratch space shared by all sequences of one engine thread. */
typedef struct s1_sampler_ws s1_sampler_ws;

void s1_sampler_init(s1_sampler *s, const s1_sampling *cfg);

/* A uniform double in [0, 1) from the sequence's generator. */
double s1_sampler_uniform(s1_sampler *s);

/* The generator's state: a sequence forked or resumed with it draws the
 * same numbers the original would have. */
void s1_sampler_rng_get(const s1_sampler *s, uint64_t rng[4]);
void s1_sampler_rng_set(s1_sampler *s, const uint64_t rng[4]);

/* Text form: four 16-digit hex words joined by ':' (67 bytes with the NUL).
 * Parse returns the number of characters read, -1 with err when malformed. */
enum { S1_SAMPLER_RNG_TEXT = 68 };
void s1_sampler_rng_format(const uint64_t rng[4], char buf[S1_SAMPLER_RNG_TEXT]);
int s1_sampler_rng_parse(const char *text, uint64_t rng[4], s1_err *err);

s1_sampler_ws *s1_sampler_ws_new(int n_vocab);
void s1_sampler_ws_free(s1_sampler_ws *ws);

/* Samples an id below n_vocab (the tokenizer's vocabulary: logits rows past it
 * are embedding padding and never chosen). ws must hold n_vocab entries. */
int32_t s1_sampler_sample(s1_sampler *s, s1_sampler_ws *ws, const float *logits, int n_vocab);

#endif
