"""Rows that would break a claim, the reaper or a daemon cannot be inserted
(migrations/0003_roles.sql), rows from before that migration are repaired by
it, and strings that are not UTF-8 are refused where they enter."""
import json
import os
import subprocess

from ctltest import EXAMPLE, HELD, job_count, migrated_db, one_error_line, psql, s1ctl, tempdir
from s1test import fresh_db, tap_main

DB = migrated_db("poison")


def refused(sql, constraint):
    """Asserts the statement fails on the named CHECK constraint."""
    try:
        psql(DB, sql)
    except subprocess.CalledProcessError as e:
        assert f'constraint "{constraint}"' in e.stderr, e.stderr
        return
    raise AssertionError(f"{sql!r} was stored")


def test_an_attempt_of_2147483647_is_refused_so_no_claim_can_overflow():
    refused("INSERT INTO s1.jobs (problem, attempt) VALUES ('x', 2147483647)", "jobs_attempt_bounds")


def test_a_queued_job_always_has_an_attempt_left_for_its_claim():
    refused("INSERT INTO s1.jobs (problem, attempt, max_attempts) VALUES ('x', 3, 3)",
            "jobs_queued_has_an_attempt_left")


def test_a_running_job_at_attempt_1100_of_2000_is_refused_so_the_reaper_cannot_overflow():
    refused("INSERT INTO s1.jobs (problem, state, attempt, max_attempts, worker, lease_until) "
            "VALUES ('x', 'running', 1100, 2000, 'w', now())", "jobs_max_attempts_bounds")


def test_a_running_job_without_a_lease_is_refused():
    refused("INSERT INTO s1.jobs (problem, state, attempt, worker) VALUES ('x', 'running', 1, 'w')",
            "jobs_running_has_a_lease")
    jid = int(psql(DB, "INSERT INTO s1.jobs (problem) VALUES ('x') RETURNING id")[0][0])
    refused(f"UPDATE s1.jobs SET state = 'running', attempt = 1, worker = 'w' WHERE id = {jid}",
            "jobs_running_has_a_lease")
    psql(DB, f"UPDATE s1.jobs SET state = 'running', {HELD} WHERE id = {jid}")


def test_a_whitespace_only_problem_is_refused():
    refused("INSERT INTO s1.jobs (problem) VALUES (E' \\t\\r\\n ')", "jobs_problem_not_blank")
    refused("INSERT INTO s1.jobs (problem) VALUES ('')", "jobs_problem_not_blank")


def test_max_attempts_priority_progress_and_times_are_bounded():
    for col, value, constraint in (("max_attempts", "1001", "jobs_max_attempts_bounds"),
                                   ("max_attempts", "0", "jobs_max_attempts_bounds"),
                                   ("attempt", "-1", "jobs_attempt_bounds"),
                                   ("priority", "2147483647", "jobs_priority_bounds"),
                                   ("priority", "-1000001", "jobs_priority_bounds"),
                                   ("progress_thinking", "-1", "jobs_progress_bounds"),
                                   ("progress_tokens", "-1", "jobs_progress_bounds"),
                                   ("created_at", "'-infinity'", "jobs_times_are_finite"),
                                   ("run_after", "'infinity'", "jobs_times_are_finite")):
        refused(f"INSERT INTO s1.jobs (problem, {col}) VALUES ('x', {value})", constraint)


def old_database():
    """A database as migrations 0001 and 0002 left it, before any bound."""
    db = fresh_db("poison_old")
    sql = ["CREATE SCHEMA s1", "CREATE TABLE s1.schema_migrations (version int PRIMARY KEY, name text NOT NULL, "
           "applied_at timestamptz NOT NULL DEFAULT now())"]
    for version, name in ((1, "init"), (2, "benchmarks")):
        with open(os.path.join(os.path.dirname(EXAMPLE), "..", "migrations", f"000{version}_{name}.sql")) as f:
            sql.append(f.read())
        sql.append(f"INSERT INTO s1.schema_migrations (version, name) VALUES ({version}, '{name}')")
    psql(db, "BEGIN;\n" + ";\n".join(sql) + ";\nCOMMIT")
    return db


def test_migrate_fails_the_poison_rows_already_there_and_repairs_the_rest():
    db = old_database()
    ids = [int(psql(db, f"INSERT INTO s1.jobs (problem, state, attempt, max_attempts, worker, lease_until) "
                        f"VALUES {values} RETURNING id")[0][0]) for values in (
        "('x', 'queued', 2147483647, 3, NULL, NULL)",
        "('x', 'running', 1100, 2000, 'w', now() + interval '1 hour')",
        "('x', 'running', 1, 3, NULL, NULL)",
        "('   ', 'queued', 0, 3, NULL, NULL)",
        "(' ', 'succeeded', 1, 3, 'w', NULL)",
        "('fine', 'queued', 0, 3, NULL, NULL)")]
    p = s1ctl("migrate", db=db)
    assert p.returncode == 0, p.stderr
    rows = psql(db, "SELECT state, attempt, max_attempts, lease_until <= now(), error, submitted_by "
                    f"FROM s1.jobs WHERE id = ANY('{{{','.join(map(str, ids))}}}') ORDER BY id")
    assert rows == [
        ["failed", "3", "3", "", "failed by migration 0003_roles: attempt 2147483647 of max_attempts 3 is out of bounds", "s1"],
        ["failed", "1000", "1000", "", "failed by migration 0003_roles: attempt 1100 of max_attempts 2000 is out of bounds", "s1"],
        ["running", "1", "3", "t", "", "s1"],  # its lease expires now: the reaper takes it back
        ["failed", "0", "3", "", "failed by migration 0003_roles: the problem is blank", "s1"],
        ["succeeded", "1", "3", "", "", "s1"],
        ["queued", "0", "3", "", "", "s1"]], rows
    # Every bound holds for every row but the finished blank problem's.
    assert psql(db, "SELECT conname FROM pg_constraint WHERE conrelid = 's1.jobs'::regclass "
                    "AND NOT convalidated") == [["jobs_problem_not_blank"]]


def test_migrate_validates_every_bound_when_no_row_breaks_one():
    db = old_database()
    psql(db, "INSERT INTO s1.jobs (problem) VALUES ('fine')")
    assert s1ctl("migrate", db=db).returncode == 0
    assert psql(db, "SELECT count(*) FROM pg_constraint WHERE conrelid = 's1.jobs'::regclass "
                    "AND NOT convalidated") == [["0"]]


# A byte that is never UTF-8; os.fsencode turns the escape back into it.
BAD = "x\udcff"


def test_submit_refuses_policy_and_job_strings_that_are_not_utf8():
    before = job_count(DB)
    for flag in ("--system", "--wait-string", "--think-end", "--answer-header", "--answer-prefix",
                 "--answer", "--queue", "--model"):
        p = s1ctl("submit", flag, BAD, EXAMPLE, db=DB)
        assert p.returncode == 2, (flag, p.returncode, p.stderr)
        one_error_line(p, f"{flag}: not valid UTF-8 at byte 1")
    assert job_count(DB) == before


def test_submit_refuses_a_problem_file_that_is_not_utf8():
    path = os.path.join(tempdir("s1poison."), "bad.txt")
    with open(path, "wb") as f:
        f.write(b"What is 1+1?\xff\n")
    p = s1ctl("submit", path, db=DB)
    assert p.returncode == 2
    one_error_line(p, "bad.txt: not valid UTF-8 at byte 12")


def test_suite_import_refuses_text_that_is_not_utf8():
    path = os.path.join(tempdir("s1poison."), "suite.jsonl")
    with open(path, "wb") as f:
        f.write(b'{"id": "a", "problem": "1+1\xff", "answer": "2"}\n')
    p = s1ctl("suite", "import", "--db", DB, "mini", path)
    assert p.returncode == 2
    one_error_line(p, "suite.jsonl:1", "unable to decode byte 0xff")
    with open(path, "w") as f:
        f.write(json.dumps({"id": "a", "problem": "1+1", "answer": "2"}) + "\n")
    for argv in (["--description", BAD, "mini", path], [BAD, path]):
        p = s1ctl("suite", "import", "--db", DB, *argv)
        assert p.returncode == 2, p.stderr
        one_error_line(p, "not valid UTF-8 at byte 1")


def test_bench_run_refuses_strings_that_are_not_utf8():
    for flag in ("--note", "--model", "--queue", "--system"):
        p = s1ctl("bench", "run", "--db", DB, "--budgets", "10", flag, BAD, "mini")
        assert p.returncode == 2, (flag, p.stderr)
        one_error_line(p, f"{flag}: not valid UTF-8 at byte 1")


tap_main(globals())
