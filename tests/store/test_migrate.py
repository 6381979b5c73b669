"""s1ctl migrate and the schema version check every DB command makes."""
import json
import os
import subprocess

import psycopg2

from ctltest import SOURCE, binary, fresh_db, one_error_line, psql, s1ctl
from s1test import tap_main, wait_for

N_MIGRATIONS = len([f for f in os.listdir(os.path.join(SOURCE, "migrations")) if f.endswith(".sql")])


def test_commands_refuse_a_database_without_the_schema_and_name_the_fix():
    db = fresh_db("mig")
    for argv in (["list"], ["show", "1"], ["submit", "--budget", "10", os.path.join(SOURCE, "examples", "problem.txt")]):
        p = s1ctl(*argv, db=db)
        assert p.returncode == 4, (argv, p.returncode)
        one_error_line(p, "no s1 schema", "run `s1ctl migrate`")


def test_migrate_applies_every_migration_then_is_a_no_op():
    db = fresh_db("mig")
    first = s1ctl("migrate", "--json", db=db)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"applied": N_MIGRATIONS, "version": N_MIGRATIONS}
    again = s1ctl("migrate", db=db)
    assert again.returncode == 0
    assert "0 migrations applied now" in again.stdout
    rows = psql(db, "SELECT version FROM s1.schema_migrations ORDER BY version")
    assert [int(r[0]) for r in rows] == list(range(1, N_MIGRATIONS + 1))
    assert s1ctl("list", db=db).returncode == 0


def test_concurrent_migrates_apply_each_migration_once():
    db = fresh_db("mig")
    # Hold the runners' advisory lock so all four start before any applies.
    holder = psycopg2.connect(db)
    holder.autocommit = True
    holder.cursor().execute("SELECT pg_advisory_lock(5314000001)")
    runs = [subprocess.Popen([binary("s1ctl"), "migrate", "--json", "--db", db], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(4)]
    wait_for(lambda: psql(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
             == [["4"]], what="four migrate runs waiting on the lock")
    holder.cursor().execute("SELECT pg_advisory_unlock(5314000001)")
    holder.close()
    outs = [p.communicate(timeout=60) for p in runs]
    assert all(p.returncode == 0 for p in runs), [e for _, e in outs]
    assert sum(json.loads(o)["applied"] for o, _ in outs) == N_MIGRATIONS
    rows = psql(db, "SELECT version, count(*) FROM s1.schema_migrations GROUP BY version")
    assert len(rows) == N_MIGRATIONS and all(r[1] == "1" for r in rows)


def older_db():
    """A database migrated by an s1ctl that knew only 0001."""
    db = fresh_db("mig")
    sql = open(os.path.join(SOURCE, "migrations", "0001_init.sql")).read()
    psql(db, "BEGIN; CREATE SCHEMA s1; CREATE TABLE s1.schema_migrations "
             "(version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
             + sql + "; INSERT INTO s1.schema_migrations (version, name) VALUES (1, 'init'); COMMIT")
    return db


def test_an_older_schema_is_refused_naming_the_fix_and_migrate_upgrades_it():
    db = older_db()
    p = s1ctl("list", db=db)
    assert p.returncode == 4
    one_error_line(p, "schema version 1, older than", "run `s1ctl migrate`")
    up = s1ctl("migrate", "--json", db=db)
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["applied"] == N_MIGRATIONS - 1
    assert s1ctl("list", db=db).returncode == 0


def test_the_upgrade_makes_queue_names_no_daemon_could_serve_servable():
    db = older_db()
    bad = ["a,b", " gpu ", "tab\tq", "", "v", "ok name", "x" * 300]
    for q in bad:
        psql(db, f"INSERT INTO s1.jobs (problem, queue) VALUES ('p', '{q}')")
    assert s1ctl("migrate", db=db).returncode == 0
    rows = [r[0] for r in psql(db, "SELECT queue FROM s1.jobs ORDER BY id")]
    assert rows == ["a_b", "gpu", "tab_q", "default", "v", "ok name", "x" * 50], rows


def test_the_upgrade_keeps_token_ids_of_earlier_results_readable():
    db = older_db()
    jid = psql(db, "INSERT INTO s1.jobs (problem, state) VALUES ('p', 'succeeded') RETURNING id")[0][0]
    psql(db, "INSERT INTO s1.results (job_id, attempt, sample, prompt_ids, token_ids) "
             f"VALUES ({jid}, 1, 0, '{{151644,-7}}', '{{}}')")
    assert s1ctl("migrate", db=db).returncode == 0
    assert psql(db, "SELECT prompt_ids::text, token_ids::text FROM s1.result_ids") == [["{151644,-7}", "{}"]]
    assert psql(db, "SELECT encode(prompt_ids, 'hex') FROM s1.results") == [["5c500200f9ffffff"]]


def test_a_newer_schema_is_a_clear_error_for_commands_and_migrate():
    db = fresh_db("mig")
    assert s1ctl("migrate", db=db).returncode == 0
    psql(db, "INSERT INTO s1.schema_migrations (version, name) VALUES (9999, 'future')")
    for argv in (["list"], ["migrate"]):
        p = s1ctl(*argv, db=db)
        assert p.returncode == 4, argv
        one_error_line(p, "newer than", "upgrade s1ctl and s1d")


def test_an_unreachable_database_is_exit_3_with_one_line():
    p = s1ctl("list", db="host=/nonexistent/s1 dbname=x connect_timeout=2")
    assert p.returncode == 3
    one_error_line(p, "cannot connect to the database", "--db CONNINFO or DATABASE_URL")
    assert s1ctl("migrate", db="host=/nonexistent/s1 dbname=x").returncode == 3


def test_database_url_is_used_without_db_and_db_wins_over_it():
    db = fresh_db("mig")
    assert s1ctl("migrate", env={"DATABASE_URL": db}).returncode == 0
    assert s1ctl("list", env={"DATABASE_URL": db}).returncode == 0
    bad = "host=/nonexistent/s1 dbname=x"
    assert s1ctl("list", db=db, env={"DATABASE_URL": bad}).returncode == 0
    assert s1ctl("list", env={"DATABASE_URL": bad}).returncode == 3


def test_migrate_rejects_unknown_flags_and_arguments():
    p = s1ctl("migrate", "--force")
    assert p.returncode == 2
    one_error_line(p, "unknown flag --force")
    assert s1ctl("migrate", "extra").returncode == 2


tap_main(globals())
