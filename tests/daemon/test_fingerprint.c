/* daemon/fingerprint.c on model directories written here: what changes the
 * fingerprint (config, a header, a file's size, a new shard), what does not
 * (the weights' bytes, the listing order), and one line naming the file for
 * every directory it cannot fingerprint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fingerprint.h"

static char dir[200];

static void write_file(const char *name, const void *bytes, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

/* A shard: the 8-byte little-endian header length, the header, the weights. */
static void write_shard(const char *name, const char *header, const char *weights)
{
    size_t h = strlen(header), w = strlen(weights);
    unsigned char *b = malloc(8 + h + w);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    memcpy(b + 8 + h, weights, w);
    write_file(name, b, 8 + h + w);
    free(b);
}

static void fingerprint(char out[S1D_FINGERPRINT_LEN])
{
    s1_err err = {{0}};
    if (s1d_fingerprint(dir, out, &err) < 0) fail_msg("%s", err.msg);
    assert_int_equal(strncmp(out, "sha256:", 7), 0);
    assert_int_equal(strlen(out), S1D_FINGERPRINT_LEN - 1);
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/s1fp.XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    if (!mkdtemp(dir)) return -1;
    write_file("config.json", "{\"model_type\": \"qwen2\"}", 23);
    write_shard("model.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static void test_weights_bytes_do_not_change_it_but_headers_config_and_shards_do(void **state)
{
    (void)state;
    char a[S1D_FINGERPRINT_LEN], b[S1D_FINGERPRINT_LEN];
    const char *header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    fingerprint(a);
    write_shard("model.safetensors", header, "wxyz");
    fingerprint(b);
    assert_string_equal(a, b);
    write_shard("model.safetensors", header, "wxyz!");
    fingerprint(b);
    assert_string_not_equal(a, b);
    write_shard("model.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "wxyz");
    fingerprint(b);
    assert_string_not_equal(a, b);
    write_shard("model.safetensors", header, "abcd");
    fingerprint(b);
    assert_string_equal(a, b);
    write_file("config.json", "{\"model_type\": \"qwen3\"}", 23);
    fingerprint(b);
    assert_string_not_equal(a, b);
    write_file("config.json", "{\"model_type\": \"qwen2\"}", 23);
    write_shard("extra.safetensors", "{}", "");
    fingerprint(b);
    assert_string_not_equal(a, b);
    char path[256];
    snprintf(path, sizeof path, "%s/extra.safetensors", dir);
    unlink(path);
    fingerprint(b);
    assert_string_equal(a, b);
}

/* err must name the file and say what is wrong with it. */
static void expect_refused(const char *file, const char *what)
{
    char out[S1D_FINGERPRINT_LEN];
    s1_err err = {{0}};
    assert_int_equal(s1d_fingerprint(dir, out, &err), -1);
    assert_non_null(strstr(err.msg, file));
    if (!strstr(err.msg, what)) fail_msg("'%s' not in '%s'", what, err.msg);
}

static void test_a_directory_it_cannot_read_is_named_with_the_file(void **state)
{
    (void)state;
    unsigned char cut[8] = {200, 0, 0, 0, 0, 0, 0, 0}; /* says 200 header bytes, has none */
    write_file("cut.safetensors", cut, sizeof cut);
    expect_refused("cut.safetensors", "ends after 0 bytes, before the 200 the header says");
    write_file("cut.safetensors", cut, 3);
    expect_refused("cut.safetensors", "shorter than a safetensors header");
    char path[256];
    snprintf(path, sizeof path, "%s/cut.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    expect_refused(dir, "no *.safetensors file");
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    expect_refused("config.json", "No such file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_weights_bytes_do_not_change_it_but_headers_config_and_shards_do, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_directory_it_cannot_read_is_named_with_the_file,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
