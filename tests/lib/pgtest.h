/* tests/lib/pgtest.h — a fresh, empty database on the throwaway PostgreSQL
 * server that tests/run started (S1_TEST_PGHOST). */
#ifndef S1_PGTEST_H
#define S1_PGTEST_H

#include <stddef.h>

/* Creates a new database named after prefix and writes its libpq conninfo to
 * out. Without S1_TEST_PGHOST the test is skipped (a TAP plan of 1..0 # SKIP) with the reason. */
void pgtest_fresh_db(const char *prefix, char *out, size_t cap);

/* Runs sql on conninfo; aborts the test with the server's message on error. */
void pgtest_exec(const char *conninfo, const char *sql);

#endif
