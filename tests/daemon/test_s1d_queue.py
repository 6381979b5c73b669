#!/usr/bin/python3
"""s1d's queue protocol against a real PostgreSQL with real s1d processes on
the noop engine (no model: a request "thinks" max_think tokens at noop-rate
tokens/s): claims by two daemons, samples, cancel, progress, bad rows, queue
and model matching, the workers table."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import Daemon, binary, job, migrated_db, psql, state, submit, wait_for, wait_state  # noqa: E402
from s1test import tap_main  # noqa: E402


def test_a_job_succeeds_with_one_result_row_per_sample():
    db = migrated_db()
    [jid] = submit(db, policy='{"max_think": 40}', samples=3)
    with Daemon(db, "--noop-rate", "0") as d:
        wait_state(db, jid, "succeeded")
        rows = psql(db, f"SELECT sample, attempt, thinking_tokens, stop_reason, octet_length(token_ids) / 4, "
                        f"worker, model, backend, queue_wait_ms >= 0 FROM s1.results "
                        f"WHERE job_id = {jid} ORDER BY sample")
        assert [r[0] for r in rows] == ["0", "1", "2"], rows
        for r in rows:
            assert r[1:] == ["1", "40", "eos", "40", d.name, "noop", "noop", "t"], r
        assert job(db, jid, "attempt, worker, finished_at IS NOT NULL, lease_until IS NULL") == \
            ["1", d.name, "t", "t"]


def test_200_jobs_through_two_daemons_each_succeed_exactly_once():
    db = migrated_db()
    ids = submit(db, n=200, policy='{"max_think": 5}')
    with Daemon(db, "--max-batch", "8") as a, Daemon(db, "--max-batch", "8") as b:
        wait_for(lambda: psql(db, "SELECT count(*) FROM s1.jobs WHERE state = 'succeeded'")[0][0] == "200",
                 timeout=90, what="200 jobs succeeded")
        assert psql(db, "SELECT count(*), min(attempt), max(attempt) FROM s1.jobs") == [["200", "1", "1"]]
        per_job = psql(db, "SELECT job_id, count(*) FROM s1.results GROUP BY job_id HAVING count(*) <> 1")
        assert per_job == [], per_job
        assert psql(db, "SELECT count(*) FROM s1.results")[0][0] == "200"
        workers = {r[0] for r in psql(db, "SELECT DISTINCT worker FROM s1.jobs")}
        assert workers <= {a.name, b.name}, workers
    assert len(ids) == 200


def test_a_cancel_stops_a_running_job_and_a_queued_one_never_starts():
    db = migrated_db()
    [running] = submit(db, policy='{"max_think": 1000000}')
    with Daemon(db, "--noop-rate", "100") as d:
        wait_for(lambda: int(job(db, running, "progress_thinking")[0]) > 0, what="progress")
        subprocess.run([binary("s1ctl"), "cancel", "--db", db, str(running)], check=True, capture_output=True)
        wait_state(db, running, "cancelled", timeout=10)
        assert psql(db, f"SELECT count(*) FROM s1.results WHERE job_id = {running}") == [["0"]]
        d.wait_log(f"job {running}: cancel requested")
        # Cancelled while it waits for its run_after (far enough ahead that no
        # claim can reach it first): it never runs.
        [later] = [int(r[0]) for r in psql(db, "INSERT INTO s1.jobs (problem, run_after) "
                                               "VALUES ('x', now() + interval '1 hour') RETURNING id")]
        subprocess.run([binary("s1ctl"), "cancel", "--db", db, str(later)], check=True, capture_output=True)
        # A cancel that raced with the claim: still queued, but flagged.
        [raced] = [int(r[0]) for r in psql(db, "INSERT INTO s1.jobs (problem, cancel_requested, run_after) "
                                               "VALUES ('x', true, now() + interval '1 second') RETURNING id")]
        wait_state(db, raced, "cancelled", timeout=10)
        assert job(db, later, "state, attempt") == ["cancelled", "0"]
        assert psql(db, f"SELECT count(*) FROM s1.results WHERE job_id IN ({later}, {raced})") == [["0"]]
        assert d.alive()


def test_progress_is_written_to_the_job_and_notified():
    import psycopg2
    db = migrated_db()
    listen = psycopg2.connect(db)
    listen.autocommit = True
    listen.cursor().execute("LISTEN s1_progress")
    [jid] = submit(db, policy='{"max_think": 300}')
    with Daemon(db, "--noop-rate", "100") as d:
        wait_for(lambda: psql(db, f"SELECT jobs_in_flight FROM s1.workers WHERE name = '{d.name}'") == [["1"]],
                 what="the running job counted in s1.workers")
        seen = []

        def progressed():
            listen.poll()
            while listen.notifies:
                seen.append(listen.notifies.pop(0).payload)
            return any(p.startswith(f"{jid} ") and int(p.split()[1]) > 0 for p in seen)
        wait_for(progressed, timeout=20, what="an s1_progress notification")
        wait_state(db, jid, "succeeded")
        thinking = [int(p.split()[1]) for p in seen if p.startswith(f"{jid} ")]
        assert thinking == sorted(thinking), thinking
        assert max(thinking) <= 300
    listen.close()


def test_an_empty_problem_fails_with_its_reason_and_the_daemon_goes_on():
    db = migrated_db()
    # The schema refuses such a row (0003_roles); without that constraint the
    # daemon's own check is what stands between it and the engine.
    psql(db, "ALTER TABLE s1.jobs DROP CONSTRAINT jobs_problem_not_blank")
    [bad] = submit(db, problem="   ")
    [good] = submit(db, policy='{"max_think": 3}')
    with Daemon(db) as d:
        wait_state(db, bad, "failed")
        assert "empty" in job(db, bad, "error")[0]
        wait_state(db, good, "succeeded")
        assert d.alive()


def test_jobs_of_another_model_or_queue_are_left_alone():
    db = migrated_db()
    [other_model] = submit(db, model="s1-32B")
    [other_queue] = submit(db, queue="gpu")
    [mine] = submit(db, model="tiny", queue="cpu")
    with Daemon(db, "--model-name", "tiny", "--queue", "cpu,default"):
        # Claims take jobs in id order: had the filter let the older jobs
        # through, they would have been claimed before (or with) this one.
        wait_state(db, mine, "succeeded")
        assert state(db, other_model) == "queued"
        assert state(db, other_queue) == "queued"


def test_the_workers_table_shows_the_live_daemon_and_then_stopped():
    db = migrated_db()
    with Daemon(db, "--queue", "a", "--queue", "b") as d:
        wait_for(lambda: psql(db, f"SELECT state, queues, pid FROM s1.workers WHERE name = '{d.name}'")
                 == [["running", "{a,b}", str(d.proc.pid)]], what="worker row")
        first = psql(db, f"SELECT heartbeat_at FROM s1.workers WHERE name = '{d.name}'")[0][0]
        wait_for(lambda: psql(db, f"SELECT heartbeat_at FROM s1.workers WHERE name = '{d.name}'")[0][0] != first,
                 what="a later heartbeat")
        assert d.stop() == 0
        assert psql(db, f"SELECT state FROM s1.workers WHERE name = '{d.name}'") == [["stopped"]]


tap_main(globals())
