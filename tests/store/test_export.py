"""s1ctl export: a run's or jobs' results as JSON lines and CSV that pandas
and R read as they are (typed values, RFC 4180 quoting), and the errors."""
import csv
import io
import json

from ctltest import migrated_db, one_error_line, psql, s1ctl
from s1test import tap_main

DB = migrated_db("export")


def a_run():
    """A suite of two problems run at budgets 100 and 200, finished by SQL
    with one result each as a daemon would leave it. Returns (run, job ids)."""
    psql(DB, "INSERT INTO s1.suites (name) VALUES ('exp') ON CONFLICT DO NOTHING")
    psql(DB, "INSERT INTO s1.suite_problems (suite_id, name, problem, reference_answer) "
             "SELECT id, n, 'What is ' || n || '?', n FROM s1.suites, (VALUES ('1'), ('2')) AS v(n) "
             "WHERE name = 'exp' ON CONFLICT DO NOTHING")
    run = int(s1ctl("bench", "run", "exp", "--budgets", "100,200", "--separate", env={"DATABASE_URL": DB}).stdout)
    jobs = [int(r[0]) for r in psql(DB, f"SELECT id FROM s1.jobs WHERE bench_run_id = {run} ORDER BY id")]
    for i, jid in enumerate(jobs):
        trace = "think, \"quoted\", on\ntwo lines" if i == 0 else "short"
        psql(DB, "INSERT INTO s1.results (job_id, attempt, sample, trace, answer, extracted_answer, grade,"
                 " thinking_tokens, forced_end, stop_reason) VALUES "
                 f"({jid}, 1, 0, '{trace}', 'Final Answer: {i}', '{i}', {str(i % 2 == 0).lower()}, {10 * i},"
                 f" {str(i == 1).lower()}, 'eos')")
    psql(DB, f"UPDATE s1.jobs SET state = 'succeeded', attempt = 1 WHERE bench_run_id = {run}")
    return run, jobs


RUN, JOBS = a_run()


def test_jsonl_has_one_typed_object_per_result_in_job_order():
    p = s1ctl("export", str(RUN), db=DB)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["job_id"] for r in rows] == JOBS
    first = rows[0]
    assert first["run"] == RUN and first["problem_id"] == "1" and first["reference"] == "1"
    assert first["budget"] == 100 and first["sample"] == 0 and first["thinking_tokens"] == 0
    assert first["grade"] is True and first["forced_end"] is False and first["policy"] == {"max_think": 100}
    assert first["trace"] is None, "the trace only with --trace"
    assert rows[1]["grade"] is False and rows[1]["prompt_tokens"] is None


def test_csv_quotes_what_needs_it_and_reads_back_the_same_values():
    p = s1ctl("export", str(RUN), "--format", "csv", "--trace", db=DB)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout, newline="")))
    assert [int(r["job_id"]) for r in rows] == JOBS
    assert rows[0]["trace"] == "think, \"quoted\", on\ntwo lines"
    assert rows[0]["grade"] == "true" and rows[1]["grade"] == "false" and rows[0]["prompt_tokens"] == ""
    assert json.loads(rows[0]["policy"]) == {"max_think": 100}


def test_jobs_choose_the_rows_and_a_job_without_results_gives_none():
    queued = int(psql(DB, "INSERT INTO s1.jobs (problem) VALUES ('later') RETURNING id")[0][0])
    p = s1ctl("export", "--jobs", f"{JOBS[3]},{queued},{JOBS[0]}", db=DB)
    assert p.returncode == 0, p.stderr
    assert [json.loads(line)["job_id"] for line in p.stdout.splitlines()] == [JOBS[0], JOBS[3]]


def test_a_missing_run_or_job_is_exit_5_naming_it():
    p = s1ctl("export", "987654", db=DB)
    assert p.returncode == 5 and p.stdout == ""
    one_error_line(p, "run 987654: no such benchmark run")
    p = s1ctl("export", "--jobs", f"{JOBS[0]},987654,987655", db=DB)
    assert p.returncode == 5 and p.stdout == ""
    one_error_line(p, "no such job: 987654, 987655")


def test_bad_arguments_are_one_line_and_exit_2():
    for args, needle in (([], "no RUN_ID or --jobs given"), (["1", "--jobs", "2"], "not both"),
                         (["x"], "run id"), (["1", "2"], "unexpected argument '2'"),
                         (["--jobs", "1,,2"], "--jobs"), (["--jobs", ""], "--jobs: the list is empty"),
                         (["1", "--format", "xlsx"], "--format: 'xlsx' is not jsonl or csv"),
                         (["--bogus"], "--bogus")):
        p = s1ctl("export", *args, db=DB)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        one_error_line(p, needle)
    h = s1ctl("export", "--help")
    assert h.returncode == 0 and h.stdout.startswith("Usage: s1ctl export")


tap_main(globals())
