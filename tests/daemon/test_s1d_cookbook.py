#!/usr/bin/python3
"""Every query of docs/sql-cookbook.md returns rows on a fresh database after
a demo-like day: a generated model served by a real s1d, two benchmark runs
(a ladder run and a --separate one, several samples each) followed with
`s1ctl bench wait`, single jobs (one sampled, two the engine refuses), and
the live state the operational queries look at (a backlog, a job held by a
worker that stopped). Each query runs in a transaction rolled back, so the
writes (bulk cancel and retry) are counted but leave nothing behind."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import SOURCE, Daemon, binary, migrated_db, psql, submit, wait_state  # noqa: E402
from s1test import tap_main  # noqa: E402

TMP = tempfile.mkdtemp(prefix="s1cookbook.")
MODEL = os.path.join(TMP, "tiny")
subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "tools", "gen_model.py"), "--out", MODEL,
                "--preset", "tiny"], check=True, capture_output=True)
DB = migrated_db("cookbook")


def ctl(*args):
    env = dict(os.environ, DATABASE_URL=DB)
    return subprocess.run([binary("s1ctl"), *args], capture_output=True, text=True, env=env, timeout=300)


def cookbook_queries():
    text = open(os.path.join(SOURCE, "docs", "sql-cookbook.md")).read()
    return re.findall(r"```sql\n(.*?)```", text, re.S)


def demo_day():
    """The day's work, through s1ctl and a real s1d on the generated model."""
    suite = os.path.join(TMP, "demo.jsonl")
    with open(suite, "w") as f:
        for i in range(3):
            f.write(json.dumps({"id": f"add{i}", "problem": f"What is {i} + 2?", "answer": str(i + 2)}) + "\n")
    assert ctl("suite", "import", "demo", suite).returncode == 0
    runs = []
    for layout in ([], ["--separate"]):
        p = ctl("bench", "run", "demo", "--budgets", "4,8", "--samples", "2", "--max-answer", "8",
                "--temperature", "0.8", "--seed", "3", *layout)
        assert p.returncode == 0, p.stderr
        runs.append(p.stdout.strip())
    problem = os.path.join(TMP, "one.txt")
    with open(problem, "w") as f:
        f.write("What is 2 + 2?\n")
    jobs = [ctl("submit", "--budget", "6", "--max-answer", "8", "--samples", "2", "--answer", "4",
                "--temperature", "0.7", problem).stdout.strip()]
    jobs += [str(j) for j in submit(DB, n=2, policy='{"think_end": "xyzzy", "max_think": 5}')]
    with Daemon(DB, "--model", MODEL, "--threads", "1", noop=False):
        for run in runs:
            p = ctl("bench", "wait", run, "--quiet")
            assert p.returncode in (0, 1), p.stdout + p.stderr
        for j in jobs:
            ctl("wait", j, "--quiet")
    assert psql(DB, "SELECT count(*) FROM s1.jobs WHERE state IN ('queued', 'running')") == [["0"]]


def live_state():
    """What a busy queue has that a finished day does not: jobs waiting where
    no daemon serves, and a job on its second attempt held by a worker that
    stopped heartbeating."""
    submit(DB, n=2, queue="default", policy='{"max_think": 5}')
    [held] = submit(DB, policy='{"max_think": 5}')
    psql(DB, "INSERT INTO s1.workers (name, heartbeat_at) VALUES ('stopped', now() - interval '1 hour')")
    psql(DB, "UPDATE s1.jobs SET state = 'running', attempt = 2, worker = 'stopped', started_at = now(),"
             f" lease_until = now() + interval '1 hour' WHERE id = {held}")


demo_day()
live_state()


def test_the_cookbook_names_no_ids():
    for q in cookbook_queries():
        assert not re.search(r"(job_id|bench_run_id|\bid)\s*=\s*[0-9]", q), q


def test_every_cookbook_query_returns_rows_after_a_demo_day():
    conn = psycopg2.connect(DB)
    empty, failed = [], []
    for q in cookbook_queries():
        body = "\n".join(line for line in q.splitlines() if line.strip() not in ("BEGIN;", "COMMIT;"))
        first = body.splitlines()[0]
        try:
            with conn.cursor() as cur:
                cur.execute(body)
                listen = first.startswith("LISTEN")  # no rows by nature: it subscribes
                if not listen and (cur.rowcount <= 0 if cur.description is None else not cur.fetchall()):
                    empty.append(first)
        except psycopg2.Error as e:
            failed.append((first, str(e).splitlines()[0]))
        conn.rollback()
    conn.close()
    assert failed == [], failed
    assert empty == [], empty


def test_failure_reasons_group_jobs_whose_messages_differ_only_in_numbers():
    rows = psql(DB, "SELECT regexp_replace(error, '[0-9]+', '#', 'g'), count(*) FROM s1.jobs"
                    " WHERE state = 'failed' GROUP BY 1")
    assert len(rows) == 1 and rows[0][1] == "2", rows


try:
    tap_main(globals())
finally:
    shutil.rmtree(TMP, ignore_errors=True)
