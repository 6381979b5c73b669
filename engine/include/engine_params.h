/* engine/include/engine_params.h — the values a request is made of that
 * also live outside the engine: budget forcing, ladders and sampling. s1ctl
 * builds them from flags and store/ turns them into job rows and back, with
 * no need of the engine itself (engine.h is the engine). */
#ifndef S1_ENGINE_PARAMS_H
#define S1_ENGINE_PARAMS_H

#include <stdint.h>
#include <string.h>

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

/* The prompt format a request is rendered in, which also sets the default
 * end-of-thinking delimiter and answer header (docs/models.md). */
typedef enum {
    S1_TEMPLATE_DEFAULT,    /* the engine's (s1_engine_cfg.template) */
    S1_TEMPLATE_S1,         /* s1: a "<|im_start|>think" turn, ended by <|im_start|> */
    S1_TEMPLATE_THINK_TAGS, /* QwQ: thinking between <think> and </think> */
} s1_template;

/* The names s1ctl's --template, s1d's config and the jobs' template column
 * use; NULL for S1_TEMPLATE_DEFAULT. Inline, so that store/ needs no engine. */
static inline const char *s1_template_name(s1_template t)
{
    switch (t) {
    case S1_TEMPLATE_S1:
        return "s1";
    case S1_TEMPLATE_THINK_TAGS:
        return "think-tags";
    default:
        return NULL;
    }
}

/* The template called name; S1_TEMPLATE_DEFAULT when no template is. */
static inline s1_template s1_template_named(const char *name)
{
    for (s1_template t = S1_TEMPLATE_S1; t <= S1_TEMPLATE_THINK_TAGS; t++)
        if (strcmp(name, s1_template_name(t)) == 0) return t;
    return S1_TEMPLATE_DEFAULT;
}

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
    s1_ladder ladder;      /* kind S1_LADDER_NONE: a single run */
    s1_template template;  /* the prompt format; its defaults below are the s1 template's */
    const char *system;    /* "You are Qwen, created by Alibaba Cloud. You are a helpful
                              assistant."; think-tags: none (no system turn) */
    const char *think_end; /* end-of-thinking delimiter, "<|im_start|>"; think-tags: "</think>" */
    const char *answer_header; /* fed after a forced delimiter, "answer\n"; think-tags: "\n\n" */
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
