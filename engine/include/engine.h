/* engine/include/engine.h — libs1engine as its users (s1d, s1ctl generate) see it:
 * open a model on a backend, add requests, step, take finished results.
 *
 * Many sequences are in flight at once: each s1_engine_step() runs one
 * forward over all of them (continuous batching over a paged KV cache).
 * An engine is driven by one thread; callers that need another thread (the
 * daemon) put a queue in front of it. The engine knows nothing of databases. */
#ifndef S1_ENGINE_H
#define S1_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine_params.h"
#include "err.h"

typedef struct s1_engine s1_engine;

typedef struct {
    const char *model_dir;
    const char *backend;    /* "cpu" (default) or "cuda" */
    int tp;                 /* tensor-parallel degree; 0 = 1 */
    int threads;            /* CPU threads; 0 = one per core */
    int max_seqs;           /* sequences in flight at most; 0 = 64 */
    int max_batch_tokens;   /* tokens per forward (prefill chunk); 0 = 512 */
    int block_size;         /* tokens per KV block; 0 = 16 */
    int kv_blocks;          /* 0 = sized by the backend */
    int max_context;        /* 0 = the model's max_position_embeddings */
    double kv_mem_fraction; /* cuda: share of free memory for KV; 0 = 0.9 */
    bool no_prefix_cache;   /* disable sharing of prompt-prefix KV blocks */
    /* The template of requests that name none. S1_TEMPLATE_DEFAULT: think-tags
     * when the tokenizer has <think> and </think> as single tokens (QwQ), else
     * s1. A template the tokenizer cannot serve fails s1_engine_open. */
    s1_template template;
} s1_engine_cfg;

/* Where one sequence of a request stood between two steps: its generated
 * tokens and the rest of its state as text (budget-forcing counts, the
 * ladder rungs it stands for, how it stopped if it did, the sampler's
 * generator). */
typedef struct {
    int sample;     /* the sample it runs */
    int rung;       /* the first ladder rung it stands for (0 without a ladder) */
    int32_t *ids;   /* generated tokens, owned */
    uint8_t *kinds; /* [n] s1_token_kind, owned */
    size_t n;
    char *state; /* owned */
} s1_resume_seq;

/* Where a request stood: every sequence it had, one per sample and ladder
 * branch, those still running and those that already finished (their
 * results are given again, not recomputed: the fork point that made them is
 * gone). Added again (s1_request.resume) with the same model, text, policy
 * and sampling, it goes on exactly as it would have without stopping. */
typedef struct {
    s1_resume_seq *seqs; /* [n], owned */
    int n;
} s1_resume;

void s1_resume_free(s1_resume *r); /* its contents and r itself; NULL is fine */

typedef struct {
    uint64_t tag;     /* the caller's name for this request, unique in flight */
    const char *text; /* the problem (templated) or, when raw, the whole prompt */
    size_t text_len;
    bool raw;       /* no template, no policy, added tokens matched */
    int max_tokens; /* raw: tokens to generate at most; 0 = context */
    /* Independent samples (0 = 1), sample k seeded sampling.seed + k; they
     * share the prompt's KV blocks (forked after the prompt). */
    int samples;
    s1_policy_cfg policy;
    s1_sampling sampling;
    /* NULL: from the prompt; else copied by s1_engine_add, and its
     * sequences must stand for every (sample, rung) of the request once. */
    const s1_resume *resume;
} s1_request;

typedef enum {
    S1_STOP_EOS,        /* the model ended the answer (<|im_end|>) */
    S1_STOP_MAX_ANSWER, /* max_answer reached */
    S1_STOP_MAX_TOKENS, /* raw: max_tokens reached */
    S1_STOP_CONTEXT,    /* the context window is full */
    S1_STOP_CANCELLED,
} s1_stop_reason;

const char *s1_stop_reason_name(s1_stop_reason r); /* "eos", "max_answer", ... */

/* Why each generated token is in the sequence (DESIGN.md): prompt tokens are
 * not listed; every generated token is exactly one of these. */
typedef enum { S1_TOK_THINKING = 1, S1_TOK_FORCED = 2, S1_TOK_ANSWER = 3 } s1_token_kind;

/* A finished request's run; owned by the caller after s1_engine_take_result().
 * A request gives one per sample and rung: samples × (n_rungs, or 1). */
typedef struct {
    uint64_t tag;
    int sample; /* 0..samples-1 */
    int rung;   /* index into the ladder's rungs; 0 without a ladder */
    s1_stop_reason stop;
    int prompt_tokens, thinking_tokens, forced_tokens, answer_tokens;
    int waits;        /* wait strings injected */
    bool forced_end;  /* the end of thinking was forced (by the budget or the context) */
    bool context_end; /* forced by the context: the budget did not fit with the answer reserve */
    int32_t *prompt_ids;
    size_t n_prompt; /* owned */
    int32_t *gen_ids;
    size_t n_gen;       /* every generated token, owned */
    uint8_t *gen_kinds; /* [n_gen] s1_token_kind, owned */
    char *trace;        /* the decoded generation: thinking, forced text, answer; owned */
    char *answer;       /* the decoded answer phase (after the end of thinking); owned */
    double ttft_s;      /* added → first sampled token */
    double decode_tps;  /* sampled tokens per second after the first */
} s1_result;

void s1_result_free(s1_result *r);

/* What the model and backend are, for logs and result rows. */
typedef struct {
    const char *model_name; /* last path component of the model directory */
    const char *backend;
    int n_devices; /* GPUs (0 on cpu) */
    int tp;
    int max_context;
    int vocab_size;
    int kv_blocks, block_size;
    const char *template_name; /* of requests that name none: "s1" or "think-tags" */
} s1_engine_info;

s1_engine *s1_engine_open(const s1_engine_cfg *cfg, s1_err *err);
void s1_engine_close(s1_engine *e);
const s1_engine_info *s1_engine_get_info(const s1_engine *e);

/* Tokenizes and queues r. Fails (and nothing is queued) for requests the
 * engine can never run: a prompt longer than the context, an empty problem,
 * policy strings that do not tokenize as required, a duplicate tag, a
 * resume state that does not fit the request (the message says which part). */
int s1_engine_add(s1_engine *e, const s1_request *r, s1_err *err);

/* Where the request tagged tag stands now (call between steps, on the
 * engine's thread): a malloc'ed s1_resume (s1_resume_free), with no
 * sequence while its samples have not forked yet (nothing generated), or
 * NULL with err when no such request is in flight or memory ran out. */
s1_resume *s1_engine_save(const s1_engine *e, uint64_t tag, s1_err *err);

/* Marks r's sequences (its samples and rungs) cancelled; they finish with S1_STOP_CANCELLED at the
 * next step. Returns -1 when no request has this tag. */
int s1_engine_cancel(s1_engine *e, uint64_t tag);

/* Runs one forward over everything in flight. Returns the number of requests
 * still queued or running, or -1 with err set when the backend failed. */
int s1_engine_step(s1_engine *e, s1_err *err);

/* Requests that could be added now without waiting (free sequence slots). */
int s1_engine_capacity(const s1_engine *e);

/* Next finished request, or NULL. */
s1_result *s1_engine_take_result(s1_engine *e);

/* What the engine has done since it opened, for benchmarks and status. */
typedef struct {
    int64_t tokens_computed; /* tokens fed through the model (prefill and decode) */
    int64_t kv_attended;     /* cached positions those tokens attended to, summed */
    int64_t forks;           /* copy-on-write forks (samples and ladder rungs) */
    int64_t preemptions;     /* sequences preempted (to be recomputed) for want of blocks */
    int kv_blocks_peak;      /* most KV blocks held by sequences at once */
} s1_engine_stats;

void s1_engine_get_stats(const s1_engine *e, s1_engine_stats *st);

/* Thinking and generated tokens so far of a request in flight; -1 if unknown. */
int s1_engine_progress(const s1_engine *e, uint64_t tag, int *thinking, int *generated);

/* A model directory's tokenizer alone (DIR/tokenizer.json, no weights), for
 * tools that turn text into ids and back (s1ctl tokenize). */
typedef struct s1_tokenizer s1_tokenizer;

s1_tokenizer *s1_tokenizer_open(const char *model_dir, s1_err *err);
void s1_tokenizer_free(s1_tokenizer *t);

/* Encodes len bytes of UTF-8 text into *ids (malloc'ed, owned by the caller).
 * With special = 1 the added tokens written in the text ("<|im_end|>") are
 * matched as such; with 0 all text is ordinary, so a problem can never inject
 * template markup. */
int s1_tokenizer_encode(const s1_tokenizer *t, const char *text, size_t len, int special,
                        int32_t **ids, size_t *n_ids, s1_err *err);

/* Decodes ids to text (*out malloc'ed, NUL-terminated, owned by the caller). */
int s1_tokenizer_decode(const s1_tokenizer *t, const int32_t *ids, size_t n_ids, char **out,
                        size_t *out_len, s1_err *err);

/* One past the largest id the tokenizer can produce. */
int32_t s1_tokenizer_n_vocab(const s1_tokenizer *t);

#endif
