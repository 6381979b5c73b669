#include "db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "migrations.h"
#include "s1_config.h"

/* Copies the first line of msg into buf: libpq messages run over several
 * lines (hints indented with tabs), and s1_err is one line. */
static const char *first_line(const char *msg, char *buf, size_t cap)
{
    if (!msg || !*msg) return "unknown error";
    size_t n = strcspn(msg, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(buf, msg, n);
    buf[n] = '\0';
    return buf;
}

int s1_db_errf(s1_err *err, PGconn *c, const PGresult *r, const char *fmt, ...)
{
    if (!err) return -1;
    char what[256], line[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg && r) msg = PQresultErrorMessage(r);
    if ((!msg || !*msg) && c) msg = PQerrorMessage(c);
    return s1_errf(err, "%s: %s", what, first_line(msg, line, sizeof line));
}

const char *s1_db_conninfo(const char *flag)
{
    if (flag) return flag;
    const char *url = getenv("DATABASE_URL");
    return url ? url : "";
}

/* Server notices ("schema s1 already exists, skipping") are not the user's
 * business; keep them for debugging. */
static void notice_to_debug_log(void *arg, const char *msg)
{
    (void)arg;
    char line[400];
    log_debug("postgres: %s", first_line(msg, line, sizeof line));
}

PGconn *s1_db_connect(const char *flag, s1_err *err)
{
    PGconn *c = PQconnectdb(s1_db_conninfo(flag));
    if (!c) {
        s1_errf(err, "cannot connect to the database: out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char line[400];
        s1_errf(err, "cannot connect to the database: %s (set --db CONNINFO or DATABASE_URL)",
                first_line(PQerrorMessage(c), line, sizeof line));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, notice_to_debug_log, NULL);
    return c;
}

PGresult *s1_db_exec(PGconn *c, const char *what, const char *sql, int n_params,
                     const char *const *params, s1_err *err)
{
    PGresult *r = PQexecParams(c, sql, n_params, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    s1_db_errf(err, c, r, "%s", what);
    PQclear(r);
    return NULL;
}

int s1_db_run(PGconn *c, const char *what, const char *sql, int n_params, const char *const *params,
              s1_err *err)
{
    PGresult *r = s1_db_exec(c, what, sql, n_params, params, err);
    if (!r) return -1;
    PQclear(r);
    return 0;
}

int s1_db_schema_target(void)
{
    return s1_n_migrations;
}

/* Whether the bookkeeping table exists; a database without it has no schema. */
static const char SQL_HAS_SCHEMA[] = "SELECT to_regclass('s1.schema_migrations') IS NOT NULL";

/* The schema's version is the last migration applied (they apply in order). */
static const char SQL_SCHEMA_VERSION[] =
    "SELECT coalesce(max(version), 0) FROM s1.schema_migrations";

int s1_db_schema_version(PGconn *c, int *version, s1_err *err)
{
    _cleanup_pgresult_ PGresult *has =
        s1_db_exec(c, "reading the schema version", SQL_HAS_SCHEMA, 0, NULL, err);
    if (!has) return -1;
    if (strcmp(PQgetvalue(has, 0, 0), "t")) {
        *version = 0;
        return 0;
    }
    _cleanup_pgresult_ PGresult *r =
        s1_db_exec(c, "reading the schema version", SQL_SCHEMA_VERSION, 0, NULL, err);
    if (!r) return -1;
    *version = atoi(PQgetvalue(r, 0, 0));
    return 0;
}

/* A newer schema than ours means a newer s1ctl/s1d migrated it: we may not
 * understand its rows, and cannot downgrade it. */
static int newer_schema(PGconn *c, int version, s1_err *err)
{
    s1_errf(err,
            "database %s has schema version %d, newer than this binary's %d: "
            "upgrade s1ctl and s1d (this is s1 " S1_VERSION ")",
            PQdb(c), version, s1_db_schema_target());
    return S1_DB_SCHEMA_MISMATCH;
}

int s1_db_check_schema(PGconn *c, s1_err *err)
{
    int version;
    if (s1_db_schema_version(c, &version, err) < 0) return -1;
    int target = s1_db_schema_target();
    if (version == target) return 0;
    if (version > target) return newer_schema(c, version, err);
    if (version == 0)
        s1_errf(err, "database %s has no s1 schema: run `s1ctl migrate`", PQdb(c));
    else
        s1_errf(err, "database %s has schema version %d, older than %d: run `s1ctl migrate`",
                PQdb(c), version, target);
    return S1_DB_SCHEMA_MISMATCH;
}

/* One key for every runner of every s1 binary: they queue up on it, so each
 * migration is applied once even when two `s1ctl migrate` start together. */
static const char SQL_LOCK[] = "SELECT pg_advisory_lock(5314000001)";
static const char SQL_UNLOCK[] = "SELECT pg_advisory_unlock(5314000001)";

/* The bookkeeping table, created in the transaction of the first migration so
 * a failed first migration leaves the database as it was. */
static const char SQL_BOOTSTRAP[] = "CREATE SCHEMA IF NOT EXISTS s1;"
                                    "CREATE TABLE IF NOT EXISTS s1.schema_migrations ("
                                    "  version int PRIMARY KEY,"
                                    "  name text NOT NULL,"
                                    "  applied_at timestamptz NOT NULL DEFAULT now())";

/* Recorded in the migration's own transaction: applied and recorded, or neither. */
static const char SQL_RECORD[] = "INSERT INTO s1.schema_migrations (version, name) VALUES ($1, $2)";

/* Runs a script of several statements (no parameters: migrations are our own text). */
static int run_script(PGconn *c, const char *sql, const char *what, s1_err *err)
{
    _cleanup_pgresult_ PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return 0;
    return s1_db_errf(err, c, r, "%s", what);
}

/* Applies one migration and records it, in one transaction. */
static int apply_one(PGconn *c, const s1_migration *m, s1_err *err)
{
    char what[128], version[16];
    snprintf(what, sizeof what, "migration %04d_%s", m->version, m->name);
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[] = {version, m->name};
    if (run_script(c, "BEGIN", what, err) < 0) return -1;
    if (run_script(c, SQL_BOOTSTRAP, what, err) < 0 || run_script(c, m->sql, what, err) < 0 ||
        s1_db_run(c, what, SQL_RECORD, 2, params, err) < 0 ||
        run_script(c, "COMMIT", what, err) < 0) {
        PQclear(PQexec(c, "ROLLBACK"));
        return -1;
    }
    log_info("applied %s", what);
    return 0;
}

/* The part of s1_db_migrate that runs under the lock. */
static int migrate_locked(PGconn *c, int *applied, s1_err *err)
{
    int version;
    if (s1_db_schema_version(c, &version, err) < 0) return -1;
    if (version > s1_db_schema_target()) return newer_schema(c, version, err);
    for (int i = version; i < s1_n_migrations; i++) {
        if (apply_one(c, &s1_migrations[i], err) < 0) return -1;
        (*applied)++;
    }
    return 0;
}

int s1_db_migrate(PGconn *c, int *applied, s1_err *err)
{
    int n = 0;
    if (s1_db_run(c, "taking the migration lock", SQL_LOCK, 0, NULL, err) < 0) return -1;
    int rc = migrate_locked(c, &n, err);
    PQclear(PQexec(c, SQL_UNLOCK));
    if (applied) *applied = n;
    return rc;
}

/* A worker name is held by a session-level advisory lock (class 5314, key the
 * name's hash): it goes with the session, so a crashed daemon's name is free
 * the moment its connection closes, with no stale row to time out. */
static const char SQL_HOLD_NAME[] = "SELECT pg_try_advisory_lock(5314, hashtext($1))";
static const char SQL_NAME_HOLDER[] = "SELECT coalesce(host, '?'), coalesce(pid::text, '?'),"
                                      "       to_char(heartbeat_at, 'YYYY-MM-DD HH24:MI:SS TZ')"
                                      "  FROM s1.workers WHERE name = $1";

int s1_db_hold_worker_name(PGconn *c, const char *name, s1_err *err)
{
    _cleanup_pgresult_ PGresult *r = s1_db_exec(c, "worker name", SQL_HOLD_NAME, 1, &name, err);
    if (!r) return -1;
    if (!strcmp(PQgetvalue(r, 0, 0), "t")) return 0;
    _cleanup_pgresult_ PGresult *h = s1_db_exec(c, "worker name", SQL_NAME_HOLDER, 1, &name, err);
    if (h && PQntuples(h) == 1)
        return s1_errf(
            err,
            "worker name \"%s\" is in use by a live s1d (host %s, pid %s, last heartbeat "
            "%s): give each daemon its own worker-name",
            name, PQgetvalue(h, 0, 0), PQgetvalue(h, 0, 1), PQgetvalue(h, 0, 2));
    return s1_errf(
        err, "worker name \"%s\" is in use by a live s1d: give each daemon its own worker-name",
        name);
}
