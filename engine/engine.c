/* The scheduler: continuous batching over the paged KV cache. Each step
 * admits waiting sequences while blocks and slots are free, plans one ragged
 * batch (decode tokens of running sequences first, then prefill chunks, up to
 * max_batch_tokens), preempts the youngest sequence by recompute when blocks
 * run out, runs one forward, samples the rows that reached the end of their
 * sequence and lets each sequence's policy decide what is appended. */
#include "engine.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "cleanup.h"
#include "kvcache.h"
#include "log.h"
#include "model.h"
#include "policy.h"
#include "prompt.h"
#include "sampler.h"
#include "tokenizer.h"

typedef struct {
    uint64_t tag;
    int32_t *tokens; /* [max_context] prompt, then generated; owned */
    uint8_t *kinds;  /* [max_context] s1_token_kind of generated positions; owned */
    int n_prompt, n_tokens;
    /* Leading tokens whose KV blocks the prefix cache may share: the prompt,
     * and on a resumed sequence its saved tokens too, so that rebuilt ladder
     * branches share the thinking they had in common with their trunk. */
    int n_shared;
    int n_computed; /* leading tokens whose K/V are in the cache */
    bool decoding;  /* its whole sequence was computed once since admission */
    bool cancelled;
    int answer_from; /* first generated index of the answer phase; -1 while thinking */
    int32_t think_end;
    s1_kv_table table;
    s1_policy *policy; /* owned */
    s1_sampler sampler;
    /* The samples this sequence stands for: more than one until they fork
     * after the prompt, at its first sampled token. */
    int sample_lo, sample_hi;
    int n_sampled;
    double t_added, t_first, t_last;
} seq;

/* A finished sequence's saved state, kept while its request has others in
 * flight: a save of the request must give it again (its fork point is gone). */
typedef struct {
    uint64_t tag;
    s1_resume_seq saved; /* owned */
} finished_seq;

/* One entry of the batch being planned: count tokens of s from its n_computed. */
typedef struct {
    seq *s;
    int count;
} plan_entry;

struct s1_engine {
    s1_engine_cfg cfg;
    s1_engine_info info;
    char *model_name;     /* owned */
    s1_model *model;      /* owned */
    s1_tokenizer *tok;    /* owned */
    s1_template template; /* for requests that name none */
    s1_backend *backend;  /* owned */
    s1_kv *kv;            /* owned */
    s1_sampler_ws *ws;    /* owned */
    int n_vocab;          /* ids that can be sampled: the tokenizer's */
    int max_context;
    /* Sequences, each owned by exactly one of these arrays. */
    seq **waiting; /* [cap_waiting] FIFO, room for all in flight; owned */
    int n_waiting, cap_waiting;
    seq **running; /* [max_seqs] in admission order, owned */
    int n_running;
    s1_result **results; /* finished, not yet taken; owned */
    int n_results, cap_results;
    finished_seq *finished; /* [n_finished] of requests still in flight; owned */
    int n_finished, cap_finished;
    /* The batch, sized once. */
    plan_entry *plan;                  /* [max_seqs] */
    int n_plan, n_planned;             /* entries, tokens */
    int32_t *b_tokens, *b_pos, *b_seq; /* [max_batch_tokens] */
    int32_t *b_out;                    /* [max_seqs] */
    s1_block_table *b_tables;          /* [max_seqs] */
    float *logits;                     /* [max_seqs, vocab_size] */
    int32_t *step_ids;                 /* [step_cap] policy output */
    uint8_t *step_kinds;               /* [step_cap] */
    int step_cap;
    s1_engine_stats stats;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *s1_stop_reason_name(s1_stop_reason r)
{
    switch (r) {
    case S1_STOP_EOS:
        return "eos";
    case S1_STOP_MAX_ANSWER:
        return "max_answer";
    case S1_STOP_MAX_TOKENS:
        return "max_tokens";
    case S1_STOP_CONTEXT:
        return "context";
    case S1_STOP_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

void s1_result_free(s1_result *r)
{
    if (!r) return;
    free(r->prompt_ids);
    free(r->gen_ids);
    free(r->gen_kinds);
    free(r->trace);
    free(r->answer);
    free(r);
}

static void resume_seq_clear(s1_resume_seq *q)
{
    free(q->ids);
    free(q->kinds);
    free(q->state);
    *q = (s1_resume_seq){0};
}

void s1_resume_free(s1_resume *r)
{
    if (!r) return;
    for (int i = 0; i < r->n; i++)
        resume_seq_clear(&r->seqs[i]);
    free(r->seqs);
    free(r);
}

static void seq_free(seq *s)
{
    if (!s) return;
    free(s->tokens);
    free(s->kinds);
    s1_kv_table_free(&s->table);
    s1_policy_free(s->policy);
    free(s);
}

/* ---- opening ---------------------------------------------------------- */

static char *model_name_of(const char *dir)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    return strndup(dir + start, len - start);
}

static void apply_defaults(s1_engine_cfg *c)
{
    if (!c->backend) c->backend = "cpu";
    if (c->tp <= 0) c->tp = 1;
    if (c->max_seqs <= 0) c->max_seqs = 64;
    if (c->max_batch_tokens <= 0) c->max_batch_tokens = 512;
    if (c->block_size <= 0) c->block_size = 16;
    /* Every running sequence gets its decode token in each step. */
    if (c->max_seqs > c->max_batch_tokens) c->max_seqs = c->max_batch_tokens;
    if (c->kv_mem_fraction <= 0) c->kv_mem_fraction = 0.9;
}

/* The backend decides the KV cache's size; the scheduler then takes its word
 * for the number of blocks, checking the block size is the one asked for. */
static int open_backend(s1_engine *e, s1_err *err)
{
    const s1_engine_cfg *c = &e->cfg;
    s1_backend_cfg bc = {.tp = c->tp,
                         .threads = c->threads,
                         .block_size = c->block_size,
                         .n_blocks = c->kv_blocks,
                         .max_batch_tokens = c->max_batch_tokens,
                         .kv_mem_fraction = c->kv_mem_fraction};
    e->backend = s1_backend_open(c->backend, e->model, &bc, err);
    if (!e->backend) return -1;
    if (e->backend->block_size != c->block_size || e->backend->n_blocks < 1)
        return s1_errf(err, "backend %s: it gave %d KV blocks of %d tokens, %d asked for",
                       c->backend, e->backend->n_blocks, e->backend->block_size, c->block_size);
    return 0;
}

/* The context is what the model supports, what was asked for, and what the
 * KV cache can hold for one sequence, whichever is least: so a sequence alone
 * always fits, and preemption always lets the oldest one go on. */
static int context_limit(const s1_engine *e)
{
    int ctx = e->model->cfg.max_position;
    if (e->cfg.max_context > 0 && e->cfg.max_context < ctx) ctx = e->cfg.max_context;
    int64_t kv_tokens = (int64_t)e->backend->n_blocks * e->backend->block_size;
    if (kv_tokens < ctx) {
        log_warning("engine: the KV cache holds %lld tokens, less than the context of %d: "
                    "sequences stop at %lld tokens",
                    (long long)kv_tokens, ctx, (long long)kv_tokens);
        ctx = (int)kv_tokens;
    }
    return ctx;
}

static int alloc_buffers(s1_engine *e, s1_err *err)
{
    int ms = e->cfg.max_seqs, mbt = e->cfg.max_batch_tokens;
    e->cap_waiting = ms;
    e->waiting = calloc((size_t)ms, sizeof *e->waiting);
    e->running = calloc((size_t)ms, sizeof *e->running);
    e->plan = calloc((size_t)ms, sizeof *e->plan);
    e->b_tokens = calloc((size_t)mbt, sizeof *e->b_tokens);
    e->b_pos = calloc((size_t)mbt, sizeof *e->b_pos);
    e->b_seq = calloc((size_t)mbt, sizeof *e->b_seq);
    e->b_out = calloc((size_t)ms, sizeof *e->b_out);
    e->b_tables = calloc((size_t)ms, sizeof *e->b_tables);
    e->logits = calloc((size_t)ms * (size_t)e->backend->vocab_size, sizeof *e->logits);
    e->ws = s1_sampler_ws_new(e->n_vocab);
    e->kv = s1_kv_new(e->backend->n_blocks, e->backend->block_size, !e->cfg.no_prefix_cache);
    if (!e->waiting || !e->running || !e->plan || !e->b_tokens || !e->b_pos || !e->b_seq ||
        !e->b_out || !e->b_tables || !e->logits || !e->ws || !e->kv)
        return s1_errf(err, "engine: out of memory for %d sequences of %d tokens per step", ms,
                       mbt);
    return 0;
}

static void fill_info(s1_engine *e)
{
    e->info = (s1_engine_info){.model_name = e->model_name,
                               .backend = e->backend->name,
                               .n_devices = e->backend->n_devices,
                               .tp = e->cfg.tp,
                               .max_context = e->max_context,
                               .vocab_size = e->n_vocab,
                               .kv_blocks = e->backend->n_blocks,
                               .block_size = e->backend->block_size,
                               .template_name = s1_template_name(e->template)};
}

s1_engine *s1_engine_open(const s1_engine_cfg *cfg, s1_err *err)
{
    if (!cfg->model_dir) {
        s1_errf(err, "engine: no model directory given");
        return NULL;
    }
    s1_engine *e = calloc(1, sizeof *e);
    if (!e) {
        s1_errf(err, "engine: out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    apply_defaults(&e->cfg);
    e->model_name = model_name_of(cfg->model_dir);
    if (!e->model_name) {
        s1_errf(err, "engine: out of memory");
        goto fail;
    }
    e->model = s1_model_load(cfg->model_dir, err);
    if (!e->model) goto fail;
    e->tok = s1_tokenizer_open(cfg->model_dir, err);
    if (!e->tok) goto fail;
    /* Checked before the backend loads anything: every id must have a row. */
    e->n_vocab = s1_tokenizer_n_vocab(e->tok);
    if (e->n_vocab > e->model->cfg.vocab_size) {
        s1_errf(err, "%s: the tokenizer has %d ids but the model only %d embedding rows",
                cfg->model_dir, e->n_vocab, e->model->cfg.vocab_size);
        goto fail;
    }
    if (s1_prompt_template_choose(e->tok, cfg->template, &e->template, err) < 0) {
        s1_err_prefix(err, "%s", cfg->model_dir);
        goto fail;
    }
    if (open_backend(e, err) < 0) goto fail;
    e->max_context = context_limit(e);
    if (alloc_buffers(e, err) < 0) goto fail;
    fill_info(e);
    log_info("engine: %s on %s, %d KV blocks of %d tokens, context %d, %d sequences at most, "
             "%s template by default",
             e->model_name, e->backend->name, e->backend->n_blocks, e->backend->block_size,
             e->max_context, e->cfg.max_seqs, e->info.template_name);
    return e;
fail:
    s1_engine_close(e);
    return NULL;
}

void s1_engine_close(s1_engine *e)
{
    if (!e) return;
    for (int i = 0; i < e->n_waiting; i++)
        seq_free(e->waiting[i]);
    for (int i = 0; i < e->n_running; i++)
        seq_free(e->running[i]);
    for (int i = 0; i < e->n_results; i++)
        s1_result_free(e->results[i]);
    for (int i = 0; i < e->n_finished; i++)
        resume_seq_clear(&e->finished[i].saved);
    free(e->waiting);
    free(e->running);
    free(e->results);
    free(e->finished);
    free(e->plan);
    free(e->b_tokens);
    free(e->b_pos);
    free(e->b_seq);
    free(e->b_out);
    free(e->b_tables);
    free(e->logits);
    free(e->step_ids);
    free(e->step_kinds);
    s1_sampler_ws_free(e->ws);
    s1_kv_free(e->kv);
    s1_backend_close(e->backend);
    s1_tokenizer_free(e->tok);
    s1_model_free(e->model);
    free(e->model_name);
    free(e);
}

const s1_engine_info *s1_engine_get_info(const s1_engine *e)
{
    return &e->info;
}

/* ---- adding ----------------------------------------------------------- */

static seq *find_seq(const s1_engine *e, uint64_t tag)
{
    for (int i = 0; i < e->n_waiting; i++)
        if (e->waiting[i]->tag == tag) return e->waiting[i];
    for (int i = 0; i < e->n_running; i++)
        if (e->running[i]->tag == tag) return e->running[i];
    return NULL;
}

/* The request's policy with its template named: its own, else the engine's. */
static s1_policy_cfg policy_cfg_of(const s1_engine *e, const s1_request *r)
{
    s1_policy_cfg cfg = r->policy;
    if (cfg.template == S1_TEMPLATE_DEFAULT) cfg.template = e->template;
    return cfg;
}

static int encode_prompt(const s1_engine *e, const s1_request *r, int32_t **ids, size_t *n,
                         s1_err *err)
{
    if (r->raw) return s1_tokenizer_encode(e->tok, r->text, r->text_len, 1, ids, n, err);
    s1_policy_cfg cfg = policy_cfg_of(e, r);
    return s1_prompt_render(e->tok, &cfg, r->text, r->text_len, ids, n, err);
}

/* The request's policy, its strings tokenized (raw: eos and max_tokens only). */
static s1_policy *make_policy(const s1_engine *e, const s1_request *r, int room, int32_t *think_end,
                              s1_err *err)
{
    s1_policy_cfg cfg = policy_cfg_of(e, r);
    s1_prompt_vocab pv;
    if (s1_prompt_vocab_build(e->tok, &cfg, r->raw, &pv, err) < 0) return NULL;
    *think_end = pv.v.think_end;
    s1_policy *p = r->raw ? s1_policy_new_raw(r->max_tokens, &pv.v, room, err)
                          : s1_policy_new(&cfg, &pv.v, room, err);
    s1_prompt_vocab_free(&pv);
    return p;
}

static void mark_answer_start(seq *s, int first, int n);

/* The saved state's text: the policy's counts, then " rng=" and the
 * sampler's generator. */
static int parse_resume_state(const char *text, s1_policy_state *ps, uint64_t rng[4], s1_err *err)
{
    const char *rng_at = strstr(text, " rng=");
    if (!rng_at) return s1_errf(err, "saved state \"%.80s\" has no rng=", text);
    if (s1_policy_state_parse(text, ps, err) < 0) return -1;
    int n = s1_sampler_rng_parse(rng_at + 5, rng, err);
    if (n < 0) return -1;
    if (rng_at[5 + n]) return s1_errf(err, "saved state: text after the rng= words");
    return 0;
}

/* Every saved token must be one the model could have produced, of a kind
 * whose count the policy state agrees with. */
static int check_resume_tokens(const s1_engine *e, const s1_resume_seq *r,
                               const s1_policy_state *ps, s1_err *err)
{
    int by_kind[4] = {0};
    for (size_t i = 0; i < r->n; i++) {
        if (r->ids[i] < 0 || r->ids[i] >= e->n_vocab)
            return s1_errf(err, "saved token %zu is id %d, outside the vocabulary (%d ids)", i,
                           r->ids[i], e->n_vocab);
        if (r->kinds[i] < S1_TOK_THINKING || r->kinds[i] > S1_TOK_ANSWER)
            return s1_errf(err, "saved token %zu has kind %d; kinds are 1, 2 and 3", i,
                           r->kinds[i]);
        by_kind[r->kinds[i]]++;
    }
    const s1_policy_counts *c = &ps->counts;
    if (by_kind[S1_TOK_THINKING] != c->thinking || by_kind[S1_TOK_FORCED] != c->forced ||
        by_kind[S1_TOK_ANSWER] != c->answer)
        return s1_errf(err,
                       "saved tokens are %d thinking, %d forced, %d answer but the saved policy "
                       "state counts %d, %d, %d",
                       by_kind[S1_TOK_THINKING], by_kind[S1_TOK_FORCED], by_kind[S1_TOK_ANSWER],
                       c->thinking, c->forced, c->answer);
    return 0;
}

/* A rescued sequence: its saved tokens follow the prompt (to be prefilled
 * like a preempted sequence), its policy and generator are where they were. */
static int apply_resume(const s1_engine *e, seq *s, const s1_resume_seq *r, s1_err *err)
{
    s1_policy_state ps;
    uint64_t rng[4];
    if (!r->state) return s1_errf(err, "saved state: no text");
    if (parse_resume_state(r->state, &ps, rng, err) < 0 ||
        check_resume_tokens(e, r, &ps, err) < 0 || s1_policy_state_restore(s->policy, &ps, err) < 0)
        return -1;
    memcpy(s->tokens + s->n_tokens, r->ids, sizeof *r->ids * r->n);
    memcpy(s->kinds + s->n_tokens, r->kinds, r->n);
    if (s->answer_from < 0) mark_answer_start(s, s->n_tokens, (int)r->n);
    s->n_tokens += (int)r->n;
    s->n_shared = s->n_tokens;
    s1_sampler_rng_set(&s->sampler, rng);
    return 0;
}

/* A saved sequence runs its own sample: seeded as fork_samples seeds it,
 * then its generator and policy put where they were. */
static int resume_sample(const s1_engine *e, seq *s, const s1_request *r,
                         const s1_resume_seq *saved, s1_err *err)
{
    int samples = r->samples > 1 ? r->samples : 1;
    if (saved->sample < 0 || saved->sample >= samples)
        return s1_errf(err, "a saved sequence runs sample %d of a request of %d", saved->sample,
                       samples);
    s1_sampling cfg = r->sampling;
    cfg.seed += (uint64_t)saved->sample;
    s1_sampler_init(&s->sampler, &cfg);
    s->sample_lo = saved->sample;
    s->sample_hi = saved->sample + 1;
    if (apply_resume(e, s, saved, err) < 0) return -1;
    int first, n;
    s1_policy_rungs(s->policy, &first, &n);
    if (saved->rung != first)
        return s1_errf(err,
                       "a saved sequence of sample %d is filed under rung %d but its state "
                       "starts at rung %d",
                       saved->sample, saved->rung, first);
    return 0;
}

/* Tokenizes and checks everything that can be wrong with a request, so that
 * what is queued can always run. With saved, the sequence is that saved one
 * of the request, sample and all. */
static seq *new_seq(const s1_engine *e, const s1_request *r, const s1_resume_seq *saved,
                    s1_err *err)
{
    if (!r->text || r->text_len == 0) {
        s1_errf(err, "the problem is empty: give the text to solve");
        return NULL;
    }
    if (r->samples < 0 || r->samples > S1_MAX_SAMPLES) {
        s1_errf(err, "samples is %d: give 1 to %d", r->samples, S1_MAX_SAMPLES);
        return NULL;
    }
    if (r->raw && r->policy.ladder.kind != S1_LADDER_NONE) {
        s1_errf(err, "a raw request does not think: it takes no budget or wait ladder");
        return NULL;
    }
    _cleanup_free_ int32_t *ids = NULL;
    size_t n = 0;
    if (encode_prompt(e, r, &ids, &n, err) < 0) return NULL;
    if (n >= (size_t)e->max_context) {
        s1_errf(err,
                "the prompt is %zu tokens but the context holds %d: shorten the problem "
                "or raise max_context (s1d --max-context)",
                n, e->max_context);
        return NULL;
    }
    seq *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->tag = r->tag;
    s->policy = make_policy(e, r, e->max_context - (int)n, &s->think_end, err);
    if (!s->policy) {
        seq_free(s);
        return NULL;
    }
    s->tokens = malloc(sizeof *s->tokens * (size_t)e->max_context);
    s->kinds = malloc((size_t)e->max_context);
    if (!s->tokens || !s->kinds) goto oom;
    memcpy(s->tokens, ids, sizeof *ids * n);
    s->n_prompt = s->n_tokens = s->n_shared = (int)n;
    s->answer_from = r->raw ? 0 : -1;
    s1_sampler_init(&s->sampler, &r->sampling);
    s->sample_hi = r->samples > 1 ? r->samples : 1;
    s->t_added = now_s();
    if (saved && resume_sample(e, s, r, saved, err) < 0) {
        seq_free(s);
        return NULL;
    }
    return s;
oom:
    seq_free(s);
    s1_errf(err, "engine: out of memory");
    return NULL;
}

/* Room in the queue for every sequence in flight, so that a preemption can
 * always put its sequence back without allocating. */
static int fit_waiting(s1_engine *e)
{
    int need = e->n_waiting + e->n_running + 1;
    if (need <= e->cap_waiting) return 0;
    seq **w = realloc(e->waiting, sizeof *w * (size_t)(2 * need));
    if (!w) return -1;
    e->waiting = w;
    e->cap_waiting = 2 * need;
    return 0;
}

static void push_waiting(s1_engine *e, seq *s, bool front)
{
    assert(e->n_waiting < e->cap_waiting);
    if (front) {
        memmove(e->waiting + 1, e->waiting, sizeof *e->waiting * (size_t)e->n_waiting);
        e->waiting[0] = s;
    } else {
        e->waiting[e->n_waiting] = s;
    }
    e->n_waiting++;
}

/* The policy's step buffers fit the longest step of any sequence. */
static int fit_step_buffers(s1_engine *e, const s1_policy *p)
{
    int need = s1_policy_step_cap(p);
    if (need <= e->step_cap) return 0;
    int32_t *ids = realloc(e->step_ids, sizeof *ids * (size_t)need);
    if (!ids) return -1;
    e->step_ids = ids;
    uint8_t *kinds = realloc(e->step_kinds, (size_t)need);
    if (!kinds) return -1;
    e->step_kinds = kinds;
    e->step_cap = need;
    return 0;
}

/* Queues s, with room for it and its policy's steps. */
static int queue_seq(s1_engine *e, seq *s, s1_err *err)
{
    if (fit_step_buffers(e, s->policy) < 0 || fit_waiting(e) < 0) {
        seq_free(s);
        return s1_errf(err, "out of memory");
    }
    push_waiting(e, s, false);
    return 0;
}

static int finish_seq(s1_engine *e, seq *s, s1_stop_reason stop, s1_err *err);

/* Each (sample, rung) of the request is run by exactly one saved sequence:
 * otherwise a result would be missing or given twice. */
static int check_cover(seq *const *seqs, int n, int samples, int rungs, s1_err *err)
{
    _cleanup_free_ bool *cell = calloc((size_t)samples * (size_t)rungs, sizeof *cell);
    if (!cell) return s1_errf(err, "out of memory");
    for (int i = 0; i < n; i++) {
        int first, count;
        s1_policy_rungs(seqs[i]->policy, &first, &count);
        for (int k = first; k < first + count; k++) {
            bool *c = &cell[(size_t)seqs[i]->sample_lo * (size_t)rungs + (size_t)k];
            if (*c)
                return s1_errf(err, "saved sequences run sample %d rung %d twice",
                               seqs[i]->sample_lo, k);
            *c = true;
        }
    }
    for (int k = 0; k < samples * rungs; k++)
        if (!cell[k])
            return s1_errf(err, "no saved sequence runs sample %d rung %d", k / rungs, k % rungs);
    return 0;
}

/* The longest first: a ladder's trunk is prefilled before the branches that
 * forked from it, which then find their common part in the prefix cache. */
static int longest_first(const void *a, const void *b)
{
    const seq *x = *(seq *const *)a, *y = *(seq *const *)b;
    return (y->n_tokens > x->n_tokens) - (y->n_tokens < x->n_tokens);
}

/* A rescued request: one sequence per saved one, all checked before any is
 * queued; those that had finished give their results at once. */
static int add_resumed(s1_engine *e, const s1_request *r, s1_err *err)
{
    const s1_resume *saved = r->resume;
    if (saved->n < 1) return s1_errf(err, "the saved state has no sequence");
    _cleanup_free_ seq **seqs = calloc((size_t)saved->n, sizeof *seqs);
    if (!seqs) return s1_errf(err, "out of memory");
    int rc = 0, built = 0;
    for (; rc == 0 && built < saved->n; built++)
        if (!(seqs[built] = new_seq(e, r, &saved->seqs[built], err))) rc = -1;
    int rungs = r->policy.ladder.kind == S1_LADDER_NONE ? 1 : r->policy.ladder.n_rungs;
    if (rc == 0) rc = check_cover(seqs, saved->n, r->samples > 1 ? r->samples : 1, rungs, err);
    for (int i = 0; rc < 0 && i < built; i++)
        seq_free(seqs[i]);
    if (rc < 0) return -1;
    qsort(seqs, (size_t)saved->n, sizeof *seqs, longest_first);
    for (int i = 0; i < saved->n; i++)
        if (!s1_policy_done(seqs[i]->policy, NULL) && queue_seq(e, seqs[i], err) < 0) rc = -1;
    for (int i = 0; i < saved->n; i++) {
        s1_stop_reason why;
        if (s1_policy_done(seqs[i]->policy, &why) && finish_seq(e, seqs[i], why, err) < 0) rc = -1;
    }
    return rc;
}

int s1_engine_add(s1_engine *e, const s1_request *r, s1_err *err)
{
    if (find_seq(e, r->tag))
        return s1_errf(err, "request %llu: this tag is already in flight",
                       (unsigned long long)r->tag);
    int rc;
    if (r->resume) {
        rc = add_resumed(e, r, err);
    } else {
        seq *s = new_seq(e, r, NULL, err);
        rc = s ? queue_seq(e, s, err) : -1;
    }
    return rc < 0 ? s1_err_prefix(err, "request %llu", (unsigned long long)r->tag) : 0;
}

int s1_engine_cancel(s1_engine *e, uint64_t tag)
{
    seq *s = find_seq(e, tag);
    if (!s) return -1;
    for (int i = 0; i < e->n_waiting; i++)
        if (e->waiting[i]->tag == tag) e->waiting[i]->cancelled = true;
    for (int i = 0; i < e->n_running; i++)
        if (e->running[i]->tag == tag) e->running[i]->cancelled = true;
    return 0;
}

int s1_engine_capacity(const s1_engine *e)
{
    int free_slots = e->cfg.max_seqs - e->n_running - e->n_waiting;
    return free_slots > 0 ? free_slots : 0;
}

/* Folds s into the progress of its request: the furthest of its forks. */
static void add_progress(const seq *s, int *thinking, int *generated)
{
    s1_policy_counts c;
    s1_policy_get_counts(s->policy, &c);
    if (c.thinking > *thinking) *thinking = c.thinking;
    if (s->n_tokens - s->n_prompt > *generated) *generated = s->n_tokens - s->n_prompt;
}

int s1_engine_progress(const s1_engine *e, uint64_t tag, int *thinking, int *generated)
{
    int t = -1, g = -1;
    for (int i = 0; i < e->n_waiting; i++)
        if (e->waiting[i]->tag == tag) add_progress(e->waiting[i], &t, &g);
    for (int i = 0; i < e->n_running; i++)
        if (e->running[i]->tag == tag) add_progress(e->running[i], &t, &g);
    if (t < 0) return -1;
    if (thinking) *thinking = t;
    if (generated) *generated = g;
    return 0;
}

void s1_engine_get_stats(const s1_engine *e, s1_engine_stats *st)
{
    *st = e->stats;
}

/* A copy of a kept state; false when out of memory. */
static bool copy_saved(const s1_resume_seq *from, s1_resume_seq *out)
{
    *out = *from;
    out->ids = s1_ids_dup(from->ids, (int)from->n);
    out->kinds = malloc(from->n ? from->n : 1);
    if (out->kinds) memcpy(out->kinds, from->kinds, from->n);
    out->state = strdup(from->state);
    if (out->ids && out->kinds && out->state) return true;
    resume_seq_clear(out);
    return false;
}

/* A copy of s's generated tokens and state text; false when out of memory. */
static bool snapshot(const seq *s, s1_resume_seq *out)
{
    int n = s->n_tokens - s->n_prompt, rung;
    s1_policy_state ps;
    uint64_t rng[4];
    char policy[200], rng_text[S1_SAMPLER_RNG_TEXT];
    s1_policy_state_save(s->policy, &ps);
    s1_policy_state_format(&ps, policy, sizeof policy);
    s1_sampler_rng_get(&s->sampler, rng);
    s1_sampler_rng_format(rng, rng_text);
    s1_policy_rungs(s->policy, &rung, &(int){0});
    *out = (s1_resume_seq){.sample = s->sample_lo, .rung = rung, .n = (size_t)n};
    out->ids = s1_ids_dup(s->tokens + s->n_prompt, n);
    out->kinds = malloc((size_t)(n > 0 ? n : 1));
    if (out->kinds && n > 0) memcpy(out->kinds, s->kinds + s->n_prompt, (size_t)n);
    if (asprintf(&out->state, "%s rng=%s", policy, rng_text) < 0) out->state = NULL;
    if (out->ids && out->kinds && out->state) return true;
    resume_seq_clear(out);
    return false;
}

/* The request's sequences in flight (waiting, then running), into out when
 * it is given; one that still stands for several samples (not forked yet)
 * sets *unforked instead. Returns their count. */
static int collect_seqs(const s1_engine *e, uint64_t tag, const seq **out, bool *unforked)
{
    int n = 0;
    for (int q = 0; q < 2; q++) {
        seq *const *arr = q ? e->running : e->waiting;
        for (int i = 0; i < (q ? e->n_running : e->n_waiting); i++) {
            if (arr[i]->tag != tag) continue;
            if (arr[i]->sample_hi - arr[i]->sample_lo > 1)
                *unforked = true;
            else if (out)
                out[n++] = arr[i];
            else
                n++;
        }
    }
    return n;
}

/* Copies of every sequence's tokens and state text; see s1_resume. A
 * request whose samples have not forked yet has generated nothing: its save
 * has no sequence, so that a resume never starts from a part of it. */
s1_resume *s1_engine_save(const s1_engine *e, uint64_t tag, s1_err *err)
{
    if (!find_seq(e, tag)) {
        s1_errf(err, "request %llu is not in flight", (unsigned long long)tag);
        return NULL;
    }
    bool unforked = false;
    int n_live = collect_seqs(e, tag, NULL, &unforked), n_done = 0;
    for (int i = 0; i < e->n_finished; i++)
        n_done += e->finished[i].tag == tag;
    _cleanup_free_ const seq **live = calloc((size_t)n_live + 1, sizeof *live);
    s1_resume *r = calloc(1, sizeof *r);
    if (r) r->seqs = calloc((size_t)(n_live + n_done) + 1, sizeof *r->seqs);
    bool ok = live && r && r->seqs;
    if (ok && !unforked) {
        collect_seqs(e, tag, live, &unforked);
        for (int i = 0; ok && i < n_live; i++)
            ok = snapshot(live[i], &r->seqs[r->n++]);
        for (int i = 0; ok && i < e->n_finished; i++)
            if (e->finished[i].tag == tag) ok = copy_saved(&e->finished[i].saved, &r->seqs[r->n++]);
    }
    if (ok) return r;
    s1_resume_free(r);
    s1_errf(err, "request %llu: out of memory saving its state", (unsigned long long)tag);
    return NULL;
}

s1_result *s1_engine_take_result(s1_engine *e)
{
    if (e->n_results == 0) return NULL;
    s1_result *r = e->results[0];
    memmove(e->results, e->results + 1, sizeof *e->results * (size_t)--e->n_results);
    return r;
}

/* ---- finishing -------------------------------------------------------- */

/* A token can decode to a NUL byte (byte-level BPE has one for every byte),
 * which would end the C string there and drop the rest of the trace: each
 * becomes U+FFFD, as invalid UTF-8 does where the text is stored. *text is
 * replaced; -1 when out of memory. */
static int replace_nuls(char **text, size_t len)
{
    size_t nuls = 0;
    for (size_t i = 0; i < len; i++)
        nuls += (*text)[i] == '\0';
    if (!nuls) return 0;
    char *out = malloc(len + 2 * nuls + 1), *o = out;
    if (!out) return -1;
    for (size_t i = 0; i < len; i++)
        if ((*text)[i])
            *o++ = (*text)[i];
        else
            memcpy(o, "\xEF\xBF\xBD", 3), o += 3;
    *o = '\0';
    free(*text);
    *text = out;
    return 0;
}

/* Text for a result; a result is worth keeping even when its text cannot be
 * decoded, so that failure is logged and the text left empty. */
static int decode(const s1_engine *e, const int32_t *ids, int n, char **out)
{
    size_t len;
    s1_err err;
    if (s1_tokenizer_decode(e->tok, ids, (size_t)(n > 0 ? n : 0), out, &len, &err) == 0)
        return replace_nuls(out, len);
    log_warning("engine: decoding a result failed: %s", err.msg);
    *out = strdup("");
    return *out ? 0 : -1;
}

/* The result of a finished sequence: ids, kinds, counts, the decoded trace
 * and answer (the answer phase after the end of thinking, without the final
 * <|im_end|>), timings. */
static s1_result *make_result(const s1_engine *e, const seq *s, s1_stop_reason stop, int sample,
                              int rung)
{
    s1_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    s1_policy_counts c;
    s1_policy_get_counts(s->policy, &c);
    int n_gen = s->n_tokens - s->n_prompt;
    const int32_t *gen = s->tokens + s->n_prompt;
    *r = (s1_result){.tag = s->tag,
                     .sample = sample,
                     .rung = rung,
                     .stop = stop,
                     .prompt_tokens = s->n_prompt,
                     .thinking_tokens = c.thinking,
                     .forced_tokens = c.forced,
                     .answer_tokens = c.answer,
                     .waits = c.waits,
                     .forced_end = c.forced_end,
                     .context_end = c.context_end,
                     .n_prompt = (size_t)s->n_prompt,
                     .n_gen = (size_t)n_gen};
    r->prompt_ids = s1_ids_dup(s->tokens, s->n_prompt);
    r->gen_ids = s1_ids_dup(gen, n_gen);
    r->gen_kinds = malloc((size_t)(n_gen > 0 ? n_gen : 1));
    if (r->gen_kinds && n_gen > 0) memcpy(r->gen_kinds, s->kinds + s->n_prompt, (size_t)n_gen);
    int answer_end = n_gen - (stop == S1_STOP_EOS ? 1 : 0);
    int from = s->answer_from < 0 ? answer_end : s->answer_from;
    if (!r->prompt_ids || !r->gen_ids || !r->gen_kinds || decode(e, gen, n_gen, &r->trace) < 0 ||
        decode(e, gen + from, answer_end - from, &r->answer) < 0) {
        s1_result_free(r);
        return NULL;
    }
    if (s->n_sampled > 0) r->ttft_s = s->t_first - s->t_added;
    if (s->n_sampled > 1 && s->t_last > s->t_first)
        r->decode_tps = (s->n_sampled - 1) / (s->t_last - s->t_first);
    return r;
}

static int push_result(s1_engine *e, s1_result *r)
{
    if (e->n_results == e->cap_results) {
        int cap = e->cap_results ? 2 * e->cap_results : 16;
        s1_result **rs = realloc(e->results, sizeof *rs * (size_t)cap);
        if (!rs) return -1;
        e->results = rs;
        e->cap_results = cap;
    }
    e->results[e->n_results++] = r;
    return 0;
}

/* Keeps s's final state while its request has sequences in flight, and
 * forgets the request's kept ones when s was its last. */
static int keep_finished(s1_engine *e, const seq *s)
{
    if (!find_seq(e, s->tag)) {
        int kept = 0;
        for (int i = 0; i < e->n_finished; i++)
            if (e->finished[i].tag == s->tag)
                resume_seq_clear(&e->finished[i].saved);
            else
                e->finished[kept++] = e->finished[i];
        e->n_finished = kept;
        return 0;
    }
    if (e->n_finished == e->cap_finished) {
        int cap = e->cap_finished ? 2 * e->cap_finished : 16;
        finished_seq *f = realloc(e->finished, sizeof *f * (size_t)cap);
        if (!f) return -1;
        e->finished = f;
        e->cap_finished = cap;
    }
    if (!snapshot(s, &e->finished[e->n_finished].saved)) return -1;
    e->finished[e->n_finished++].tag = s->tag;
    return 0;
}

/* Releases s (already out of the queues) and queues its results: one for
 * each sample and rung it stands for (rungs whose decision point it reached
 * together share its run). */
static int finish_seq(s1_engine *e, seq *s, s1_stop_reason stop, s1_err *err)
{
    s1_kv_table_release(e->kv, &s->table);
    if (keep_finished(e, s) < 0) {
        seq_free(s);
        return s1_errf(err, "engine: out of memory keeping a finished sequence's state");
    }
    int first, n;
    s1_policy_rungs(s->policy, &first, &n);
    int rc = 0;
    for (int k = s->sample_lo; rc == 0 && k < s->sample_hi; k++)
        for (int i = first; rc == 0 && i < first + n; i++) {
            s1_result *r = make_result(e, s, stop, k, i);
            if (!r || push_result(e, r) < 0) {
                s1_result_free(r);
                rc = s1_errf(err, "engine: out of memory for a result");
            }
        }
    seq_free(s);
    return rc;
}

static seq *remove_at(seq **arr, int *n, int i)
{
    seq *s = arr[i];
    memmove(arr + i, arr + i + 1, sizeof *arr * (size_t)(*n - i - 1));
    (*n)--;
    return s;
}

static int finish_cancelled(s1_engine *e, s1_err *err)
{
    for (int i = 0; i < e->n_waiting; i++)
        if (e->waiting[i]->cancelled &&
            finish_seq(e, remove_at(e->waiting, &e->n_waiting, i--), S1_STOP_CANCELLED, err) < 0)
            return -1;
    for (int i = 0; i < e->n_running; i++)
        if (e->running[i]->cancelled &&
            finish_seq(e, remove_at(e->running, &e->n_running, i--), S1_STOP_CANCELLED, err) < 0)
            return -1;
    return 0;
}

/* ---- admission and preemption ----------------------------------------- */

/* Gives s a private block for the first position it writes next, when that
 * block is shared: through the prefix cache (the last cached token fed
 * again) or with a fork (the partly filled last block). Returns 0, -1 when
 * the cache has no block for it, -2 on a backend error. */
static int own_block(s1_engine *e, seq *s, s1_err *err)
{
    s1_kv_copy cp;
    int rc = s1_kv_table_own(e->kv, &s->table, s->n_computed, &cp);
    if (rc <= 0) return rc;
    return s1_backend_copy_block(e->backend, cp.src, cp.dst, err) < 0 ? -2 : 0;
}

/* Takes the head of the queue when a slot is free and the cache has blocks
 * for all its tokens (its cached prefix shared). Returns 1 when admitted, 0
 * when it must wait. */
static int admit_one(s1_engine *e)
{
    if (e->n_waiting == 0 || e->n_running >= e->cfg.max_seqs) return 0;
    seq *s = e->waiting[0];
    s->n_computed = s1_kv_table_match(e->kv, &s->table, s->tokens, s->n_shared, s->n_tokens);
    if (s1_kv_table_reserve(e->kv, &s->table, s->n_tokens) < 0) {
        s1_kv_table_release(e->kv, &s->table);
        s->n_computed = 0;
        return 0;
    }
    remove_at(e->waiting, &e->n_waiting, 0);
    s->decoding = false;
    e->running[e->n_running++] = s;
    return 1;
}

static void admit(s1_engine *e)
{
    while (admit_one(e) > 0) {
    }
}

static void unplan(s1_engine *e, const seq *s)
{
    for (int i = 0; i < e->n_plan; i++)
        if (e->plan[i].s == s) {
            e->n_planned -= e->plan[i].count;
            memmove(e->plan + i, e->plan + i + 1, sizeof *e->plan * (size_t)(e->n_plan - i - 1));
            e->n_plan--;
            return;
        }
}

/* Preemption by recompute: the youngest running sequence gives back its
 * blocks and waits at the head of the queue, to be prefilled again with
 * everything it generated (its policy and random state go on unchanged). */
static seq *preempt_youngest(s1_engine *e)
{
    seq *s = e->running[--e->n_running];
    unplan(e, s);
    s1_kv_table_release(e->kv, &s->table);
    s->n_computed = 0;
    s->decoding = false;
    push_waiting(e, s, true);
    e->stats.preemptions++;
    log_debug("engine: request %llu preempted (%d tokens to recompute)", (unsigned long long)s->tag,
              s->n_tokens);
    return s;
}

/* ---- one step --------------------------------------------------------- */

/* True when an earlier sequence of s's request computes s's next block in
 * this step, over the same tokens (rebuilt ladder branches and their trunk,
 * rebuilt samples and their prompt): s then waits a step and shares that
 * block through the prefix cache rather than computing it again. */
static bool next_block_planned_by_another(const s1_engine *e, const seq *s)
{
    int bs = e->cfg.block_size, end = s->n_computed + bs;
    if (e->cfg.no_prefix_cache || s->n_computed % bs || end > s->n_shared || end >= s->n_tokens)
        return false;
    for (int i = 0; i < e->n_plan; i++) {
        const seq *p = e->plan[i].s;
        if (p->tag == s->tag && p->n_computed <= s->n_computed &&
            end <= p->n_computed + e->plan[i].count && end <= p->n_shared &&
            !memcmp(p->tokens, s->tokens, sizeof *s->tokens * (size_t)end))
            return true;
    }
    return false;
}

/* Plans s's next chunk of uncomputed tokens within the step's budget, with
 * the blocks it needs, private where it writes: when they run out the
 * youngest sequence is preempted, which is s itself when s is the youngest.
 * Returns -1 on a backend error. */
static int plan_seq(s1_engine *e, seq *s, s1_err *err)
{
    if (!s->decoding) {
        s->n_computed = s1_kv_table_rematch(e->kv, &s->table, s->tokens, s->n_shared, s->n_computed,
                                            s->n_tokens);
        if (next_block_planned_by_another(e, s)) return 0;
    }
    int count = s->n_tokens - s->n_computed;
    int left = e->cfg.max_batch_tokens - e->n_planned;
    if (count > left) count = left;
    if (count <= 0) return 0;
    for (;;) {
        int rc = s1_kv_table_reserve(e->kv, &s->table, s->n_computed + count);
        if (rc == 0) rc = own_block(e, s, err);
        if (rc == -2) return -1;
        if (rc == 0) break;
        if (preempt_youngest(e) == s) return 0;
    }
    e->plan[e->n_plan++] = (plan_entry){s, count};
    e->n_planned += count;
    return 0;
}

/* Decode tokens first, so running sequences keep their pace while long
 * prompts are prefilled in chunks behind them. Oldest first in each pass. */
static int plan_batch(s1_engine *e, s1_err *err)
{
    e->n_plan = e->n_planned = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < e->n_running; i++)
            if (e->running[i]->decoding == (pass == 0) && plan_seq(e, e->running[i], err) < 0)
                return -1;
    int held = s1_kv_held(e->kv);
    if (held > e->stats.kv_blocks_peak) e->stats.kv_blocks_peak = held;
    return 0;
}

static s1_batch build_batch(s1_engine *e)
{
    int n = 0, n_out = 0;
    for (int i = 0; i < e->n_plan; i++) {
        const seq *s = e->plan[i].s;
        for (int j = 0; j < e->plan[i].count; j++) {
            e->b_tokens[n] = s->tokens[s->n_computed + j];
            e->b_pos[n] = s->n_computed + j;
            e->b_seq[n] = i;
            n++;
        }
        e->b_tables[i] = (s1_block_table){s->table.blocks, s->table.n};
        if (s->n_computed + e->plan[i].count == s->n_tokens) e->b_out[n_out++] = n - 1;
    }
    return (s1_batch){.n_tokens = n,
                      .tokens = e->b_tokens,
                      .pos = e->b_pos,
                      .seq = e->b_seq,
                      .n_seqs = e->n_plan,
                      .tables = e->b_tables,
                      .n_out = n_out,
                      .out_rows = e->b_out,
                      .logits = e->logits};
}

/* Notes where the answer phase starts: right after the token that ended the
 * thinking (the delimiter, forced or sampled, or an accepted eos). */
static void mark_answer_start(seq *s, int first, int n)
{
    for (int i = first; i < first + n; i++)
        if (s->kinds[i] != S1_TOK_THINKING &&
            (s->tokens[i] == s->think_end || s->kinds[i] == S1_TOK_ANSWER)) {
            s->answer_from = i + 1 - s->n_prompt;
            return;
        }
}

/* Hands the sampled token to s's policy and appends what it decides; a
 * sequence that is done leaves the running set with its result. Returns 1
 * when s finished (and is freed), 0 when it goes on, -1 on error. */
static int append(s1_engine *e, seq *s, int32_t sampled, s1_err *err)
{
    double t = now_s();
    if (s->n_sampled++ == 0) s->t_first = t;
    s->t_last = t;
    int n = s1_policy_step(s->policy, sampled, e->step_ids, e->step_kinds, e->step_cap);
    assert(s->n_tokens + n <= e->max_context);
    memcpy(s->tokens + s->n_tokens, e->step_ids, sizeof *e->step_ids * (size_t)n);
    memcpy(s->kinds + s->n_tokens, e->step_kinds, (size_t)n);
    if (s->answer_from < 0) mark_answer_start(s, s->n_tokens, n);
    s->n_tokens += n;
    s->decoding = true;
    s1_stop_reason why;
    if (!s1_policy_done(s->policy, &why)) return 0;
    for (int i = 0; i < e->n_running; i++)
        if (e->running[i] == s) remove_at(e->running, &e->n_running, i);
    return finish_seq(e, s, why, err) < 0 ? -1 : 1;
}

/* ---- forks ------------------------------------------------------------ */

/* A copy-on-write fork of s: tokens, sampler, timings and policy copied (the
 * policy taking n_rungs of s's pending rungs), KV blocks shared. It is in no
 * queue yet. NULL when out of memory. */
static seq *fork_seq(s1_engine *e, seq *s, int n_rungs)
{
    if (fit_waiting(e) < 0) return NULL;
    seq *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *s;
    c->table = (s1_kv_table){0};
    c->policy = NULL;
    c->tokens = malloc(sizeof *c->tokens * (size_t)e->max_context);
    c->kinds = malloc((size_t)e->max_context);
    if (!c->tokens || !c->kinds || s1_kv_table_fork(e->kv, &s->table, &c->table) < 0) {
        seq_free(c);
        return NULL;
    }
    memcpy(c->tokens, s->tokens, sizeof *c->tokens * (size_t)s->n_tokens);
    memcpy(c->kinds, s->kinds, (size_t)s->n_tokens);
    c->policy = s1_policy_fork(s->policy, n_rungs);
    if (!c->policy) {
        s1_kv_table_release(e->kv, &c->table);
        seq_free(c);
        return NULL;
    }
    e->stats.forks++;
    return c;
}

/* A new fork runs alongside its parent when a slot is free; otherwise it
 * waits at the head of the queue, to be recomputed like a preempted one. */
static void place_fork(s1_engine *e, seq *c)
{
    if (e->n_running < e->cfg.max_seqs) {
        e->running[e->n_running++] = c;
        return;
    }
    s1_kv_table_release(e->kv, &c->table);
    c->n_computed = 0;
    c->decoding = false;
    push_waiting(e, c, true);
}

/* Steps s with its sampled token; first, when a ladder rung ends its
 * thinking here and s goes on, a fork takes that branch with the same token. */
static int advance(s1_engine *e, seq *s, int32_t sampled, s1_err *err)
{
    int n_rungs = s1_policy_branch(s->policy, sampled);
    if (n_rungs > 0) {
        seq *c = fork_seq(e, s, n_rungs);
        if (!c)
            return s1_errf(err, "engine: out of memory forking request %llu",
                           (unsigned long long)s->tag);
        int rc = append(e, c, sampled, err);
        if (rc < 0) return -1;
        if (rc == 0) place_fork(e, c);
    }
    return append(e, s, sampled, err) < 0 ? -1 : 0;
}

/* At its first sampled token, a request of several samples forks one
 * sequence per further sample, seeded seed + k, each sampling from the
 * prompt's logits row as a separate request would. */
static int fork_samples(s1_engine *e, seq *s, const float *row, s1_err *err)
{
    for (int k = s->sample_lo + 1; k < s->sample_hi; k++) {
        seq *c = fork_seq(e, s, 0);
        if (!c)
            return s1_errf(err, "engine: out of memory forking request %llu",
                           (unsigned long long)s->tag);
        c->sample_lo = k;
        c->sample_hi = k + 1;
        s1_sampling cfg = s->sampler.cfg;
        cfg.seed += (uint64_t)k;
        s1_sampler_init(&c->sampler, &cfg);
        int32_t id = s1_sampler_sample(&c->sampler, e->ws, row, e->n_vocab);
        int rc = append(e, c, id, err);
        if (rc < 0) return -1;
        if (rc == 0) place_fork(e, c);
    }
    s->sample_hi = s->sample_lo + 1;
    return 0;
}

static int run_batch(s1_engine *e, s1_err *err)
{
    s1_batch b = build_batch(e);
    if (s1_backend_forward(e->backend, &b, err) < 0)
        return s1_err_prefix(err, "backend %s forward", e->backend->name);
    e->stats.tokens_computed += b.n_tokens;
    int out = 0;
    for (int i = 0; i < e->n_plan; i++) {
        seq *s = e->plan[i].s;
        /* Token j of the chunk attends to n_computed + j + 1 positions. */
        int64_t n = e->plan[i].count;
        e->stats.kv_attended += n * s->n_computed + n * (n + 1) / 2;
        s->n_computed += e->plan[i].count;
        s1_kv_table_publish(e->kv, &s->table, s->tokens, s->n_shared, s->n_computed);
        if (s->n_computed < s->n_tokens) continue;
        const float *row = e->logits + (size_t)out++ * (size_t)e->backend->vocab_size;
        if (s->sample_hi - s->sample_lo > 1 && fork_samples(e, s, row, err) < 0) return -1;
        int32_t id = s1_sampler_sample(&s->sampler, e->ws, row, e->n_vocab);
        if (advance(e, s, id, err) < 0) return -1;
    }
    return 0;
}

int s1_engine_step(s1_engine *e, s1_err *err)
{
    if (finish_cancelled(e, err) < 0) return -1;
    admit(e);
    if (plan_batch(e, err) < 0) return -1;
    if (e->n_plan > 0 && run_batch(e, err) < 0) return -1;
    return e->n_waiting + e->n_running;
}
