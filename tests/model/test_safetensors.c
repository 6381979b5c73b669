/* s1_st_parse_header on memory buffers: a good header parses, and each kind of
 * bad header fails with a message naming the file, the tensor and the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "safetensors.h"

/* A file of the given header JSON, padded with spaces to a multiple of 8
 * bytes as the safetensors library does, then data_len zero bytes. */
typedef struct {
    uint8_t *buf;
    size_t len;
} file_buf;

static file_buf make_file(const char *json, size_t data_len)
{
    size_t n = strlen(json), hl = (n + 7) / 8 * 8;
    file_buf f = {calloc(1, 8 + hl + data_len), 8 + hl + data_len};
    assert_non_null(f.buf);
    for (int i = 0; i < 8; i++)
        f.buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(f.buf + 8, json, n);
    memset(f.buf + 8 + n, ' ', hl - n);
    return f;
}

/* Parses json + data_len bytes, expecting failure; the message must contain
 * every one of the NULL-terminated fragments. */
static void expect_error(const char *json, size_t data_len, ...)
{
    file_buf f = make_file(json, data_len);
    s1_st_header h;
    s1_err err = {{0}};
    assert_int_equal(s1_st_parse_header(f.buf, f.len, "m.safetensors", &h, &err), -1);
    assert_null(h.tensors);
    va_list ap;
    va_start(ap, data_len);
    for (const char *s; (s = va_arg(ap, const char *));) {
        if (!strstr(err.msg, s)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, s);
    }
    va_end(ap);
    free(f.buf);
}

static void test_a_good_header_parses_with_tensors_sorted_by_name(void **state)
{
    (void)state;
    file_buf f = make_file("{\"__metadata__\":{\"format\":\"pt\"},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                           "\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                           "\"s\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[32,34]}}   ",
                           34);
    s1_st_header h;
    s1_err err = {{0}};
    assert_int_equal(s1_st_parse_header(f.buf, f.len, "m.safetensors", &h, &err), 0);
    assert_int_equal(h.n, 3);
    assert_int_equal(h.data_start, f.len - 34);
    assert_string_equal(h.tensors[0].name, "a");
    const s1_st_tensor *b = s1_st_find(&h, "b");
    assert_non_null(b);
    assert_int_equal(b->dtype, S1_DTYPE_F32);
    assert_int_equal(b->ndim, 2);
    assert_int_equal(b->shape[1], 3);
    assert_int_equal(b->end, 24);
    assert_int_equal(s1_st_find(&h, "s")->ndim, 0);
    assert_null(s1_st_find(&h, "c"));
    s1_st_header_free(&h);
    free(f.buf);
}

static void test_an_empty_header_parses_with_no_tensors(void **state)
{
    (void)state;
    file_buf f = make_file("{}", 0);
    s1_st_header h;
    assert_int_equal(s1_st_parse_header(f.buf, f.len, "m.safetensors", &h, NULL), 0);
    assert_int_equal(h.n, 0);
    assert_null(s1_st_find(&h, "a"));
    s1_st_header_free(&h);
    free(f.buf);
}

static void test_a_file_shorter_than_8_bytes_is_truncated(void **state)
{
    (void)state;
    s1_st_header h;
    s1_err err = {{0}};
    assert_int_equal(s1_st_parse_header((const uint8_t *)"\1\0\0", 3, "m.safetensors", &h, &err),
                     -1);
    assert_non_null(strstr(err.msg, "m.safetensors: 3 bytes"));
    assert_non_null(strstr(err.msg, "truncated"));
}

static void test_a_header_length_past_the_end_is_truncated(void **state)
{
    (void)state;
    file_buf f = make_file("{}", 0);
    f.len -= 1;
    s1_st_header h;
    s1_err err = {{0}};
    assert_int_equal(s1_st_parse_header(f.buf, f.len, "m.safetensors", &h, &err), -1);
    assert_non_null(strstr(err.msg, "m.safetensors: header length 8 runs past the end"));
    free(f.buf);
}

static void test_a_header_over_the_cap_is_refused(void **state)
{
    (void)state;
    uint8_t buf[16] = {0, 0, 0, 0x10, 0, 0, 0, 0}; /* 256 MiB */
    s1_st_header h;
    s1_err err = {{0}};
    assert_int_equal(s1_st_parse_header(buf, sizeof buf, "m.safetensors", &h, &err), -1);
    assert_non_null(strstr(err.msg, "exceeds the limit"));
    buf[7] = 0x80; /* a length that would wrap a signed size */
    assert_int_equal(s1_st_parse_header(buf, sizeof buf, "m.safetensors", &h, &err), -1);
    assert_non_null(strstr(err.msg, "exceeds the limit"));
}

static void test_invalid_json_is_named(void **state)
{
    (void)state;
    expect_error("{\"a\":", 0, "m.safetensors: header is not valid JSON", NULL);
    expect_error("[1, 2]", 0, "m.safetensors: header is not a JSON object", NULL);
}

static void test_a_duplicate_tensor_name_is_invalid_json(void **state)
{
    (void)state;
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 8, "header is not valid JSON", "duplicate", NULL);
}

static void test_metadata_that_is_not_an_object_is_refused(void **state)
{
    (void)state;
    expect_error("{\"__metadata__\":[1]}", 0, "__metadata__ is not an object", NULL);
}

static void test_an_entry_that_is_not_an_object_is_named(void **state)
{
    (void)state;
    expect_error("{\"w\":7}", 0, "m.safetensors: tensor w: entry is not an object", NULL);
}

static void test_a_missing_or_unknown_dtype_is_named(void **state)
{
    (void)state;
    expect_error("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor w: dtype is missing",
                 NULL);
    expect_error("{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
                 "m.safetensors: tensor w has dtype F64", "BF16, F16 and F32", NULL);
}

static void test_a_bad_shape_is_named(void **state)
{
    (void)state;
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,12]}}", 12,
                 "tensor w: shape is not an array", NULL);
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                 "tensor w: shape[0] is not a non-negative integer", NULL);
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
                 4, "tensor w: 9 dimensions", NULL);
}

static void test_a_shape_whose_size_overflows_is_refused(void **state)
{
    (void)state;
    expect_error(
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
        "tensor w: shape is too large", NULL);
}

static void test_bad_data_offsets_are_named(void **state)
{
    (void)state;
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
                 "tensor w: data_offsets is not [begin, end]", NULL);
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
                 "tensor w: data_offsets is not [begin, end]", NULL);
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
                 "tensor w: data_offsets [8, 4] end before they begin", NULL);
}

static void test_data_past_the_end_of_the_file_is_named(void **state)
{
    (void)state;
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12,
                 "m.safetensors: tensor w: data ends at byte 16", "(12 bytes)", "truncated", NULL);
}

static void test_offsets_that_disagree_with_dtype_and_shape_are_named(void **state)
{
    (void)state;
    expect_error("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 16,
                 "tensor w: data_offsets span 8 bytes but bf16 [2, 3] needs 12", NULL);
}

static void test_overlapping_tensors_are_named(void **state)
{
    (void)state;
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 12, "m.safetensors: tensors a and b overlap", NULL);
}

static void test_misaligned_data_is_refused(void **state)
{
    (void)state;
    expect_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,5]}}", 8,
                 "tensor w starts at file byte", "not a multiple of its element size", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_good_header_parses_with_tensors_sorted_by_name),
        cmocka_unit_test(test_an_empty_header_parses_with_no_tensors),
        cmocka_unit_test(test_a_file_shorter_than_8_bytes_is_truncated),
        cmocka_unit_test(test_a_header_length_past_the_end_is_truncated),
        cmocka_unit_test(test_a_header_over_the_cap_is_refused),
        cmocka_unit_test(test_invalid_json_is_named),
        cmocka_unit_test(test_a_duplicate_tensor_name_is_invalid_json),
        cmocka_unit_test(test_metadata_that_is_not_an_object_is_refused),
        cmocka_unit_test(test_an_entry_that_is_not_an_object_is_named),
        cmocka_unit_test(test_a_missing_or_unknown_dtype_is_named),
        cmocka_unit_test(test_a_bad_shape_is_named),
        cmocka_unit_test(test_a_shape_whose_size_overflows_is_refused),
        cmocka_unit_test(test_bad_data_offsets_are_named),
        cmocka_unit_test(test_data_past_the_end_of_the_file_is_named),
        cmocka_unit_test(test_offsets_that_disagree_with_dtype_and_shape_are_named),
        cmocka_unit_test(test_overlapping_tensors_are_named),
        cmocka_unit_test(test_misaligned_data_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
