"""s1ctl bench wait, cancel, retry of a whole run, bench run --dry-run and
--wait, and cancel/retry of several job ids. Jobs end by SQL, as a daemon
would end them; the waits are followed line by line, never by the clock."""
import json
import os
import subprocess

from ctltest import EXAMPLE, HELD, binary, migrated_db, one_error_line, psql, s1ctl, tempdir
from s1test import tap_main

DB = migrated_db("runs")
TMP = tempdir("s1runs.")
ENV = {"DATABASE_URL": DB}
_suites = iter(range(1, 1000))


def ctl(*args, **kw):
    return s1ctl(*args, env=ENV, **kw)


def suite(n=3):
    """A new suite of n problems; returns its name."""
    name = f"runs{next(_suites)}"
    path = os.path.join(TMP, name + ".jsonl")
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"q{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)}) + "\n")
    p = ctl("suite", "import", name, path)
    assert p.returncode == 0, p.stderr
    return name


def run_of(name, *flags):
    p = ctl("bench", "run", name, "--budgets", "10,20", *flags)
    assert p.returncode == 0, p.stderr
    return int(p.stdout.splitlines()[0])


def jobs_of(run):
    return [int(r[0]) for r in psql(DB, f"SELECT id FROM s1.jobs WHERE bench_run_id = {run} ORDER BY id")]


def states_of(run):
    return [r[0] for r in psql(DB, f"SELECT state FROM s1.jobs WHERE bench_run_id = {run} ORDER BY id")]


def end_job(job, state="succeeded"):
    """Ends a job as its daemon would (through running, which the CHECKs want)."""
    psql(DB, f"UPDATE s1.jobs SET state = 'running', {HELD} WHERE id = {job}")
    psql(DB, f"UPDATE s1.jobs SET state = '{state}', lease_until = NULL, finished_at = now() WHERE id = {job}")


def follow(*args):
    """s1ctl started with args, its stdout read line by line."""
    env = dict(os.environ, **ENV)
    return subprocess.Popen([binary("s1ctl"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_dry_run_counts_the_jobs_and_queues_nothing():
    name = suite(3)
    before = psql(DB, "SELECT (SELECT count(*) FROM s1.jobs), (SELECT count(*) FROM s1.bench_runs)")
    p = ctl("bench", "run", name, "--budgets", "10,20", "--separate", "--dry-run", "--json", "--temperature", "0.5")
    assert p.returncode == 0, p.stderr
    plan = json.loads(p.stdout)
    assert plan["dry_run"] is True and plan["jobs"] == 6 and plan["budgets"] == [10, 20]
    assert plan["sampling"] == {"temperature": 0.5} and plan["suite"] == name
    p = ctl("bench", "run", name, "--budgets", "10,20", "--limit", "2", "--dry-run")
    assert p.returncode == 0, p.stderr
    assert "nothing was queued: 2 jobs of suite" in p.stdout
    after = psql(DB, "SELECT (SELECT count(*) FROM s1.jobs), (SELECT count(*) FROM s1.bench_runs)")
    assert before == after


def test_dry_run_refuses_what_a_run_would_refuse():
    p = ctl("bench", "run", "no-such-suite", "--budgets", "10", "--dry-run")
    assert p.returncode == 5
    one_error_line(p, "no such suite")
    p = ctl("bench", "run", suite(1), "--budgets", "10", "--dry-run", "--wait")
    assert p.returncode == 2
    one_error_line(p, "--wait: a --dry-run queues nothing to wait for")


def test_bench_wait_prints_a_line_as_each_job_ends_and_exits_by_the_worst():
    run = run_of(suite(3))
    jobs = jobs_of(run)
    w = follow("bench", "wait", str(run))
    assert w.stdout.readline().startswith(f"run {run}: 0 of 3 jobs ended")
    end_job(jobs[0])
    assert w.stdout.readline().startswith(f"run {run}: 1 of 3 jobs ended (1 succeeded")
    end_job(jobs[1], "failed")
    assert "2 of 3 jobs ended (1 succeeded, 1 failed, 0 cancelled)" in w.stdout.readline()
    end_job(jobs[2])
    out, err = w.communicate(timeout=60)
    assert w.returncode == 1, err
    assert out.strip() == f"run {run}: 3 of 3 jobs ended (2 succeeded, 1 failed, 0 cancelled), 0 pending"


def test_bench_wait_of_a_finished_run_is_its_counts_and_exit_0():
    run = run_of(suite(2))
    for j in jobs_of(run):
        end_job(j)
    p = ctl("bench", "wait", str(run), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"run": run, "jobs": 2, "succeeded": 2, "failed": 0, "cancelled": 0,
                                    "pending": 0, "timed_out": False}


def test_bench_wait_gives_up_at_the_timeout_with_exit_7():
    run = run_of(suite(1))
    p = ctl("bench", "wait", str(run), "--timeout", "0.2", "--quiet")
    assert p.returncode == 7, p.stderr
    assert p.stdout.strip().endswith("1 pending: timed out")


def test_bench_wait_cancel_retry_of_an_unknown_run_is_exit_5():
    for command in ("wait", "cancel", "retry"):
        p = ctl("bench", command, "999999")
        assert p.returncode == 5, (command, p.stderr)
        one_error_line(p, "run 999999: no such benchmark run")
        p = ctl("bench", command)
        assert p.returncode == 2
        one_error_line(p, "missing the run id")


def test_bench_run_wait_follows_the_run_it_queued():
    name = suite(2)
    w = follow("bench", "run", name, "--budgets", "10", "--wait")
    run = int(w.stdout.readline())
    assert w.stdout.readline().startswith(f"run {run}: 0 of 2 jobs ended")
    for j in jobs_of(run):
        end_job(j)
    out, err = w.communicate(timeout=60)
    assert w.returncode == 0, err
    assert out.strip().endswith("2 succeeded, 0 failed, 0 cancelled), 0 pending")


def test_bench_cancel_cancels_queued_jobs_and_asks_running_ones_to_stop():
    run = run_of(suite(3))
    jobs = jobs_of(run)
    end_job(jobs[0])
    psql(DB, f"UPDATE s1.jobs SET state = 'running', {HELD} WHERE id = {jobs[1]}")
    p = ctl("bench", "cancel", str(run), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"run": run, "cancelled": 2, "refused": 0}
    assert states_of(run) == ["succeeded", "running", "cancelled"]
    assert psql(DB, f"SELECT cancel_requested FROM s1.jobs WHERE id = {jobs[1]}")[0][0] == "t"
    p = ctl("bench", "cancel", str(run))
    assert p.returncode == 1
    one_error_line(p, f"run {run}: no queued or running job to cancel")


def test_bench_retry_queues_failed_and_cancelled_jobs_again():
    run = run_of(suite(3))
    jobs = jobs_of(run)
    end_job(jobs[0])
    end_job(jobs[1], "failed")
    end_job(jobs[2], "cancelled")
    p = ctl("bench", "retry", str(run))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"run {run}: 2 jobs queued again"
    assert states_of(run) == ["succeeded", "queued", "queued"]
    p = ctl("bench", "retry", str(run))
    assert p.returncode == 1
    one_error_line(p, f"run {run}: no failed or cancelled job to retry")


def test_cancel_and_retry_take_several_ids_each_on_its_own():
    a, b = (int(ctl("submit", EXAMPLE).stdout) for _ in range(2))
    p = ctl("cancel", str(a), "999999", str(b), "--json")
    assert p.returncode == 5
    assert json.loads(p.stdout) == [{"id": a, "state": "cancelled"}, {"id": b, "state": "cancelled"}]
    one_error_line(p, "999999")
    p = ctl("retry", str(a), str(b))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [f"job {a} queued again", f"job {b} queued again"]


def made_by(run, fingerprints, version="0.1.0"):
    """Results for each job of run, as a daemon with these model files would
    write them (one fingerprint per job, in turn)."""
    for i, j in enumerate(jobs_of(run)):
        psql(DB, f"UPDATE s1.jobs SET state = 'running', {HELD} WHERE id = {j}")
        psql(DB, "INSERT INTO s1.results (job_id, attempt, sample, rung, budget, thinking_tokens, grade,"
                 " model, backend, gpus, model_fingerprint, s1d_version) VALUES "
                 f"({j}, 1, 0, 0, 10, 5, true, 'tiny', 'cpu', 0, '{fingerprints[i % len(fingerprints)]}',"
                 f" '{version}')")
        psql(DB, f"UPDATE s1.jobs SET state = 'succeeded', lease_until = NULL WHERE id = {j}")


def test_reports_show_what_made_the_results_and_compare_warns_when_it_differs():
    name = suite(2)
    a = run_of(name, "--separate")
    b = run_of(name, "--separate")
    made_by(a, ["sha256:aaa"])
    made_by(b, ["sha256:aaa", "sha256:bbb"], version="0.2.0")
    p = ctl("bench", "report", str(a))
    assert p.returncode == 0, p.stderr
    assert "made by: model files sha256:aaa, s1d 0.1.0, backend cpu, 0 GPU(s)" in p.stdout
    report = json.loads(ctl("bench", "report", str(b), "--json").stdout)
    assert report["model_fingerprints"] == "sha256:aaa, sha256:bbb" and report["s1d_versions"] == "0.2.0"
    p = ctl("bench", "compare", str(a), str(b))
    assert p.returncode == 0, p.stderr
    assert f"runs {a} and {b} differ in model_fingerprints: sha256:aaa vs sha256:aaa, sha256:bbb" in p.stderr
    assert f"runs {a} and {b} differ in s1d_versions: 0.1.0 vs 0.2.0" in p.stderr
    assert "differ in backends" not in p.stderr
    rows = psql(DB, f"SELECT model_fingerprints, results FROM s1.run_provenance WHERE bench_run_id = {a}")
    assert rows == [["sha256:aaa", "4"]]
    exported = [json.loads(line) for line in ctl("export", str(a)).stdout.splitlines()]
    assert {(r["model_fingerprint"], r["s1d_version"]) for r in exported} == {("sha256:aaa", "0.1.0")}


tap_main(globals())
