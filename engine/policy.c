#include "policy.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct s1_policy {
    bool raw;
    int max_think, min_think, ignore_stop, max_answer; /* 0 = none */
    int32_t think_end, eos, eos_alt;
    int32_t *wait, *answer_start; /* owned */
    int n_wait, n_answer_start;
    int room; /* tokens the sequence may still grow by */
    s1_policy_counts c;
    bool done;
    s1_stop_reason stop;
};

/* Output of one step: the tokens appended, with their kinds. */
typedef struct {
    int32_t *ids;
    uint8_t *kinds;
    int n, cap;
} step_out;

int32_t *s1_ids_dup(const int32_t *ids, int n)
{
    int32_t *c = malloc(sizeof *c * (size_t)(n > 0 ? n : 1));
    if (c && n > 0) memcpy(c, ids, sizeof *c * (size_t)n);
    return c;
}

static s1_policy *policy_alloc(const s1_vocab *v, int room, s1_err *err)
{
    if (room < 1) {
        s1_errf(err,
                "the prompt fills the whole context: shorten the problem or raise max_context");
        return NULL;
    }
    s1_policy *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->think_end = v->think_end;
    p->eos = v->eos;
    p->eos_alt = v->eos_alt;
    p->n_wait = v->n_wait;
    p->n_answer_start = v->n_answer_start;
    p->wait = s1_ids_dup(v->wait, v->n_wait);
    p->answer_start = s1_ids_dup(v->answer_start, v->n_answer_start);
    p->room = room;
    if (!p->wait || !p->answer_start) {
        s1_policy_free(p);
        s1_errf(err, "policy: out of memory");
        return NULL;
    }
    return p;
}

/* Checks the limits a user typed, so that a bad job fails at submission with
 * a message naming the field rather than running forever or never thinking. */
static int check_cfg(const s1_policy_cfg *cfg, const s1_vocab *v, s1_err *err)
{
    const struct {
        const char *name;
        int value;
    } limits[] = {{"max_think", cfg->max_think},
                  {"min_think", cfg->min_think},
                  {"ignore_stop", cfg->ignore_stop},
                  {"max_answer", cfg->max_answer}};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        if (limits[i].value < 0)
            return s1_errf(err, "policy.%s is %d: it must be 0 or more", limits[i].name,
                           limits[i].value);
    if (cfg->max_think > 0 && cfg->min_think > cfg->max_think)
        return s1_errf(err,
                       "policy.min_think (%d) exceeds policy.max_think (%d): lower min_think "
                       "or raise the budget",
                       cfg->min_think, cfg->max_think);
    if (v->n_wait < 1)
        return s1_errf(err,
                       "policy.wait_string encodes to no tokens: give a non-empty wait string");
    if (v->n_answer_start < 1)
        return s1_errf(err, "policy.answer_header and policy.answer_prefix encode to no tokens: "
                            "give a non-empty answer header or prefix");
    return 0;
}

s1_policy *s1_policy_new(const s1_policy_cfg *cfg, const s1_vocab *v, int room, s1_err *err)
{
    if (check_cfg(cfg, v, err) < 0) return NULL;
    s1_policy *p = policy_alloc(v, room, err);
    if (!p) return NULL;
    p->max_think = cfg->max_think;
    p->min_think = cfg->min_think;
    p->ignore_stop = cfg->ignore_stop;
    p->max_answer = cfg->max_answer;
    p->c.thinking_phase = true;
    return p;
}

s1_policy *s1_policy_new_raw(int max_tokens, const s1_vocab *v, int room, s1_err *err)
{
    if (max_tokens < 0) {
        s1_errf(err, "max_tokens is %d: it must be 0 or more", max_tokens);
        return NULL;
    }
    s1_policy *p = policy_alloc(v, room, err);
    if (!p) return NULL;
    p->raw = true;
    p->max_answer = max_tokens;
    return p;
}

void s1_policy_free(s1_policy *p)
{
    if (!p) return;
    free(p->wait);
    free(p->answer_start);
    free(p);
}

int s1_policy_step_cap(const s1_policy *p)
{
    /* A wait string alone, or the last thinking token, the delimiter and the answer start. */
    int forced_end = 2 + p->n_answer_start;
    return p->n_wait > forced_end ? p->n_wait : forced_end;
}

static void finish(s1_policy *p, s1_stop_reason why)
{
    if (p->done) return;
    p->done = true;
    p->stop = why;
}

/* Appends one token unless the context is already full, which ends the
 * sequence: tokens are never appended past the context window. */
static bool push(s1_policy *p, step_out *o, int32_t id, s1_token_kind kind)
{
    if (p->room == 0) {
        finish(p, S1_STOP_CONTEXT);
        return false;
    }
    assert(o->n < o->cap);
    o->ids[o->n] = id;
    o->kinds[o->n] = (uint8_t)kind;
    o->n++;
    p->room--;
    if (kind == S1_TOK_THINKING)
        p->c.thinking++;
    else if (kind == S1_TOK_FORCED)
        p->c.forced++;
    else
        p->c.answer++;
    return true;
}

static void push_all(s1_policy *p, step_out *o, const int32_t *ids, int n, s1_token_kind kind)
{
    for (int i = 0; i < n && push(p, o, ids[i], kind); i++) {
    }
}

static bool is_eos(const s1_policy *p, int32_t id)
{
    return id == p->eos || (p->eos_alt >= 0 && id == p->eos_alt);
}

static void answer_step(s1_policy *p, step_out *o, int32_t sampled)
{
    if (!push(p, o, sampled, S1_TOK_ANSWER)) return;
    if (is_eos(p, sampled))
        finish(p, S1_STOP_EOS);
    else if (p->max_answer > 0 && p->c.answer >= p->max_answer)
        finish(p, p->raw ? S1_STOP_MAX_TOKENS : S1_STOP_MAX_ANSWER);
}

/* The model wants to stop thinking (it sampled the delimiter, or eos, which
 * s1 treats alike): suppressed while below min_think or ignore_stop, the wait
 * string then standing in for it; otherwise the answer phase begins with it. */
static void end_of_thinking(s1_policy *p, step_out *o, int32_t sampled)
{
    if (p->c.thinking < p->min_think || p->c.waits < p->ignore_stop) {
        p->c.waits++;
        push_all(p, o, p->wait, p->n_wait, S1_TOK_FORCED);
        return;
    }
    p->c.thinking_phase = false;
    answer_step(p, o, sampled);
}

/* A thinking token; the one that reaches the budget is followed at once by
 * the forced end, so nothing more is sampled while thinking. */
static void thinking_step(s1_policy *p, step_out *o, int32_t sampled)
{
    if (sampled == p->think_end || is_eos(p, sampled)) {
        end_of_thinking(p, o, sampled);
        return;
    }
    if (!push(p, o, sampled, S1_TOK_THINKING)) return;
    if (p->max_think == 0 || p->c.thinking < p->max_think) return;
    p->c.thinking_phase = false;
    p->c.forced_end = true;
    if (push(p, o, p->think_end, S1_TOK_FORCED))
        push_all(p, o, p->answer_start, p->n_answer_start, S1_TOK_FORCED);
}

int s1_policy_step(s1_policy *p, int32_t sampled, int32_t *out, uint8_t *kinds, int cap)
{
    if (p->done) return 0;
    step_out o = {out, kinds, 0, cap};
    if (p->c.thinking_phase)
        thinking_step(p, &o, sampled);
    else
        answer_step(p, &o, sampled);
    /* The next token would lie past the context window. */
    if (p->room == 0) finish(p, S1_STOP_CONTEXT);
    return o.n;
}

bool s1_policy_done(const s1_policy *p, s1_stop_reason *why)
{
    if (p->done && why) *why = p->stop;
    return p->done;
}

void s1_policy_get_counts(const s1_policy *p, s1_policy_counts *c)
{
    *c = p->c;
}

void s1_policy_state_save(const s1_policy *p, s1_policy_state *st)
{
    st->counts = p->c;
}

/* The checks stand in for having stepped there: a state from another job, a
 * changed policy or a damaged row is refused rather than run. */
static int check_state(const s1_policy *p, const s1_policy_counts *c, s1_err *err)
{
    const struct {
        const char *name;
        int value;
    } counts[] = {{"thinking", c->thinking},
                  {"forced", c->forced},
                  {"answer", c->answer},
                  {"waits", c->waits}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (counts[i].value < 0)
            return s1_errf(err, "saved policy state: %s is %d, below 0", counts[i].name,
                           counts[i].value);
    if (p->max_think > 0 && c->thinking > p->max_think)
        return s1_errf(err, "saved policy state: %d thinking tokens, past max_think (%d)",
                       c->thinking, p->max_think);
    if (c->thinking_phase && c->answer > 0)
        return s1_errf(err, "saved policy state: %d answer tokens while still thinking", c->answer);
    if (p->raw && c->thinking_phase)
        return s1_errf(err, "saved policy state: a raw request has no thinking phase");
    if ((long long)c->thinking + c->forced + c->answer >= p->room)
        return s1_errf(err, "saved policy state: %d tokens leave no room in the context (%d left)",
                       c->thinking + c->forced + c->answer, p->room);
    return 0;
}

int s1_policy_state_restore(s1_policy *p, const s1_policy_state *st, s1_err *err)
{
    if (check_state(p, &st->counts, err) < 0) return -1;
    p->c = st->counts;
    p->room -= st->counts.thinking + st->counts.forced + st->counts.answer;
    return 0;
}

int s1_policy_state_format(const s1_policy_state *st, char *buf, size_t cap)
{
    const s1_policy_counts *c = &st->counts;
    return snprintf(buf, cap,
                    "thinking=%d forced=%d answer=%d waits=%d forced_end=%d thinking_phase=%d",
                    c->thinking, c->forced, c->answer, c->waits, c->forced_end, c->thinking_phase);
}

int s1_policy_state_parse(const char *text, s1_policy_state *st, s1_err *err)
{
    s1_policy_counts *c = &st->counts;
    int forced_end, thinking_phase, end = 0;
    if (sscanf(text, "thinking=%d forced=%d answer=%d waits=%d forced_end=%d thinking_phase=%d%n",
               &c->thinking, &c->forced, &c->answer, &c->waits, &forced_end, &thinking_phase,
               &end) != 6 ||
        (text[end] && text[end] != ' ') || (forced_end | thinking_phase) & ~1)
        return s1_errf(err,
                       "saved policy state \"%.80s\" is not \"thinking=T forced=F answer=A "
                       "waits=W forced_end=0|1 thinking_phase=0|1\"",
                       text);
    c->forced_end = forced_end;
    c->thinking_phase = thinking_phase;
    return 0;
}
