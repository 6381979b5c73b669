#include "pgtest.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void fail(const char *what, PGconn *c)
{
    fprintf(stderr, "pgtest: %s: %s", what, c ? PQerrorMessage(c) : "?\n");
    printf("Bail out! pgtest: %s\n", what);
    exit(1);
}

void pgtest_exec(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) fail("connect", c);
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgtest: %s: %s", sql, PQresultErrorMessage(r));
        fail("exec", c);
    }
    PQclear(r);
    PQfinish(c);
}

void pgtest_fresh_db(const char *prefix, char *out, size_t cap)
{
    static int counter;
    const char *host = getenv("S1_TEST_PGHOST");
    const char *user = getenv("S1_TEST_PGUSER");
    if (!host) {
        printf("1..0 # SKIP S1_TEST_PGHOST is not set: run the suite through tests/run\n");
        exit(0);
    }
    if (!user) user = "s1";
    char name[128], admin[512], sql[256];
    snprintf(name, sizeof name, "%s_%d_%d", prefix, (int)getpid(), counter++);
    snprintf(admin, sizeof admin, "host=%s user=%s dbname=postgres", host, user);
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
    pgtest_exec(admin, sql);
    snprintf(out, cap, "host=%s user=%s dbname=%s", host, user, name);
}
