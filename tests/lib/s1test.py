"""Helpers for s1d's Python integration tests: TAP output, fresh databases on
the throwaway server of tests/run, private clusters, and the built binaries.

Run a test module with `tap_main(globals())`: every function named test_* is
a test case, run in file order; a failing assert prints "not ok" with the
traceback as TAP comments."""
import os
import subprocess
import sys
import tempfile
import time
import traceback

SOURCE = os.environ.get("S1_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("S1_BUILD_ROOT", os.path.join(SOURCE, "build"))
SHARED = os.environ.get("S1_SHARED", os.path.join(SOURCE, "..", "shared"))
_counter = [0]


def binary(name):
    """Path of a built program: s1ctl, s1d, or a tool under the build tree."""
    for sub in ("cli", "daemon", "tools", "bench", ""):
        p = os.path.join(BUILD, sub, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise FileNotFoundError(f"{name} is not built under {BUILD}")


def skip_all(reason):
    """Skips the whole module; meson reads the TAP plan "1..0 # SKIP"."""
    print(f"1..0 # SKIP {reason}")
    sys.exit(0)


class Skip(Exception):
    """Raised by skip(): the case is reported as a TAP skip with its reason."""


def skip(reason):
    """Skips the running test case (not the module) with a reason."""
    raise Skip(reason)


def fresh_db(prefix="t"):
    """Creates an empty database on the tests' server; returns its conninfo."""
    host = os.environ.get("S1_TEST_PGHOST")
    user = os.environ.get("S1_TEST_PGUSER", "s1")
    if not host:
        skip_all("S1_TEST_PGHOST is not set: run the suite through tests/run")
    _counter[0] += 1
    name = f"{prefix}_{os.getpid()}_{_counter[0]}"
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-U", user, "-d", "postgres",
                    "-c", f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
    return f"host={host} user={user} dbname={name}"


def psql(conninfo, sql):
    """Runs sql, returns the rows as lists of strings (unaligned, tab-separated)."""
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                          "-d", conninfo, "-c", sql], check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line != ""]


def login_user(conninfo, *roles, prefix="u"):
    """Creates a LOGIN user that is a member of roles (s1_submit, ...), named
    uniquely: roles live in the whole cluster, which every test shares.
    Returns (name, conninfo of conninfo's database as that user)."""
    _counter[0] += 1
    name = f"{prefix}_{os.getpid()}_{_counter[0]}"
    member = f" IN ROLE {', '.join(roles)}" if roles else ""
    psql(conninfo, f'CREATE ROLE "{name}" LOGIN{member}')
    as_user = " ".join(f"user={name}" if kv.startswith("user=") else kv for kv in conninfo.split())
    return name, as_user


class Cluster:
    """A private PostgreSQL cluster, for tests that stop or restart the server.
    Use as a context manager; it is stopped and removed on exit."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="s1pg.")
        self.pg = os.path.join(SOURCE, "tests", "pg.sh")

    def __enter__(self):
        subprocess.run([self.pg, "start", self.dir], check=True)
        self.conninfo = f"host={self.dir} user=s1 dbname=postgres"
        return self

    def restart(self):
        subprocess.run([self.pg, "restart", self.dir], check=True)

    def halt(self):
        """Stops the server, keeping its data; start() brings it back."""
        subprocess.run([self.pg, "halt", self.dir], check=True)

    def start(self):
        subprocess.run([self.pg, "start", self.dir], check=True)

    def __exit__(self, *exc):
        subprocess.run([self.pg, "stop", self.dir], check=False)


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls predicate until it is true; fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def tap_main(namespace):
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    print(f"1..{len(tests)}", flush=True)
    failed = 0
    for i, (name, fn) in enumerate(tests, 1):
        try:
            fn()
            print(f"ok {i} - {name}", flush=True)
        except Skip as why:
            print(f"ok {i} - {name} # SKIP {why}", flush=True)
        except Exception:
            failed += 1
            print(f"not ok {i} - {name}", flush=True)
            for line in traceback.format_exc().splitlines():
                print(f"# {line}", flush=True)
    sys.exit(1 if failed else 0)
