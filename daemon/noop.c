#include "noop.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

/* A request in flight: it has thought `thinking` of its `target` tokens;
 * it ends in one result per sample and rung, as the engine's do. */
typedef struct {
    uint64_t tag;
    int target, thinking, prompt_tokens;
    int samples, rungs;
    double added_at;
    bool cancelled;
} noop_seq;

struct s1d_noop {
    s1_engine_info info;
    double rate;
    noop_seq *seqs; /* owned, [max_seqs] in flight */
    int n_seqs, max_seqs;
    s1_result **done; /* owned, finished and not yet taken */
    int n_done, cap_done;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

s1d_noop *s1d_noop_open(int max_seqs, double rate)
{
    s1d_noop *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->max_seqs = max_seqs > 0 ? max_seqs : 64;
    n->rate = rate;
    n->seqs = calloc((size_t)n->max_seqs, sizeof *n->seqs);
    /* No model, no context: submit checks no budget against it. */
    n->info = (s1_engine_info){.model_name = "noop", .backend = "noop"};
    if (!n->seqs) {
        free(n);
        return NULL;
    }
    return n;
}

void s1d_noop_close(s1d_noop *n)
{
    if (!n) return;
    for (int i = 0; i < n->n_done; i++)
        s1d_noop_free_result(n->done[i]);
    free(n->done);
    free(n->seqs);
    free(n);
}

const s1_engine_info *s1d_noop_info(const s1d_noop *n)
{
    return &n->info;
}

static bool blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)s[i])) return false;
    return true;
}

/* Rejects what the engine would reject without a model: an empty problem, a
 * duplicate tag; a full engine (the caller sized its claim wrong). */
int s1d_noop_add(s1d_noop *n, const s1_request *r, s1_err *err)
{
    if (blank(r->text, r->text_len)) return s1_errf(err, "the problem is empty");
    for (int i = 0; i < n->n_seqs; i++)
        if (n->seqs[i].tag == r->tag)
            return s1_errf(err, "request %llu is already in flight", (unsigned long long)r->tag);
    if (n->n_seqs == n->max_seqs)
        return s1_errf(err, "the noop engine is full (%d sequences)", n->max_seqs);
    const s1_ladder *l = &r->policy.ladder;
    int target = l->kind == S1_LADDER_BUDGET ? l->rungs[l->n_rungs - 1] : r->policy.max_think;
    /* A resumed request has thought its saved tokens already. */
    int done = r->resume && r->resume->n > 0 ? (int)r->resume->seqs[0].n : 0;
    if (done > target) done = target;
    n->seqs[n->n_seqs++] = (noop_seq){.tag = r->tag,
                                      .target = target,
                                      .thinking = done,
                                      .prompt_tokens = (int)r->text_len,
                                      .samples = r->samples > 1 ? r->samples : 1,
                                      .rungs = l->kind == S1_LADDER_NONE ? 1 : l->n_rungs,
                                      .added_at = now_s() - (n->rate > 0 ? done / n->rate : 0)};
    return 0;
}

/* Its thinking tokens so far (id 0) as one sequence of sample 0, under the
 * state text "noop". */
s1_resume *s1d_noop_save(const s1d_noop *n, uint64_t tag, s1_err *err)
{
    const noop_seq *q = NULL;
    for (int i = 0; i < n->n_seqs && !q; i++)
        if (n->seqs[i].tag == tag) q = &n->seqs[i];
    if (!q) {
        s1_errf(err, "request %llu is not in flight", (unsigned long long)tag);
        return NULL;
    }
    s1_resume *r = calloc(1, sizeof *r);
    s1_resume_seq *s = r ? calloc(1, sizeof *s) : NULL;
    if (s) {
        r->seqs = s;
        r->n = 1;
        s->n = (size_t)q->thinking;
        s->ids = calloc(s->n + 1, sizeof *s->ids);
        s->kinds = malloc(s->n + 1);
        s->state = strdup("noop");
    }
    if (!s || !s->ids || !s->kinds || !s->state) {
        s1_resume_free(r);
        s1_errf(err, "request %llu: out of memory saving its state", (unsigned long long)tag);
        return NULL;
    }
    memset(s->kinds, S1_TOK_THINKING, s->n);
    return r;
}

int s1d_noop_cancel(s1d_noop *n, uint64_t tag)
{
    for (int i = 0; i < n->n_seqs; i++)
        if (n->seqs[i].tag == tag) {
            n->seqs[i].cancelled = true;
            return 0;
        }
    return -1;
}

/* The result of a finished sequence at one sample and rung: thinking tokens
 * (id 0) and no answer. */
static s1_result *finish(const noop_seq *q, int sample, int rung)
{
    s1_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->tag = q->tag;
    r->sample = sample;
    r->rung = rung;
    r->stop = q->cancelled ? S1_STOP_CANCELLED : S1_STOP_EOS;
    r->prompt_tokens = q->prompt_tokens;
    r->thinking_tokens = q->thinking;
    r->n_prompt = (size_t)q->prompt_tokens;
    r->n_gen = (size_t)q->thinking;
    r->prompt_ids = calloc(r->n_prompt + 1, sizeof *r->prompt_ids);
    r->gen_ids = calloc(r->n_gen + 1, sizeof *r->gen_ids);
    r->gen_kinds = malloc(r->n_gen + 1);
    r->trace = strdup("");
    r->answer = strdup("");
    if (!r->prompt_ids || !r->gen_ids || !r->gen_kinds || !r->trace || !r->answer) {
        s1d_noop_free_result(r);
        return NULL;
    }
    memset(r->gen_kinds, S1_TOK_THINKING, r->n_gen);
    return r;
}

static int push_done(s1d_noop *n, s1_result *r)
{
    if (n->n_done == n->cap_done) {
        int cap = n->cap_done ? 2 * n->cap_done : 64;
        s1_result **d = realloc(n->done, (size_t)cap * sizeof *d);
        if (!d) return -1;
        n->done = d;
        n->cap_done = cap;
    }
    n->done[n->n_done++] = r;
    return 0;
}

/* Queues every result of a finished sequence, or none (-1, out of memory). */
static int push_all(s1d_noop *n, const noop_seq *q)
{
    int first = n->n_done;
    for (int k = 0; k < q->samples * q->rungs; k++) {
        s1_result *r = finish(q, k / q->rungs, k % q->rungs);
        if (!r || push_done(n, r) < 0) {
            s1d_noop_free_result(r);
            while (n->n_done > first)
                s1d_noop_free_result(n->done[--n->n_done]);
            return -1;
        }
    }
    return 0;
}

/* Advances every sequence by the time elapsed; a step with work in flight
 * takes about 5 ms, like a small forward. */
int s1d_noop_step(s1d_noop *n)
{
    if (n->rate > 0 && n->n_seqs) usleep(5000);
    double t = now_s();
    for (int i = 0; i < n->n_seqs;) {
        noop_seq *q = &n->seqs[i];
        double want = n->rate > 0 ? (t - q->added_at) * n->rate : q->target;
        q->thinking = want < q->target ? (int)want : q->target;
        if ((q->thinking == q->target || q->cancelled) && push_all(n, q) == 0) {
            n->seqs[i] = n->seqs[--n->n_seqs];
            continue;
        }
        i++;
    }
    return n->n_seqs;
}

int s1d_noop_capacity(const s1d_noop *n)
{
    return n->max_seqs - n->n_seqs;
}

s1_result *s1d_noop_take_result(s1d_noop *n)
{
    if (!n->n_done) return NULL;
    s1_result *r = n->done[0];
    memmove(n->done, n->done + 1, (size_t)--n->n_done * sizeof *n->done);
    return r;
}

int s1d_noop_progress(const s1d_noop *n, uint64_t tag, int *thinking, int *generated)
{
    for (int i = 0; i < n->n_seqs; i++)
        if (n->seqs[i].tag == tag) {
            *thinking = *generated = n->seqs[i].thinking;
            return 0;
        }
    return -1;
}

void s1d_noop_free_result(s1_result *r)
{
    if (!r) return;
    free(r->prompt_ids);
    free(r->gen_ids);
    free(r->gen_kinds);
    free(r->trace);
    free(r->answer);
    free(r);
}
