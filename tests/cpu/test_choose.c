/* The choice of kernel set (engine/cpu/choose.h): the measurement times every
 * set this CPU runs and picks one of them; S1_CPU_KERNELS forces a set or is
 * refused with the reason; models that fit in the caches keep the feature
 * order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu/choose.h"

enum { LAYERS = 3, HIDDEN = 256, HEADS = 4, KV = 2, HD = 64, INTER = 1024 };

typedef struct {
    s1_model m;
    s1_layer layers[LAYERS];
    uint16_t *storage; /* owned */
} fixture;

/* A bf16 [rows, cols] matrix of small values carved from *at. */
static s1_tensor matrix(uint16_t **at, int64_t rows, int64_t cols)
{
    s1_tensor t = {
        .data = *at, .dtype = S1_DTYPE_BF16, .rows = rows, .cols = cols, .row_stride = cols};
    for (int64_t i = 0; i < rows * cols; i++)
        (*at)[i] = s1_f32_to_bf16((float)(i % 13) / 64.0f - 0.1f);
    *at += rows * cols;
    return t;
}

/* LAYERS layers of bf16 matrices, no norms or biases (the chooser reads
 * only the matrices). */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    size_t per =
        (size_t)HEADS * HD * HIDDEN * 2 + (size_t)KV * HD * HIDDEN * 2 + (size_t)INTER * HIDDEN * 3;
    uint16_t *at = f->storage = malloc(per * LAYERS * sizeof *at);
    f->m.cfg = (s1_model_config){.hidden_size = HIDDEN,
                                 .intermediate_size = INTER,
                                 .n_layers = LAYERS,
                                 .n_heads = HEADS,
                                 .n_kv_heads = KV,
                                 .head_dim = HD};
    for (int i = 0; i < LAYERS; i++)
        f->layers[i] = (s1_layer){.wq = matrix(&at, HEADS * HD, HIDDEN),
                                  .wk = matrix(&at, KV * HD, HIDDEN),
                                  .wv = matrix(&at, KV * HD, HIDDEN),
                                  .wo = matrix(&at, HIDDEN, HEADS * HD),
                                  .w_gate = matrix(&at, INTER, HIDDEN),
                                  .w_up = matrix(&at, INTER, HIDDEN),
                                  .w_down = matrix(&at, HIDDEN, INTER)};
    f->m.w.layers = f->layers;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->storage);
    free(f);
    unsetenv("S1_CPU_KERNELS");
    return 0;
}

static void test_the_measurement_times_every_set_this_cpu_runs_and_picks_one(void **state)
{
    fixture *f = *state;
    const s1_cpu_kernels *sets[S1_CPU_MAX_KERNEL_SETS];
    int n_sets = s1_cpu_kernels_supported(sets, S1_CPU_MAX_KERNEL_SETS);
    s1_cpu_kernel_time times[S1_CPU_MAX_KERNEL_SETS];
    int n = 0;
    s1_err err = {{0}};
    const s1_cpu_kernels *k = s1_cpu_kernels_measure(&f->m, times, &n, &err);
    assert_non_null(k);
    assert_int_equal(n, n_sets);
    bool chosen_is_timed = false;
    for (int i = 0; i < n; i++) {
        assert_ptr_equal(times[i].k, sets[i]);
        assert_true(times[i].bytes_per_s > 0);
        chosen_is_timed |= times[i].k == k;
    }
    assert_true(chosen_is_timed);
    assert_ptr_equal(s1_cpu_kernels_get(k->name), k);
}

static void test_a_model_that_fits_in_the_caches_keeps_the_feature_order(void **state)
{
    fixture *f = *state;
    s1_err err = {{0}};
    assert_ptr_equal(s1_cpu_kernels_choose(&f->m, &err), s1_cpu_kernels_best());
}

static void test_s1_cpu_kernels_forces_the_set_it_names(void **state)
{
    fixture *f = *state;
    s1_err err = {{0}};
    setenv("S1_CPU_KERNELS", "portable", 1);
    assert_ptr_equal(s1_cpu_kernels_choose(&f->m, &err), &s1_cpu_kernels_portable);
}

static void test_a_set_that_does_not_exist_is_refused_with_the_names_that_do(void **state)
{
    fixture *f = *state;
    s1_err err = {{0}};
    setenv("S1_CPU_KERNELS", "avx1024", 1);
    assert_null(s1_cpu_kernels_choose(&f->m, &err));
    assert_string_equal(err.msg, "cpu: S1_CPU_KERNELS=avx1024 is not a kernel set (use portable, "
                                 "avx2 or avx512bf16, or unset it)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_the_measurement_times_every_set_this_cpu_runs_and_picks_one, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_model_that_fits_in_the_caches_keeps_the_feature_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s1_cpu_kernels_forces_the_set_it_names, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_set_that_does_not_exist_is_refused_with_the_names_that_do, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
