#!/usr/bin/python3
"""s1d connected as a login user that is a member of s1_worker and nothing
else (migrations/0003_roles.sql): it claims, renews, reaps and completes
jobs that submitters queued with s1ctl, and a submitter's cancel reaches it
through the row."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import Daemon, binary, job, migrated_db, psql, wait_for, wait_state  # noqa: E402
from s1test import login_user, tap_main  # noqa: E402

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "problem.txt")


def s1ctl(conninfo, *args):
    return subprocess.run([binary("s1ctl"), args[0], "--db", conninfo, *args[1:]], capture_output=True, text=True,
                          timeout=60)


def submit_as(conninfo, budget):
    p = s1ctl(conninfo, "submit", "--budget", str(budget), EXAMPLE)
    assert p.returncode == 0, p.stderr
    return int(p.stdout)


def test_s1d_as_a_worker_only_runs_submitters_jobs_to_the_end():
    db = migrated_db("roles")
    _, worker = login_user(db, "s1_worker", prefix="worker")
    alice, alice_db = login_user(db, "s1_submit", prefix="alice")
    ids = [submit_as(alice_db, 20) for _ in range(3)]
    with Daemon(worker, "--noop-rate", "0") as d:
        for jid in ids:
            wait_state(db, jid, "succeeded")
        assert psql(db, f"SELECT count(*) FROM s1.results WHERE worker = '{d.name}'") == [["3"]]
        assert psql(db, f"SELECT state FROM s1.workers WHERE name = '{d.name}'") == [["running"]]
        p = s1ctl(alice_db, "result", str(ids[0]))
        assert p.returncode == 0, p.stderr
        assert d.stop() == 0
        assert "permission denied" not in d.output(), d.output()
    assert {r[0] for r in psql(db, f"SELECT submitted_by FROM s1.jobs WHERE id IN ({','.join(map(str, ids))})")} \
        == {alice}


def test_a_submitters_cancel_stops_its_running_job_on_a_worker_only_s1d():
    db = migrated_db("roles")
    _, worker = login_user(db, "s1_worker", prefix="worker")
    _, alice_db = login_user(db, "s1_submit", prefix="alice")
    jid = submit_as(alice_db, 1000000)
    with Daemon(worker, "--noop-rate", "100") as d:
        wait_for(lambda: int(job(db, jid, "progress_thinking")[0]) > 0, what="progress")
        p = s1ctl(alice_db, "cancel", str(jid))
        assert p.returncode == 0, p.stderr
        wait_state(db, jid, "cancelled")
        assert d.alive()


def test_the_reaper_as_a_worker_caps_the_backoff_and_fails_the_last_attempt():
    db = migrated_db("roles")
    _, worker = login_user(db, "s1_worker", prefix="worker")
    [again, last] = [int(r[0]) for r in psql(
        db, "INSERT INTO s1.jobs (problem, max_attempts) VALUES ('x', 1000), ('x', 1000) RETURNING id")]
    # Workers that died holding the job's 999th and 1000th attempts.
    psql(db, f"UPDATE s1.jobs SET state = 'running', attempt = CASE id WHEN {again} THEN 999 ELSE 1000 END, "
             f"worker = 'gone', lease_until = now() - interval '1 second' WHERE id IN ({again}, {last})")
    with Daemon(worker):
        wait_state(db, again, "queued")
        wait_state(db, last, "failed")
        # Backoff 2^(attempt-1) s, capped at 5 minutes.
        assert job(db, again, "attempt, run_after - updated_at") == ["999", "00:05:00"]
        assert job(db, last, "error") == ["lease expired on worker gone (attempt 1000 of 1000)"]


tap_main(globals())
