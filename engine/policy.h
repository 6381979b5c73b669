/* engine/policy.h — budget forcing (DESIGN.md "Budget forcing"): decides the
 * next tokens of a sequence from the token the model just sampled. Pure logic;
 * no tensors, no I/O. The same machine runs raw requests (no thinking phase,
 * every token an answer token, stop at max_tokens or eos). */
#ifndef S1_POLICY_H
#define S1_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "err.h"

/* The policy's strings as token ids (engine/prompt.c builds it from an
 * s1_policy_cfg and the tokenizer). The arrays are copied by s1_policy_new. */
typedef struct {
    int32_t think_end;   /* the end-of-thinking delimiter, one token */
    int32_t eos;         /* ends the answer: <|im_end|> */
    int32_t eos_alt;     /* a second end token (raw: <|endoftext|>); -1 = none */
    const int32_t *wait; /* the wait string */
    int n_wait;
    const int32_t *answer_start; /* answer_header + answer_prefix, fed after a forced delimiter */
    int n_answer_start;
} s1_vocab;

typedef struct {
    int thinking, forced, answer; /* generated tokens by kind */
    int waits;                    /* wait strings fed */
    bool forced_end;              /* the budget or the context ended the thinking */
    bool context_end;             /* ... the context: the answer reserve was reached */
    bool thinking_phase;          /* still thinking */
} s1_policy_counts;

typedef struct s1_policy s1_policy;

/* A templated request's policy. room is how many tokens the sequence may still
 * grow by (context minus prompt), at least 1. Fails, naming the field, for a
 * negative limit, min_think > max_think, an empty wait string or answer
 * start, or a ladder that is not strictly ascending or sets the field its
 * rungs replace. A ladder's policy runs its last rung and watches the others
 * (s1_policy_branch). */
s1_policy *s1_policy_new(const s1_policy_cfg *cfg, const s1_vocab *v, int room, s1_err *err);

/* A raw request: answer tokens until eos / eos_alt, max_tokens (0 = none) or
 * the context is full. */
s1_policy *s1_policy_new_raw(int max_tokens, const s1_vocab *v, int room, s1_err *err);

void s1_policy_free(s1_policy *p);

/* The most tokens one s1_policy_step can return: the size its buffers need. */
int s1_policy_step_cap(const s1_policy *p);

/* Takes the token the model sampled and writes to out (kinds alongside, an
 * s1_token_kind each) the tokens appended to the sequence in its place: the
 * sampled one, a wait string instead of a suppressed delimiter, the forced end
 * after the last thinking token. An eos sampled while thinking is treated like
 * the delimiter (s1 ends the thinking at either): suppressed, or accepted as
 * an answer token that ends the sequence. Returns their count, 0 once done. When
 * s1_policy_done() turns true these were the last tokens and none is fed;
 * otherwise all are fed in the next forward and the last one's logits sampled. */
int s1_policy_step(s1_policy *p, int32_t sampled, int32_t *out, uint8_t *kinds, int cap);

/* Whether the sequence has ended; *why (when not NULL) says how. */
bool s1_policy_done(const s1_policy *p, s1_stop_reason *why);

void s1_policy_get_counts(const s1_policy *p, s1_policy_counts *c);

/* How many of the ladder's pending rungs would end the thinking at this
 * sampled token where p goes on thinking (a budget rung reached, a stop a
 * wait rung accepts): a fork must take them before p steps. 0 = none. */
int s1_policy_branch(const s1_policy *p, int32_t sampled);

/* A copy of p (counts, room, strings) for a fork; NULL when out of memory.
 * With n_rungs > 0 the copy runs the next n_rungs pending rungs (found by
 * s1_policy_branch), which p no longer watches; with 0 it is a plain copy. */
s1_policy *s1_policy_fork(s1_policy *p, int n_rungs);

/* The ladder rungs the sequence's result stands for: [*first, *first + *n);
 * rung 0 alone without a ladder. */
void s1_policy_rungs(const s1_policy *p, int *first, int *n);

/* What a sequence's policy has decided so far, to continue it in another
 * policy made from the same configuration and prompt: a fork (copied in
 * memory) or a rescued attempt (through its text form). */
typedef struct {
    s1_policy_counts counts;
    /* The ladder rungs it stands for and the one it runs (s1_policy_rungs):
     * [rung_lo, rung_hi), pending from rung_next. rung_hi 0: not given (a
     * save from before ladders were saved), the fresh policy's hold. */
    int rung_lo, rung_next, rung_hi;
    bool done; /* it has finished, for the reason in stop */
    s1_stop_reason stop;
} s1_policy_state;

void s1_policy_state_save(const s1_policy *p, s1_policy_state *st);

/* Puts a fresh policy (nothing stepped yet) where st says. Fails, naming the
 * count, for a state this policy could not have reached: negative counts,
 * rungs outside its ladder, thinking past max_think (the rung's), an answer
 * while still thinking, or more tokens than the context leaves room for. */
int s1_policy_state_restore(s1_policy *p, const s1_policy_state *st, s1_err *err);

/* Text form, "thinking=T forced=F answer=A waits=W forced_end=0|1
 * thinking_phase=0|1 rungs=LO,NEXT,HI", then " stop=REASON" once done:
 * what s1_policy_state_parse reads back (rungs= and stop= are optional
 * there). Returns the length written (as snprintf). */
int s1_policy_state_format(const s1_policy_state *st, char *buf, size_t cap);
int s1_policy_state_parse(const char *text, s1_policy_state *st, s1_err *err);

/* A malloc'ed copy of n ids (a valid pointer even when n is 0); NULL when out
 * of memory. */
int32_t *s1_ids_dup(const int32_t *ids, int n);

#endif
