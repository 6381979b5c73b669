"""s1ctl submit: problem files to queued jobs; every flag, and every bad
input refused with one line and nothing written."""
import json
import os
import subprocess
import threading

from ctltest import EXAMPLE, HELD, job_count, migrated_db, one_error_line, psql, s1ctl, tempdir
from s1test import tap_main, wait_for

DB = migrated_db("submit")
TMP = tempdir("s1submit.")


def problem_file(content, name="p.txt"):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode())
    return path


def test_submit_of_the_example_prints_an_id_visible_in_job_summary():
    p = s1ctl("submit", "--budget", "16000", EXAMPLE, db=DB)
    assert p.returncode == 0, p.stderr
    jid = int(p.stdout.strip())
    rows = psql(DB, f"SELECT state, queue, budget, attempt FROM s1.job_summary WHERE id = {jid}")
    assert rows == [["queued", "default", "16000", "0"]]
    stored = psql(DB, f"SELECT problem FROM s1.jobs WHERE id = {jid}")[0][0]
    assert stored == open(EXAMPLE).read().strip()


def test_several_files_get_one_id_per_line_in_order():
    a, b = problem_file("first", "a.txt"), problem_file("second", "b.txt")
    p = s1ctl("submit", a, b, db=DB)
    ids = [int(x) for x in p.stdout.split()]
    assert len(ids) == 2 and ids[0] < ids[1]
    rows = psql(DB, f"SELECT problem FROM s1.jobs WHERE id IN ({ids[0]}, {ids[1]}) ORDER BY id")
    assert rows == [["first"], ["second"]]


def test_dash_reads_the_problem_from_stdin():
    p = s1ctl("submit", "-", db=DB, stdin="from stdin\n")
    assert p.returncode == 0, p.stderr
    assert psql(DB, f"SELECT problem FROM s1.jobs WHERE id = {int(p.stdout)}") == [["from stdin"]]


def test_every_flag_is_stored_in_its_column():
    p = s1ctl("submit", "--budget", "500", "--min-think", "100", "--ignore-stop", "2",
              "--wait-string", "Hmm", "--answer-prefix", "Answer:", "--max-answer", "64",
              "--temperature", "0.7", "--top-p", "0.9", "--top-k", "20", "--seed", "42",
              "--samples", "4", "--priority", "-3", "--queue", "big", "--model", "s1-32B",
              "--answer", "16", "--max-attempts", "5", "--system", "Be brief.", "--think-end", "<|im_start|>",
              "--answer-header", "answer\n", EXAMPLE, db=DB)
    assert p.returncode == 0, p.stderr
    row = psql(DB, "SELECT policy, sampling, samples, priority, queue, model, reference_answer, "
                   f"max_attempts FROM s1.jobs WHERE id = {int(p.stdout)}")[0]
    assert json.loads(row[0]) == {"max_think": 500, "min_think": 100, "ignore_stop": 2, "wait_string": "Hmm",
                                  "answer_prefix": "Answer:", "max_answer": 64, "system": "Be brief.",
                                  "think_end": "<|im_start|>", "answer_header": "answer\n"}
    assert json.loads(row[1]) == {"temperature": 0.7, "top_p": 0.9, "top_k": 20, "seed": 42}
    assert row[2:] == ["4", "-3", "big", "s1-32B", "16", "5"]


def test_the_template_is_stored_in_its_column_and_left_null_by_default():
    ids = {}
    for name in ("s1", "think-tags", None):
        p = s1ctl("submit", *(["--template", name] if name else []), "--budget", "64", EXAMPLE, db=DB)
        assert p.returncode == 0, p.stderr
        ids[name] = int(p.stdout)
    rows = psql(DB, "SELECT coalesce(template, 'NULL'), policy FROM s1.jobs"
                    f" WHERE id IN ({ids['s1']}, {ids['think-tags']}, {ids[None]}) ORDER BY id")
    assert rows == [["s1", '{"max_think": 64}'], ["think-tags", '{"max_think": 64}'],
                    ["NULL", '{"max_think": 64}']], rows


def test_an_unknown_template_is_refused_by_s1ctl_and_by_the_schema():
    refused(["--template", "qwq", EXAMPLE], "--template", "qwq", "not one of s1, think-tags")
    p = subprocess.run(["psql", "-X", "-q", "-d", DB, "-c",
                        "INSERT INTO s1.jobs (problem, template) VALUES ('x', 'qwq')"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "jobs_template_name" in p.stderr, p.stderr


def test_budget_and_wait_ladders_are_stored_sorted_in_the_policy():
    p = s1ctl("submit", "--budgets", "2048,512,1024,512", "--max-answer", "64", EXAMPLE, db=DB)
    assert p.returncode == 0, p.stderr
    policy = psql(DB, f"SELECT policy FROM s1.jobs WHERE id = {int(p.stdout)}")[0][0]
    assert json.loads(policy) == {"budgets": [512, 1024, 2048], "max_answer": 64}
    p = s1ctl("submit", "--budget", "4000", "--waits", "6,0,1,2,4", EXAMPLE, db=DB)
    assert p.returncode == 0, p.stderr
    policy = psql(DB, f"SELECT policy FROM s1.jobs WHERE id = {int(p.stdout)}")[0][0]
    assert json.loads(policy) == {"max_think": 4000, "waits": [0, 1, 2, 4, 6]}


def test_ladders_that_clash_with_their_single_setting_are_refused():
    before = job_count(DB)
    for args, needle in ((["--budgets", "100,200", "--budget", "300"], "budgets replaces max_think"),
                         (["--waits", "0,1", "--ignore-stop", "2"], "waits replaces ignore_stop"),
                         (["--budgets", "100,200", "--min-think", "150"], "smallest of --budgets 100"),
                         (["--budgets", "0,10"], "--budgets: '0' is not an integer from 1"),
                         (["--waits", "0,,1"], "--waits: '' is not an integer"),
                         (["--budgets", ",".join(str(b) for b in range(1, 34))], "more than 32 values")):
        p = s1ctl("submit", *args, EXAMPLE, db=DB)
        assert p.returncode == 2, (args, p.stderr)
        one_error_line(p, needle)
    assert job_count(DB) == before
    for policy in ('{"budgets": [10, 5]}', '{"budgets": [10], "max_think": 10}', '{"waits": [1], "ignore_stop": 1}',
                   '{"budgets": [10], "waits": [1]}', '{"budgets": []}', '{"waits": [-1]}'):
        try:
            psql(DB, f"INSERT INTO s1.jobs (problem, policy) VALUES ('x', '{policy}')")
            raise AssertionError(f"policy {policy} was stored")
        except subprocess.CalledProcessError as e:
            assert "jobs_policy_check" in e.stderr, (policy, e.stderr)


def test_a_budget_that_cannot_fit_the_serving_context_is_refused_naming_both_numbers():
    db = migrated_db("context")
    psql(db, "INSERT INTO s1.workers (name, queues, state, max_context) VALUES ('w1', '{default}', 'running', 4096)")
    before = job_count(db)
    p = s1ctl("submit", "--budget", "100000", EXAMPLE, db=db)
    assert p.returncode == 2
    one_error_line(p, "100000", "1024", "4096", "s1d --max-context")
    p = s1ctl("submit", "--budgets", "512,4000", "--max-answer", "200", EXAMPLE, db=db)
    assert p.returncode == 2
    one_error_line(p, "4000", "200", "4096")
    assert job_count(db) == before
    assert s1ctl("submit", "--budget", "3000", EXAMPLE, db=db).returncode == 0
    assert s1ctl("submit", "--budget", "100000", "--queue", "other", EXAMPLE, db=db).returncode == 0


def test_json_output_lists_ids_with_their_files():
    p = s1ctl("submit", "--json", EXAMPLE, db=DB)
    out = json.loads(p.stdout)
    assert len(out) == 1 and out[0]["file"] == EXAMPLE and isinstance(out[0]["id"], int)


def finish_later(problem, state):
    """Plays the daemon: once the job with this problem exists, runs it, then
    gives it its final state (s1ctl exits by whichever state it reads last)."""
    def run():
        rows = wait_for(lambda: psql(DB, f"SELECT id FROM s1.jobs WHERE problem = '{problem}'"),
                        what=f"the job '{problem}' submitted")
        jid = rows[0][0]
        psql(DB, f"UPDATE s1.jobs SET state = 'running', {HELD}, progress_thinking = 3 WHERE id = {jid}")
        psql(DB, f"UPDATE s1.jobs SET state = '{state}' WHERE id = {jid}")
    t = threading.Thread(target=run)
    t.start()
    return t


def test_wait_flag_blocks_until_the_job_ends_and_exits_by_its_state():
    t = finish_later("waited for", "succeeded")
    p = s1ctl("submit", "--wait", "--budget", "10", problem_file("waited for", "w1.txt"), db=DB)
    t.join()
    assert p.returncode == 0, p.stderr
    jid = p.stdout.splitlines()[0]
    assert p.stdout.splitlines()[-1] == f"job {jid} succeeded"
    t = finish_later("waited for, failed", "failed")
    p = s1ctl("submit", "--wait", problem_file("waited for, failed", "w2.txt"), db=DB)
    t.join()
    assert p.returncode == 1


def test_wait_flag_takes_a_timeout_for_all_the_jobs():
    a, b = problem_file("never claimed a", "t1.txt"), problem_file("never claimed b", "t2.txt")
    p = s1ctl("submit", "--wait", "--timeout", "0.5", a, b, db=DB, timeout=30)
    assert p.returncode == 7, (p.returncode, p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    ja, jb = lines[0], lines[1]
    assert lines[-1] == f"job {jb} is still queued after 0.5 s (no daemon has claimed it)"
    assert f"job {ja} is still queued after 0.5 s (no daemon has claimed it)" in lines
    t = finish_later("ends in time", "succeeded")
    p = s1ctl("submit", "--wait", "--timeout", "60", problem_file("ends in time", "t3.txt"), db=DB)
    t.join()
    assert p.returncode == 0, p.stderr


def test_a_timeout_must_be_positive_and_comes_only_with_wait():
    refused(["--wait", "--timeout", "0", EXAMPLE], "--timeout: '0' is not a number of seconds")
    refused(["--wait", "--timeout", "soon", EXAMPLE], "--timeout: 'soon' is not a number of seconds")
    refused(["--timeout", "5", EXAMPLE], "--timeout: only meaningful with --wait")


def refused(args, *needles, code=2, stdin=None):
    before = job_count(DB)
    p = s1ctl("submit", *args, db=DB, stdin=stdin)
    assert p.returncode == code, (args, p.returncode, p.stderr)
    one_error_line(p, *needles)
    assert job_count(DB) == before, "a refused submit wrote jobs"


def test_missing_file_is_refused():
    refused([os.path.join(TMP, "nope.txt")], "nope.txt", "No such file")


def test_empty_and_blank_files_are_refused():
    refused([problem_file("", "empty.txt")], "empty.txt", "empty")
    refused([problem_file(" \n\n\t", "blank.txt")], "blank.txt", "empty")
    refused(["-"], "<stdin>", "empty", stdin="")


def test_a_directory_is_refused():
    refused([TMP], TMP, "is a directory")


def test_non_utf8_file_is_refused():
    refused([problem_file(b"caf\xe9 au lait", "latin1.txt")], "latin1.txt", "not valid UTF-8 at byte 3")


def test_file_with_a_nul_byte_is_refused():
    refused([problem_file(b"abc\x00def", "nul.txt")], "nul.txt", "NUL byte")


def test_oversized_file_is_refused_and_max_bytes_moves_the_limit():
    big = problem_file("x" * (1024 * 1024 + 1), "big.txt")
    refused([big], "big.txt", "larger than the limit of 1048576 bytes")
    refused(["--max-bytes", "10", problem_file("eleven char", "eleven.txt")], "eleven.txt", "limit of 10 bytes")
    refused(["--max-bytes", "10", "-"], "<stdin>", "limit of 10 bytes", stdin="x" * 11)
    assert s1ctl("submit", "--max-bytes", "2000000", big, db=DB).returncode == 0


def test_one_bad_file_among_several_writes_nothing():
    refused([EXAMPLE, problem_file("", "empty2.txt")], "empty2.txt")


def test_a_budget_must_be_a_positive_integer():
    for bad in ("0", "-5", "ten", "1.5", "", "99999999999"):
        refused(["--budget", bad, EXAMPLE], "--budget", "is not an integer from 1")


def test_min_think_above_budget_is_refused():
    refused(["--budget", "100", "--min-think", "101", EXAMPLE], "--min-think 101 is above --budget 100")


def test_bad_sampling_and_job_values_are_refused():
    refused(["--top-p", "0", EXAMPLE], "--top-p")
    refused(["--top-p", "1.5", EXAMPLE], "--top-p")
    refused(["--temperature", "-1", EXAMPLE], "--temperature")
    refused(["--seed", "-1", EXAMPLE], "--seed")
    refused(["--samples", "0", EXAMPLE], "--samples")
    refused(["--samples", "1025", EXAMPLE], "--samples")
    refused(["--max-attempts", "0", EXAMPLE], "--max-attempts")
    refused(["--wait-string", "", EXAMPLE], "--wait-string", "must not be empty")
    refused(["--queue", "", EXAMPLE], "--queue", "a queue name is empty")
    refused(["--queue", "a,b", EXAMPLE], "--queue", "contains a comma")
    refused(["--queue", " gpu", EXAMPLE], "--queue", "begins or ends with a blank")
    refused(["--queue", "gpu\n", EXAMPLE], "--queue", "begins or ends with a blank")
    refused(["--queue", "g\x1bpu", EXAMPLE], "--queue", "control character")
    refused(["--queue", "q" * 201, EXAMPLE], "--queue", "longer than 200 bytes")


def test_unknown_flags_and_missing_values_are_refused():
    refused(["--bogus", EXAMPLE], "unknown flag --bogus")
    refused(["-x", EXAMPLE], "unknown flag -x")
    refused(["--budget"], "flag --budget needs a value")
    refused([], "no problem file given")


def test_a_submit_to_an_unreachable_database_fails_with_exit_3():
    p = s1ctl("submit", EXAMPLE, db="host=/nonexistent/s1 dbname=x")
    assert p.returncode == 3
    one_error_line(p, "cannot connect to the database")


def test_help_documents_the_flags_and_exits_0():
    p = s1ctl("submit", "--help")
    assert p.returncode == 0
    for flag in ("--budget", "--min-think", "--ignore-stop", "--wait-string", "--answer-prefix",
                 "--max-answer", "--temperature", "--top-p", "--top-k", "--seed", "--samples",
                 "--priority", "--queue", "--model", "--answer", "--max-attempts", "--max-bytes",
                 "--wait", "--timeout", "--json", "--db"):
        assert flag in p.stdout, flag


tap_main(globals())
