/* engine/include/engine_params.h — the values a request is made of that
 * also live outside the engine: budget forcing, ladders and sampling. s1ctl
 * builds them from flags and store/ turns them into job rows and back, with
 * no need of the engine itself (engine.h is the engine). */
#ifndef S1_ENGINE_PARAMS_H
#define S1_ENGINE_PARAMS_H

#include <stdint.h>

/* The most samples a request may ask for. */
#define S1_MAX_SAMPLES 1024

/* The most rungs a ladder may have. */
#define S1_MAX_RUNGS 32

/* The answer reserve when max_answer is 0 (see s1_policy_cfg.max_answer). */
#define S1_DEFAULT_ANSWER_RESERVE 1024

/* A ladder (DESIGN.md "Ladders"): one request stands for one run per rung,
 * thinking once; at each rung's decision point a copy-on-write fork takes
 * the other branch. Each rung's result equals that of a separate request
 * with that single setting and the same seed. */
typedef enum {
    S1_LADDER_NONE,
    S1_LADDER_BUDGET, /* rungs are max_think values (max_think itself left 0) */
    S1_LADDER_WAIT,   /* rungs are ignore_stop values (ignore_stop itself left 0) */
} s1_ladder_kind;

typedef struct {
    s1_ladder_kind kind;
    int n_rungs;             /* 1..S1_MAX_RUNGS */
    int rungs[S1_MAX_RUNGS]; /* strictly ascending */
} s1_ladder;

/* Budget forcing, per request (DESIGN.md "Budget forcing"). NULL strings take
 * the defaults below; a limit of 0 means "none" except where noted. */
typedef struct {
    int max_think;   /* most sampled thinking tokens; 0 = unlimited */
    int min_think;   /* suppress the end of thinking before this many */
    int ignore_stop; /* suppress the first N ends of thinking */
    /* Most answer tokens; 0 = until the context is full. Also the answer
     * reserve: thinking is forced to end while the forced end and this many
     * answer tokens (S1_DEFAULT_ANSWER_RESERVE when 0; at most half of what
     * the context leaves) still fit, so no budget ends with an empty answer. */
    int max_answer;
    s1_ladder ladder;   /* kind S1_LADDER_NONE: a single run */
    const char *system; /* "You are Qwen, created by Alibaba Cloud. You are a helpful assistant." */
    const char *think_end;     /* end-of-thinking delimiter, "<|im_start|>" */
    const char *answer_header; /* fed after a forced delimiter, "answer\n" */
    const char *answer_prefix; /* fed after the header, "Final Answer:" */
    const char *wait_string;   /* fed in place of a suppressed end, "Wait" */
} s1_policy_cfg;

typedef struct {
    float temperature; /* 0 = greedy */
    float top_p;       /* 0 or 1 = off */
    int top_k;         /* 0 = off */
    uint64_t seed;
} s1_sampling;

#endif
