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
    int room;  /* tokens the sequence may still grow by */
    int guard; /* thinking ends once room is down to this (forced end + answer reserve); 0 = off */
    s1_ladder_kind ladder;
    int rungs[S1_MAX_RUNGS];
    /* This sequence stands for rungs [rung_lo, rung_hi) and runs rung_hi - 1;
     * rungs [rung_next, rung_hi - 1) are pending: forks will take them. */
    int rung_lo, rung_next, rung_hi;
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
        s1_errf(err, "the prompt fills the whole context: shorten the problem or raise max_context "
                     "(s1d --max-context)");
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

/* A ladder's rungs replace one field; they must be strictly ascending, so
 * that each decision point forks at most once, and none may be refused
 * alone (a budget below min_think). */
static int check_ladder(const s1_policy_cfg *cfg, s1_err *err)
{
    const s1_ladder *l = &cfg->ladder;
    if (l->kind == S1_LADDER_NONE) return 0;
    bool budgets = l->kind == S1_LADDER_BUDGET;
    const char *name = budgets ? "budgets" : "waits";
    if (l->kind != S1_LADDER_WAIT && !budgets)
        return s1_errf(err, "policy.ladder: unknown kind %d", (int)l->kind);
    if (l->n_rungs < 1 || l->n_rungs > S1_MAX_RUNGS)
        return s1_errf(err, "policy.%s has %d rungs: give 1 to %d", name, l->n_rungs, S1_MAX_RUNGS);
    if (budgets ? cfg->max_think != 0 : cfg->ignore_stop != 0)
        return s1_errf(err, "policy.%s replaces policy.%s: give one or the other", name,
                       budgets ? "max_think" : "ignore_stop");
    for (int i = 0; i < l->n_rungs; i++) {
        int prev = i ? l->rungs[i - 1] : (budgets ? 0 : -1);
        if (l->rungs[i] <= prev)
            return s1_errf(err, "policy.%s: rung %d (%d) must be %s: list them strictly ascending",
                           name, i + 1, l->rungs[i],
                           budgets && !i ? "at least 1" : "above the last");
    }
    if (budgets && cfg->min_think > l->rungs[0])
        return s1_errf(err,
                       "policy.min_think (%d) exceeds the smallest budget (%d): lower min_think "
                       "or raise the budget",
                       cfg->min_think, l->rungs[0]);
    return 0;
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
    if (check_ladder(cfg, err) < 0) return -1;
    if (v->n_wait < 1)
        return s1_errf(err,
                       "policy.wait_string encodes to no tokens: give a non-empty wait string");
    if (v->n_answer_start < 1)
        return s1_errf(err, "policy.answer_header and policy.answer_prefix encode to no tokens: "
                            "give a non-empty answer header or prefix");
    return 0;
}

/* The room at which thinking must end so that the forced end and the answer
 * reserve still fit: the reserve is at most half of what the forced end
 * leaves, so a short context still thinks, and the guard is off (0) when not
 * one answer token would fit. */
static int context_guard(int room, int n_answer_start, int max_answer)
{
    int reserve = max_answer > 0 ? max_answer : S1_DEFAULT_ANSWER_RESERVE;
    int spare = room - 1 - n_answer_start;
    if (reserve > spare / 2) reserve = spare / 2;
    return reserve >= 1 ? 1 + n_answer_start + reserve : 0;
}

/* A ladder's policy runs its last rung: the largest budget or wait count. */
static void apply_ladder(s1_policy *p, const s1_ladder *l)
{
    p->ladder = l->kind;
    p->rung_hi = 1;
    if (l->kind == S1_LADDER_NONE) return;
    memcpy(p->rungs, l->rungs, sizeof *l->rungs * (size_t)l->n_rungs);
    p->rung_hi = l->n_rungs;
    if (l->kind == S1_LADDER_BUDGET)
        p->max_think = l->rungs[l->n_rungs - 1];
    else
        p->ignore_stop = l->rungs[l->n_rungs - 1];
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
    p->guard = context_guard(room, v->n_answer_start, cfg->max_answer);
    apply_ladder(p, &cfg->ladder);
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
    p->rung_hi = 1;
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
    /* The last thinking token or a wait string, then the delimiter and the answer start. */
    return (p->n_wait > 1 ? p->n_wait : 1) + 1 + p->n_answer_start;
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

/* After the budget's last thinking token, or once the answer reserve is all
 * the context has left, the forced end is fed at once: nothing more is
 * sampled while thinking. The budget names the cause when both hold. */
static void end_if_out_of_budget(s1_policy *p, step_out *o)
{
    if (p->done) return;
    bool budget = p->max_think > 0 && p->c.thinking >= p->max_think;
    bool context = p->guard > 0 && p->room <= p->guard;
    if (!budget && !context) return;
    p->c.thinking_phase = false;
    p->c.forced_end = true;
    p->c.context_end = !budget;
    if (push(p, o, p->think_end, S1_TOK_FORCED))
        push_all(p, o, p->answer_start, p->n_answer_start, S1_TOK_FORCED);
}

static bool is_stop(const s1_policy *p, int32_t id)
{
    return id == p->think_end || is_eos(p, id);
}

static bool suppresses_stop(const s1_policy *p)
{
    return p->c.thinking < p->min_think || p->c.waits < p->ignore_stop;
}

/* The model wants to stop thinking (it sampled the delimiter, or eos, which
 * s1 treats alike): suppressed while below min_think or ignore_stop, the wait
 * string then standing in for it; otherwise the answer phase begins with it. */
static void end_of_thinking(s1_policy *p, step_out *o, int32_t sampled)
{
    if (suppresses_stop(p)) {
        p->c.waits++;
        push_all(p, o, p->wait, p->n_wait, S1_TOK_FORCED);
        end_if_out_of_budget(p, o);
        return;
    }
    p->c.thinking_phase = false;
    answer_step(p, o, sampled);
}

static void thinking_step(s1_policy *p, step_out *o, int32_t sampled)
{
    if (is_stop(p, sampled)) {
        end_of_thinking(p, o, sampled);
        return;
    }
    if (push(p, o, sampled, S1_TOK_THINKING)) end_if_out_of_budget(p, o);
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

int s1_policy_branch(const s1_policy *p, int32_t sampled)
{
    if (p->done || !p->c.thinking_phase) return 0;
    int n = 0;
    if (p->ladder == S1_LADDER_BUDGET && !is_stop(p, sampled)) {
        /* The budget this thinking token reaches. */
        while (p->rung_next + n < p->rung_hi - 1 && p->rungs[p->rung_next + n] <= p->c.thinking + 1)
            n++;
    } else if (p->ladder == S1_LADDER_WAIT && is_stop(p, sampled) && suppresses_stop(p) &&
               p->c.thinking >= p->min_think) {
        /* Every wait count already fed accepts this stop. */
        while (p->rung_next + n < p->rung_hi - 1 && p->rungs[p->rung_next + n] <= p->c.waits)
            n++;
    }
    return n;
}

s1_policy *s1_policy_fork(s1_policy *p, int n_rungs)
{
    assert(n_rungs >= 0 && p->rung_next + n_rungs < p->rung_hi);
    s1_policy *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *p;
    c->wait = s1_ids_dup(p->wait, p->n_wait);
    c->answer_start = s1_ids_dup(p->answer_start, p->n_answer_start);
    if (!c->wait || !c->answer_start) {
        s1_policy_free(c);
        return NULL;
    }
    if (n_rungs == 0) return c;
    c->rung_lo = p->rung_next;
    c->rung_hi = p->rung_next + n_rungs;
    c->rung_next = c->rung_hi - 1;
    int value = p->rungs[c->rung_next];
    if (p->ladder == S1_LADDER_BUDGET)
        c->max_think = value;
    else
        c->ignore_stop = value;
    p->rung_lo = p->rung_next = c->rung_hi;
    return c;
}

void s1_policy_rungs(const s1_policy *p, int *first, int *n)
{
    *first = p->rung_lo;
    *n = p->rung_hi - p->rung_lo;
}

void s1_policy_state_save(const s1_policy *p, s1_policy_state *st)
{
    *st = (s1_policy_state){.counts = p->c,
                            .rung_lo = p->rung_lo,
                            .rung_next = p->rung_next,
                            .rung_hi = p->rung_hi,
                            .done = p->done,
                            .stop = p->stop};
}

/* The checks stand in for having stepped there: a state from another job, a
 * changed policy or a damaged row is refused rather than run. A finished
 * sequence may have filled the context; a running one has room for one more. */
static int check_state(const s1_policy *p, const s1_policy_state *st, s1_err *err)
{
    const s1_policy_counts *c = &st->counts;
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
    if ((long long)c->thinking + c->forced + c->answer > p->room - (st->done ? 0 : 1))
        return s1_errf(err, "saved policy state: %d tokens leave no room in the context (%d left)",
                       c->thinking + c->forced + c->answer, p->room);
    return 0;
}

/* A fork runs the last rung it stands for: its budget or wait count is that
 * rung's, as s1_policy_fork set it. */
static int restore_rungs(s1_policy *p, const s1_policy_state *st, s1_err *err)
{
    if (st->rung_hi == 0) return 0;
    if (st->rung_lo < 0 || st->rung_lo > st->rung_next || st->rung_next >= st->rung_hi ||
        st->rung_hi > p->rung_hi)
        return s1_errf(err,
                       "saved policy state: rungs=%d,%d,%d do not fit this request's %d "
                       "rung%s",
                       st->rung_lo, st->rung_next, st->rung_hi, p->rung_hi,
                       p->rung_hi == 1 ? "" : "s");
    p->rung_lo = st->rung_lo;
    p->rung_next = st->rung_next;
    p->rung_hi = st->rung_hi;
    if (p->ladder == S1_LADDER_BUDGET)
        p->max_think = p->rungs[p->rung_hi - 1];
    else if (p->ladder == S1_LADDER_WAIT)
        p->ignore_stop = p->rungs[p->rung_hi - 1];
    return 0;
}

int s1_policy_state_restore(s1_policy *p, const s1_policy_state *st, s1_err *err)
{
    if (restore_rungs(p, st, err) < 0 || check_state(p, st, err) < 0) return -1;
    p->c = st->counts;
    /* Not in the text: a forced end that the budget did not make was the context's. */
    p->c.context_end = p->c.forced_end && !(p->max_think > 0 && p->c.thinking >= p->max_think);
    p->room -= st->counts.thinking + st->counts.forced + st->counts.answer;
    p->done = st->done;
    p->stop = st->stop;
    return 0;
}

int s1_policy_state_format(const s1_policy_state *st, char *buf, size_t cap)
{
    const s1_policy_counts *c = &st->counts;
    return snprintf(buf, cap,
                    "thinking=%d forced=%d answer=%d waits=%d forced_end=%d thinking_phase=%d "
                    "rungs=%d,%d,%d%s%s",
                    c->thinking, c->forced, c->answer, c->waits, c->forced_end, c->thinking_phase,
                    st->rung_lo, st->rung_next, st->rung_hi, st->done ? " stop=" : "",
                    st->done ? s1_stop_reason_name(st->stop) : "");
}

/* The optional words after the counts: " rungs=LO,NEXT,HI", then
 * " stop=REASON". Returns the characters read, -1 for a stop reason that is
 * none of s1_stop_reason_name's. */
static int parse_rungs_and_stop(const char *text, s1_policy_state *st)
{
    int at = 0, end = 0;
    if (sscanf(text, " rungs=%d,%d,%d%n", &st->rung_lo, &st->rung_next, &st->rung_hi, &end) == 3)
        at = end;
    char name[16];
    end = 0;
    if (sscanf(text + at, " stop=%15[a-z_]%n", name, &end) != 1 || !end) return at;
    for (s1_stop_reason r = S1_STOP_EOS; r <= S1_STOP_CANCELLED; r++)
        if (!strcmp(name, s1_stop_reason_name(r))) {
            st->done = true;
            st->stop = r;
            return at + end;
        }
    return -1;
}

int s1_policy_state_parse(const char *text, s1_policy_state *st, s1_err *err)
{
    *st = (s1_policy_state){0};
    s1_policy_counts *c = &st->counts;
    int forced_end, thinking_phase, end = 0;
    if (sscanf(text, "thinking=%d forced=%d answer=%d waits=%d forced_end=%d thinking_phase=%d%n",
               &c->thinking, &c->forced, &c->answer, &c->waits, &forced_end, &thinking_phase,
               &end) == 6) {
        int more = parse_rungs_and_stop(text + end, st);
        end = more < 0 ? -1 : end + more;
    } else {
        end = -1;
    }
    if (end < 0 || (text[end] && text[end] != ' ') || (forced_end | thinking_phase) & ~1)
        return s1_errf(err,
                       "saved policy state \"%.80s\" is not \"thinking=T forced=F answer=A "
                       "waits=W forced_end=0|1 thinking_phase=0|1 [rungs=LO,NEXT,HI] "
                       "[stop=REASON]\"",
                       text);
    c->forced_end = forced_end;
    c->thinking_phase = thinking_phase;
    return 0;
}
