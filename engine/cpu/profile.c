#include "profile.h"

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

static atomic_bool enabled;
static _Atomic uint64_t nanoseconds[S1_CPU_N_OPS];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void s1_cpu_profile_enable(bool on)
{
    atomic_store(&enabled, on);
}

double s1_cpu_profile_start(void)
{
    return atomic_load_explicit(&enabled, memory_order_relaxed) ? now() : 0;
}

void s1_cpu_profile_stop(s1_cpu_op op, double start)
{
    if (start == 0) return;
    atomic_fetch_add_explicit(&nanoseconds[op], (uint64_t)((now() - start) * 1e9),
                              memory_order_relaxed);
}

void s1_cpu_profile_take(double *out)
{
    for (int i = 0; i < S1_CPU_N_OPS; i++)
        out[i] = (double)atomic_exchange(&nanoseconds[i], 0) * 1e-9;
}

const char *s1_cpu_op_name(s1_cpu_op op)
{
    static const char *const names[S1_CPU_N_OPS] = {"forward", "matmul", "attention", "norm"};
    return names[op];
}
