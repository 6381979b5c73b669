#include "policy_flags.h"

#include <stdint.h>
#include <stdio.h>

#include "commands.h"
#include "util.h"

/* A ladder flag: its values sorted, repeats dropped; the last one given wins. */
static int set_ladder(const s1ctl_flag *f, const char *arg, void *target)
{
    s1_ladder *l = target;
    s1_ladder_kind kind = f->param == S1_PARAM_BUDGET_RUNG ? S1_LADDER_BUDGET : S1_LADDER_WAIT;
    s1_ladder out = {.kind = kind};
    char name[32];
    snprintf(name, sizeof name, "--%s", f->name);
    if (s1ctl_parse_list(name, arg, (int)s1_param_rule_of(f->param)->lo, S1_MAX_RUNGS, out.rungs,
                         &out.n_rungs) < 0)
        return -1;
    *l = out;
    return 0;
}

/* The seed is a uint64_t, which the range of an int flag does not cover. */
static int set_seed(const s1ctl_flag *f, const char *arg, void *target)
{
    const s1_param_rule *r = s1_param_rule_of(f->param);
    long long v;
    if (s1ctl_parse_int("--seed", arg, r->lo, r->hi, &v) < 0) return -1;
    *(uint64_t *)target = (uint64_t)v;
    return 0;
}

/* --template: the names the jobs' template column allows. */
static int set_template(const s1ctl_flag *f, const char *arg, void *target)
{
    (void)f;
    s1_err err = {{0}};
    if (s1_job_template_parse(arg, target, &err) < 0)
        return s1ctl_fail(-1, "--template: %s", err.msg);
    return 0;
}

#define POLICY(field)   offsetof(s1_job_params, policy.field)
#define SAMPLING(field) offsetof(s1_job_params, sampling.field)

const s1ctl_flag s1ctl_policy_flags[S1CTL_N_POLICY_FLAGS] = {
    {"budget", "N", "at most N thinking tokens, then the end of thinking is forced",
     s1ctl_set_param_int, POLICY(max_think), S1_PARAM_MAX_THINK},
    {"min-think", "N", "suppress the end of thinking before N thinking tokens", s1ctl_set_param_int,
     POLICY(min_think), S1_PARAM_MIN_THINK},
    {"ignore-stop", "N", "suppress the first N ends of thinking", s1ctl_set_param_int,
     POLICY(ignore_stop), S1_PARAM_IGNORE_STOP},
    {"budgets", "LIST",
     "a budget ladder in one job, e.g. 512,1024,2048: thinks once up to\n"
     "the largest; each budget gets its own result (instead of --budget)",
     set_ladder, POLICY(ladder), S1_PARAM_BUDGET_RUNG},
    {"waits", "LIST",
     "a Wait ladder in one job, e.g. 0,1,2,4: each count of suppressed\n"
     "ends gets its own result (instead of --ignore-stop)",
     set_ladder, POLICY(ladder), S1_PARAM_WAIT_RUNG},
    {"max-answer", "N", "at most N answer tokens", s1ctl_set_param_int, POLICY(max_answer),
     S1_PARAM_MAX_ANSWER},
    {"wait-string", "S", "fed in place of a suppressed end (default \"Wait\")", s1ctl_set_nonempty,
     POLICY(wait_string)},
    {"answer-prefix", "S", "fed after a forced end (default \"Final Answer:\")", s1ctl_set_text,
     POLICY(answer_prefix)},
    {"answer-header", "S", "fed after the delimiter on a forced end (default \"answer\\n\")",
     s1ctl_set_text, POLICY(answer_header)},
    {"think-end", "S", "the end-of-thinking delimiter (default \"<|im_start|>\")",
     s1ctl_set_nonempty, POLICY(think_end)},
    {"system", "S", "the system prompt", s1ctl_set_text, POLICY(system)},
    {"template", "T",
     "s1 (thinking in an <|im_start|>think turn) or think-tags (between\n"
     "<think> and </think>, as QwQ); default: the serving model's",
     set_template, POLICY(template)},
};

const s1ctl_flag s1ctl_sampling_flags[S1CTL_N_SAMPLING_FLAGS] = {
    {"temperature", "X", "0 = greedy (default)", s1ctl_set_param_real, SAMPLING(temperature),
     S1_PARAM_TEMPERATURE},
    {"top-p", "X", "nucleus sampling, in (0, 1]", s1ctl_set_param_real, SAMPLING(top_p),
     S1_PARAM_TOP_P},
    {"top-k", "N", "keep the N most likely tokens (0 = off)", s1ctl_set_param_int, SAMPLING(top_k),
     S1_PARAM_TOP_K},
    {"seed", "N", "random seed", set_seed, SAMPLING(seed), S1_PARAM_SEED},
};

int s1ctl_policy_done(const s1_job_params *p)
{
    s1_err err = {{0}};
    const s1_ladder *l = &p->policy.ladder;
    if ((p->policy.max_think > 0 && s1_param_check_order(&s1_param_orders[0], p->policy.min_think,
                                                         p->policy.max_think, true, &err) < 0) ||
        (l->kind == S1_LADDER_BUDGET &&
         s1_param_check_order(&s1_param_orders[1], p->policy.min_think, l->rungs[0], true, &err) <
             0) ||
        s1_job_policy_check(&p->policy, &err) < 0 || s1_job_sampling_check(&p->sampling, &err) < 0)
        return s1ctl_fail(-1, "%s", err.msg);
    return 0;
}
