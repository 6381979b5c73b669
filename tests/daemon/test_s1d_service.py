#!/usr/bin/python3
"""s1d as a systemd service: sd_notify messages on a NOTIFY_SOCKET the test
reads, SIGTERM drain, SIGHUP reload, and the configuration checks (bad keys,
bad values, old schema) that end in one line and a non-zero exit."""
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import (SOURCE, Daemon, NotifySocket, binary, fresh_db, job, migrated_db, psql, state,  # noqa: E402
                       submit, wait_for, wait_state)
from s1test import tap_main  # noqa: E402


def run_s1d(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([binary("s1d"), *args], capture_output=True, text=True, timeout=60, env=e)


def write_config(text):
    f = tempfile.NamedTemporaryFile("w", prefix="s1d.", suffix=".conf", delete=False)
    f.write(text)
    f.close()
    return f.name


def test_sd_notify_says_ready_status_watchdog_then_stopping_in_order():
    db = migrated_db()
    sock = NotifySocket()
    try:
        with Daemon(db, env={"NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": "400000"}) as d:
            sock.wait("STATUS=")
            # The watchdog is fed from the start (model loading) and after
            # READY: wait for one after READY before stopping.
            wait_for(lambda: "WATCHDOG=1" in "".join(sock.read()).split("READY=1", 1)[1],
                     what="WATCHDOG=1 after READY=1")
            assert d.stop() == 0
            sock.wait("STOPPING=1")
            msgs = sock.read()
            first = {k: next(i for i, m in enumerate(msgs) if k in m)
                     for k in ("READY=1", "STATUS=", "STOPPING=1")}
            assert first["READY=1"] <= first["STATUS="] < first["STOPPING=1"], msgs
            assert any("WATCHDOG=1" in m for m in msgs[first["READY=1"]:first["STOPPING=1"]]), msgs
            assert d.output().startswith("<"), "sd-daemon priority prefixes under systemd"
    finally:
        sock.close()


def test_sigterm_finishes_what_it_can_requeues_the_rest_and_exits_0():
    db = migrated_db()
    # short needs 3 s at 100 tokens/s: still running when SIGTERM comes, and
    # far inside the drain timeout; long cannot finish within it.
    [short] = submit(db, policy='{"max_think": 300}')
    [long] = submit(db, policy='{"max_think": 100000}')
    with Daemon(db, "--noop-rate", "100", "--drain-timeout", "15") as d:
        wait_for(lambda: state(db, short) == "running" and state(db, long) == "running", what="both running")
        assert d.stop() == 0
        assert "stopped" in d.output()
    assert state(db, short) == "succeeded"
    assert job(db, long, "state, attempt, lease_until IS NULL") == ["queued", "0", "t"]
    assert psql(db, f"SELECT count(*) FROM s1.results WHERE job_id = {long}") == [["0"]]
    assert psql(db, f"SELECT state FROM s1.workers WHERE name = '{d.name}'") == [["stopped"]]


def test_sighup_rereads_the_config_and_says_reloading_then_ready():
    db = migrated_db()
    path = write_config("[s1d]\nqueue = a\n")
    sock = NotifySocket()
    try:
        with Daemon(db, "--config", path, env={"NOTIFY_SOCKET": sock.path}) as d:
            sock.wait("READY=1")
            [in_b] = submit(db, queue="b")
            [in_a] = submit(db, queue="a")
            wait_state(db, in_a, "succeeded")
            assert state(db, in_b) == "queued"
            with open(path, "w") as f:
                f.write("[s1d]\nqueue = a, b\nnoop-rate = 5\n")
            n = len(sock.read())
            d.proc.send_signal(signal.SIGHUP)
            wait_state(db, in_b, "succeeded")
            later = sock.read()[n:]
            assert any("RELOADING=1" in m for m in later), later
            reloading = next(i for i, m in enumerate(later) if "RELOADING=1" in m)
            assert any("READY=1" in m for m in later[reloading:]), later
            # What cannot change live is named, not applied.
            assert "noop-rate changed; it takes effect after a restart" in d.output(), d.output()
            assert d.alive()
    finally:
        sock.close()
        os.unlink(path)


def test_a_config_file_with_an_unknown_key_names_the_key_and_line():
    path = write_config("[s1d]\nengine = noop\n\nleese = 30\n")
    try:
        r = run_s1d("--config", path, "--check-config")
        assert r.returncode == 2
        assert f"{path}:4" in r.stderr and "leese" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    finally:
        os.unlink(path)


def test_bad_values_in_the_file_or_flags_name_the_key():
    path = write_config("[s1d]\nengine = noop\nlease = soon\n")
    try:
        r = run_s1d("--config", path, "--check-config")
        assert r.returncode == 2 and "lease" in r.stderr and f"{path}:3" in r.stderr, r.stderr
    finally:
        os.unlink(path)
    cases = [(["--max-batch", "-1"], "max-batch"), (["--heartbeat", "0"], "heartbeat"),
             (["--backend", "tpu"], "backend"), (["--engine", "magic"], "engine"),
             (["--lease", "1", "--heartbeat", "0.9"], "heartbeat"), (["--bogus", "1"], "--bogus"),
             (["--queue", " , "], "queue"), (["--template", "qwq"], "template")]
    for flags, key in cases:
        r = run_s1d("--engine", "noop", *flags, "--check-config")
        assert r.returncode == 2 and key in r.stderr, (flags, r.stderr)


def test_flags_override_the_file_and_a_good_config_checks_ok():
    path = write_config("[s1d]\nengine = noop\nqueue = a,b\nlease = 30\nheartbeat = 5\n")
    try:
        r = run_s1d("--config", path, "--lease", "12", "--check-config")
        assert r.returncode == 0 and "OK" in r.stdout, r.stderr
        r = run_s1d("--config", path, "--heartbeat", "20", "--check-config")
        assert r.returncode == 2 and "heartbeat" in r.stderr, r.stderr
    finally:
        os.unlink(path)


def test_the_example_config_checks_ok():
    example = os.path.join(SOURCE, "systemd", "s1d.conf.example")
    r = run_s1d("--config", example, "--engine", "noop", "--check-config")
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr


def test_a_missing_model_directory_is_one_line_and_exit_2():
    r = run_s1d("--model", "/nonexistent/model", "--check-config")
    assert r.returncode == 2 and "/nonexistent/model" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_an_old_schema_is_refused_naming_s1ctl_migrate():
    db = fresh_db("old")
    r = run_s1d("--db", db, "--engine", "noop")
    assert r.returncode == 1 and "s1ctl migrate" in r.stderr, r.stderr


def test_an_unreachable_database_is_one_line_and_exit_1():
    r = run_s1d("--db", "host=/nonexistent-dir user=s1", "--engine", "noop")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_second_daemon_under_a_live_workers_name_is_refused_naming_it():
    db = migrated_db()
    with Daemon(db, name="twin") as first:
        wait_for(lambda: psql(db, "SELECT state FROM s1.workers WHERE name = 'twin'") == [["running"]],
                 what="the first daemon running")
        r = run_s1d("--db", db, "--engine", "noop", "--worker-name", "twin")
        assert r.returncode == 1, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and 'worker name "twin" is in use by a live s1d' in lines[0], r.stderr
        assert f"pid {first.proc.pid}" in lines[0], r.stderr
        assert first.alive()
        first.kill()
    # The name goes with the dead daemon's connection: no lease to wait out.
    with Daemon(db, name="twin") as again:
        wait_for(lambda: psql(db, "SELECT pid FROM s1.workers WHERE name = 'twin'") == [[str(again.proc.pid)]],
                 what="the name taken over by a new daemon")


def test_queue_names_are_split_at_commas_only_and_checked_as_s1ctl_does():
    db = migrated_db()
    [spaced] = submit(db, queue="gpu large")
    [plain] = submit(db, queue="b")
    with Daemon(db, "--queue", " gpu large , b"):
        wait_state(db, spaced, "succeeded")
        wait_state(db, plain, "succeeded")
    for bad, why in (("a\tb", "control character"), ("x" * 201, "longer than 200 bytes")):
        r = run_s1d("--engine", "noop", "--queue", bad, "--check-config")
        assert r.returncode == 2 and "--queue: queue: " in r.stderr and why in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


tap_main(globals())
