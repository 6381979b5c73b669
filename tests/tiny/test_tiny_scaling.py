#!/usr/bin/python3
"""Test-time scaling, end to end: s1-tiny's held-out suite imported into a
fresh database, one budget-ladder run at 16, 64 and 256 thinking tokens,
served by a real s1d on the CPU backend, reported by `s1ctl bench report`.

Each problem counts N additions (1 to 20) one line each, about 11 thinking
tokens a line: 16 tokens finish only single additions, 64 the shortest
quarter, 256 all of them. Decoding is greedy, so the figures are fixed for a
given model and kernel set; the bounds below leave a wide margin around those
measured (models/s1-tiny/README.md): 16 → 0.05, 64 → 0.27, 256 → 0.97."""
import json
import os
import subprocess
import sys

SOURCE = os.environ["S1_SOURCE_ROOT"]
sys.path.insert(0, os.path.join(SOURCE, "tests", "daemon"))
from daemonlib import Daemon, migrated_db, psql, wait_for  # noqa: E402
from s1test import binary, tap_main  # noqa: E402

MODEL = os.path.join(SOURCE, "models", "s1-tiny")
SUITE = os.path.join(MODEL, "heldout.jsonl")
BUDGETS = (16, 64, 256)


def ctl(db, *args):
    p = subprocess.run([binary("s1ctl"), *args, "--db", db], capture_output=True, text=True)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def unfinished(db, run):
    return int(psql(db, "SELECT count(*) FROM s1.jobs WHERE bench_run_id = "
                        f"{run} AND state NOT IN ('succeeded', 'failed', 'cancelled')")[0][0])


def test_accuracy_rises_with_the_thinking_budget():
    db = migrated_db("tiny")
    ctl(db, "suite", "import", "s1-tiny", SUITE)
    run = json.loads(ctl(db, "bench", "run", "--json", "--budgets", ",".join(map(str, BUDGETS)),
                         "--max-answer", "16", "s1-tiny"))["run"]
    with Daemon(db, "--model", MODEL, "--backend", "cpu", noop=False):
        wait_for(lambda: unfinished(db, run) == 0, timeout=500, what=f"run {run} to finish")
    report = json.loads(ctl(db, "bench", "report", "--json", str(run)))
    acc = {c["budget"]: c["accuracy"] for c in report["curve"]}
    assert report["succeeded"] == report["jobs"] == 92, report
    assert acc[16] <= 0.1 and 0.1 <= acc[64] <= 0.5 and acc[256] >= 0.7, acc
    assert acc[16] < acc[64] < acc[256], acc


tap_main(globals())
