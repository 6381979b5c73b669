/* store/params.c's rules against the migrations' CHECKs and store's own
 * parser: each rule's boundary values are accepted by an INSERT into
 * s1.jobs and by s1_job_params_parse, and the values just past them refused
 * by both, so the table, the SQL and the C checks say the same thing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "db.h"
#include "job.h"
#include "params.h"
#include "pgtest.h"

/* A migrated database of its own. */
static PGconn *migrated(void)
{
    char conninfo[512];
    pgtest_fresh_db("s1params", conninfo, sizeof conninfo);
    s1_err err = {{0}};
    PGconn *c = s1_db_connect(conninfo, &err);
    if (!c) fail_msg("%s", err.msg);
    if (s1_db_migrate(c, NULL, &err) < 0) fail_msg("%s", err.msg);
    return c;
}

/* The JSON that holds value for rule r in its column (policy or sampling),
 * with extra (",\"min_think\": 5" or "") added to the object. */
static void json_of(const s1_param_rule *r, const char *value, const char *extra, char *out,
                    size_t cap)
{
    const char *fmt = r->home == S1_IN_LADDER ? "{\"%s\": [%s]%s}" : "{\"%s\": %s%s}";
    snprintf(out, cap, fmt, r->key, value, extra);
}

/* Inserts a job with value for r; true when the CHECKs accepted it. A
 * refusal must be a CHECK's (SQLSTATE 23514), not some other error. */
static bool sql_accepts(PGconn *c, const s1_param_rule *r, const char *value, const char *extra)
{
    char sql[512], json[256];
    if (r->home == S1_IN_COLUMN) {
        snprintf(sql, sizeof sql, "INSERT INTO s1.jobs (problem, %s) VALUES ('x', %s)", r->key,
                 value);
    } else {
        json_of(r, value, extra, json, sizeof json);
        snprintf(sql, sizeof sql, "INSERT INTO s1.jobs (problem, %s) VALUES ('x', '%s')",
                 r->home == S1_IN_SAMPLING ? "sampling" : "policy", json);
    }
    _cleanup_pgresult_ PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) return true;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!state || strcmp(state, "23514")) fail_msg("%s: %s", sql, PQerrorMessage(c));
    return false;
}

/* Whether store's parser of the policy and sampling columns takes it. */
static bool store_accepts(const s1_param_rule *r, const char *value, const char *extra)
{
    char json[256];
    json_of(r, value, extra, json, sizeof json);
    s1_job_params p;
    s1_err err = {{0}};
    bool sampling = r->home == S1_IN_SAMPLING;
    int rc = s1_job_params_parse(sampling ? NULL : json, sampling ? json : NULL, &p, &err);
    if (rc == 0) s1_job_params_free(&p);
    return rc == 0;
}

/* Both sides agree with want on value. */
static void expect(PGconn *c, const s1_param_rule *r, const char *value, bool want)
{
    if (sql_accepts(c, r, value, "") != want)
        fail_msg("the CHECK %s %s = %s", want ? "refuses" : "accepts", r->key, value);
    if (r->home != S1_IN_COLUMN && store_accepts(r, value, "") != want)
        fail_msg("store %s %s = %s", want ? "refuses" : "accepts", r->key, value);
}

/* lo and hi inside, one past each outside (the smallest step for numbers
 * that the check can see). The integer past INT64_MAX is written as text. */
static void test_every_rule_has_the_bounds_of_its_check(void **state)
{
    (void)state;
    _cleanup_pgconn_ PGconn *c = migrated();
    for (int p = S1_PARAM_NONE + 1; p < S1_PARAM_COUNT; p++) {
        const s1_param_rule *r = s1_param_rule_of((s1_param)p);
        char in_lo[48], in_hi[48], out_lo[48], out_hi[48];
        if (r->real) {
            snprintf(in_lo, sizeof in_lo, "%.6f", r->lo_open ? r->lo_real + 1e-3 : r->lo_real);
            snprintf(out_lo, sizeof out_lo, "%.6f", r->lo_open ? r->lo_real : r->lo_real - 1e-3);
            snprintf(in_hi, sizeof in_hi, "%.6f", r->hi_real);
            snprintf(out_hi, sizeof out_hi, "%.6f", r->hi_real + 1e-3);
        } else {
            snprintf(in_lo, sizeof in_lo, "%lld", r->lo);
            snprintf(out_lo, sizeof out_lo, "%lld", r->lo - 1);
            snprintf(in_hi, sizeof in_hi, "%lld", r->hi);
            if (r->hi == INT64_MAX)
                snprintf(out_hi, sizeof out_hi, "9223372036854775808");
            else
                snprintf(out_hi, sizeof out_hi, "%lld", r->hi + 1);
        }
        expect(c, r, in_lo, true);
        expect(c, r, in_hi, true);
        expect(c, r, out_lo, false);
        expect(c, r, out_hi, false);
    }
}

/* The lesser at the greater's value is accepted, one above it refused. */
static void test_every_order_is_the_order_of_its_check(void **state)
{
    (void)state;
    _cleanup_pgconn_ PGconn *c = migrated();
    for (int i = 0; i < s1_param_n_orders; i++) {
        const s1_param_rule *lesser = s1_param_rule_of(s1_param_orders[i].lesser);
        const s1_param_rule *greater = s1_param_rule_of(s1_param_orders[i].greater);
        char at[64], above[64];
        snprintf(at, sizeof at, ", \"%s\": 100", lesser->key);
        snprintf(above, sizeof above, ", \"%s\": 101", lesser->key);
        assert_true(sql_accepts(c, greater, "100", at));
        assert_true(store_accepts(greater, "100", at));
        assert_false(sql_accepts(c, greater, "100", above));
        assert_false(store_accepts(greater, "100", above));
    }
}

/* What s1ctl prints for a value out of range names the flag and the range. */
static void test_messages_name_the_flag_or_the_key_and_the_range(void **state)
{
    (void)state;
    s1_err err = {{0}};
    assert_int_equal(s1_param_check_int(S1_PARAM_SAMPLES, 0, true, &err), -1);
    assert_string_equal(err.msg, "--samples: 0 is not an integer from 1 to 1024");
    assert_int_equal(s1_param_check_real(S1_PARAM_TOP_P, 0, false, &err), -1);
    assert_string_equal(err.msg, "top_p: 0 is not a number in (0, 1]");
    assert_int_equal(s1_param_check_order(&s1_param_orders[0], 7, 5, true, &err), -1);
    assert_string_equal(err.msg, "--min-think 7 is above --budget 5");
    assert_int_equal(s1_param_check_int(S1_PARAM_PRIORITY, -1000000, true, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_rule_has_the_bounds_of_its_check),
        cmocka_unit_test(test_every_order_is_the_order_of_its_check),
        cmocka_unit_test(test_messages_name_the_flag_or_the_key_and_the_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
