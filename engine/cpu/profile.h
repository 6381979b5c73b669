/* engine/cpu/profile.h — where the CPU backend's time goes, by kind of
 * operation, so that `bench/engine --profile` shows it without a profiler.
 * Off unless enabled; then each timed operation costs one load of a flag.
 * Times are summed over the threads that drive the ranks: at TP > 1 ranks
 * run side by side, and their times add up. */
#ifndef S1_CPU_PROFILE_H
#define S1_CPU_PROFILE_H

#include <stdbool.h>

typedef enum {
    S1_CPU_OP_FORWARD,   /* a whole forward; what the others leave is "other" */
    S1_CPU_OP_MATMUL,    /* projections and the lm_head, input preparation included */
    S1_CPU_OP_ATTENTION, /* K/V writes, scores, softmax, weighted sums of V */
    S1_CPU_OP_NORM,      /* RMSNorm */
    S1_CPU_N_OPS
} s1_cpu_op;

void s1_cpu_profile_enable(bool on);
/* The clock now when profiling is on, else 0: pass it to stop. */
double s1_cpu_profile_start(void);
/* Adds the time since start to op (nothing when profiling is off). */
void s1_cpu_profile_stop(s1_cpu_op op, double start);
/* Seconds per op since the last take, written to out[S1_CPU_N_OPS]; the
 * counters start again from zero. */
void s1_cpu_profile_take(double *out);
const char *s1_cpu_op_name(s1_cpu_op op);

#endif
