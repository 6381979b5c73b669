#!/usr/bin/python3
"""s1d on the real engine with a tiny generated model: every result column
filled and consistent, ladder jobs whose rows equal separate jobs, thinking
that ends in time for the answer under --max-context, rows the engine
refuses failing with the reason while the daemon goes on, and the think-tags
template (a QwQ-like tokenizer) chosen per job or by the model."""
import glob
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlib import SOURCE, Daemon, job, migrated_db, psql, submit, wait_state  # noqa: E402
from s1test import binary, tap_main  # noqa: E402

MODEL_PARENT = tempfile.mkdtemp(prefix="s1model.")
MODEL = os.path.join(MODEL_PARENT, "tiny")
THINK_TAGS_MODEL = os.path.join(MODEL_PARENT, "tiny-think-tags")
for out, extra in ((MODEL, []), (THINK_TAGS_MODEL, ["--think-tags"])):
    subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "tools", "gen_model.py"), "--out", out,
                    "--preset", "tiny", *extra], check=True, capture_output=True)


def engine_daemon(db, *args, model=MODEL):
    return Daemon(db, "--model", model, "--threads", "1", *args, noop=False)


def submit_sampled(db, policy, samples=1):
    """A job sampled at temperature 0.9 with seed 5; returns its id."""
    rows = psql(db, "INSERT INTO s1.jobs (problem, policy, sampling, samples) VALUES "
                    f"('What is 2 + 2?', '{policy}', '{{\"temperature\": 0.9, \"seed\": 5}}', {samples})"
                    " RETURNING id")
    return int(rows[0][0])


def runs(db, jid):
    """(sample, rung, budget, ignore_stop) -> (token_ids, counts, stop) of a job's rows."""
    rows = psql(db, "SELECT sample, rung, coalesce(budget, 0), ignore_stop, s1.ids(token_ids)::text,"
                    " thinking_tokens, forced_tokens, answer_tokens, waits, forced_end, stop_reason"
                    f" FROM s1.results WHERE job_id = {jid} ORDER BY sample, rung")
    return {tuple(int(x) for x in r[:4]): tuple(r[4:]) for r in rows}


def fingerprint(model):
    """daemon/fingerprint.h's hash, computed here independently: config.json,
    then each shard's name, size and header, every field length-prefixed."""
    def field(b):
        return struct.pack("<Q", len(b)) + b
    h = hashlib.sha256()
    with open(os.path.join(model, "config.json"), "rb") as f:
        h.update(field(f.read()))
    for path in sorted(glob.glob(os.path.join(model, "*.safetensors"))):
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = f.read(n)
        h.update(field(os.path.basename(path).encode()))
        h.update(field(struct.pack("<Q", os.path.getsize(path))))
        h.update(field(header))
    return "sha256:" + h.hexdigest()


def test_each_row_of_a_ladder_job_equals_a_separate_job():
    db = migrated_db()
    budgets = submit_sampled(db, '{"budgets": [4, 8, 16], "max_answer": 6}', samples=2)
    waits = submit_sampled(db, '{"waits": [0, 1, 3], "max_think": 40, "max_answer": 6}', samples=2)
    separate = {(k, b, 0): submit_sampled(db, f'{{"max_think": {b}, "max_answer": 6}}', samples=2)
                for k, b in enumerate((4, 8, 16))}
    separate.update({(k, 40, w): submit_sampled(db, f'{{"ignore_stop": {w}, "max_think": 40, "max_answer": 6}}',
                                                samples=2)
                     for k, w in enumerate((0, 1, 3))})
    with engine_daemon(db):
        for jid in [budgets, waits, *separate.values()]:
            wait_state(db, jid, "succeeded", timeout=120)
    for ladder in (budgets, waits):
        got = runs(db, ladder)
        assert len(got) == 6, got
        for (sample, rung, budget, ignore_stop), run in got.items():
            alone = runs(db, separate[(rung, budget, ignore_stop)])
            assert alone[(sample, 0, budget, ignore_stop)] == run, (sample, rung)
    rows = psql(db, f"SELECT budget, ladder, rungs FROM s1.job_summary WHERE id IN ({budgets}, {waits}) ORDER BY id")
    assert rows == [["16", "budgets", "3"], ["40", "waits", "3"]]


def test_without_a_budget_thinking_leaves_the_answer_room_in_the_context():
    db = migrated_db()
    # Every stop suppressed: only the context can end the thinking.
    [jid] = submit(db, policy='{"max_answer": 20, "ignore_stop": 100000}')
    with engine_daemon(db, "--max-context", "160"):
        wait_state(db, jid, "succeeded", timeout=60)
        [row] = psql(db, "SELECT prompt_tokens + thinking_tokens + forced_tokens + answer_tokens,"
                         f" answer_tokens, forced_end, context_end FROM s1.results WHERE job_id = {jid}")
        assert int(row[0]) <= 160 and int(row[1]) > 0 and row[2:] == ["t", "t"], row
        assert psql(db, "SELECT max_context FROM s1.workers") == [["160"]]


def test_a_job_succeeds_with_every_result_column_filled_and_consistent():
    db = migrated_db()
    [jid] = submit(db, policy='{"max_think": 20, "max_answer": 30}', samples=2, reference="4")
    with engine_daemon(db) as d:
        wait_state(db, jid, "succeeded", timeout=60)
        rows = psql(db, "SELECT sample, attempt, prompt_tokens, thinking_tokens, forced_tokens, answer_tokens,"
                        " waits, forced_end, stop_reason, cardinality(s1.ids(prompt_ids)),"
                        " coalesce(cardinality(s1.ids(token_ids)), 0), trace IS NOT NULL, answer IS NOT NULL,"
                        " grade IS NOT NULL, queue_wait_ms >= 0, ttft_ms > 0, decode_tps >= 0,"
                        " model, backend, gpus, worker"
                        f" FROM s1.results WHERE job_id = {jid} ORDER BY sample")
        assert [r[0] for r in rows] == ["0", "1"], rows
        for r in rows:
            prompt, thinking, forced, answer = (int(x) for x in r[2:6])
            assert r[1] == "1"
            assert 0 <= thinking <= 20, r
            assert thinking + forced + answer == int(r[10]), r
            assert prompt == int(r[9]) > 0, r
            assert r[8] in ("eos", "max_answer", "context"), r
            assert r[11:17] == ["t"] * 6, r
            assert r[17:] == ["tiny", "cpu", "0", d.name], r
        assert job(db, jid, "progress_thinking::int <= 20, error IS NULL") == ["t", "t"]
        version = subprocess.run([binary("s1d"), "--version"], capture_output=True, text=True).stdout.split()[1]
        made_by = psql(db, f"SELECT DISTINCT model_fingerprint, s1d_version FROM s1.results WHERE job_id = {jid}")
        assert made_by == [[fingerprint(MODEL), version]], made_by
        assert psql(db, f"SELECT model_fingerprint FROM s1.workers WHERE name = '{d.name}'") == [[fingerprint(MODEL)]]
        # the samples were voted on: one majority row when any has an answer, none otherwise
        majority, unvoted, answered = (int(x) for x in psql(
            db, "SELECT count(*) FILTER (WHERE majority), count(*) FILTER (WHERE majority IS NULL),"
                f" count(extracted_answer) FROM s1.results WHERE job_id = {jid}")[0])
        assert (majority, unvoted) == (1 if answered else 0, 0)


def test_rows_the_engine_refuses_fail_with_the_reason_and_the_daemon_goes_on():
    db = migrated_db()
    # The schema refuses a blank problem (0003_roles); without that constraint
    # the daemon's own check is what stands between it and the engine.
    psql(db, "ALTER TABLE s1.jobs DROP CONSTRAINT jobs_problem_not_blank")
    [two_token_end] = submit(db, policy='{"think_end": "xyzzy", "max_think": 5}')
    [empty] = submit(db, problem="")
    [good] = submit(db, policy='{"max_think": 5, "max_answer": 5}')
    with engine_daemon(db) as d:
        wait_state(db, two_token_end, "failed", timeout=60)
        assert "think_end" in job(db, two_token_end, "error")[0]
        wait_state(db, empty, "failed")
        assert "empty" in job(db, empty, "error")[0]
        wait_state(db, good, "succeeded", timeout=60)
        assert d.alive()
        assert psql(db, f"SELECT count(*) FROM s1.results WHERE job_id IN ({two_token_end}, {empty})") == [["0"]]


def test_think_tags_jobs_force_the_close_tag_and_fail_where_the_tokenizer_lacks_it():
    db = migrated_db()
    # Thinking forced to end at 8 tokens (min_think turns early ends into waits).
    policy = '{"max_think": 8, "min_think": 8, "max_answer": 4}'
    [by_model] = submit(db, policy=policy)
    [as_s1] = submit(db, policy=policy)
    psql(db, f"UPDATE s1.jobs SET template = 's1' WHERE id = {as_s1}")
    with engine_daemon(db, model=THINK_TAGS_MODEL) as d:
        d.wait_log("think-tags template by default")
        for jid in (by_model, as_s1):
            wait_state(db, jid, "succeeded", timeout=60)
    # Traces span lines: the checks run in SQL.
    rows = psql(db, "SELECT strpos(trace, E'</think>\\n\\nFinal Answer:') > 0, strpos(trace, '<|im_start|>') = 0,"
                    " strpos(trace, E'<|im_start|>answer\\nFinal Answer:') > 0"
                    f" FROM s1.results WHERE job_id IN ({by_model}, {as_s1}) ORDER BY job_id")
    assert rows == [["t", "t", "f"], ["f", "f", "t"]], rows

    [wrong] = submit(db, policy=policy)
    psql(db, f"UPDATE s1.jobs SET template = 'think-tags' WHERE id = {wrong}")
    [good] = submit(db, policy=policy)
    with engine_daemon(db) as d:
        wait_state(db, wrong, "failed", timeout=60)
        assert "the think-tags template needs </think> as one token" in job(db, wrong, "error")[0]
        wait_state(db, good, "succeeded", timeout=60)
        assert d.alive()


def test_a_configured_template_the_model_cannot_serve_is_refused_at_load():
    db = migrated_db()
    r = subprocess.run([binary("s1d"), "--db", db, "--model", MODEL, "--threads", "1",
                        "--template", "think-tags"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0, r.stderr
    assert "think-tags template needs </think> as one token" in r.stderr and MODEL in r.stderr, r.stderr
    assert psql(db, "SELECT count(*) FROM s1.workers WHERE state <> 'stopped'") == [["0"]]


try:
    tap_main(globals())
finally:
    shutil.rmtree(MODEL_PARENT, ignore_errors=True)
