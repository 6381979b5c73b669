#include "policy_flags.h"

#include <stdint.h>

#include "commands.h"
#include "job.h"
#include "util.h"

/* An int field set by a flag, with its lowest accepted value. */
static int int_flag(const char *flag, const char *arg, long long min, int *out)
{
    long long v;
    if (s1ctl_parse_int(flag, arg, min, INT32_MAX, &v) < 0) return -1;
    *out = (int)v;
    return 1;
}

static int float_flag(const char *flag, const char *arg, double min, double max, float *out)
{
    double v;
    if (s1ctl_parse_double(flag, arg, min, max, &v) < 0) return -1;
    *out = (float)v;
    return 1;
}

static int string_flag(const char *flag, const char *arg, int may_be_empty, const char **out)
{
    if (!may_be_empty && !*arg) {
        s1ctl_fail(S1CTL_EXIT_USAGE, "%s: must not be empty", flag);
        return -1;
    }
    return s1ctl_text_flag(flag, arg, out);
}

/* --template: the names the jobs' template column allows. */
static int template_flag(const char *arg, s1_template *out)
{
    s1_err err = {{0}};
    if (s1_job_template_parse(arg, out, &err) < 0) {
        s1ctl_fail(S1CTL_EXIT_USAGE, "--template: %s", err.msg);
        return -1;
    }
    return 1;
}

/* A ladder flag: its values sorted, repeats dropped; the last one given wins. */
static int ladder_flag(const char *flag, const char *arg, s1_ladder_kind kind, s1_policy_cfg *p)
{
    s1_ladder l = {.kind = kind};
    if (s1ctl_parse_list(flag, arg, kind == S1_LADDER_BUDGET ? 1 : 0, S1_MAX_RUNGS, l.rungs,
                         &l.n_rungs) < 0)
        return -1;
    p->ladder = l;
    return 1;
}

int s1ctl_policy_flag(int code, const char *arg, s1_policy_cfg *p, s1_sampling *s)
{
    long long seed;
    switch (code) {
    case S1CTL_OPT_BUDGET:
        return int_flag("--budget", arg, 1, &p->max_think);
    case S1CTL_OPT_BUDGETS:
        return ladder_flag("--budgets", arg, S1_LADDER_BUDGET, p);
    case S1CTL_OPT_WAITS:
        return ladder_flag("--waits", arg, S1_LADDER_WAIT, p);
    case S1CTL_OPT_MIN_THINK:
        return int_flag("--min-think", arg, 0, &p->min_think);
    case S1CTL_OPT_IGNORE_STOP:
        return int_flag("--ignore-stop", arg, 0, &p->ignore_stop);
    case S1CTL_OPT_MAX_ANSWER:
        return int_flag("--max-answer", arg, 0, &p->max_answer);
    case S1CTL_OPT_TEMPLATE:
        return template_flag(arg, &p->template);
    case S1CTL_OPT_SYSTEM:
        return string_flag("--system", arg, 1, &p->system);
    case S1CTL_OPT_THINK_END:
        return string_flag("--think-end", arg, 0, &p->think_end);
    case S1CTL_OPT_ANSWER_HEADER:
        return string_flag("--answer-header", arg, 1, &p->answer_header);
    case S1CTL_OPT_ANSWER_PREFIX:
        return string_flag("--answer-prefix", arg, 1, &p->answer_prefix);
    case S1CTL_OPT_WAIT_STRING:
        return string_flag("--wait-string", arg, 0, &p->wait_string);
    case S1CTL_OPT_TEMPERATURE:
        return float_flag("--temperature", arg, 0, 1e6, &s->temperature);
    case S1CTL_OPT_TOP_P:
        if (float_flag("--top-p", arg, 0, 1, &s->top_p) < 0) return -1;
        if (s->top_p > 0) return 1;
        s1ctl_fail(S1CTL_EXIT_USAGE, "--top-p: '%s' is not in (0, 1]", arg);
        return -1;
    case S1CTL_OPT_TOP_K:
        return int_flag("--top-k", arg, 0, &s->top_k);
    case S1CTL_OPT_SEED:
        if (s1ctl_parse_int("--seed", arg, 0, INT64_MAX, &seed) < 0) return -1;
        s->seed = (uint64_t)seed;
        return 1;
    default:
        return 0;
    }
}

int s1ctl_policy_done(const s1_policy_cfg *p, const s1_sampling *s)
{
    if (p->max_think > 0 && p->min_think > p->max_think) {
        s1ctl_fail(S1CTL_EXIT_USAGE, "--min-think %d is above --budget %d", p->min_think,
                   p->max_think);
        return -1;
    }
    s1_err err = {{0}};
    if (s1_job_policy_check(p, &err) < 0 || s1_job_sampling_check(s, &err) < 0) {
        s1ctl_fail(S1CTL_EXIT_USAGE, "%s", err.msg);
        return -1;
    }
    return 0;
}
