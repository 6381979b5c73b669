#!/usr/bin/python3
"""s1d when things go wrong, with real s1d processes on the noop engine and a
real PostgreSQL: a daemon killed mid-job, a daemon stalled past its lease
(fencing), the database restarted mid-run."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import Daemon, NotifySocket, job, migrated_db, psql, submit, wait_for, wait_state  # noqa: E402
from s1test import Cluster, tap_main  # noqa: E402


def test_a_job_of_a_killed_daemon_is_rescued_after_its_lease_and_completes_once():
    db = migrated_db()
    [jid] = submit(db, policy='{"max_think": 500}')
    with Daemon(db, "--noop-rate", "50", "--lease", "1.5", "--heartbeat", "0.3") as a:
        wait_state(db, jid, "running")
        a.kill()
        assert job(db, jid, "attempt, worker") == ["1", a.name]
        with Daemon(db, "--noop-rate", "1000", "--lease", "1.5", "--heartbeat", "0.3") as b:
            wait_state(db, jid, "succeeded", timeout=60)
            assert job(db, jid, "attempt, worker") == ["2", b.name]
            assert psql(db, f"SELECT attempt, worker FROM s1.results WHERE job_id = {jid}") == [["2", b.name]]


def test_a_zombie_attempt_is_fenced_out_and_its_daemon_goes_on():
    db = migrated_db()
    [jid] = submit(db, policy='{"max_think": 300}')
    with Daemon(db, "--noop-rate", "40", "--lease", "1.5", "--heartbeat", "0.3") as a:
        wait_state(db, jid, "running")
        os.kill(a.proc.pid, signal.SIGSTOP)
        with Daemon(db, "--noop-rate", "60", "--lease", "1.5", "--heartbeat", "0.3") as b:
            wait_for(lambda: job(db, jid, "attempt, worker") == ["2", b.name], timeout=30,
                     what="job taken over by b")
            os.kill(a.proc.pid, signal.SIGCONT)
            a.wait_log(f"job {jid} attempt 1:", timeout=30)
            wait_state(db, jid, "succeeded", timeout=30)
            assert psql(db, f"SELECT attempt, worker FROM s1.results WHERE job_id = {jid}") == [["2", b.name]]
            assert a.alive()
            b.kill()
            [jid2] = submit(db, policy='{"max_think": 10}')
            wait_state(db, jid2, "succeeded")
            assert job(db, jid2, "worker")[0] == a.name


def test_no_result_is_lost_when_postgresql_restarts_mid_run():
    sock = NotifySocket()
    try:
        with Cluster() as c:
            db = migrated_db(conninfo=c.conninfo)
            ids = submit(db, n=6, policy='{"max_think": 250}')
            with Daemon(db, "--noop-rate", "50", "--lease", "60", env={"NOTIFY_SOCKET": sock.path}) as d:
                wait_for(lambda: psql(db, "SELECT count(*) FROM s1.jobs WHERE state = 'running'")[0][0] == "6",
                         what="6 jobs running")
                c.halt()
                d.wait_log("database connection lost")
                # Every job leaves the engine while the server is down: their
                # ends wait in the daemon's memory.
                wait_for(lambda: any(m.startswith("STATUS=0 jobs running, 0 done") and
                                     m.endswith("database unreachable") for m in sock.read()),
                         what="STATUS: no job left in the engine, none written, database unreachable")
                c.start()
                wait_for(lambda: psql(db, "SELECT count(*) FROM s1.jobs WHERE state = 'succeeded'")[0][0] == "6",
                         timeout=60, what="6 jobs succeeded after the restart")
                assert psql(db, "SELECT count(*), count(DISTINCT job_id) FROM s1.results") == [["6", "6"]]
                # Back well within the lease: no job lost its attempt.
                assert psql(db, "SELECT min(attempt), max(attempt) FROM s1.jobs") == [["1", "1"]]
                later = submit(db, policy='{"max_think": 10}')[0]
                wait_state(db, later, "succeeded")
                assert d.alive()
        assert len(ids) == 6
    finally:
        sock.close()


tap_main(globals())
