/* cli/policy_flags.h — the budget-forcing and sampling flags, shared by
 * `s1ctl submit` (stored as the job's policy) and `s1ctl generate` (run
 * in-process), parsed into the engine's structs. */
#ifndef S1CTL_POLICY_FLAGS_H
#define S1CTL_POLICY_FLAGS_H

#include <getopt.h>

#include "engine_params.h"

enum {
    S1CTL_OPT_BUDGET = 0x1000,
    S1CTL_OPT_MIN_THINK,
    S1CTL_OPT_IGNORE_STOP,
    S1CTL_OPT_MAX_ANSWER,
    S1CTL_OPT_SYSTEM,
    S1CTL_OPT_THINK_END,
    S1CTL_OPT_ANSWER_HEADER,
    S1CTL_OPT_ANSWER_PREFIX,
    S1CTL_OPT_WAIT_STRING,
    S1CTL_OPT_TEMPERATURE,
    S1CTL_OPT_TOP_P,
    S1CTL_OPT_TOP_K,
    S1CTL_OPT_SEED,
    S1CTL_OPT_BUDGETS,
    S1CTL_OPT_WAITS,
    S1CTL_OPT_TEMPLATE,
};

/* Entries for a command's struct option array. */
/* clang-format off */
#define S1CTL_POLICY_OPTIONS \
    {"budget", required_argument, NULL, S1CTL_OPT_BUDGET}, \
    {"budgets", required_argument, NULL, S1CTL_OPT_BUDGETS}, \
    {"waits", required_argument, NULL, S1CTL_OPT_WAITS}, \
    {"template", required_argument, NULL, S1CTL_OPT_TEMPLATE}, \
    {"min-think", required_argument, NULL, S1CTL_OPT_MIN_THINK}, \
    {"ignore-stop", required_argument, NULL, S1CTL_OPT_IGNORE_STOP}, \
    {"max-answer", required_argument, NULL, S1CTL_OPT_MAX_ANSWER}, \
    {"system", required_argument, NULL, S1CTL_OPT_SYSTEM}, \
    {"think-end", required_argument, NULL, S1CTL_OPT_THINK_END}, \
    {"answer-header", required_argument, NULL, S1CTL_OPT_ANSWER_HEADER}, \
    {"answer-prefix", required_argument, NULL, S1CTL_OPT_ANSWER_PREFIX}, \
    {"wait-string", required_argument, NULL, S1CTL_OPT_WAIT_STRING}, \
    {"temperature", required_argument, NULL, S1CTL_OPT_TEMPERATURE}, \
    {"top-p", required_argument, NULL, S1CTL_OPT_TOP_P}, \
    {"top-k", required_argument, NULL, S1CTL_OPT_TOP_K}, \
    {"seed", required_argument, NULL, S1CTL_OPT_SEED}
/* clang-format on */

/* The flags' lines of a command's --help. */
#define S1CTL_POLICY_HELP                                                                          \
    "Budget forcing:\n"                                                                            \
    "  --budget N          at most N thinking tokens, then the end of thinking is forced\n"        \
    "  --min-think N       suppress the end of thinking before N thinking tokens\n"                \
    "  --ignore-stop N     suppress the first N ends of thinking\n"                                \
    "  --budgets LIST      a budget ladder in one job, e.g. 512,1024,2048: thinks once up to\n"    \
    "                      the largest; each budget gets its own result (instead of --budget)\n"   \
    "  --waits LIST        a Wait ladder in one job, e.g. 0,1,2,4: each count of suppressed\n"     \
    "                      ends gets its own result (instead of --ignore-stop)\n"                  \
    "  --max-answer N      at most N answer tokens\n"                                              \
    "  --wait-string S     fed in place of a suppressed end (default \"Wait\")\n"                  \
    "  --answer-prefix S   fed after a forced end (default \"Final Answer:\")\n"                   \
    "  --answer-header S   fed after the delimiter on a forced end (default \"answer\\n\")\n"      \
    "  --think-end S       the end-of-thinking delimiter (default \"<|im_start|>\")\n"             \
    "  --system S          the system prompt\n"                                                    \
    "  --template T        s1 (thinking in an <|im_start|>think turn) or think-tags (between\n"    \
    "                      <think> and </think>, as QwQ); default: the serving model's\n"          \
    "Sampling:\n"                                                                                  \
    "  --temperature X     0 = greedy (default)\n"                                                 \
    "  --top-p X           nucleus sampling, in (0, 1]\n"                                          \
    "  --top-k N           keep the N most likely tokens (0 = off)\n"                              \
    "  --seed N            random seed\n"

/* Applies one getopt_long code: 1 when it was a policy or sampling flag, 0
 * when it is not one, -1 after printing why the value is bad. */
int s1ctl_policy_flag(int code, const char *arg, s1_policy_cfg *p, s1_sampling *s);

/* The checks across flags, once all are read (--min-think above --budget).
 * 0, or -1 after printing why. */
int s1ctl_policy_done(const s1_policy_cfg *p, const s1_sampling *s);

#endif
