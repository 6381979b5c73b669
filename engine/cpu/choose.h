/* engine/cpu/choose.h — which kernel set runs a model fastest on this CPU,
 * found by timing every set the CPU supports on the model's own matrices at
 * load. Feature bits are not enough: AVX-512 BF16 is slower than AVX2 on
 * some CPUs that have it. */
#ifndef S1_CPU_CHOOSE_H
#define S1_CPU_CHOOSE_H

#include "err.h"
#include "kernels.h"
#include "model.h"

/* Below this many bytes of layer weights the model fits in the caches, a
 * timing of a few microseconds decides nothing, and the first set of the
 * feature order is kept (so runs of small models stay reproducible). */
#define S1_CPU_CHOOSE_MIN_BYTES (64.0 * (1 << 20))

/* How much faster than the sets before it in the feature order a set must
 * be to be chosen: near a tie the order decides, so that a noisy timing
 * rarely moves a model from one set to another between two loads. */
#define S1_CPU_CHOOSE_MARGIN 1.10

#define S1_CPU_MAX_KERNEL_SETS 3

/* One set's figure: bytes of weights per second at batch 1, the fastest of
 * the timed rounds. */
typedef struct {
    const s1_cpu_kernels *k;
    double bytes_per_s;
} s1_cpu_kernel_time;

/* Times every supported set on slices of m's layer matrices at batch 1 (a
 * decode step's shape, which dominates a reasoning trace) on the calling
 * thread, a few milliseconds each, rounds interleaved so that a burst of
 * load on a shared machine hits every set alike. Writes each set's figure to
 * times (S1_CPU_MAX_KERNEL_SETS entries) and their count to *n_times;
 * returns the chosen set, or NULL with err set. */
const s1_cpu_kernels *s1_cpu_kernels_measure(const s1_model *m, s1_cpu_kernel_time *times,
                                             int *n_times, s1_err *err);

/* The set a backend on m uses: the one $S1_CPU_KERNELS names, else the
 * first supported set for small models, else the measured fastest (logged
 * with every set's figure). NULL with err set when S1_CPU_KERNELS names a
 * set that does not exist or that this CPU cannot run. */
const s1_cpu_kernels *s1_cpu_kernels_choose(const s1_model *m, s1_err *err);

#endif
