#!/usr/bin/python3
"""s1d keeps what it claimed: nothing blocks on a systemd notify socket
nobody reads (neither the event loop nor the load of the model), a job whose
result waits for a stalled write keeps its lease until the write commits, a
job row locked by another session stalls no progress write nor heartbeat,
and a NOTIFY on s1_cancel is only a wake-up: s1d stops what the rows say,
not what a payload says."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import SOURCE, Daemon, NotifySocket, binary, job, migrated_db, psql, state, submit, wait_for, wait_state  # noqa: E402
from s1test import tap_main  # noqa: E402


def worker(db, d, cols):
    return psql(db, f"SELECT {cols} FROM s1.workers WHERE name = '{d.name}'")


def queue_is_full(path):
    """True when one more datagram does not fit in the reader's queue."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    probe.setblocking(False)
    try:
        probe.sendto(b"X", path)
        return False
    except BlockingIOError:
        return True
    finally:
        probe.close()


def test_a_notify_socket_nobody_reads_stops_neither_heartbeats_nor_results():
    db = migrated_db()
    sock = NotifySocket()  # never read: its queue fills with watchdog feeds
    try:
        with Daemon(db, env={"NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": "20000"}) as d:
            # Loaded and serving first: the queue then fills while the loop runs.
            wait_for(lambda: worker(db, d, "state") == [["running"]], what="the worker row")
            wait_for(lambda: queue_is_full(sock.path), what="the notify socket's queue full")
            beat = worker(db, d, "heartbeat_at")[0][0]
            [jid] = submit(db, policy='{"max_think": 5}')
            wait_state(db, jid, "succeeded")
            wait_for(lambda: worker(db, d, f"heartbeat_at > '{beat}'") == [["t"]],
                     what="a heartbeat after the socket filled")
            assert queue_is_full(sock.path)
            assert job(db, jid, "attempt") == ["1"]
            d.wait_log("notify socket is full")
    finally:
        sock.close()


def fill(path):
    """Sends to the reader until its queue holds no more."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    probe.setblocking(False)
    try:
        while True:
            probe.sendto(b"X", path)
    except BlockingIOError:
        pass
    finally:
        probe.close()


def held_model(parent):
    """A tiny model whose tokenizer.json is a FIFO: s1d's load waits in it
    until the test writes the file. Returns the directory and the text."""
    made = os.path.join(parent, "made")
    subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "tools", "gen_model.py"), "--out", made,
                    "--preset", "tiny"], check=True, capture_output=True)
    held = os.path.join(parent, "held")
    os.mkdir(held)
    for name in os.listdir(made):
        if name != "tokenizer.json":
            os.symlink(os.path.join(made, name), os.path.join(held, name))
    os.mkfifo(os.path.join(held, "tokenizer.json"))
    with open(os.path.join(made, "tokenizer.json")) as f:
        return held, f.read()


def test_a_notify_socket_nobody_reads_does_not_stall_a_model_load():
    db = migrated_db()
    sock = NotifySocket()  # never read, and full before s1d starts
    parent = tempfile.mkdtemp(prefix="s1model.")
    try:
        model, tokenizer = held_model(parent)
        fill(sock.path)
        with Daemon(db, "--model", model, "--threads", "1", noop=False,
                    env={"NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": "20000"}) as d:
            # The load waits in the FIFO while the feeder finds the socket full.
            d.wait_log("dropping watchdog messages while the model loads", timeout=300)
            with open(os.path.join(model, "tokenizer.json"), "w") as f:
                f.write(tokenizer)
            [jid] = submit(db, policy='{"max_think": 5}')
            wait_state(db, jid, "succeeded", timeout=300)
            assert queue_is_full(sock.path)
    finally:
        sock.close()
        shutil.rmtree(parent, ignore_errors=True)


def test_a_result_waiting_behind_a_stalled_write_keeps_its_lease():
    import psycopg2
    db = migrated_db()
    locker = psycopg2.connect(db)
    try:
        with Daemon(db, "--lease", "2", "--heartbeat", "0.3") as d:
            wait_for(lambda: worker(db, d, "state") == [["running"]], what="the worker row")
            # Result rows cannot be inserted while this transaction lives.
            locker.cursor().execute("LOCK TABLE s1.results IN EXCLUSIVE MODE")
            [first] = submit(db, policy='{"max_think": 3}')
            wait_for(lambda: psql(db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                      "AND query LIKE '%INSERT INTO s1.results%'") == [["1"]],
                     what="the first job's write waiting for the lock")
            [second] = submit(db, policy='{"max_think": 3}')
            wait_state(db, second, "running")
            started = job(db, second, "started_at")[0]
            # Out of the engine, its end waits in the writer behind the first.
            wait_for(lambda: worker(db, d, f"jobs_in_flight = 0 AND heartbeat_at > '{started}'") == [["t"]],
                     what="the second job out of the engine")
            wait_for(lambda: psql(db, f"SELECT now() > '{started}'::timestamptz + interval '2 s'") == [["t"]],
                     what="the lease taken at the claim run out")
            for jid in (first, second):
                assert job(db, jid, "state, attempt, lease_until > now()") == ["running", "1", "t"], jid
            locker.rollback()
            for jid in (first, second):
                wait_state(db, jid, "succeeded")
                assert job(db, jid, "attempt") == ["1"]
            assert psql(db, f"SELECT job_id, attempt FROM s1.results WHERE job_id IN ({first}, {second}) "
                            f"ORDER BY job_id") == [[str(first), "1"], [str(second), "1"]]
    finally:
        locker.close()


def test_a_job_row_locked_by_another_session_stalls_neither_progress_nor_heartbeats():
    import psycopg2
    db = migrated_db()
    [locked, unlocked] = submit(db, n=2, policy='{"max_think": 1000000}')
    locker = psycopg2.connect(db)
    try:
        # Saves too go on all the time: their rows' foreign key must not wait either.
        with Daemon(db, "--noop-rate", "100", "--heartbeat", "0.3", "--save-every", "0.05") as d:
            wait_for(lambda: psql(db, f"SELECT count(*) FROM s1.jobs WHERE id IN ({locked}, {unlocked}) "
                                      f"AND progress_at IS NOT NULL") == [["2"]],
                     what="progress of both jobs")
            cur = locker.cursor()
            cur.execute("SELECT now() FROM s1.jobs WHERE id = %s FOR UPDATE", (locked,))
            since = cur.fetchone()[0]
            # Both jobs think on, so every progress write names the locked row.
            for _ in range(2):
                wait_for(lambda: job(db, unlocked, f"progress_at > '{since}'") == ["t"], timeout=120,
                         what="progress of the unlocked job written after the lock")
                wait_for(lambda: worker(db, d, f"heartbeat_at > '{since}'") == [["t"]], timeout=120,
                         what="a heartbeat after the lock")
                since = psql(db, "SELECT now()")[0][0]
            assert psql(db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND query LIKE '%progress_thinking%'") == [["0"]]
            assert job(db, locked, "state") == ["running"]
            locker.rollback()
            wait_for(lambda: job(db, locked, f"progress_at > '{since}'") == ["t"], timeout=120,
                     what="progress of the formerly locked job")
    finally:
        locker.close()


def test_a_forged_cancel_notification_stops_nothing():
    db = migrated_db()
    [forged, real] = submit(db, n=2, policy='{"max_think": 1000000}')
    with Daemon(db, "--noop-rate", "100") as d:
        wait_for(lambda: state(db, forged) == "running" and state(db, real) == "running", what="both running")
        # Delivered together, in this order, at the commit: by the time the
        # real cancel is written, the forged one was read.
        psql(db, f"BEGIN; NOTIFY s1_cancel, '{forged}'; "
                 f"UPDATE s1.jobs SET cancel_requested = true WHERE id = {real}; "
                 f"NOTIFY s1_cancel, '{real}'; COMMIT")
        wait_state(db, real, "cancelled")
        assert state(db, forged) == "running"
        assert f"job {forged}: cancel requested" not in d.output()
        subprocess.run([binary("s1ctl"), "cancel", "--db", db, str(forged)], check=True, capture_output=True)
        wait_state(db, forged, "cancelled")


tap_main(globals())
