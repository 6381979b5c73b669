#!/usr/bin/python3
"""Crash-resume on the real engine with a tiny generated model: a daemon
killed with SIGKILL mid-thinking leaves its saved sequences in s1.resume
(every sample, every ladder branch, running or finished), the daemon that
rescues the job rebuilds them and goes on, and every result row is token for
token the one of a run that was never interrupted, greedy and sampled, with
several samples, on a budget ladder and on a Wait ladder."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import SOURCE, Daemon, job, migrated_db, psql, wait_for, wait_state  # noqa: E402
from s1test import tap_main  # noqa: E402

MODEL_PARENT = tempfile.mkdtemp(prefix="s1model.")
MODEL = os.path.join(MODEL_PARENT, "tiny")
subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "tools", "gen_model.py"), "--out", MODEL,
                "--preset", "tiny", "--max-position", "16384"], check=True, capture_output=True)

# min_think = max_think: the random model's early stops become waits, so the
# thinking is long and the policy state has waits. Long enough that the job
# runs for many save intervals on any machine: the kill must land in it.
POLICY = '{"max_think": 5000, "min_think": 5000, "max_answer": 16}'


def engine_daemon(db):
    return Daemon(db, "--model", MODEL, "--threads", "1", "--lease", "2", "--heartbeat", "0.3",
                  "--save-every", "0.02", noop=False)


def insert(db, sampling, policy=POLICY, samples=1):
    return int(psql(db, f"INSERT INTO s1.jobs (problem, policy, sampling, samples) "
                        f"VALUES ('What is 2 + 2?', '{policy}', '{sampling}', {samples}) RETURNING id")[0][0])


def results(db, jid):
    """Every result row of the job, by sample and rung: all but timings."""
    return psql(db, f"SELECT sample, rung, budget, ignore_stop, s1.ids(token_ids), thinking_tokens, forced_tokens, "
                    f"answer_tokens, waits, forced_end, context_end, stop_reason, trace, extracted_answer "
                    f"FROM s1.results WHERE job_id = {jid} ORDER BY sample, rung")


def killed_then_rescued(sampling, ready_sql, policy=POLICY, samples=1):
    """Runs a job whole, then the same job in a daemon killed (SIGKILL) once
    ready_sql, over the job's rows of s1.resume, is true; another daemon
    finishes it. Returns the database, both job ids and what was saved."""
    db = migrated_db()
    whole = insert(db, sampling, policy, samples)
    with engine_daemon(db):
        wait_state(db, whole, "succeeded", timeout=600)
    rescued = insert(db, sampling, policy, samples)
    watch = psycopg2.connect(db)
    watch.autocommit = True

    def ready():
        cur = watch.cursor()
        cur.execute(f"SELECT ({ready_sql}), (SELECT state FROM s1.jobs WHERE id = %s) "
                    f"FROM s1.resume WHERE job_id = %s", (rescued, rescued))
        seen, state = cur.fetchone()
        assert seen or state in ("queued", "running", None), \
            f"the job ended ({state}) before a save where {ready_sql}: make it longer"
        return seen
    with engine_daemon(db) as first:
        # Polled often on one open connection and frozen at once: the job
        # cannot finish between the save seen and the kill.
        wait_for(ready, timeout=600, interval=0.005, what=f"a save where {ready_sql}")
        os.kill(first.proc.pid, signal.SIGSTOP)
        first.kill()
    watch.close()
    saved = psql(db, f"SELECT sample, rung, cardinality(token_ids), stop_reason FROM s1.resume "
                     f"WHERE job_id = {rescued} ORDER BY sample, rung")
    assert job(db, rescued, "state")[0] == "running", "the job ended before the kill: make it longer"
    with engine_daemon(db) as second:
        wait_state(db, rescued, "succeeded", timeout=600)
        second.wait_log(f"job {rescued}: resuming {len(saved)} sequence")
    assert job(db, rescued, "attempt") == ["2"]
    assert results(db, rescued) == results(db, whole)
    assert psql(db, f"SELECT count(*) FROM s1.resume WHERE job_id IN ({whole}, {rescued})") == [["0"]]
    return db, whole, rescued, saved


def killed_mid_thinking_then_rescued(sampling):
    db, whole, rescued, saved = killed_then_rescued(sampling, "coalesce(max(cardinality(token_ids)), 0) >= 50")
    assert 50 <= int(saved[0][2]) < len(results(db, whole)[0][4].split(","))


def test_a_greedy_job_killed_mid_thinking_ends_as_if_never_interrupted():
    killed_mid_thinking_then_rescued('{}')


def test_a_sampled_job_killed_mid_thinking_ends_as_if_never_interrupted():
    killed_mid_thinking_then_rescued('{"temperature": 0.8, "top_p": 0.9, "seed": 11}')


def test_every_sample_of_a_sampled_job_killed_mid_thinking_ends_as_if_never_interrupted():
    _, _, _, saved = killed_then_rescued('{"temperature": 0.8, "top_p": 0.9, "seed": 5}',
                                         "count(DISTINCT sample) = 3 AND min(cardinality(token_ids)) >= 50",
                                         samples=3)
    assert [row[:2] for row in saved] == [["0", "0"], ["1", "0"], ["2", "0"]]


def test_a_budget_ladder_killed_after_its_first_rungs_forked_ends_as_if_never_interrupted():
    # Stops are waits (ignore_stop) so the largest budget thinks long; the
    # budget of 100 forks, answers and finishes, that of 300 forks, then
    # the kill comes while the trunk thinks towards 5000.
    policy = '{"budgets": [100, 300, 5000], "ignore_stop": 100000, "max_answer": 16}'
    _, _, _, saved = killed_then_rescued('{"temperature": 0.7, "seed": 3}', "count(*) = 3", policy)
    assert [row[:2] for row in saved] == [["0", "0"], ["0", "1"], ["0", "2"]]
    assert saved[0][3] != "", "the first rung's branch is saved finished, its result given again"
    assert saved[2][3] == "", "the trunk was still thinking"


def test_a_wait_ladder_killed_after_its_first_rung_forked_ends_as_if_never_interrupted():
    # Sampled, the random model stops now and then: the first stop after
    # min_think is accepted by rung 0's branch, the trunk suppresses them all.
    policy = '{"max_think": 5000, "min_think": 300, "waits": [0, 100000], "max_answer": 16}'
    _, _, _, saved = killed_then_rescued('{"temperature": 0.7, "seed": 3}', "count(*) = 2", policy)
    assert [row[:2] for row in saved] == [["0", "0"], ["0", "1"]]


def job_with_a_save(model, state):
    """A short queued job with a saved sample 0 as another daemon left it."""
    db = migrated_db()
    jid = insert(db, "{}", policy='{"max_think": 10, "max_answer": 16}')
    psql(db, f"INSERT INTO s1.resume (job_id, sample, attempt, worker, model, token_ids, token_kinds, state) "
             f"VALUES ({jid}, 0, 1, 'gone', '{model}', '{{1,2}}', '{{1,1}}', '{state}')")
    return db, jid


def test_saved_tokens_of_another_model_are_not_resumed():
    db, jid = job_with_a_save("other-model", "x")
    with engine_daemon(db) as d:
        wait_state(db, jid, "succeeded", timeout=60)
        assert "resuming" not in d.output()


def test_a_damaged_saved_state_costs_the_tokens_not_the_job():
    db, jid = job_with_a_save("tiny", "not a state")
    with engine_daemon(db) as d:
        wait_state(db, jid, "succeeded", timeout=60)
        d.wait_log("its saved state was refused")
    assert job(db, jid, "attempt, error IS NULL") == ["1", "t"]


try:
    tap_main(globals())
finally:
    shutil.rmtree(MODEL_PARENT, ignore_errors=True)
