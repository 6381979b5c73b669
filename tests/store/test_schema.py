"""The schema as the contract of s1ctl and s1d: CHECK constraints, the
notifications, the views. Exercised with plain SQL."""
import select
import subprocess

import psycopg2

from ctltest import HELD, insert_job, migrated_db, psql
from s1test import tap_main

DB = migrated_db("schema")

BAD_POLICIES = [
    '{"max_think": 0}', '{"max_think": -5}', '{"max_think": 10.0}',
    '{"max_think": "100"}', '{"max_think": 2147483648}', '{"min_think": -1}',
    '{"max_think": 10, "min_think": 11}', '{"ignore_stop": -1}', '{"max_answer": 1.5}',
    '{"system": 1}', '{"wait_string": ""}', '{"think_end": ""}', '{"answer_prefix": null}',
    '{"budget": 100}', '[]', '"x"', '{"max_think": "abc", "min_think": 3}',
]
BAD_SAMPLINGS = [
    '{"temperature": -0.5}', '{"temperature": "1"}', '{"top_p": 0}', '{"top_p": 1.01}',
    '{"top_k": -1}', '{"top_k": 2.5}', '{"seed": -1}', '{"seed": 9223372036854775808}',
    '{"temp": 1}', '[]',
]


def rejected(column, value):
    try:
        psql(DB, f"INSERT INTO s1.jobs (problem, {column}) VALUES ('p', '{value}')")
    except subprocess.CalledProcessError as e:
        return f"jobs_{column}_check" in e.stderr
    return False


def test_check_constraints_reject_every_bad_policy():
    accepted = [p for p in BAD_POLICIES if not rejected("policy", p)]
    assert accepted == [], accepted


def test_check_constraints_reject_every_bad_sampling():
    accepted = [s for s in BAD_SAMPLINGS if not rejected("sampling", s)]
    assert accepted == [], accepted


def test_check_constraints_accept_full_policy_and_sampling():
    psql(DB, "INSERT INTO s1.jobs (problem, policy, sampling) VALUES ('p', "
             "'{\"max_think\": 100, \"min_think\": 100, \"ignore_stop\": 2, \"max_answer\": 0, "
             "\"system\": \"\", \"think_end\": \"<|im_start|>\", \"answer_header\": \"answer\\n\", "
             "\"answer_prefix\": \"\", \"wait_string\": \"Wait\"}', "
             "'{\"temperature\": 0.7, \"top_p\": 1, \"top_k\": 0, \"seed\": 9223372036854775807}')")


def test_samples_and_max_attempts_are_bounded():
    for col, v in (("samples", 0), ("samples", 1025), ("max_attempts", 0)):
        try:
            psql(DB, f"INSERT INTO s1.jobs (problem, {col}) VALUES ('p', {v})")
            raise AssertionError(f"{col} = {v} was stored")
        except subprocess.CalledProcessError as e:
            assert "check constraint" in e.stderr


def listener(*channels):
    conn = psycopg2.connect(DB)
    conn.autocommit = True
    with conn.cursor() as cur:
        for ch in channels:
            cur.execute(f"LISTEN {ch}")
    return conn


def notifications(conn, want, timeout=10.0):
    """Collects notifications until want of them arrived (or timeout)."""
    got = []
    while len(got) < want:
        if select.select([conn], [], [], timeout) == ([], [], []):
            break
        conn.poll()
        got += [(n.channel, n.payload) for n in conn.notifies]
        conn.notifies.clear()
    return got


def test_a_queue_name_no_daemon_could_serve_is_refused():
    for q in ("", "a,b", " lead", "trail ", "tab\tq", "nel\u0085q", "x" * 201):
        try:
            psql(DB, "INSERT INTO s1.jobs (problem, queue) VALUES ('p', " + "'" + q + "')")
            raise AssertionError(f"queue {q!r} was stored")
        except subprocess.CalledProcessError as e:
            assert "jobs_queue_name" in e.stderr, e.stderr
    psql(DB, "INSERT INTO s1.jobs (problem, queue) VALUES ('p', 'gpu large é')")


def test_insert_notifies_s1_jobs_with_the_queue_name():
    conn = listener("s1_jobs")
    insert_job(DB, queue="gpu-big")
    assert notifications(conn, 1) == [("s1_jobs", "gpu-big")]
    conn.close()


def test_a_claim_notifies_nobody_and_the_end_of_a_job_notifies_s1_progress():
    jid, cancelled = insert_job(DB), insert_job(DB)
    conn = listener("s1_progress", "s1_jobs", "s1_cancel")
    psql(DB, f"UPDATE s1.jobs SET state = 'running', {HELD}, progress_thinking = 7 WHERE id = {jid}")
    psql(DB, f"UPDATE s1.jobs SET progress_thinking = 9 WHERE id = {jid}")  # no state change
    psql(DB, f"UPDATE s1.jobs SET state = 'succeeded', progress_thinking = 12 WHERE id = {jid}")
    psql(DB, f"SELECT s1.cancel_job({cancelled})")
    psql(DB, "SELECT pg_notify('s1_progress', 'last')")
    # Notifications come in commit order: one from the claim would come first.
    assert notifications(conn, 3) == [("s1_progress", f"{jid} 12"), ("s1_progress", f"{cancelled} 0"),
                                      ("s1_progress", "last")]
    conn.close()


def test_token_ids_roundtrip_through_bytea_and_the_int_array_view():
    jid = insert_job(DB, state="running")
    ids = [0, 1, 255, 256, 65536, 151643, 2**31 - 1, -1, -2**31]
    literal = "{" + ",".join(map(str, ids)) + "}"
    psql(DB, "INSERT INTO s1.results (job_id, attempt, sample, prompt_ids, token_ids) VALUES "
             f"({jid}, 1, 0, s1.ids_bytea('{{}}'), s1.ids_bytea('{literal}'))")
    stored = b"".join(i.to_bytes(4, "little", signed=True) for i in ids).hex()
    assert psql(DB, f"SELECT encode(token_ids, 'hex'), octet_length(prompt_ids) FROM s1.results "
                    f"WHERE job_id = {jid}") == [[stored, "0"]]
    assert psql(DB, f"SELECT prompt_ids::text, token_ids::text FROM s1.result_ids WHERE job_id = {jid}") \
        == [["{}", literal]]


def test_token_ids_that_are_not_whole_int32s_are_refused():
    jid = insert_job(DB, state="running")
    try:
        psql(DB, f"INSERT INTO s1.results (job_id, attempt, sample, token_ids) VALUES ({jid}, 1, 0, '\\x010203')")
        raise AssertionError("3 bytes of token ids were stored")
    except subprocess.CalledProcessError as e:
        assert "results_ids_are_int32" in e.stderr, e.stderr


def test_a_requeue_notifies_s1_jobs():
    jid = insert_job(DB, state="running", queue="q2")
    conn = listener("s1_jobs")
    psql(DB, f"UPDATE s1.jobs SET state = 'queued' WHERE id = {jid}")
    assert notifications(conn, 1) == [("s1_jobs", "q2")]
    conn.close()


def test_updated_at_follows_every_write():
    jid = insert_job(DB)
    psql(DB, f"UPDATE s1.jobs SET updated_at = '2000-01-01' WHERE id = {jid}")
    psql(DB, f"UPDATE s1.jobs SET priority = 5 WHERE id = {jid}")
    assert psql(DB, f"SELECT updated_at > now() - interval '1 hour' FROM s1.jobs WHERE id = {jid}") == [["t"]]


def test_claim_index_covers_only_queued_jobs():
    rows = psql(DB, "SELECT indexdef FROM pg_indexes WHERE schemaname = 's1' AND indexname = 'jobs_claim'")
    assert "(queue, priority DESC, id)" in rows[0][0] and "WHERE (state = 'queued'" in rows[0][0]


def add_result(jid, sample=0, thinking=50, grade="true", answer="2", budget_state="succeeded"):
    psql(DB, "INSERT INTO s1.results (job_id, attempt, sample, thinking_tokens, answer_tokens, "
             "extracted_answer, grade, forced_end, stop_reason) "
             f"VALUES ({jid}, 1, {sample}, {thinking}, 5, '{answer}', {grade}, false, 'eos')")
    psql(DB, f"UPDATE s1.jobs SET state = '{budget_state}' WHERE id = {jid}")


def test_job_summary_shows_the_answer_and_grade_of_sample_0():
    jid = insert_job(DB, state="running", policy='{"max_think": 100}')
    add_result(jid, sample=1, answer="wrong", grade="false")
    add_result(jid, sample=0, answer="2", grade="true", thinking=64)
    row = psql(DB, f"SELECT state, budget, thinking, answer, grade FROM s1.job_summary WHERE id = {jid}")
    assert row == [["succeeded", "100", "64", "2", "t"]]


def test_scaling_curve_gives_accuracy_and_respected_budgets_per_budget():
    psql(DB, "INSERT INTO s1.suites (name) VALUES ('mini')")
    psql(DB, "INSERT INTO s1.suite_problems (suite_id, name, problem, reference_answer) "
             "SELECT id, 'p1', '1+1', '2' FROM s1.suites WHERE name = 'mini'")
    run = psql(DB, "INSERT INTO s1.bench_runs (suite_id, budgets) "
                   "SELECT id, '{10,20}' FROM s1.suites WHERE name = 'mini' RETURNING id")[0][0]
    for budget, thinking, grade in ((10, 10, "true"), (10, 8, "false"), (20, 25, "true")):
        jid = int(psql(DB, "INSERT INTO s1.jobs (problem, policy, bench_run_id) "
                           f"VALUES ('1+1', '{{\"max_think\": {budget}}}', {run}) RETURNING id")[0][0])
        add_result(jid, thinking=thinking, grade=grade)
    rows = psql(DB, "SELECT budget, jobs, accuracy::float, mean_thinking_tokens::float, "
                    f"budget_respected::float FROM s1.scaling_curve WHERE bench_run_id = {run} ORDER BY budget")
    assert rows == [["10", "2", "0.5", "9", "1"], ["20", "1", "1", "25", "0"]]


def test_a_bench_run_needs_a_ladder_of_positive_budgets():
    for budgets in ("{}", "{0,10}"):
        try:
            psql(DB, f"INSERT INTO s1.bench_runs (suite_id, budgets) SELECT id, '{budgets}' FROM s1.suites LIMIT 1")
            raise AssertionError(f"budgets {budgets} were stored")
        except subprocess.CalledProcessError as e:
            assert "check constraint" in e.stderr


def test_worker_status_says_which_workers_are_alive():
    psql(DB, "INSERT INTO s1.workers (name, state, heartbeat_at) VALUES "
             "('fresh', 'running', now()), ('silent', 'running', now() - interval '5 minutes'), "
             "('gone', 'stopped', now())")
    rows = psql(DB, "SELECT name, alive, heartbeat_age >= interval '5 minutes' FROM s1.worker_status ORDER BY name")
    assert rows == [["fresh", "t", "f"], ["gone", "f", "f"], ["silent", "f", "t"]]


tap_main(globals())
