"""s1ctl show, list, result, cancel, retry, wait, and the top-level flags,
on jobs moved through their states by SQL as a daemon would."""
import json
import os
import pty
import re
import select
import subprocess

import psycopg2

from ctltest import RUNNING, SOURCE, binary, insert_job, migrated_db, one_error_line, psql, s1ctl
from s1test import tap_main

DB = migrated_db("jobs")


def test_show_prints_every_field_of_the_job():
    jid = insert_job(DB, policy='{"max_think": 77}')
    p = s1ctl("show", str(jid), db=DB)
    assert p.returncode == 0, p.stderr
    fields = dict(line.split(None, 1) for line in p.stdout.splitlines() if " " in line)
    assert fields["id"] == str(jid) and fields["state"] == "queued"
    assert fields["policy"] == '{"max_think": 77}'


def test_show_json_types_the_values():
    jid = insert_job(DB, policy='{"max_think": 77}')
    out = json.loads(s1ctl("show", "--json", str(jid), db=DB).stdout)
    assert out["id"] == jid and out["policy"] == {"max_think": 77}
    assert out["cancel_requested"] is False and out["worker"] is None and out["attempt"] == 0


def test_show_of_a_missing_job_is_exit_5():
    p = s1ctl("show", "987654", db=DB)
    assert p.returncode == 5
    one_error_line(p, "job 987654: no such job")


def test_a_job_id_must_be_one_positive_integer():
    for argv in (["show", "abc"], ["show", "0"], ["show"], ["cancel", "-1"], ["show", "1", "2"],
                 ["wait", "1x"], ["result"]):
        p = s1ctl(*argv, db=DB)
        assert p.returncode == 2, argv
        one_error_line(p)


def test_list_filters_by_state_and_queue_and_limits():
    a = insert_job(DB, queue="listq")
    b = insert_job(DB, queue="listq", state="failed")
    insert_job(DB, queue="other")
    rows = json.loads(s1ctl("list", "--queue", "listq", "--json", db=DB).stdout)
    assert [r["id"] for r in rows] == [b, a]
    rows = json.loads(s1ctl("list", "--queue", "listq", "--state", "failed", "--json", db=DB).stdout)
    assert [r["id"] for r in rows] == [b]
    assert len(json.loads(s1ctl("list", "--limit", "1", "--json", db=DB).stdout)) == 1


def test_list_prints_a_table_with_a_header():
    insert_job(DB, queue="tableq")
    lines = s1ctl("list", "--queue", "tableq", db=DB).stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "state", "queue"]
    assert len(lines) == 2 and "tableq" in lines[1]


def test_list_refuses_an_unknown_state_and_a_bad_limit():
    p = s1ctl("list", "--state", "done", db=DB)
    assert p.returncode == 2
    one_error_line(p, "'done' is not one of queued")
    assert s1ctl("list", "--limit", "0", db=DB).returncode == 2
    assert s1ctl("list", "stray", db=DB).returncode == 2


def add_result(jid, sample, answer, trace):
    psql(DB, "INSERT INTO s1.results (job_id, attempt, sample, answer, extracted_answer, grade, "
             "thinking_tokens, forced_tokens, answer_tokens, waits, forced_end, stop_reason, trace, token_ids) "
             f"VALUES ({jid}, 1, {sample}, 'Final Answer: {answer}', '{answer}', true, 64, 6, 5, 0, true, "
             f"'eos', '{trace}', s1.ids_bytea('{{1,2,3}}'))")


def test_result_prints_each_sample_and_the_trace_on_request():
    jid = insert_job(DB, state="succeeded")
    add_result(jid, 0, "16", "thinking hard")
    add_result(jid, 1, "15", "thinking less")
    p = s1ctl("result", str(jid), db=DB)
    assert p.returncode == 0, p.stderr
    assert "sample 0, budget none, ignore-stop 0: answer 16 (correct); thinking 64" in p.stdout
    assert "sample 1, budget none, ignore-stop 0: answer 15" in p.stdout
    assert "thinking hard" not in p.stdout
    assert "thinking hard" in s1ctl("result", "--trace", str(jid), db=DB).stdout


def test_model_text_cannot_drive_the_terminal_in_list_show_and_result():
    evil = "\x1b]0;owned\x07\x1b[2J\u009b31m"
    trace = "think\x1b]0;x\x07\nmore\tcols"
    with psycopg2.connect(DB) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO s1.jobs (problem, state) VALUES (%s, 'succeeded') RETURNING id",
                    ("solve " + evil,))
        jid = cur.fetchone()[0]
        cur.execute("INSERT INTO s1.results (job_id, attempt, sample, answer, extracted_answer, trace)"
                    " VALUES (%s, 1, 0, %s, %s, %s)", (jid, "Final Answer: 4" + evil, "4" + evil, trace))
    conn.close()
    for args in (["result", "--trace", str(jid)], ["show", str(jid)], ["list", "--limit", "5"]):
        out = s1ctl(*args, db=DB).stdout
        assert not any(c in out for c in "\x1b\x07\u009b"), (args, out)
    out = s1ctl("result", "--trace", str(jid), db=DB).stdout
    assert "answer 4\\x1b]0;owned\\x07\\x1b[2J\\u009b31m (ungraded)" in out, out
    assert "think\\x1b]0;x\\x07\nmore\tcols" in out, out
    got = json.loads(s1ctl("result", "--json", "--trace", str(jid), db=DB).stdout)["results"][0]["trace"]
    assert got == trace, "JSON keeps the text as it is"


def test_result_json_has_every_sample_with_typed_values():
    jid = insert_job(DB, state="succeeded")
    add_result(jid, 0, "16", "t0")
    out = json.loads(s1ctl("result", "--json", "--trace", str(jid), db=DB).stdout)
    assert out["id"] == jid and out["state"] == "succeeded"
    r = out["results"][0]
    assert r["extracted_answer"] == "16" and r["grade"] is True and r["thinking_tokens"] == 64
    assert r["forced_end"] is True and r["trace"] == "t0"


def test_result_without_results_is_exit_1_and_of_a_missing_job_exit_5():
    jid = insert_job(DB)
    p = s1ctl("result", str(jid), db=DB)
    assert p.returncode == 1
    one_error_line(p, f"job {jid} is queued and has no result")
    assert s1ctl("result", "987654", db=DB).returncode == 5


def listener(channel):
    conn = psycopg2.connect(DB)
    conn.autocommit = True
    conn.cursor().execute(f"LISTEN {channel}")
    return conn


def next_notify(conn, timeout=10.0):
    if select.select([conn], [], [], timeout) == ([], [], []):
        return None
    conn.poll()
    return conn.notifies.pop(0).payload if conn.notifies else None


def test_cancel_of_a_queued_job_cancels_it_at_once():
    jid = insert_job(DB)
    p = s1ctl("cancel", str(jid), db=DB)
    assert p.returncode == 0, p.stderr
    assert psql(DB, f"SELECT state, finished_at IS NOT NULL FROM s1.jobs WHERE id = {jid}") == [["cancelled", "t"]]


def test_cancel_of_a_running_job_requests_it_and_notifies_s1_cancel():
    jid = insert_job(DB, state="running")
    conn = listener("s1_cancel")
    p = s1ctl("cancel", "--json", str(jid), db=DB)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"id": jid, "state": "running"}
    assert next_notify(conn) == str(jid)
    assert psql(DB, f"SELECT state, cancel_requested FROM s1.jobs WHERE id = {jid}") == [["running", "t"]]
    conn.close()


def test_cancel_of_a_finished_job_is_refused():
    for state in ("succeeded", "failed", "cancelled"):
        jid = insert_job(DB, state=state)
        p = s1ctl("cancel", str(jid), db=DB)
        assert p.returncode == 1
        one_error_line(p, f"job {jid} is {state}: only queued or running jobs can be cancelled")
        assert psql(DB, f"SELECT state FROM s1.jobs WHERE id = {jid}") == [[state]]
    assert s1ctl("cancel", "987654", db=DB).returncode == 5


def test_retry_requeues_a_failed_job_resets_attempts_and_notifies_s1_jobs():
    jid = insert_job(DB, state="failed", queue="retryq")
    psql(DB, f"UPDATE s1.jobs SET error = 'boom', attempt = 3 WHERE id = {jid}")
    add_result(jid, 0, "1", "old")
    conn = listener("s1_jobs")
    p = s1ctl("retry", str(jid), db=DB)
    assert p.returncode == 0, p.stderr
    assert next_notify(conn) == "retryq"
    row = psql(DB, f"SELECT state, attempt, error IS NULL, worker IS NULL FROM s1.jobs WHERE id = {jid}")
    assert row == [["queued", "0", "t", "t"]]
    assert psql(DB, f"SELECT count(*) FROM s1.results WHERE job_id = {jid}") == [["0"]]
    conn.close()


def test_retry_of_a_cancelled_job_works_and_of_others_is_refused():
    jid = insert_job(DB, state="cancelled")
    p = s1ctl("retry", "--json", str(jid), db=DB)
    assert p.returncode == 0 and json.loads(p.stdout) == {"id": jid, "state": "queued"}
    for state in ("queued", "running", "succeeded"):
        jid = insert_job(DB, state=state)
        p = s1ctl("retry", str(jid), db=DB)
        assert p.returncode == 1
        one_error_line(p, f"job {jid} is {state}: only failed or cancelled jobs can be retried")
    assert s1ctl("retry", "987654", db=DB).returncode == 5


def wait_playing_daemon(jid, steps, *flags):
    """Runs `s1ctl wait` and plays the daemon: each step (SQL run on the job)
    happens only after s1ctl has printed its next line, so s1ctl has read the
    state before it changes. Returns (exit code, stdout lines, stderr)."""
    p = subprocess.Popen([binary("s1ctl"), "wait", "--db", DB, *flags, str(jid)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    lines = []
    for sql in steps:
        lines.append(p.stdout.readline().rstrip("\n"))
        psql(DB, sql.replace("$JOB", str(jid)))
    out, err = p.communicate(timeout=60)
    return p.returncode, lines + out.splitlines(), err


def set_state(sql):
    return f"UPDATE s1.jobs SET {sql} WHERE id = $JOB"


def test_wait_follows_state_changes_made_by_sql_and_exits_0_on_success():
    jid = insert_job(DB, policy='{"max_think": 100}')
    code, lines, err = wait_playing_daemon(jid, [set_state(RUNNING),
                                                 set_state("state = 'succeeded', progress_thinking = 100")])
    assert code == 0, err
    assert lines == [f"job {jid}: queued, 0/100 thinking tokens", f"job {jid}: running, 0/100 thinking tokens",
                     f"job {jid} succeeded"], lines


def test_wait_shows_progress_sent_by_the_daemon():
    jid = insert_job(DB, state="running", policy='{"max_think": 100}')
    progress = (f"UPDATE s1.jobs SET progress_thinking = 42 WHERE id = {jid}; "
                f"SELECT pg_notify('s1_progress', '{jid} 42')")
    code, lines, err = wait_playing_daemon(jid, [progress, set_state("state = 'succeeded'")], "--interval", "0")
    assert code == 0, err
    assert lines == [f"job {jid}: running, 0/100 thinking tokens", f"job {jid}: running, 42/100 thinking tokens",
                     f"job {jid} succeeded"], lines


def test_wait_follows_several_jobs_and_exits_with_the_worst():
    a, b = insert_job(DB, state="running"), insert_job(DB, state="running")
    p = subprocess.Popen([binary("s1ctl"), "wait", "--db", DB, "--interval", "3600", str(a), str(b)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert [p.stdout.readline(), p.stdout.readline()] == [f"job {a}: running, 0 thinking tokens\n",
                                                          f"job {b}: running, 0 thinking tokens\n"]
    psql(DB, f"UPDATE s1.jobs SET state = 'succeeded' WHERE id = {a}")
    assert p.stdout.readline() == f"job {a} succeeded\n"
    psql(DB, f"UPDATE s1.jobs SET state = 'failed', error = 'x' WHERE id = {b}")
    out, _ = p.communicate(timeout=60)
    assert out == f"job {b} failed: x\n" and p.returncode == 1


def test_wait_quiet_says_only_the_last_words_and_json_gives_an_array():
    a, b = insert_job(DB, state="succeeded"), insert_job(DB, state="cancelled")
    p = s1ctl("wait", "--quiet", str(a), str(b), db=DB)
    assert p.returncode == 1 and p.stdout == f"job {a} succeeded\njob {b} cancelled\n", p.stdout
    out = json.loads(s1ctl("wait", "--json", str(a), str(b), db=DB).stdout)
    assert [(o["id"], o["state"]) for o in out] == [(a, "succeeded"), (b, "cancelled")]
    p = s1ctl("wait", str(a), "987654", db=DB)
    assert p.returncode == 5
    for args, needle in (([], "no job id given"), (["x"], "job id"), (["--interval", "-1", str(a)], "--interval")):
        p = s1ctl("wait", *args, db=DB)
        assert p.returncode == 2, (args, p.stderr)
        one_error_line(p, needle)


def test_wait_exits_1_when_the_job_fails_or_is_cancelled():
    jid = insert_job(DB, state="running")
    code, lines, _ = wait_playing_daemon(jid, [set_state("state = 'failed', error = 'model exploded'")])
    assert code == 1
    assert lines[-1] == f"job {jid} failed: model exploded"
    jid = insert_job(DB, state="cancelled")
    assert s1ctl("wait", str(jid), db=DB).returncode == 1


def run_on_a_terminal(args, on_output=None):
    """Runs s1ctl with stdout on a pseudo-terminal, calling on_output with all
    the output so far after each read (the test playing the daemon). Returns
    (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(binary("s1ctl"), [binary("s1ctl"), *args])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
        if on_output:
            on_output(out.decode(errors="replace"))
    os.close(fd)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out.decode()


def once_shown(needle, sql):
    """An on_output that runs sql once the output shows needle."""
    pending = [True]

    def step(out):
        if pending[0] and needle in out:
            psql(DB, sql)
            pending[0] = False
    return step


def test_wait_on_a_terminal_draws_a_progress_bar_of_thinking_against_budget():
    jid = insert_job(DB, state="running", policy='{"max_think": 100}')
    psql(DB, f"UPDATE s1.jobs SET progress_thinking = 50 WHERE id = {jid}")
    code, out = run_on_a_terminal(["wait", "--db", DB, str(jid)],
                                  once_shown("50/100 thinking tokens",
                                             f"UPDATE s1.jobs SET state = 'succeeded' WHERE id = {jid}"))
    assert code == 0
    assert f"\r\x1b[Kjob {jid} running" in out
    assert "[" + "#" * 15 + "-" * 15 + "] 50/100 thinking tokens" in out
    assert out.rstrip().endswith(f"job {jid} succeeded")


def test_wait_json_prints_one_object_at_the_end():
    jid = insert_job(DB, state="succeeded", policy='{"max_think": 5}')
    out = json.loads(s1ctl("wait", "--json", str(jid), db=DB).stdout)
    assert out == {"id": jid, "state": "succeeded", "thinking": 0, "generated": 0, "budget": 5, "error": None}


def test_wait_on_a_terminal_redraws_a_line_per_job_with_the_rate():
    a, b = insert_job(DB, state="running", policy='{"max_think": 1000}'), insert_job(DB, state="running")
    tokens = [0]

    def daemon(out):
        """Progress until the rate is known (after half a second), then the end."""
        if tokens[0] < 0 or f"job {b} running" not in out:
            return
        if "tokens/s" in out:
            psql(DB, f"UPDATE s1.jobs SET state = 'succeeded' WHERE id IN ({a}, {b})")
            tokens[0] = -1
            return
        tokens[0] += 10
        psql(DB, f"UPDATE s1.jobs SET progress_thinking = {tokens[0]}, progress_tokens = {tokens[0]} "
                 f"WHERE id = {a}; SELECT pg_notify('s1_progress', '{a} {tokens[0]}')")
    code, text = run_on_a_terminal(["wait", "--db", DB, str(a), str(b)], daemon)
    assert code == 0
    assert "\x1b[1A" in text, "the cursor goes back up to redraw both lines"
    assert re.search(rf"job {a} running +\[#*-*\] \d+/1000 thinking tokens, \d+ tokens/s, at most \d+ s "
                     "of thinking left", text), text
    assert f"\r\x1b[Kjob {a} succeeded" in text and text.rstrip().endswith(f"job {b} succeeded"), text


def test_wait_for_a_missing_job_is_exit_5():
    assert s1ctl("wait", "987654", db=DB).returncode == 5


def test_wait_timeout_on_a_queued_job_with_no_daemon_exits_7_naming_its_state():
    jid = insert_job(DB, policy='{"max_think": 100}')
    # Generous bounds: the point is that it ends, not how fast.
    p = s1ctl("wait", "--timeout", "0.5", str(jid), db=DB, timeout=30)
    assert p.returncode == 7, (p.returncode, p.stdout, p.stderr)
    assert p.stderr == ('s1ctl wait: warning: no live s1d serves queue "default": none is connected to '
                        'this database (start one, e.g. systemctl start s1d)\n'), p.stderr
    assert p.stdout.splitlines() == [f"job {jid}: queued, 0/100 thinking tokens",
                                     f"job {jid} is still queued after 0.5 s (no daemon has claimed it)"]
    assert psql(DB, f"SELECT state FROM s1.jobs WHERE id = {jid}") == [["queued"]]


def test_a_job_no_live_daemon_serves_is_flagged_naming_what_the_live_ones_serve():
    name = "w" + str(os.getpid())
    psql(DB, "INSERT INTO s1.workers (name, state, model, queues, heartbeat_at) VALUES "
             f"('{name}', 'running', 's1-32B', '{{gpu,default}}', now()), "
             f"('{name}old', 'running', 'other', '{{lost}}', now() - interval '1 hour')")
    try:
        served = insert_job(DB, queue="gpu")
        p = s1ctl("wait", "--timeout", "0.1", str(served), db=DB, timeout=30)
        assert p.returncode == 7 and p.stderr == "", p.stderr
        lost = insert_job(DB, queue="lost")
        p = s1ctl("wait", "--timeout", "0.1", str(lost), db=DB, timeout=30)
        assert p.stderr == ('s1ctl wait: warning: no live s1d serves queue "lost" (live ones serve: '
                            's1-32B on gpu, default); the job waits until one does\n'), p.stderr
        p = s1ctl("submit", "--queue", "gpu", "--model", "s1-7B", os.path.join(SOURCE, "examples", "problem.txt"),
                  db=DB)
        assert p.returncode == 0
        assert p.stderr == ('s1ctl submit: warning: no live s1d serves queue "gpu" with model "s1-7B" '
                            '(live ones serve: s1-32B on gpu, default); the job waits until one does\n'), p.stderr
    finally:
        psql(DB, f"DELETE FROM s1.workers WHERE name LIKE '{name}%'")


def test_wait_timeout_on_a_running_job_says_running_and_json_marks_timed_out():
    jid = insert_job(DB, state="running", policy='{"max_think": 100}')
    p = s1ctl("wait", "--timeout", "1", str(jid), db=DB, timeout=30)
    assert p.returncode == 7
    assert p.stdout.splitlines()[-1] == f"job {jid} is still running after 1 s"
    p = s1ctl("wait", "--json", "--timeout", "0.2", str(jid), db=DB, timeout=30)
    assert p.returncode == 7
    assert json.loads(p.stdout) == {"id": jid, "state": "running", "thinking": 0, "generated": 0,
                                    "budget": 100, "error": None, "timed_out": True}


def test_wait_timeout_is_not_hit_by_a_job_that_ends_first():
    jid = insert_job(DB)
    code, lines, err = wait_playing_daemon(jid, [set_state(RUNNING), set_state("state = 'succeeded'")],
                                           "--timeout", "60")
    assert code == 0, (code, lines, err)
    assert lines[-1] == f"job {jid} succeeded"
    jid = insert_job(DB, state="failed")
    assert s1ctl("wait", "--timeout", "60", str(jid), db=DB).returncode == 1


def test_wait_timeout_must_be_a_positive_number_of_seconds():
    jid = insert_job(DB)
    for bad in ("0", "-1", "0.0", "abc", "", "5s", "nan", "inf", "1e10"):
        p = s1ctl("wait", "--timeout", bad, str(jid), db=DB)
        assert p.returncode == 2, bad
        one_error_line(p, f"--timeout: '{bad}' is not a number of seconds above 0")
    p = s1ctl("wait", str(jid), "--timeout", db=DB)
    assert p.returncode == 2
    one_error_line(p, "flag --timeout needs a value")


def test_every_command_has_help_and_refuses_unknown_flags():
    for cmd in ("submit", "show", "list", "result", "wait", "cancel", "retry", "migrate",
                "generate", "tokenize"):
        h = s1ctl(cmd, "--help")
        assert h.returncode == 0 and h.stdout.startswith(f"Usage: s1ctl {cmd}"), cmd
        p = s1ctl(cmd, "--no-such-flag")
        assert p.returncode == 2, cmd
        one_error_line(p, "unknown flag --no-such-flag")


def test_top_level_help_documents_the_exit_codes():
    p = s1ctl("--help")
    assert p.returncode == 0
    for code in ("0  success", "2  bad flags", "3  the database", "4  the schema", "5  no such job", "6  the model",
                 "7  timed out waiting"):
        assert code in p.stdout, code


def test_version_and_unknown_commands():
    p = s1ctl("--version")
    assert p.returncode == 0 and p.stdout.startswith("s1ctl ")
    p = s1ctl("frobnicate")
    assert p.returncode == 2
    one_error_line(p, "unknown command 'frobnicate'")
    assert s1ctl().returncode == 2


tap_main(globals())
