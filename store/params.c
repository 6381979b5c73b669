#include "params.h"

#include <math.h>
#include <stdint.h>

/* The table. Its bounds are those of s1.policy_is_valid (0005_ladders),
 * s1.sampling_is_valid (0001_init) and the jobs' column CHECKs (0001_init,
 * 0003_roles): change both together, in a new migration. */
static const s1_param_rule rules[S1_PARAM_COUNT] = {
    [S1_PARAM_MAX_THINK] = {"max_think", "--budget", S1_IN_POLICY, false, 1, INT32_MAX},
    [S1_PARAM_MIN_THINK] = {"min_think", "--min-think", S1_IN_POLICY, false, 0, INT32_MAX},
    [S1_PARAM_IGNORE_STOP] = {"ignore_stop", "--ignore-stop", S1_IN_POLICY, false, 0, INT32_MAX},
    [S1_PARAM_MAX_ANSWER] = {"max_answer", "--max-answer", S1_IN_POLICY, false, 0, INT32_MAX},
    [S1_PARAM_BUDGET_RUNG] = {"budgets", "--budgets", S1_IN_LADDER, false, 1, INT32_MAX},
    [S1_PARAM_WAIT_RUNG] = {"waits", "--waits", S1_IN_LADDER, false, 0, INT32_MAX},
    [S1_PARAM_TEMPERATURE] = {"temperature", "--temperature", S1_IN_SAMPLING, true, 0, 0, 0, 1e6,
                              false},
    [S1_PARAM_TOP_P] = {"top_p", "--top-p", S1_IN_SAMPLING, true, 0, 0, 0, 1, true},
    [S1_PARAM_TOP_K] = {"top_k", "--top-k", S1_IN_SAMPLING, false, 0, INT32_MAX},
    [S1_PARAM_SEED] = {"seed", "--seed", S1_IN_SAMPLING, false, 0, INT64_MAX},
    [S1_PARAM_SAMPLES] = {"samples", "--samples", S1_IN_COLUMN, false, 1, 1024},
    [S1_PARAM_PRIORITY] = {"priority", "--priority", S1_IN_COLUMN, false, -1000000, 1000000},
    [S1_PARAM_MAX_ATTEMPTS] = {"max_attempts", "--max-attempts", S1_IN_COLUMN, false, 1, 1000},
};

const s1_param_order s1_param_orders[] = {
    {S1_PARAM_MIN_THINK, S1_PARAM_MAX_THINK},
    {S1_PARAM_MIN_THINK, S1_PARAM_BUDGET_RUNG},
};
const int s1_param_n_orders = sizeof s1_param_orders / sizeof *s1_param_orders;

const s1_param_rule *s1_param_rule_of(s1_param p)
{
    return &rules[p];
}

static const char *name_of(const s1_param_rule *r, bool flag_names)
{
    return flag_names ? r->flag : r->key;
}

int s1_param_check_int(s1_param p, long long v, bool flag_names, s1_err *err)
{
    const s1_param_rule *r = &rules[p];
    if (v >= r->lo && v <= r->hi) return 0;
    return s1_errf(err, "%s: %lld is not an integer from %lld to %lld", name_of(r, flag_names), v,
                   r->lo, r->hi);
}

int s1_param_check_real(s1_param p, double v, bool flag_names, s1_err *err)
{
    const s1_param_rule *r = &rules[p];
    bool above_lo = r->lo_open ? v > r->lo_real : v >= r->lo_real;
    if (isfinite(v) && above_lo && v <= r->hi_real) return 0;
    return s1_errf(err, "%s: %g is not a number in %c%g, %g]", name_of(r, flag_names), v,
                   r->lo_open ? '(' : '[', r->lo_real, r->hi_real);
}

int s1_param_check_order(const s1_param_order *o, long long v, long long w, bool flag_names,
                         s1_err *err)
{
    if (v <= w) return 0;
    const s1_param_rule *a = &rules[o->lesser], *b = &rules[o->greater];
    return s1_errf(err, "%s %lld is above %s %lld", name_of(a, flag_names), v,
                   o->greater == S1_PARAM_BUDGET_RUNG
                       ? (flag_names ? "the smallest of --budgets" : "the smallest budget")
                       : name_of(b, flag_names),
                   w);
}
