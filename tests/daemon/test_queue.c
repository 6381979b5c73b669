/* store/queue.c without a database: the parameters its statements carry
 * (arrays, JSON of results, token ids as hex), their names, the bounds of a
 * completion batch and the UTF-8 repair of decoded text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue.h"

static const char *const QUEUES[] = {"plain", "with \"quote\"", "back\\slash"};
static const s1_queue_worker WORKER = {
    .worker = "w1", .model = "tiny", .queues = QUEUES, .n_queues = 3, .lease_ms = 1500};

static void test_valid_utf8_is_kept_byte_for_byte(void **state)
{
    (void)state;
    const char *s = "plain, é, 数学, 🙂";
    char *out = s1_queue_utf8(s);
    assert_string_equal(out, s);
    free(out);
}

static void test_invalid_utf8_becomes_replacement_characters(void **state)
{
    (void)state;
    /* A cut 3-byte character at the end, a stray continuation byte, an
     * overlong encoding of '/', a surrogate. */
    char *out = s1_queue_utf8("a\xE6\x95"
                              "b\x80"
                              "c\xC0\xAF"
                              "d\xED\xA0\x80");
    assert_string_equal(out, "a\xEF\xBF\xBD\xEF\xBF\xBD"
                             "b\xEF\xBF\xBD"
                             "c\xEF\xBF\xBD\xEF\xBF\xBD"
                             "d\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    free(out);
}

static void test_claim_passes_queue_names_as_an_escaped_array(void **state)
{
    (void)state;
    s1_queue_stmt s;
    assert_int_equal(s1_queue_claim(&s, &WORKER, 7), 0);
    assert_int_equal(s.n_params, 5);
    assert_string_equal(s.params[0], "w1");
    assert_string_equal(s.params[1], "1500");
    assert_string_equal(s.params[2], "{\"plain\",\"with \\\"quote\\\"\",\"back\\\\slash\"}");
    assert_string_equal(s.params[3], "tiny");
    assert_string_equal(s.params[4], "7");
    assert_non_null(strstr(s.sql, "SKIP LOCKED"));
    s1_queue_stmt_clear(&s);
}

static void test_renew_is_fenced_by_id_attempt_and_worker(void **state)
{
    (void)state;
    s1_queue_held h[] = {{.id = 5, .attempt = 1}, {.id = 9000000000LL, .attempt = 3}};
    s1_queue_stmt s;
    assert_int_equal(s1_queue_renew(&s, &WORKER, h, 2), 0);
    assert_string_equal(s.params[2], "{5,9000000000}");
    assert_string_equal(s.params[3], "{1,3}");
    assert_non_null(strstr(s.sql, "j.worker = $1"));
    assert_non_null(strstr(s.sql, "j.attempt = h.attempt"));
    s1_queue_stmt_clear(&s);
}

static void test_complete_writes_results_only_for_succeeded_jobs(void **state)
{
    (void)state;
    int32_t prompt[] = {1, 2}, gen[] = {7};
    s1_queue_sample x = {.trace = "bad \xFF byte",
                         .answer = "4",
                         .extracted_answer = "4",
                         .grade = 1,
                         .majority = true,
                         .votes = 1,
                         .stop_reason = "eos",
                         .prompt_ids = prompt,
                         .n_prompt = 2,
                         .token_ids = gen,
                         .n_tokens = 1};
    s1_queue_done d[] = {
        {.id = 1, .attempt = 1, .end = S1_QUEUE_SUCCEEDED, .samples = &x, .n_samples = 1},
        {.id = 2,
         .attempt = 2,
         .end = S1_QUEUE_FAILED,
         .error = "refused",
         .samples = &x,
         .n_samples = 1}};
    s1_queue_origin o = {.model = "tiny",
                         .backend = "cpu",
                         .gpus = 0,
                         .fingerprint = "sha256:ab",
                         .version = "0.1.0"};
    s1_queue_stmt s;
    s1_err err = {0};
    assert_int_equal(s1_queue_complete(&s, &WORKER, &o, d, 2, &err), 0);
    assert_int_equal(s.n_params, 8);
    assert_string_equal(s.params[6], "sha256:ab");
    assert_string_equal(s.params[7], "0.1.0");
    assert_non_null(strstr(s.params[5], "\"majority\":true,\"votes\":1"));
    assert_non_null(strstr(s.params[1], "\"state\":\"failed\""));
    assert_non_null(strstr(s.params[1], "\"error\":\"refused\""));
    assert_non_null(strstr(s.params[5], "\"job_id\":1"));
    assert_null(strstr(s.params[5], "\"job_id\":2"));
    /* Ids as hex of their stored bytes: 4 each, little-endian. */
    assert_non_null(strstr(s.params[5], "\"prompt_ids\":\"0100000002000000\""));
    assert_non_null(strstr(s.params[5], "\"token_ids\":\"07000000\""));
    assert_non_null(strstr(s.params[5], "bad \xEF\xBF\xBD byte"));
    assert_non_null(strstr(s.params[5], "\"grade\":true"));
    s1_queue_stmt_clear(&s);
}

static void test_negative_ids_are_written_as_their_32_bit_pattern(void **state)
{
    (void)state;
    int32_t ids[] = {-1, 151643, INT32_MIN};
    s1_queue_sample x = {.grade = -1, .token_ids = ids, .n_tokens = 3};
    s1_queue_done d = {
        .id = 3, .attempt = 1, .end = S1_QUEUE_SUCCEEDED, .samples = &x, .n_samples = 1};
    s1_queue_origin o = {.model = "tiny", .backend = "cpu"};
    s1_queue_stmt s;
    s1_err err = {0};
    assert_int_equal(s1_queue_complete(&s, &WORKER, &o, &d, 1, &err), 0);
    assert_non_null(strstr(s.params[5], "\"token_ids\":\"ffffffff5b50020000000080\""));
    assert_non_null(strstr(s.params[5], "\"prompt_ids\":\"\""));
    s1_queue_stmt_clear(&s);
}

/* A finished job of a 16k-token trace: ~64 KB of text and 16k ids. */
static size_t long_trace_bytes(void)
{
    static char trace[65536];
    static int32_t ids[16384];
    memset(trace, 'a', sizeof trace - 1);
    s1_queue_sample x = {.trace = trace, .answer = "4", .token_ids = ids, .n_tokens = 16384};
    s1_queue_done d = {.end = S1_QUEUE_SUCCEEDED, .samples = &x, .n_samples = 1};
    return s1_queue_done_bytes(&d);
}

static void test_a_completion_batch_of_long_traces_is_cut_by_bytes(void **state)
{
    (void)state;
    size_t job = long_trace_bytes();
    assert_true(job > 65535 + 8 * 16384);
    int n = 0;
    size_t bytes = 0;
    while (n < 50 && !s1_queue_batch_full(n, bytes, job))
        n++, bytes += job;
    assert_true(n >= 1 && n < 50);
    assert_true(bytes <= S1_QUEUE_BATCH_BYTES);
}

static void test_a_completion_batch_of_small_results_is_cut_by_count(void **state)
{
    (void)state;
    assert_false(s1_queue_batch_full(S1_QUEUE_BATCH_JOBS - 1, 100000, 400));
    assert_true(s1_queue_batch_full(S1_QUEUE_BATCH_JOBS, 100000, 400));
}

static void test_one_job_larger_than_a_batch_still_goes_alone(void **state)
{
    (void)state;
    assert_false(s1_queue_batch_full(0, 0, 10 * S1_QUEUE_BATCH_BYTES));
    assert_true(s1_queue_batch_full(1, 10 * S1_QUEUE_BATCH_BYTES, 64));
}

static void test_every_statement_is_prepared_under_its_own_name(void **state)
{
    (void)state;
    s1_queue_held h = {.id = 1, .attempt = 1};
    s1_queue_figures f = {.host = "h", .version = "v", .backend = "cpu", .state = "running"};
    s1_queue_stmt s[5];
    s1_queue_claim(&s[0], &WORKER, 1);
    s1_queue_renew(&s[1], &WORKER, &h, 1);
    s1_queue_progress(&s[2], &WORKER, &h, 1);
    s1_queue_reap(&s[3]);
    s1_queue_worker_beat(&s[4], &WORKER, &f);
    for (int i = 0; i < 5; i++) {
        assert_non_null(s[i].name);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(s[i].name, s[k].name);
    }
    for (int i = 0; i < 5; i++)
        s1_queue_stmt_clear(&s[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_utf8_is_kept_byte_for_byte),
        cmocka_unit_test(test_invalid_utf8_becomes_replacement_characters),
        cmocka_unit_test(test_claim_passes_queue_names_as_an_escaped_array),
        cmocka_unit_test(test_renew_is_fenced_by_id_attempt_and_worker),
        cmocka_unit_test(test_complete_writes_results_only_for_succeeded_jobs),
        cmocka_unit_test(test_negative_ids_are_written_as_their_32_bit_pattern),
        cmocka_unit_test(test_a_completion_batch_of_long_traces_is_cut_by_bytes),
        cmocka_unit_test(test_a_completion_batch_of_small_results_is_cut_by_count),
        cmocka_unit_test(test_one_job_larger_than_a_batch_still_goes_alone),
        cmocka_unit_test(test_every_statement_is_prepared_under_its_own_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
