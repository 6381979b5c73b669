/* store/db.c against the tests' PostgreSQL: connecting, the schema version
 * check, the migration runner, error lines from the server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"
#include "migrations.h"
#include "pgtest.h"

/* A connection to a new, empty database. */
static PGconn *fresh(void)
{
    char conninfo[512];
    pgtest_fresh_db("s1db", conninfo, sizeof conninfo);
    s1_err err = {{0}};
    PGconn *c = s1_db_connect(conninfo, &err);
    if (!c) fail_msg("%s", err.msg);
    return c;
}

static void test_database_without_schema_is_refused_naming_the_fix(void **state)
{
    (void)state;
    _cleanup_pgconn_ PGconn *c = fresh();
    s1_err err = {{0}};
    assert_int_equal(s1_db_check_schema(c, &err), S1_DB_SCHEMA_MISMATCH);
    assert_non_null(strstr(err.msg, "no s1 schema"));
    assert_non_null(strstr(err.msg, "run `s1ctl migrate`"));
}

static void test_migrate_applies_every_migration_once(void **state)
{
    (void)state;
    _cleanup_pgconn_ PGconn *c = fresh();
    s1_err err = {{0}};
    int applied = -1, version = -1;
    assert_int_equal(s1_db_migrate(c, &applied, &err), 0);
    assert_int_equal(applied, s1_db_schema_target());
    assert_int_equal(s1_db_migrate(c, &applied, &err), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(s1_db_schema_version(c, &version, &err), 0);
    assert_int_equal(version, s1_db_schema_target());
    assert_int_equal(s1_db_check_schema(c, &err), 0);
}

/* Runs sql (several statements, no parameters) and fails the test on error. */
static void run_or_fail(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s", PQresultErrorMessage(r));
    PQclear(r);
}

static void test_older_schema_is_refused_then_upgraded(void **state)
{
    (void)state;
    _cleanup_pgconn_ PGconn *c = fresh();
    s1_err err = {{0}};
    /* The database as an s1 that knew only the first migration left it. */
    run_or_fail(c, "CREATE SCHEMA s1; CREATE TABLE s1.schema_migrations (version int PRIMARY KEY,"
                   " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
    run_or_fail(c, s1_migrations[0].sql);
    run_or_fail(c, "INSERT INTO s1.schema_migrations (version, name) VALUES (1, 'init')");
    assert_int_equal(s1_db_check_schema(c, &err), S1_DB_SCHEMA_MISMATCH);
    char want[128];
    snprintf(want, sizeof want, "schema version 1, older than %d: run `s1ctl migrate`",
             s1_db_schema_target());
    assert_non_null(strstr(err.msg, want));
    int applied = 0;
    assert_int_equal(s1_db_migrate(c, &applied, &err), 0);
    assert_int_equal(applied, s1_db_schema_target() - 1);
    assert_int_equal(s1_db_check_schema(c, &err), 0);
}

static void test_newer_schema_is_refused_by_check_and_by_migrate(void **state)
{
    (void)state;
    _cleanup_pgconn_ PGconn *c = fresh();
    s1_err err = {{0}};
    assert_int_equal(s1_db_migrate(c, NULL, &err), 0);
    assert_int_equal(s1_db_run(c, "future",
                               "INSERT INTO s1.schema_migrations (version, name) VALUES (999, 'x')",
                               0, NULL, &err),
                     0);
    assert_int_equal(s1_db_check_schema(c, &err), S1_DB_SCHEMA_MISMATCH);
    assert_non_null(strstr(err.msg, "version 999, newer than"));
    assert_non_null(strstr(err.msg, "upgrade s1ctl and s1d"));
    memset(&err, 0, sizeof err);
    assert_int_equal(s1_db_migrate(c, NULL, &err), S1_DB_SCHEMA_MISMATCH);
    assert_non_null(strstr(err.msg, "newer"));
}

static void test_unreachable_server_is_one_line_naming_the_fix(void **state)
{
    (void)state;
    s1_err err = {{0}};
    assert_null(s1_db_connect("host=/nonexistent/s1test dbname=x connect_timeout=2", &err));
    assert_non_null(strstr(err.msg, "cannot connect to the database"));
    assert_non_null(strstr(err.msg, "--db CONNINFO or DATABASE_URL"));
    assert_null(strchr(err.msg, '\n'));
}

static void test_conninfo_is_the_flag_then_database_url_then_libpq_defaults(void **state)
{
    (void)state;
    setenv("DATABASE_URL", "postgresql:///fromenv", 1);
    assert_string_equal(s1_db_conninfo("dbname=flag"), "dbname=flag");
    assert_string_equal(s1_db_conninfo(NULL), "postgresql:///fromenv");
    unsetenv("DATABASE_URL");
    assert_string_equal(s1_db_conninfo(NULL), "");
}

static void test_failed_statement_names_what_and_the_server_message(void **state)
{
    (void)state;
    _cleanup_pgconn_ PGconn *c = fresh();
    s1_err err = {{0}};
    assert_null(s1_db_exec(c, "reading the nothing", "SELECT * FROM no_such_table", 0, NULL, &err));
    assert_string_equal(err.msg, "reading the nothing: relation \"no_such_table\" does not exist");
}

static void test_bad_policy_cannot_be_stored(void **state)
{
    (void)state;
    _cleanup_pgconn_ PGconn *c = fresh();
    s1_err err = {{0}};
    assert_int_equal(s1_db_migrate(c, NULL, &err), 0);
    const char *params[] = {"{\"max_think\": 5, \"min_think\": 6}"};
    assert_int_equal(s1_db_run(c, "inserting",
                               "INSERT INTO s1.jobs (problem, policy) VALUES ('p', $1::jsonb)", 1,
                               params, &err),
                     -1);
    assert_non_null(strstr(err.msg, "jobs_policy_check"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_database_without_schema_is_refused_naming_the_fix),
        cmocka_unit_test(test_migrate_applies_every_migration_once),
        cmocka_unit_test(test_older_schema_is_refused_then_upgraded),
        cmocka_unit_test(test_newer_schema_is_refused_by_check_and_by_migrate),
        cmocka_unit_test(test_unreachable_server_is_one_line_naming_the_fix),
        cmocka_unit_test(test_conninfo_is_the_flag_then_database_url_then_libpq_defaults),
        cmocka_unit_test(test_failed_statement_names_what_and_the_server_message),
        cmocka_unit_test(test_bad_policy_cannot_be_stored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
