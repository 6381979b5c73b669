/* store/params.h — the rules of a job's numeric parameters, stated once: the
 * range of each budget-forcing, sampling and job setting and the orders
 * between them (min_think within the budget). s1ctl's flags, store's checks
 * of the policy and sampling JSON and the migrations' CHECKs all follow this
 * table; tests/store/test_params.c inserts its boundary values to show that
 * the CHECKs agree. */
#ifndef S1_PARAMS_H
#define S1_PARAMS_H

#include <stdbool.h>

#include "err.h"

typedef enum {
    S1_PARAM_NONE = 0, /* a flag without a rule of its own */
    S1_PARAM_MAX_THINK,
    S1_PARAM_MIN_THINK,
    S1_PARAM_IGNORE_STOP,
    S1_PARAM_MAX_ANSWER,
    S1_PARAM_BUDGET_RUNG, /* each value of a budget ladder */
    S1_PARAM_WAIT_RUNG,   /* each value of a Wait ladder */
    S1_PARAM_TEMPERATURE,
    S1_PARAM_TOP_P,
    S1_PARAM_TOP_K,
    S1_PARAM_SEED,
    S1_PARAM_SAMPLES,
    S1_PARAM_PRIORITY,
    S1_PARAM_MAX_ATTEMPTS,
    S1_PARAM_COUNT,
} s1_param;

/* Where a parameter is stored: a key of the policy or sampling jsonb, a key
 * of the policy's ladder array, or a column of s1.jobs. */
typedef enum { S1_IN_POLICY, S1_IN_LADDER, S1_IN_SAMPLING, S1_IN_COLUMN } s1_param_home;

/* One parameter's range. Integers use lo/hi; numbers use lo_real/hi_real,
 * with lo_real itself excluded when lo_open (top_p is in (0, 1]). */
typedef struct {
    const char *key;  /* the JSON key or column: "max_think" */
    const char *flag; /* s1ctl's flag: "--budget" */
    s1_param_home home;
    bool real;
    long long lo, hi;
    double lo_real, hi_real;
    bool lo_open;
} s1_param_rule;

/* The rule of p (S1_PARAM_NONE < p < S1_PARAM_COUNT). */
const s1_param_rule *s1_param_rule_of(s1_param p);

/* 0 when v is within p's range; else -1 with err = "NAME: V is not an
 * integer from LO to HI", NAME being the flag (flag_names) or the key. */
int s1_param_check_int(s1_param p, long long v, bool flag_names, s1_err *err);
int s1_param_check_real(s1_param p, double v, bool flag_names, s1_err *err);

/* An order between two parameters: lesser <= greater whenever both are set
 * (min_think within max_think, and within the smallest budget rung). */
typedef struct {
    s1_param lesser, greater;
} s1_param_order;

extern const s1_param_order s1_param_orders[];
extern const int s1_param_n_orders;

/* 0 when lesser's value v does not exceed greater's value w; else -1 with
 * err naming both (flags or keys, as above). */
int s1_param_check_order(const s1_param_order *o, long long v, long long w, bool flag_names,
                         s1_err *err);

#endif
