"""Least privilege (migrations/0003_roles.sql): login users that are members
of s1_submit, s1_worker, s1_read or s1_admin, each shown doing what its role
allows and refused what it does not."""
import os
import select
import subprocess

import psycopg2

from ctltest import EXAMPLE, RUNNING, migrated_db, one_error_line, psql, s1ctl, tempdir
from s1test import Cluster, login_user, tap_main

DB = migrated_db("roles")
ALICE, ALICE_DB = login_user(DB, "s1_submit", prefix="alice")
BOB, BOB_DB = login_user(DB, "s1_submit", prefix="bob")
WORKER, WORKER_DB = login_user(DB, "s1_worker", prefix="worker")
READER, READER_DB = login_user(DB, "s1_read", prefix="reader")
ADMIN, ADMIN_DB = login_user(DB, "s1_admin", prefix="admin")


def refused(conninfo, sql, why="permission denied"):
    """Asserts that sql fails for conninfo's user, with why in the message."""
    try:
        psql(conninfo, sql)
    except subprocess.CalledProcessError as e:
        assert why in e.stderr, e.stderr
        return
    raise AssertionError(f"{sql!r} was allowed")


def submit_as(conninfo, *flags):
    p = s1ctl("submit", *flags, EXAMPLE, db=conninfo)
    assert p.returncode == 0, p.stderr
    return int(p.stdout)


def test_migrate_creates_the_four_roles_without_login():
    rows = psql(DB, "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 's1\\_%' ORDER BY 1")
    assert rows == [["s1_admin", "f"], ["s1_read", "f"], ["s1_submit", "f"], ["s1_worker", "f"]]


def test_another_database_of_the_cluster_migrates_with_the_roles_already_there():
    other = migrated_db("roles2")
    assert psql(other, "SELECT max(version) FROM s1.schema_migrations") == psql(
        DB, "SELECT max(version) FROM s1.schema_migrations")


def test_a_submitters_job_records_who_submitted_it():
    jid = submit_as(ALICE_DB, "--budget", "10")
    assert psql(DB, f"SELECT submitted_by, state, attempt FROM s1.jobs WHERE id = {jid}") == [[ALICE, "queued", "0"]]
    p = s1ctl("show", "--json", str(jid), db=ALICE_DB)
    assert p.returncode == 0 and f'"submitted_by": "{ALICE}"' in p.stdout, p.stdout + p.stderr


def test_a_submitter_cannot_set_the_submitter_state_attempt_lease_worker_or_result_columns():
    for col, value in (("submitted_by", f"'{BOB}'"), ("state", "'running'"), ("attempt", "1"),
                       ("lease_until", "now()"), ("worker", "'w'"), ("error", "'x'"),
                       ("cancel_requested", "true"), ("progress_thinking", "5"), ("run_after", "now()")):
        refused(ALICE_DB, f"INSERT INTO s1.jobs (problem, {col}) VALUES ('p', {value})")


def test_a_submitter_cannot_update_or_delete_even_its_own_jobs():
    jid = submit_as(ALICE_DB)
    refused(ALICE_DB, f"UPDATE s1.jobs SET state = 'succeeded' WHERE id = {jid}")
    refused(ALICE_DB, f"UPDATE s1.jobs SET problem = 'other' WHERE id = {jid}")
    refused(ALICE_DB, f"DELETE FROM s1.jobs WHERE id = {jid}")
    assert psql(DB, f"SELECT state, problem <> 'other' FROM s1.jobs WHERE id = {jid}") == [["queued", "t"]]


def test_a_submitter_cannot_forge_results():
    jid = submit_as(ALICE_DB)
    refused(ALICE_DB, f"INSERT INTO s1.results (job_id, attempt, sample, answer) VALUES ({jid}, 1, 0, '42')")
    psql(DB, f"INSERT INTO s1.results (job_id, attempt, sample, answer) VALUES ({jid}, 1, 0, '2')")
    refused(ALICE_DB, f"UPDATE s1.results SET answer = '42' WHERE job_id = {jid}")
    refused(ALICE_DB, f"DELETE FROM s1.results WHERE job_id = {jid}")


def test_a_submitter_sees_only_its_own_jobs_and_their_results():
    mine, theirs = submit_as(ALICE_DB), submit_as(BOB_DB)
    for jid in (mine, theirs):
        psql(DB, f"INSERT INTO s1.results (job_id, attempt, sample, answer) VALUES ({jid}, 1, 0, 'a')")
    for table in ("s1.jobs", "s1.job_summary"):
        ids = {int(r[0]) for r in psql(ALICE_DB, f"SELECT id FROM {table}")}
        assert mine in ids and theirs not in ids, (table, ids)
    assert psql(ALICE_DB, f"SELECT job_id FROM s1.results WHERE job_id IN ({mine}, {theirs})") == [[str(mine)]]
    p = s1ctl("show", str(theirs), db=ALICE_DB)
    assert p.returncode == 5
    one_error_line(p, f"job {theirs}", "no such job")


def test_a_submitter_cannot_cancel_or_retry_another_submitters_job():
    queued = submit_as(BOB_DB)
    p = s1ctl("cancel", str(queued), db=ALICE_DB)
    assert p.returncode == 1
    one_error_line(p, f"job {queued} was submitted by another user", "s1_admin may cancel it")
    refused(ALICE_DB, f"UPDATE s1.jobs SET cancel_requested = true WHERE id = {queued}")
    failed = submit_as(BOB_DB)
    psql(DB, f"UPDATE s1.jobs SET state = 'failed', error = 'boom' WHERE id = {failed}")
    p = s1ctl("retry", str(failed), db=ALICE_DB)
    assert p.returncode == 1
    one_error_line(p, f"job {failed} was submitted by another user", "may retry it")
    assert psql(DB, f"SELECT id, state, cancel_requested FROM s1.jobs WHERE id IN ({queued}, {failed}) "
                    "ORDER BY id") == [[str(queued), "queued", "f"], [str(failed), "failed", "f"]]


def first_notification_on(channel, action):
    """Runs action while listening on channel; returns the first payload
    that arrives (None when none came within 30 s)."""
    conn = psycopg2.connect(DB)
    conn.autocommit = True
    conn.cursor().execute(f"LISTEN {channel}")
    action()
    payload = None
    while payload is None and select.select([conn], [], [], 30) != ([], [], []):
        conn.poll()
        payload = conn.notifies[0].payload if conn.notifies else None
    conn.close()
    return payload


def test_a_submitter_cancels_and_retries_its_own_jobs_by_changing_rows():
    queued = submit_as(ALICE_DB)
    p = s1ctl("cancel", str(queued), db=ALICE_DB)
    assert p.returncode == 0, p.stderr
    assert psql(DB, f"SELECT state FROM s1.jobs WHERE id = {queued}") == [["cancelled"]]
    p = s1ctl("retry", str(queued), db=ALICE_DB)
    assert p.returncode == 0, p.stderr
    assert psql(DB, f"SELECT state, attempt FROM s1.jobs WHERE id = {queued}") == [["queued", "0"]]
    running = submit_as(ALICE_DB)
    psql(DB, f"UPDATE s1.jobs SET {RUNNING} WHERE id = {running}")
    woken = first_notification_on("s1_cancel", lambda: s1ctl("cancel", str(running), db=ALICE_DB))
    # The row says what to do; the notification only wakes the daemon.
    assert psql(DB, f"SELECT state, cancel_requested FROM s1.jobs WHERE id = {running}") == [["running", "t"]]
    assert woken == str(running)


def test_only_submitters_and_admins_may_call_cancel_and_retry():
    jid = submit_as(ALICE_DB)
    for conninfo in (READER_DB, WORKER_DB):
        refused(conninfo, f"SELECT s1.cancel_job({jid})")
        refused(conninfo, f"SELECT s1.retry_job({jid})")


def test_a_reader_reads_every_table_and_view_and_writes_nothing():
    jid = submit_as(ALICE_DB)
    for table in ("s1.jobs", "s1.results", "s1.workers", "s1.suites", "s1.suite_problems", "s1.bench_runs",
                  "s1.job_summary", "s1.scaling_curve", "s1.worker_status", "s1.schema_migrations"):
        psql(READER_DB, f"SELECT count(*) FROM {table}")
    assert psql(READER_DB, f"SELECT submitted_by FROM s1.jobs WHERE id = {jid}") == [[ALICE]]
    refused(READER_DB, "INSERT INTO s1.jobs (problem) VALUES ('p')")
    refused(READER_DB, f"UPDATE s1.jobs SET priority = 1 WHERE id = {jid}")
    refused(READER_DB, "DELETE FROM s1.results")


def test_a_worker_changes_jobs_and_writes_results_but_submits_and_deletes_nothing():
    jid = submit_as(ALICE_DB)
    psql(WORKER_DB, f"UPDATE s1.jobs SET {RUNNING} WHERE id = {jid}")
    psql(WORKER_DB, f"INSERT INTO s1.results (job_id, attempt, sample) VALUES ({jid}, 1, 0)")
    psql(WORKER_DB, "INSERT INTO s1.workers (name) VALUES ('w-roles')")
    refused(WORKER_DB, "INSERT INTO s1.jobs (problem) VALUES ('p')")
    refused(WORKER_DB, f"DELETE FROM s1.jobs WHERE id = {jid}")
    refused(WORKER_DB, f"DELETE FROM s1.results WHERE job_id = {jid}")
    refused(WORKER_DB, "INSERT INTO s1.suites (name) VALUES ('forged')")


def test_an_admin_changes_anyones_job_imports_suites_and_migrate_is_a_no_op_for_it():
    jid = submit_as(BOB_DB)
    p = s1ctl("cancel", str(jid), db=ADMIN_DB)
    assert p.returncode == 0, p.stderr
    assert psql(DB, f"SELECT state FROM s1.jobs WHERE id = {jid}") == [["cancelled"]]
    suite = os.path.join(tempdir("s1roles."), "mini.jsonl")
    with open(suite, "w") as f:
        f.write('{"id": "a", "problem": "1+1", "answer": "2"}\n')
    p = s1ctl("suite", "import", "--db", ADMIN_DB, "mini", suite)
    assert p.returncode == 0, p.stderr
    p = s1ctl("suite", "import", "--db", ALICE_DB, "mini2", suite)
    assert p.returncode == 3
    one_error_line(p, "permission denied", "nothing was imported")
    p = s1ctl("migrate", db=ADMIN_DB)
    assert p.returncode == 0 and "0 migrations applied now" in p.stdout, p.stdout + p.stderr


def test_an_owner_who_may_not_create_roles_is_told_the_create_role_to_ask_for():
    # Roles belong to the cluster: a private one, where they do not exist yet.
    with Cluster() as cluster:
        psql(cluster.conninfo, "CREATE ROLE owner LOGIN")
        psql(cluster.conninfo, "CREATE DATABASE q OWNER owner")
        owner = cluster.conninfo.replace("user=s1", "user=owner").replace("dbname=postgres", "dbname=q")
        p = s1ctl("migrate", db=owner)
        assert p.returncode == 3
        last = p.stderr.splitlines()[-1]
        assert "migration 0003_roles: role s1_submit does not exist and owner may not create it" in last, last
        assert "CREATE ROLE s1_submit NOLOGIN" in last, last
        for role in ("s1_submit", "s1_worker", "s1_read", "s1_admin"):
            psql(cluster.conninfo, f"CREATE ROLE {role} NOLOGIN")
        p = s1ctl("migrate", db=owner)
        assert p.returncode == 0 and "applied migration 0003_roles" in p.stderr, p.stdout + p.stderr
        _, submitter = login_user(owner.replace("user=owner", "user=s1"), "s1_submit", prefix="sub")
        submit_as(submitter)


tap_main(globals())
