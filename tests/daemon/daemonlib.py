"""Helpers for s1d's integration tests: migrated fresh databases, s1d
processes that are always stopped, a NOTIFY_SOCKET the test reads, and job
rows inserted by SQL."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from s1test import binary, fresh_db, psql, wait_for, SOURCE  # noqa: E402,F401


def migrated_db(prefix="d", conninfo=None):
    """A fresh database (or conninfo's) with the schema applied by s1ctl migrate."""
    db = conninfo or fresh_db(prefix)
    subprocess.run([binary("s1ctl"), "migrate", "--db", db], check=True, capture_output=True)
    return db


def submit(db, n=1, problem="What is 2 + 2?", queue="default", policy="{}", samples=1, model=None,
           reference=None):
    """Inserts n jobs in one statement; returns their ids."""
    model_sql = "NULL" if model is None else "'" + model + "'"
    ref_sql = "NULL" if reference is None else "'" + reference + "'"
    rows = psql(db, f"INSERT INTO s1.jobs (problem, queue, policy, samples, model, reference_answer) "
                    f"SELECT '{problem}', '{queue}', '{policy}', {samples}, {model_sql}, {ref_sql} "
                    f"FROM generate_series(1, {n}) RETURNING id")
    return [int(r[0]) for r in rows]


def job(db, jid, cols="state, attempt, worker, error"):
    rows = psql(db, f"SELECT {cols} FROM s1.jobs WHERE id = {jid}")
    return rows[0] if rows else None


def state(db, jid):
    return job(db, jid, "state")[0]


def wait_state(db, jid, want, timeout=30.0):
    wait_for(lambda: state(db, jid) == want, timeout=timeout, what=f"job {jid} {want}")


class NotifySocket:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="s1notify.")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages = []

    def read(self):
        """Collects what arrived; returns every message so far."""
        while True:
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                return self.messages

    def wait(self, prefix, timeout=30.0):
        return wait_for(lambda: any(m.startswith(prefix) or ("\n" + prefix) in m for m in self.read()),
                        timeout=timeout, what=f"sd_notify {prefix}")

    def close(self):
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


class Daemon:
    """An s1d process; stopped (SIGKILL if it must) when the with-block ends."""

    def __init__(self, db, *args, env=None, name=None, noop=True):
        self.name = name or f"w{os.getpid()}_{time.monotonic_ns() % 100000}"
        self.log = tempfile.NamedTemporaryFile(prefix="s1d.", suffix=".log", delete=False)
        argv = [binary("s1d"), "--db", db, "--worker-name", self.name, "--poll", "0.5",
                "--heartbeat", "0.5", "--lease", "10"]
        if noop:
            argv += ["--engine", "noop"]
        self.argv = argv + list(args)
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        e.update(env or {})
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT, env=e)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        """Stops s1d gracefully (SIGKILL after 30 s) and, when the test passed
        so far, fails it on any sanitizer report in the daemon's output."""
        try:
            if self.alive():
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.kill()
            out = self.output()
            if exc_type is None:
                assert "Sanitizer" not in out and "runtime error:" not in out, out
        finally:
            self.kill()
            os.unlink(self.log.name)

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            if sig == signal.SIGKILL:
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)

    def stop(self, timeout=60):
        """SIGTERM and the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def output(self):
        with open(self.log.name) as f:
            return f.read()

    def wait_log(self, text, timeout=30.0):
        wait_for(lambda: text in self.output(), timeout=timeout, what=f"s1d log line {text!r}")

    def alive(self):
        return self.proc.poll() is None
