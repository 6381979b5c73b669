"""Helpers for the s1ctl tests: run s1ctl against a database, get a migrated
database, insert jobs and results the way a daemon would."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from s1test import SOURCE, binary, fresh_db, psql  # noqa: E402,F401

EXAMPLE = os.path.join(SOURCE, "examples", "problem.txt")


def s1ctl(*args, db=None, stdin=None, env=None, timeout=60, user=None):
    """Runs s1ctl with args (and --db db after the command when given), as
    user through runuser when given; returns the CompletedProcess with text
    stdout/stderr."""
    argv = [binary("s1ctl"), *args]
    if db is not None:
        argv[2:2] = ["--db", db]
    if user is not None:
        argv[0:0] = ["runuser", "-u", user, "--"]
    full_env = dict(os.environ)
    full_env.pop("DATABASE_URL", None)
    full_env.update(env or {})
    return subprocess.run(argv, input=stdin, capture_output=True, text=stdin is None or isinstance(stdin, str),
                          env=full_env, timeout=timeout)


def tempdir(prefix):
    """A temporary directory removed when the test program exits."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def one_error_line(p, *needles):
    """Asserts p failed with exactly one line on stderr containing needles."""
    err = p.stderr if isinstance(p.stderr, str) else p.stderr.decode()
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"


def migrated_db(prefix="ctl"):
    db = fresh_db(prefix)
    p = s1ctl("migrate", db=db)
    assert p.returncode == 0, p.stderr
    return db


# What a claim sets: a running job is held by a worker under a lease (0003_roles).
HELD = "attempt = 1, worker = 'w1', lease_until = now() + interval '1 hour'"
RUNNING = "state = 'running', " + HELD


def insert_job(db, state="queued", policy="{}", queue="default", problem="What is 1+1?"):
    """Inserts a job in any state, as if a daemon had moved it there; returns its id."""
    rows = psql(db, "INSERT INTO s1.jobs (problem, queue, policy) "
                    f"VALUES ('{problem}', '{queue}', '{policy}') RETURNING id")
    jid = int(rows[0][0])
    if state != "queued":
        psql(db, f"UPDATE s1.jobs SET state = '{state}', {HELD} WHERE id = {jid}")
    return jid


def job_count(db):
    return int(psql(db, "SELECT count(*) FROM s1.jobs")[0][0])
