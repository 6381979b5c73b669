#include "job.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "cleanup.h"
#include "params.h"

/* The ladder's rules of s1.policy_is_valid (migrations/0005_ladders.sql). */
static int ladder_check(const s1_policy_cfg *p, s1_err *err)
{
    const s1_ladder *l = &p->ladder;
    if (l->kind == S1_LADDER_NONE) return 0;
    bool budgets = l->kind == S1_LADDER_BUDGET;
    const char *name = budgets ? "budgets" : "waits";
    if (l->n_rungs < 1 || l->n_rungs > S1_MAX_RUNGS)
        return s1_errf(err, "%s: give 1 to %d values", name, S1_MAX_RUNGS);
    for (int i = 0; i < l->n_rungs; i++) {
        if (s1_param_check_int(budgets ? S1_PARAM_BUDGET_RUNG : S1_PARAM_WAIT_RUNG, l->rungs[i],
                               false, err) < 0)
            return -1;
        if (i > 0 && l->rungs[i] <= l->rungs[i - 1])
            return s1_errf(err, "%s: %d is out of order: give the values in ascending order", name,
                           l->rungs[i]);
    }
    if (budgets && p->max_think > 0)
        return s1_errf(err, "budgets replaces max_think (--budget): give one or the other");
    if (!budgets && p->ignore_stop > 0)
        return s1_errf(err, "waits replaces ignore_stop (--ignore-stop): give one or the other");
    if (budgets)
        return s1_param_check_order(&s1_param_orders[1], p->min_think, l->rungs[0], false, err);
    return 0;
}

int s1_job_template_parse(const char *name, s1_template *out, s1_err *err)
{
    *out = S1_TEMPLATE_DEFAULT;
    if (!name) return 0;
    *out = s1_template_named(name);
    if (*out == S1_TEMPLATE_DEFAULT)
        return s1_errf(err, "template \"%.60s\" is not one of s1, think-tags", name);
    return 0;
}

/* The policy's integer fields with their rules; 0 in max_think means none. */
typedef struct {
    s1_param param;
    size_t off;
} int_key;

static const int_key policy_ints[] = {
    {S1_PARAM_MAX_THINK, offsetof(s1_policy_cfg, max_think)},
    {S1_PARAM_MIN_THINK, offsetof(s1_policy_cfg, min_think)},
    {S1_PARAM_IGNORE_STOP, offsetof(s1_policy_cfg, ignore_stop)},
    {S1_PARAM_MAX_ANSWER, offsetof(s1_policy_cfg, max_answer)},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int int_field(const s1_policy_cfg *p, const int_key *k)
{
    return *(const int *)((const char *)p + k->off);
}

int s1_job_policy_check(const s1_policy_cfg *p, s1_err *err)
{
    for (size_t i = 0; i < N_OF(policy_ints); i++) {
        int v = int_field(p, &policy_ints[i]);
        /* Unset is 0, which max_think's range leaves out. */
        if ((v || policy_ints[i].param != S1_PARAM_MAX_THINK) &&
            s1_param_check_int(policy_ints[i].param, v, false, err) < 0)
            return -1;
    }
    if (p->max_think > 0 &&
        s1_param_check_order(&s1_param_orders[0], p->min_think, p->max_think, false, err) < 0)
        return -1;
    if (p->think_end && !*p->think_end) return s1_errf(err, "think_end must not be empty");
    if (p->wait_string && !*p->wait_string) return s1_errf(err, "wait_string must not be empty");
    return ladder_check(p, err);
}

int s1_job_sampling_check(const s1_sampling *s, s1_err *err)
{
    /* top_p 0 is the struct's "off", which the JSON leaves out. */
    if (s1_param_check_real(S1_PARAM_TEMPERATURE, s->temperature, false, err) < 0 ||
        (s->top_p != 0 && s1_param_check_real(S1_PARAM_TOP_P, s->top_p, false, err) < 0) ||
        s1_param_check_int(S1_PARAM_TOP_K, s->top_k, false, err) < 0)
        return -1;
    if (s->seed > INT64_MAX)
        return s1_errf(err, "seed: %llu is above %lld", (unsigned long long)s->seed,
                       (long long)INT64_MAX);
    return 0;
}

/* The policy's string keys. */
typedef struct {
    const char *key;
    size_t off;
} str_key;

static const str_key policy_strs[] = {
    {"system", offsetof(s1_policy_cfg, system)},
    {"think_end", offsetof(s1_policy_cfg, think_end)},
    {"answer_header", offsetof(s1_policy_cfg, answer_header)},
    {"answer_prefix", offsetof(s1_policy_cfg, answer_prefix)},
    {"wait_string", offsetof(s1_policy_cfg, wait_string)},
};

/* Reads an integer value within param's rule; integers only, as the CHECK wants. */
static int get_int(const char *col, s1_param param, json_t *v, int *out, s1_err *err)
{
    const s1_param_rule *r = s1_param_rule_of(param);
    if (!json_is_integer(v) || json_integer_value(v) < r->lo || json_integer_value(v) > r->hi)
        return s1_errf(err, "%s.%s must be an integer from %lld to %lld", col, r->key, r->lo,
                       r->hi);
    *out = (int)json_integer_value(v);
    return 0;
}

/* A ladder key: an array of integers (ascending is checked with the rest). */
static int ladder_key(const char *key, json_t *v, s1_ladder_kind kind, s1_policy_cfg *p,
                      s1_err *err)
{
    if (p->ladder.kind != S1_LADDER_NONE)
        return s1_errf(err, "policy: give budgets or waits, not both");
    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > S1_MAX_RUNGS)
        return s1_errf(err, "policy.%s must be an array of 1 to %d integers", key, S1_MAX_RUNGS);
    p->ladder.kind = kind;
    p->ladder.n_rungs = (int)json_array_size(v);
    size_t i;
    json_t *x;
    json_array_foreach(
        v, i, x) if (get_int("policy",
                             kind == S1_LADDER_BUDGET ? S1_PARAM_BUDGET_RUNG : S1_PARAM_WAIT_RUNG,
                             x, &p->ladder.rungs[i], err) < 0) return -1;
    return 0;
}

/* Fills one policy key into the s1_policy_cfg at dst; strings are copied
 * (the policy owns them). */
static int policy_key(void *dst, const char *key, json_t *v, s1_err *err)
{
    s1_policy_cfg *p = dst;
    if (!strcmp(key, "budgets")) return ladder_key(key, v, S1_LADDER_BUDGET, p, err);
    if (!strcmp(key, "waits")) return ladder_key(key, v, S1_LADDER_WAIT, p, err);
    for (size_t i = 0; i < N_OF(policy_ints); i++)
        if (!strcmp(key, s1_param_rule_of(policy_ints[i].param)->key))
            return get_int("policy", policy_ints[i].param, v,
                           (int *)((char *)p + policy_ints[i].off), err);
    for (size_t i = 0; i < N_OF(policy_strs); i++) {
        if (strcmp(key, policy_strs[i].key)) continue;
        if (!json_is_string(v)) return s1_errf(err, "policy.%s must be a string", key);
        const char **slot = (const char **)((char *)p + policy_strs[i].off);
        free((char *)*slot);
        *slot = strdup(json_string_value(v));
        return *slot ? 0 : s1_errf(err, "policy.%s: out of memory", key);
    }
    return s1_errf(err, "policy: unknown key \"%s\"", key);
}

/* A number within param's rule, checked before it is rounded to a float
 * (1000000.001 is above the temperature's bound, its float is not). */
static int get_number(s1_param param, json_t *v, float *out, s1_err *err)
{
    const char *key = s1_param_rule_of(param)->key;
    if (!json_is_number(v)) return s1_errf(err, "sampling.%s must be a number", key);
    if (s1_param_check_real(param, json_number_value(v), false, err) < 0)
        return s1_err_prefix(err, "sampling");
    *out = (float)json_number_value(v);
    return 0;
}

/* Fills one sampling key into the s1_sampling at dst. */
static int sampling_key(void *dst, const char *key, json_t *v, s1_err *err)
{
    s1_sampling *s = dst;
    if (!strcmp(key, "temperature"))
        return get_number(S1_PARAM_TEMPERATURE, v, &s->temperature, err);
    if (!strcmp(key, "top_p")) {
        if (get_number(S1_PARAM_TOP_P, v, &s->top_p, err) < 0) return -1;
        /* 0 means "off" in the struct, but the column wants (0, 1]. */
        return s->top_p > 0 ? 0 : s1_errf(err, "sampling.top_p must be a number in (0, 1]");
    }
    if (!strcmp(key, "top_k")) return get_int("sampling", S1_PARAM_TOP_K, v, &s->top_k, err);
    if (!strcmp(key, "seed")) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return s1_errf(err, "sampling.seed must be an integer from 0 to %lld",
                           (long long)INT64_MAX);
        s->seed = (uint64_t)json_integer_value(v);
        return 0;
    }
    return s1_errf(err, "sampling: unknown key \"%s\"", key);
}

/* Parses text (NULL = {}) as a JSON object and feeds each key to fill. */
static int parse_object(const char *col, const char *text, void *dst,
                        int (*fill)(void *, const char *, json_t *, s1_err *), s1_err *err)
{
    if (!text) return 0;
    json_error_t je;
    json_auto_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!o) return s1_errf(err, "%s: not valid JSON: %s", col, je.text);
    if (!json_is_object(o)) return s1_errf(err, "%s: expected a JSON object", col);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) if (fill(dst, key, v, err) < 0) return -1;
    return 0;
}

void s1_job_params_free(s1_job_params *p)
{
    for (size_t i = 0; i < N_OF(policy_strs); i++) {
        const char **slot = (const char **)((char *)&p->policy + policy_strs[i].off);
        free((char *)*slot);
        *slot = NULL;
    }
}

int s1_job_params_parse(const char *policy_json, const char *sampling_json, s1_job_params *out,
                        s1_err *err)
{
    memset(out, 0, sizeof *out);
    if (parse_object("policy", policy_json, &out->policy, policy_key, err) < 0 ||
        s1_job_policy_check(&out->policy, err) < 0 ||
        parse_object("sampling", sampling_json, &out->sampling, sampling_key, err) < 0 ||
        s1_job_sampling_check(&out->sampling, err) < 0) {
        s1_job_params_free(out);
        return -1;
    }
    return 0;
}

/* Dumps o compactly; 7 significant digits print a float like 0.7 as 0.7. */
static char *dump(json_t *o, const char *col, s1_err *err)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(7)) : NULL;
    if (!s) s1_errf(err, "%s: out of memory", col);
    return s;
}

/* Sets key to v in o; jansson answers NULL for a string that is not UTF-8
 * (and when out of memory), and a key must not silently go missing. */
static int set_key(json_t *o, const char *col, const char *key, json_t *v, s1_err *err)
{
    if (v && !json_object_set_new(o, key, v)) return 0;
    return s1_errf(err, "%s.%s: out of memory", col, key);
}

char *s1_job_policy_json(const s1_policy_cfg *p, s1_err *err)
{
    if (s1_job_policy_check(p, err) < 0) return NULL;
    json_auto_t *o = json_object();
    if (!o) return dump(NULL, "policy", err);
    for (size_t i = 0; i < N_OF(policy_ints); i++) {
        int v = int_field(p, &policy_ints[i]);
        if (v > 0 && set_key(o, "policy", s1_param_rule_of(policy_ints[i].param)->key,
                             json_integer(v), err) < 0)
            return NULL;
    }
    for (size_t i = 0; i < N_OF(policy_strs); i++) {
        const char *v = *(const char *const *)((const char *)p + policy_strs[i].off);
        char name[32];
        snprintf(name, sizeof name, "policy.%s", policy_strs[i].key);
        if (v && (s1_job_text_check(name, v, err) < 0 ||
                  set_key(o, "policy", policy_strs[i].key, json_string(v), err) < 0))
            return NULL;
    }
    if (p->ladder.kind != S1_LADDER_NONE) {
        json_t *a = json_array();
        for (int i = 0; a && i < p->ladder.n_rungs; i++)
            if (json_array_append_new(a, json_integer(p->ladder.rungs[i])))
                return dump(NULL, "policy", err);
        if (!a ||
            json_object_set_new(o, p->ladder.kind == S1_LADDER_BUDGET ? "budgets" : "waits", a))
            return dump(NULL, "policy", err);
    }
    return dump(o, "policy", err);
}

char *s1_job_sampling_json(const s1_sampling *s, s1_err *err)
{
    if (s1_job_sampling_check(s, err) < 0) return NULL;
    json_auto_t *o = json_object();
    if (!o) return dump(NULL, "sampling", err);
    if ((s->temperature > 0 &&
         set_key(o, "sampling", "temperature", json_real(s->temperature), err) < 0) ||
        (s->top_p > 0 && set_key(o, "sampling", "top_p", json_real(s->top_p), err) < 0) ||
        (s->top_k > 0 && set_key(o, "sampling", "top_k", json_integer(s->top_k), err) < 0) ||
        (s->seed > 0 && set_key(o, "sampling", "seed", json_integer((json_int_t)s->seed), err) < 0))
        return NULL;
    return dump(o, "sampling", err);
}

/* Offset of the first byte that is not valid UTF-8 (or a NUL), or len. */
static size_t bad_utf8_at(const char *text, size_t len, int *is_nul)
{
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0 || cp == 0) {
            *is_nul = n > 0;
            return i;
        }
        i += (size_t)n;
    }
    return len;
}

int s1_job_text_check(const char *name, const char *text, s1_err *err)
{
    int is_nul = 0;
    size_t len = strlen(text), at = bad_utf8_at(text, len, &is_nul);
    if (at < len) return s1_errf(err, "%s: not valid UTF-8 at byte %zu", name, at);
    return 0;
}

int s1_job_problem_check(const char *name, const char *text, size_t len, size_t max_bytes,
                         s1_err *err)
{
    if (len > max_bytes)
        return s1_errf(err, "%s: %zu bytes, larger than the limit of %zu bytes (--max-bytes)", name,
                       len, max_bytes);
    int is_nul = 0;
    size_t at = bad_utf8_at(text, len, &is_nul);
    if (at < len && is_nul)
        return s1_errf(err, "%s: contains a NUL byte at offset %zu; a problem is text", name, at);
    if (at < len) return s1_errf(err, "%s: not valid UTF-8 at byte %zu", name, at);
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    if (i == len) return s1_errf(err, "%s: the problem is empty", name);
    return 0;
}

/* s1d reads its queues as one comma-separated setting, trimming the blanks
 * around each name: a name with a comma, blanks at its ends or a control
 * character could be queued but never served. */
int s1_job_queue_check(const char *queue, s1_err *err)
{
    /* The messages do not quote the name: it may hold the very characters
     * (line breaks, escapes) that would garble a one-line error. */
    size_t len = strlen(queue);
    if (!len) return s1_errf(err, "a queue name is empty");
    if (len > S1_JOB_MAX_QUEUE_BYTES)
        return s1_errf(err, "the queue name is longer than %d bytes", S1_JOB_MAX_QUEUE_BYTES);
    int is_nul = 0;
    if (bad_utf8_at(queue, len, &is_nul) < len)
        return s1_errf(err, "the queue name is not valid UTF-8");
    if (isspace((unsigned char)queue[0]) || isspace((unsigned char)queue[len - 1]))
        return s1_errf(err, "the queue name begins or ends with a blank; remove it");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)queue[i];
        bool c1 = ch == 0xc2 && (unsigned char)queue[i + 1] >= 0x80 &&
                  (unsigned char)queue[i + 1] <= 0x9f; /* U+0080..U+009F */
        if (ch == ',')
            return s1_errf(err, "the queue name contains a comma, which separates queue names");
        if (ch < 0x20 || ch == 0x7f || c1)
            return s1_errf(err, "the queue name contains a control character");
    }
    return 0;
}
