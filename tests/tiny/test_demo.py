#!/usr/bin/python3
"""The README's first command, tools/demo, run whole with its state in a
temporary directory and this build: it must end with s1-tiny's right answer
at the budget that suffices and a wrong or missing one at the smallest. The
cluster and the daemon it leaves running are stopped whatever happens."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

SOURCE = os.environ["S1_SOURCE_ROOT"]
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))
from s1test import BUILD, tap_main  # noqa: E402


def run_demo(var):
    env = {**os.environ, "S1_DEMO_VAR": var, "S1_DEMO_BUILD": BUILD}
    return subprocess.run([os.path.join(SOURCE, "tools", "demo")], capture_output=True, text=True,
                          env=env, timeout=500)


def stop_demo(var):
    pid = os.path.join(var, "s1d.pid")
    if os.path.exists(pid):
        try:
            os.kill(int(open(pid).read()), signal.SIGKILL)
        except ProcessLookupError:
            pass
    subprocess.run([os.path.join(SOURCE, "tests", "pg.sh"), "stop", os.path.join(var, "pg")], check=False)
    shutil.rmtree(var, ignore_errors=True)


def rung_answers(out):
    """{budget: (answer, grade)} from the lines `s1ctl result` prints, e.g.
    "sample 0, budget 256, ignore-stop 0: answer 132 (correct); thinking ..."."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"sample 0, budget (\d+), ignore-stop \d+: answer (.*) \((correct|wrong|ungraded)\);", line)
        if m:
            rows[int(m.group(1))] = (m.group(2), m.group(3))
    return rows


def test_the_demo_prints_the_right_answer_at_a_budget_that_suffices():
    var = tempfile.mkdtemp(prefix="s1demo.")
    try:
        p = run_demo(var)
        assert p.returncode == 0, p.stdout + p.stderr
        answers = rung_answers(p.stdout)
        assert answers[256] == ("132", "correct"), p.stdout
        assert answers[32][1] == "wrong", p.stdout
        again = run_demo(var)
        assert again.returncode == 0 and "already running" in again.stdout, again.stdout + again.stderr
    finally:
        stop_demo(var)


tap_main(globals())
