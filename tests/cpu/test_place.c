/* The CPU backend's copies of its weights (engine/cpu/place.h): the same
 * values and shape, every row on a cache line, whatever view they came
 * from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu/kernels.h"
#include "cpu/place.h"
#include "shard.h"

enum { ROWS = 9, COLS = 100 };

/* A [ROWS, COLS] matrix of dtype dt, one byte past an aligned address so
 * that no row of it starts on a cache line. */
static s1_tensor matrix(char *storage, s1_dtype dt)
{
    char *data = storage + 1;
    size_t size = s1_dtype_size(dt);
    for (size_t i = 0; i < (size_t)ROWS * COLS * size; i++)
        data[i] = (char)(i * 7 + 3);
    return (s1_tensor){.data = data, .dtype = dt, .rows = ROWS, .cols = COLS, .row_stride = COLS};
}

/* Places v and checks the copy against it element by element. */
static void check_copy(const s1_tensor *v)
{
    size_t bytes = s1_cpu_placed_bytes(v), row = (size_t)v->cols * s1_dtype_size(v->dtype);
    size_t padded = (row + 63) / 64 * 64;
    assert_int_equal(bytes, (size_t)v->rows * padded);
    s1_err err = {0};
    char *mem = s1_cpu_place_alloc(bytes, &err);
    assert_non_null(mem);
    s1_tensor p = s1_cpu_place(v, mem);
    assert_ptr_equal(p.data, mem);
    assert_int_equal(p.rows, v->rows);
    assert_int_equal(p.cols, v->cols);
    assert_int_equal(p.dtype, v->dtype);
    for (int64_t r = 0; r < v->rows; r++) {
        const char *got = s1_tensor_row(&p, r);
        assert_int_equal((uintptr_t)got % 64, 0);
        assert_memory_equal(got, s1_tensor_row(v, r), row);
        for (size_t i = row; i < padded; i++)
            assert_int_equal(got[i], 0);
    }
    s1_cpu_place_free(mem, bytes);
}

static void test_every_dtype_is_copied_row_by_row_onto_cache_lines(void **state)
{
    (void)state;
    static _Alignas(64) char storage[ROWS * COLS * 4 + 64];
    const s1_dtype dts[] = {S1_DTYPE_BF16, S1_DTYPE_F16, S1_DTYPE_F32};
    for (size_t i = 0; i < sizeof dts / sizeof *dts; i++) {
        s1_tensor t = matrix(storage, dts[i]);
        check_copy(&t);
    }
}

/* A tensor-parallel rank's slice of wo or down: every row a stride apart
 * in the model, one contiguous run in the copy. */
static void test_a_column_slice_becomes_contiguous_rows(void **state)
{
    (void)state;
    static _Alignas(64) char storage[ROWS * COLS * 2 + 64];
    s1_tensor t = matrix(storage, S1_DTYPE_BF16);
    s1_tensor cols = s1_tensor_cols(&t, 37, 40), rows = s1_tensor_rows(&t, 2, 5);
    check_copy(&cols);
    check_copy(&rows);
}

static void test_an_empty_tensor_places_nothing(void **state)
{
    (void)state;
    s1_tensor t = {.dtype = S1_DTYPE_BF16, .rows = 0, .cols = COLS, .row_stride = COLS};
    assert_int_equal(s1_cpu_placed_bytes(&t), 0);
    s1_err err = {0};
    void *mem = s1_cpu_place_alloc(0, &err);
    assert_non_null(mem);
    s1_tensor p = s1_cpu_place(&t, mem);
    assert_int_equal(p.rows, 0);
    s1_cpu_place_free(mem, 0);
}

/* More than any machine has: refused with the size and what to do. */
static void test_too_large_a_copy_is_refused_by_name(void **state)
{
    (void)state;
    s1_err err = {0};
    assert_null(s1_cpu_place_alloc((size_t)1 << 62, &err));
    assert_non_null(strstr(err.msg, "no memory for a copy of the weights"));
    assert_non_null(strstr(err.msg, "free memory or serve a smaller model"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_dtype_is_copied_row_by_row_onto_cache_lines),
        cmocka_unit_test(test_a_column_slice_becomes_contiguous_rows),
        cmocka_unit_test(test_an_empty_tensor_places_nothing),
        cmocka_unit_test(test_too_large_a_copy_is_refused_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
