/* store/db.h — the database as s1ctl and s1d share it: which server to reach,
 * whether its schema is the one this binary was built for, the migration
 * runner, and one-line errors from libpq. Small and stable: the queue
 * protocol (store/queue.h) and s1ctl's statements build on it. */
#ifndef S1_DB_H
#define S1_DB_H

#include <libpq-fe.h>

#include "cleanup.h"
#include "err.h"

/* s1_db_check_schema's answer when the server was reached but its schema is
 * missing, older or newer than this binary (err says which command fixes it). */
enum { S1_DB_SCHEMA_MISMATCH = -2 };

/* The conninfo to use: the --db flag when given (not NULL), else
 * $DATABASE_URL, else "" (libpq's PG* environment and defaults). */
const char *s1_db_conninfo(const char *flag);

/* Connects (blocking) with s1_db_conninfo(flag). NULL with err set when the
 * server cannot be reached; the message names the server and the fix. */
PGconn *s1_db_connect(const char *flag, s1_err *err);

/* The schema version this binary expects: the number of the last migration
 * compiled into it. */
int s1_db_schema_target(void);

/* The version of the connected database's schema: 0 when it has no schema s1.
 * -1 with err set when the query fails. */
int s1_db_schema_version(PGconn *c, int *version, s1_err *err);

/* 0 when the schema is exactly s1_db_schema_target(); S1_DB_SCHEMA_MISMATCH
 * (missing or older: "run `s1ctl migrate`"; newer: upgrade the binary); -1 when
 * the query fails. */
int s1_db_check_schema(PGconn *c, s1_err *err);

/* Applies the compiled-in migrations the database lacks, in order, each in
 * its own transaction, under an advisory lock so concurrent runners apply each
 * one once. *applied (may be NULL) gets how many were applied now. Fails on a
 * schema newer than this binary. */
int s1_db_migrate(PGconn *c, int *applied, s1_err *err);

/* Takes worker name for this session, for as long as c stays open: -1 with
 * err naming the live daemon that has it (two daemons under one name would
 * share an s1.workers row and each other's fenced completions). */
int s1_db_hold_worker_name(PGconn *c, const char *name, s1_err *err);

/* Fills err with "what: the server's message" (first line of a failed result,
 * or of the connection's error when r is NULL) and returns -1. */
__attribute__((format(printf, 4, 5))) int s1_db_errf(s1_err *err, PGconn *c, const PGresult *r,
                                                     const char *fmt, ...);

/* Runs sql with text parameters (NULL = SQL NULL). Returns the result when its
 * status is COMMAND_OK or TUPLES_OK; otherwise NULL with err = "what: message". */
PGresult *s1_db_exec(PGconn *c, const char *what, const char *sql, int n_params,
                     const char *const *params, s1_err *err);

/* Runs a statement that returns no rows (BEGIN, COMMIT, NOTIFY...); 0 or -1. */
int s1_db_run(PGconn *c, const char *what, const char *sql, int n_params, const char *const *params,
              s1_err *err);

static inline void s1_db_finishp(PGconn **c)
{
    if (*c) PQfinish(*c);
}
static inline void s1_db_clearp(PGresult **r)
{
    if (*r) PQclear(*r);
}
#define _cleanup_pgconn_   _cleanup_(s1_db_finishp)
#define _cleanup_pgresult_ _cleanup_(s1_db_clearp)

#endif
