"""s1ctl suite and bench: JSON-lines sets imported into suites (idempotent,
every bad input refused with one line naming file:line and nothing written),
runs queued at a ladder of budgets, and reports on runs whose results are
written by SQL as daemons would: accuracy, control, the paper's Control,
Scaling and Performance, JSON, the SVG plot; and the nightly systemd units."""
import itertools
import json
import math
import os
import pty
import re
import subprocess
import xml.etree.ElementTree as ET

from ctltest import SOURCE, binary, migrated_db, one_error_line, psql, s1ctl, tempdir
from s1test import SHARED, skip, tap_main

DB = migrated_db("bench")
TMP = tempdir("s1bench.")
AIME24 = os.path.join(SHARED, "benchmarks", "aime24.jsonl")
_names = itertools.count(1)


def ctl(*args, **kw):
    """s1ctl against DB. The database goes in DATABASE_URL: ctltest's --db
    would land between the group word and its subcommand."""
    return s1ctl(*args, env={"DATABASE_URL": DB}, **kw)


def jsonl(lines, name=None):
    """Writes lines (dicts as JSON, strings as they are) to a fresh file."""
    path = os.path.join(TMP, name or f"set{next(_names)}.jsonl")
    with open(path, "wb") as f:
        for line in lines:
            text = json.dumps(line) if isinstance(line, dict) else line
            f.write((text + "\n").encode() if isinstance(text, str) else text + b"\n")
    return path


def small_set(n=3, prefix="p"):
    return [{"id": f"{prefix}{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)}
            for i in range(1, n + 1)]


def unique(prefix):
    return f"{prefix}{next(_names)}"


def imported(n=3):
    """A new suite of n small problems; returns its name."""
    name = unique("suite")
    p = ctl("suite", "import", name, jsonl(small_set(n)))
    assert p.returncode == 0, p.stderr
    return name


def problems_of(suite):
    return psql(DB, "SELECT p.name, p.problem, p.reference_answer FROM s1.suite_problems p "
                    f"JOIN s1.suites s ON s.id = p.suite_id WHERE s.name = '{suite}' ORDER BY p.id")


def counts():
    return psql(DB, "SELECT (SELECT count(*) FROM s1.suites), (SELECT count(*) FROM s1.suite_problems),"
                    " (SELECT count(*) FROM s1.bench_runs), (SELECT count(*) FROM s1.jobs)")[0]


# ---- suite import ----

def test_a_small_set_is_imported_with_its_ids_problems_and_answers():
    path = jsonl(small_set(3))
    p = ctl("suite", "import", "--description", "three sums", "small", path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"suite small: 3 problems from {path}: 3 added, 0 updated, 0 unchanged\n"
    assert problems_of("small") == [["p1", "What is 1 + 1?", "2"], ["p2", "What is 2 + 2?", "4"],
                                    ["p3", "What is 3 + 3?", "6"]]
    assert psql(DB, "SELECT description FROM s1.suites WHERE name = 'small'") == [["three sums"]]


def test_reimporting_the_same_file_changes_nothing():
    path = jsonl(small_set(3))
    assert ctl("suite", "import", "again", path).returncode == 0
    before = psql(DB, "SELECT id, name, problem, reference_answer FROM s1.suite_problems ORDER BY id")
    p = ctl("suite", "import", "--json", "again", path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"suite": "again", "file": path, "problems": 3, "added": 0,
                                    "updated": 0, "unchanged": 3}
    assert psql(DB, "SELECT id, name, problem, reference_answer FROM s1.suite_problems ORDER BY id") == before


def test_reimporting_a_changed_file_upserts_by_id():
    assert ctl("suite", "import", "changed", jsonl(small_set(2))).returncode == 0
    lines = small_set(3)
    lines[1]["answer"] = "four"
    p = ctl("suite", "import", "changed", jsonl(lines))
    assert p.returncode == 0, p.stderr
    assert "1 added, 1 updated, 1 unchanged" in p.stdout
    assert [r[2] for r in problems_of("changed")] == ["2", "four", "6"]


def test_other_keys_are_chosen_by_flags_and_numbers_are_taken_as_text():
    path = jsonl([{"n": 7, "q": "Seven?", "a": 7}, {"n": 8, "q": "Half?", "a": 0.5}])
    p = ctl("suite", "import", "--id-key", "n", "--problem-key", "q", "--answer-key", "a", "keys", path)
    assert p.returncode == 0, p.stderr
    assert problems_of("keys") == [["7", "Seven?", "7"], ["8", "Half?", "0.5"]]


def test_blank_lines_are_skipped_and_db_may_follow_the_subcommand():
    path = jsonl(["", json.dumps(small_set(1)[0]), "   ", ""])
    p = s1ctl("suite", "import", "--db", DB, "blanks", path)
    assert p.returncode == 0, p.stderr
    assert len(problems_of("blanks")) == 1


def test_the_real_aime24_set_imports_its_30_problems_idempotently():
    if not os.path.isfile(AIME24):
        skip(f"{AIME24} not found (S1_SHARED)")
    p = ctl("suite", "import", "aime24", AIME24)
    assert p.returncode == 0, p.stderr
    assert "30 added, 0 updated, 0 unchanged" in p.stdout
    rows = psql(DB, "SELECT p.name, p.reference_answer, p.problem LIKE 'Every morning Aya%' FROM"
                    " s1.suite_problems p JOIN s1.suites s ON s.id = p.suite_id"
                    " WHERE s.name = 'aime24' ORDER BY p.id")
    assert len(rows) == 30 and rows[0] == ["aime24-60", "204", "t"]
    assert "30 unchanged" in ctl("suite", "import", "aime24", AIME24).stdout


def refused_import(lines_or_path, *needles, name=None, suite="bad"):
    """Asserts the import fails with exit 2, one line naming needles, and
    writes nothing at all."""
    path = lines_or_path if isinstance(lines_or_path, str) else jsonl(lines_or_path, name)
    before = counts()
    p = ctl("suite", "import", suite, path)
    assert p.returncode == 2, (p.returncode, p.stderr)
    one_error_line(p, *needles)
    assert counts() == before, "a refused import wrote rows"
    return p


def test_a_missing_file_is_refused():
    refused_import(os.path.join(TMP, "nope.jsonl"), "nope.jsonl", "No such file")


def test_a_line_that_is_not_json_is_refused_naming_file_and_line():
    path = jsonl([small_set(1)[0], '{"id": "x", "problem": "oops"'], "notjson.jsonl")
    refused_import(path, f"{path}:2: not JSON")


def test_a_line_that_is_not_valid_utf8_is_refused():
    path = jsonl([b'{"id": "x", "problem": "caf\xe9", "answer": "1"}'], "latin1.jsonl")
    refused_import(path, f"{path}:1: not JSON")


def test_a_json_line_that_is_not_an_object_is_refused():
    path = jsonl(["[1, 2]"], "array.jsonl")
    refused_import(path, f"{path}:1: not a JSON object")


def test_a_line_without_the_problem_key_is_refused():
    path = jsonl([small_set(1)[0], {"id": "b", "answer": "1"}], "noproblem.jsonl")
    refused_import(path, f"{path}:2:", 'no "problem" key', "--problem-key")


def test_a_line_without_the_answer_key_is_refused():
    path = jsonl([{"id": "a", "problem": "Why?"}], "noanswer.jsonl")
    refused_import(path, f"{path}:1:", 'no "answer" key', "--answer-key")


def test_a_line_without_the_id_key_is_refused():
    path = jsonl([{"problem": "Why?", "answer": "1"}], "noid.jsonl")
    refused_import(path, f"{path}:1:", 'no "id" key', "--id-key")


def test_a_renamed_key_that_the_file_lacks_is_refused():
    path = jsonl(small_set(1), "renamed.jsonl")
    before = counts()
    p = ctl("suite", "import", "--problem-key", "question", "bad", path)
    assert p.returncode == 2
    one_error_line(p, f"{path}:1:", 'no "question" key')
    assert counts() == before


def test_an_empty_or_blank_problem_is_refused():
    path = jsonl([{"id": "a", "problem": "", "answer": "1"}], "emptyproblem.jsonl")
    refused_import(path, f"{path}:1: the problem is empty")
    path = jsonl([{"id": "a", "problem": " \n\t", "answer": "1"}], "blankproblem.jsonl")
    refused_import(path, f"{path}:1: the problem is empty")


def test_a_problem_that_is_not_a_string_is_refused():
    path = jsonl([{"id": "a", "problem": 12, "answer": "1"}], "numproblem.jsonl")
    refused_import(path, f"{path}:1:", '"problem" is not a string')


def test_an_empty_answer_or_id_is_refused():
    path = jsonl([{"id": "a", "problem": "Why?", "answer": " "}], "emptyanswer.jsonl")
    refused_import(path, f"{path}:1: the answer", "is empty")
    path = jsonl([{"id": "", "problem": "Why?", "answer": "1"}], "emptyid.jsonl")
    refused_import(path, f"{path}:1: the id", "is empty")


def test_an_answer_that_is_an_object_is_refused():
    path = jsonl([{"id": "a", "problem": "Why?", "answer": {"x": 1}}], "objanswer.jsonl")
    refused_import(path, f"{path}:1:", '"answer" is not a string or a number')


def test_a_duplicate_id_inside_the_file_is_refused_naming_both_lines():
    lines = small_set(4)
    lines[3]["id"] = "p2"
    path = jsonl(lines, "dup.jsonl")
    refused_import(path, f"{path}:4: duplicate id \"p2\" (first on line 2)")


def test_a_file_without_problems_is_refused():
    refused_import(jsonl([], "empty.jsonl"), "empty.jsonl")
    refused_import(jsonl(["", "  "], "blank.jsonl"), "blank.jsonl", "no problems")


def test_a_bad_line_in_a_reimport_leaves_the_suite_as_it_was():
    assert ctl("suite", "import", "kept", jsonl(small_set(2))).returncode == 0
    before = problems_of("kept")
    lines = small_set(3)
    lines[0]["answer"] = "changed"
    lines[2]["problem"] = ""
    refused_import(jsonl(lines, "partly.jsonl"), "partly.jsonl:3:", suite="kept")
    assert problems_of("kept") == before


def test_import_needs_a_name_and_a_file():
    for args in ([], ["only-name"], ["a", "b", "c"]):
        p = ctl("suite", "import", *args)
        assert p.returncode == 2, args
        one_error_line(p, "expected NAME and FILE.jsonl")
    p = ctl("suite", "import", "", jsonl(small_set(1)))
    assert p.returncode == 2
    one_error_line(p, "the suite name must not be empty")


def test_unknown_flags_and_subcommands_are_one_line_errors():
    p = ctl("suite", "import", "--nope", "x", "y")
    assert p.returncode == 2
    one_error_line(p, "unknown flag --nope")
    p = ctl("suite", "frobnicate")
    assert p.returncode == 2
    one_error_line(p, "unknown suite command 'frobnicate'")
    p = ctl("bench", "frobnicate")
    assert p.returncode == 2
    one_error_line(p, "unknown bench command 'frobnicate'")


# ---- suite list, show ----

def test_suite_list_shows_problem_counts_as_text_and_json():
    name = imported(2)
    p = ctl("suite", "list")
    assert p.returncode == 0, p.stderr
    assert any(line.split()[0] == name for line in p.stdout.splitlines()[1:])
    rows = {r["name"]: r for r in json.loads(ctl("suite", "list", "--json").stdout)}
    assert rows[name]["problems"] == 2 and rows[name]["runs"] == 0


def test_suite_show_prints_the_suite_and_its_problems():
    name = imported(2)
    p = ctl("suite", "show", name)
    assert p.returncode == 0, p.stderr
    assert re.search(rf"^name\s+{name}$", p.stdout, re.M) and "What is 2 + 2?" in p.stdout
    out = json.loads(ctl("suite", "show", "--json", name).stdout)
    assert out["name"] == name and isinstance(out["problems"], list)
    assert [(q["name"], q["reference_answer"]) for q in out["problems"]] == [("p1", "2"), ("p2", "4")]


def test_list_and_show_refuse_stray_or_missing_arguments():
    for args, needle in ((["suite", "list", "extra"], "unexpected argument 'extra'"),
                         (["suite", "show"], "missing the suite name"),
                         (["suite", "show", "a", "b"], "unexpected argument 'b'"),
                         (["bench", "list", "extra"], "unexpected argument 'extra'"),
                         (["bench", "list", "--plot", "x.svg"], "unknown flag --plot")):
        p = ctl(*args)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        one_error_line(p, needle)


def test_suite_show_of_an_unknown_suite_is_exit_5():
    p = ctl("suite", "show", "no-such-suite")
    assert p.returncode == 5
    one_error_line(p, "suite no-such-suite: no such suite")


# ---- bench run ----

def run_jobs(run):
    return psql(DB, "SELECT p.name, j.policy, j.reference_answer, j.problem, j.queue, j.priority,"
                    " j.samples, j.model, j.sampling, j.state"
                    " FROM s1.jobs j JOIN s1.suite_problems p ON p.id = j.suite_problem_id"
                    f" WHERE j.bench_run_id = {run} ORDER BY j.id")


def test_bench_run_queues_one_ladder_job_per_problem_with_its_answer():
    suite = imported(2)
    p = ctl("bench", "run", suite, "--budgets", "2048,512,1024,512", "--samples", "3")
    assert p.returncode == 0, p.stderr
    run = int(p.stdout)
    jobs = run_jobs(run)
    assert [(j[0], json.loads(j[1]), j[2], j[6]) for j in jobs] == [
        (f"p{i}", {"budgets": [512, 1024, 2048]}, str(2 * i), "3") for i in (1, 2)]


def test_bench_run_separate_queues_one_job_per_problem_and_budget_with_its_answer():
    suite = imported(3)
    p = ctl("bench", "run", suite, "--separate", "--budgets", "2048,512,1024,512")
    assert p.returncode == 0, p.stderr
    run = int(p.stdout)
    assert psql(DB, f"SELECT budgets, samples, policy, note FROM s1.bench_runs WHERE id = {run}") == \
        [["{512,1024,2048}", "1", "{}", ""]]
    jobs = run_jobs(run)
    assert len(jobs) == 9
    got = [(j[0], json.loads(j[1])["max_think"], j[2], j[3]) for j in jobs]
    want = [(f"p{i}", b, str(2 * i), f"What is {i} + {i}?") for i in (1, 2, 3) for b in (512, 1024, 2048)]
    assert got == want
    assert all(j[4:] == ["default", "0", "1", "", "{}", "queued"] for j in jobs)


def test_bench_run_passes_policy_sampling_and_job_flags_to_every_job():
    suite = imported(3)
    p = ctl("bench", "run", "--separate", "--budgets", "100,200", "--min-think", "50", "--wait-string", "Hmm",
            "--temperature", "0.5", "--seed", "7", "--samples", "4", "--priority", "-2",
            "--queue", "bench", "--model", "s1-32B", "--limit", "2", "--note", "nightly", suite)
    assert p.returncode == 0, p.stderr
    run = int(p.stdout)
    row = psql(DB, f"SELECT policy, sampling, samples, model, note FROM s1.bench_runs WHERE id = {run}")[0]
    assert json.loads(row[0]) == {"min_think": 50, "wait_string": "Hmm"}
    assert json.loads(row[1]) == {"temperature": 0.5, "seed": 7} and row[2:] == ["4", "s1-32B", "nightly"]
    jobs = run_jobs(run)
    assert [(j[0], json.loads(j[1])) for j in jobs] == [
        (f"p{i}", {"max_think": b, "min_think": 50, "wait_string": "Hmm"}) for i in (1, 2) for b in (100, 200)]
    assert all(j[4:9] == ["bench", "-2", "4", "s1-32B", '{"seed": 7, "temperature": 0.5}'] for j in jobs)


def test_bench_run_records_the_template_on_the_run_and_every_job():
    suite = imported(2)
    run = int(ctl("bench", "run", suite, "--budgets", "64,128", "--template", "think-tags").stdout)
    assert psql(DB, f"SELECT template FROM s1.bench_runs WHERE id = {run}") == [["think-tags"]]
    assert psql(DB, f"SELECT template FROM s1.jobs WHERE bench_run_id = {run}") == [["think-tags"]] * 2
    run = int(ctl("bench", "run", suite, "--budgets", "64").stdout)
    assert psql(DB, f"SELECT count(*) FROM s1.jobs WHERE bench_run_id = {run} AND template IS NULL") == [["2"]]


def test_bench_run_json_prints_the_run_and_its_job_count():
    suite = imported(2)
    out = json.loads(ctl("bench", "run", "--json", "--budgets", "64", suite).stdout)
    assert out["jobs"] == 2 and out["suite"] == suite
    assert psql(DB, f"SELECT count(*) FROM s1.jobs WHERE bench_run_id = {out['run']}") == [["2"]]


def refused_run(args, *needles, code=2):
    before = counts()
    p = ctl("bench", "run", *args)
    assert p.returncode == code, (args, p.returncode, p.stderr)
    one_error_line(p, *needles)
    assert counts() == before, "a refused run wrote rows"


def test_bad_budget_lists_are_one_line_errors():
    suite = imported(1)
    refused_run([suite, "--budgets", ""], "--budgets: the list is empty")
    for bad in ("0", "-5", "ten", "1.5", "512,,1024", "512,", ",512", "99999999999", "512 1024"):
        refused_run([suite, "--budgets", bad], "--budgets", "is not an integer from 1")
    refused_run([suite, "--budgets", ",".join(str(b) for b in range(1, 34))], "more than 32 values")


def test_a_run_needs_budgets_and_one_suite():
    suite = imported(1)
    refused_run([suite], "--budgets is required")
    refused_run(["--budgets", "10"], "expected one SUITE")
    refused_run([suite, suite, "--budgets", "10"], "expected one SUITE")


def test_budget_and_min_think_above_the_smallest_budget_are_refused():
    suite = imported(1)
    refused_run([suite, "--budgets", "100", "--budget", "100"], "flag --budget is not taken", "--budgets N,N")
    refused_run([suite, "--budgets", "200,100", "--min-think", "150"],
                "--min-think 150 is above the smallest of --budgets 100")
    refused_run([suite, "--waits", "0,1"], "a run is a ladder of budgets")
    refused_run([suite, "--budgets", "100", "--queue", ""], "--queue: a queue name is empty")
    refused_run([suite, "--budgets", "100", "--samples", "0"], "--samples")


def test_a_run_of_an_unknown_suite_is_exit_5_and_queues_nothing():
    refused_run(["no-such-suite", "--budgets", "100"], "suite no-such-suite: no such suite", code=5)


def test_a_run_of_a_suite_without_problems_queues_nothing():
    psql(DB, "INSERT INTO s1.suites (name) VALUES ('hollow')")
    refused_run(["hollow", "--budgets", "100"], "suite hollow has no problems", code=1)


# ---- bench report ----

# Per budget: (thinking tokens, grade) of each sample of 2 problems x 2 samples.
# None is an ungraded sample. 110 at budget 100 breaks the budget.
FIXTURE = {
    100: [(50, True), (70, False), (90, False), (110, False)],
    200: [(150, True), (150, True), (200, False), (180, None)],
    400: [(300, True), (320, True), (280, True), (300, False)],
}


def expected_curve():
    """accuracy, mean thinking, control per budget, by the definitions."""
    out = {}
    for b, samples in FIXTURE.items():
        graded = [g for _, g in samples if g is not None]
        out[b] = (sum(graded) / len(graded), sum(t for t, _ in samples) / len(samples),
                  sum(t <= b for t, _ in samples) / len(samples), len(graded))
    return out


def wilson(p, n):
    """The 95% Wilson score interval of a share p of n trials."""
    z = 1.959964
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, center - half), min(1.0, center + half)


def expected_scaling(curve):
    """Mean over budget pairs of the accuracy slope, in points per 1000 tokens."""
    slopes = [(curve[b][0] - curve[a][0]) * 100 / ((curve[b][1] - curve[a][1]) / 1000)
              for a, b in itertools.combinations(sorted(curve), 2)]
    return sum(slopes) / len(slopes)


def completed_run(layout=("--separate",)):
    """A run of 2 problems x 3 budgets x 2 samples, finished by SQL with the
    FIXTURE's results, as daemons would leave it: a job per budget (rows
    without a budget, as before ladders), or with layout () a ladder job
    per problem (a row per sample and rung). Returns (suite, run)."""
    suite = imported(2)
    run = int(ctl("bench", "run", suite, "--budgets", "100,200,400", "--samples", "2", *layout).stdout)
    jobs = psql(DB, "SELECT id, coalesce(policy ->> 'max_think', policy ->> 'budgets') FROM s1.jobs"
                    f" WHERE bench_run_id = {run} ORDER BY id")
    values = []
    seen = {b: 0 for b in FIXTURE}
    for jid, budgets in jobs:
        for rung, b in enumerate(json.loads(budgets) if budgets.startswith("[") else [int(budgets)]):
            for sample in (0, 1):
                thinking, grade = FIXTURE[b][seen[b]]
                seen[b] += 1
                g = "NULL" if grade is None else str(grade).lower()
                budget = b if budgets.startswith("[") else "NULL"
                values.append(f"({jid}, 1, {sample}, {rung}, {budget}, {thinking}, {g})")
    psql(DB, "INSERT INTO s1.results (job_id, attempt, sample, rung, budget, thinking_tokens, grade) VALUES "
             + ", ".join(values))
    psql(DB, f"UPDATE s1.jobs SET state = 'succeeded', attempt = 1 WHERE bench_run_id = {run}")
    return suite, run


def close(a, b):
    return abs(a - b) <= 1e-5 * max(1, abs(b))


def test_report_json_gives_accuracy_control_scaling_and_performance():
    suite, run = completed_run()
    p = ctl("bench", "report", "--json", str(run))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    want = expected_curve()
    assert out["id"] == run and out["suite"] == suite and out["budgets"] == [100, 200, 400]
    assert (out["jobs"], out["succeeded"], out["failed"], out["pending"]) == (6, 6, 0, 0)
    assert [c["budget"] for c in out["curve"]] == [100, 200, 400]
    for c in out["curve"]:
        acc, think, control, graded = want[c["budget"]]
        assert (c["jobs"], c["succeeded"], c["samples"], c["graded"]) == (2, 2, 4, graded)
        assert close(c["accuracy"], acc) and close(c["mean_thinking_tokens"], think)
        assert close(c["control"], control)
        lo, hi = wilson(acc, graded)
        assert close(c["ci_low"], lo) and close(c["ci_high"], hi)
    assert out["ci"].startswith("Wilson")
    assert close(out["control"], 11 / 12)
    assert close(out["scaling"], expected_scaling(want))
    assert close(out["performance"], 0.75)


def test_a_ladder_run_reports_the_same_curve_from_a_job_per_problem():
    _, separate = completed_run()
    _, ladder = completed_run(())
    a, b = (json.loads(ctl("bench", "report", "--json", str(r)).stdout) for r in (separate, ladder))
    assert (b["jobs"], b["succeeded"]) == (2, 2)
    for x, y in zip(a["curve"], b["curve"]):
        assert (x["budget"], x["samples"], x["graded"]) == (y["budget"], y["samples"], y["graded"])
        assert close(x["accuracy"], y["accuracy"]) and close(x["control"], y["control"])
    assert close(a["scaling"], b["scaling"]) and close(a["control"], b["control"])


def test_report_text_has_a_row_per_budget_and_the_three_figures():
    _, run = completed_run()
    p = ctl("bench", "report", str(run))
    assert p.returncode == 0, p.stderr
    rows = {line.split()[0]: line.split() for line in p.stdout.splitlines()
            if re.match(r"^\s+\d+\s", line)}
    lo, hi = wilson(0.25, 4)
    assert rows["100"][1:8] == ["2/2", "4", "4", "25.0%", f"{100 * lo:.1f}-{100 * hi:.1f}%", "80.0", "75.0%"]
    lo, hi = wilson(2 / 3, 3)
    assert rows["200"][1:8] == ["2/2", "4", "3", "66.7%", f"{100 * lo:.1f}-{100 * hi:.1f}%", "170.0", "100.0%"]
    scaling = expected_scaling(expected_curve())
    assert f"Control 91.7%   Scaling {scaling:.2f}" in p.stdout and "Performance 75.0%" in p.stdout
    assert "accuracy by budget" not in p.stdout, "the text chart is for terminals"


def on_a_terminal(*args):
    """Runs s1ctl with stdout on a pseudo-terminal; returns (code, output)."""
    master, slave = pty.openpty()
    p = subprocess.run([binary("s1ctl"), *args], stdout=slave, stderr=subprocess.PIPE,
                       env={**os.environ, "DATABASE_URL": DB}, timeout=60)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: nothing left on the closed terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return p.returncode, out.decode()


def test_report_on_a_terminal_adds_a_text_chart_of_accuracy_by_budget():
    _, run = completed_run()
    code, out = on_a_terminal("bench", "report", str(run))
    assert code == 0
    assert "accuracy by budget" in out
    bar = re.search(r"^\s+400 \|(#*) *\|\s+75\.0%\s+\(300\)", out, re.M)
    assert bar and len(bar.group(1)) == 30
    code, out = on_a_terminal("bench", "report", "--plot", os.path.join(TMP, "tty.svg"), str(run))
    assert code == 0 and "accuracy by budget" not in out


def test_report_plot_writes_a_well_formed_svg_with_a_labelled_point_per_budget():
    _, run = completed_run()
    path = os.path.join(TMP, "curve.svg")
    p = ctl("bench", "report", "--plot", path, str(run))
    assert p.returncode == 0, p.stderr
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    circles = root.findall(f".//{ns}circle")
    assert len(circles) == 3
    texts = [t.text for t in root.iter(f"{ns}text")]
    # The graded samples differ per budget (4, 3, 4): each label says its n.
    assert {"100 (n=4)", "200 (n=3)", "400 (n=4)"} <= set(texts), texts
    assert any(t and "Control 91.7%" in t and "Performance 75.0%" in t for t in texts)
    # log-x: x grows with thinking tokens, and y is higher (smaller) for better accuracy.
    xs = [float(c.get("cx")) for c in circles]
    ys = [float(c.get("cy")) for c in circles]
    assert xs == sorted(xs) and ys[1] < ys[0] and ys[2] < ys[1]


def test_maj_at_k_votes_by_grader_equivalence_and_pass_at_k_is_unbiased():
    psql(DB, "INSERT INTO s1.suites (name) VALUES ('votes') ON CONFLICT DO NOTHING")
    psql(DB, "INSERT INTO s1.suite_problems (suite_id, name, problem, reference_answer) "
             "SELECT id, n, 'p' || n, r FROM s1.suites, (VALUES ('a', '1/2'), ('b', '7'), ('c', '9')) AS v(n, r) "
             "WHERE name = 'votes' ON CONFLICT DO NOTHING")
    run = int(ctl("bench", "run", "votes", "--budgets", "100", "--samples", "4", "--separate").stdout)
    jobs = dict(psql(DB, "SELECT p.name, j.id FROM s1.jobs j JOIN s1.suite_problems p ON p.id = j.suite_problem_id"
                         f" WHERE j.bench_run_id = {run}"))
    # a: three ways of writing 1/2 outvote 3 (as strings, all four differ);
    # b: 8 twice beats 7 once (the majority is wrong); c: 9 once of four.
    samples = {"a": [("3", "f"), ("\\dfrac{1}{2}", "t"), ("0.5", "t"), ("1/2", "t")],
               "b": [("7", "t"), ("8", "f"), ("8", "f"), (None, "f")],
               "c": [("1", "f"), ("2", "f"), ("9", "t"), ("4", "f")]}
    values = []
    for name, rows in samples.items():
        for i, (ans, g) in enumerate(rows):
            a = "NULL" if ans is None else f"'{ans}'"
            values.append(f"({jobs[name]}, 1, {i}, {a}, '{g}', 10)")
    psql(DB, "INSERT INTO s1.results (job_id, attempt, sample, extracted_answer, grade, thinking_tokens)"
             " VALUES " + ", ".join(values))
    psql(DB, f"UPDATE s1.jobs SET state = 'succeeded', attempt = 1 WHERE bench_run_id = {run}")
    out = json.loads(ctl("bench", "report", "--json", str(run)).stdout)
    [point] = out["curve"]
    assert out["k"] == 4 and point["voted_problems"] == 3
    assert close(point["maj_at_k"], 1 / 3), point  # only a's majority is right
    assert close(point["pass_at_k"], 1.0)  # every problem has a right sample among its 4
    assert close(point["accuracy"], 5 / 12)
    text = ctl("bench", "report", str(run)).stdout
    assert re.search(r"^\s+100 .* 33\.3%\s+100\.0%$", text, re.M), text
    assert "maj@4" in text and "pass@4" in text


def test_pass_at_k_is_the_chance_that_k_of_n_samples_hold_a_right_one():
    run = completed_run()[1]
    out = json.loads(ctl("bench", "report", "--json", str(run)).stdout)
    # FIXTURE at 100: problem 1 has grades (t, f), problem 2 (f, f): pass@2 = (1 + 0) / 2
    [p100] = [c for c in out["curve"] if c["budget"] == 100]
    assert close(p100["pass_at_k"], 0.5) and close(p100["maj_at_k"], 0.0)


def test_report_plot_ticks_read_in_1_2_5_steps_and_each_point_has_its_interval():
    _, run = completed_run()
    path = os.path.join(TMP, "ticks.svg")
    assert ctl("bench", "report", "--plot", path, str(run)).returncode == 0
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert "100" in texts and "200" in texts, texts  # thinking 80..300: 1-2-5 ticks
    assert not any(t in texts for t in ("64", "128", "256")), "no power-of-two ticks"
    whiskers = [p for p in root.iter(f"{ns}path") if p.get("d", "").startswith("M")]
    assert len(whiskers) == 3
    titles = [t.text for t in root.iter(f"{ns}title")]
    lo, hi = wilson(0.25, 4)
    assert any(f"(95% interval {100 * lo:.1f}-{100 * hi:.1f}%, n=4)" in t for t in titles), titles


def test_report_overlays_several_runs_with_a_legend_and_names_what_differs():
    _, first = completed_run()
    _, second = completed_run()
    psql(DB, f"UPDATE s1.bench_runs SET sampling = '{{\"temperature\": 0.5}}' WHERE id = {second}")
    third = int(ctl("bench", "run", imported(1), "--budgets", "100").stdout)  # nothing ran yet
    path = os.path.join(TMP, "overlay.svg")
    p = ctl("bench", "report", "--plot", path, str(first), str(second), str(third))
    assert p.returncode == 0, p.stderr
    assert f"warning: runs {first} and {second} differ in sampling: {{}} vs {{\"temperature\": 0.5}}" in p.stderr
    assert f"warning: runs {first} and {third} differ in suite" in p.stderr
    assert p.stdout.count("Control ") == 3
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert f"run {first}, model any" in texts and f"run {second}, model any" in texts
    assert f"run {third}, model any (unfinished)" in texts
    assert len(root.findall(f".//{ns}circle")) == 6
    out = json.loads(ctl("bench", "report", "--json", str(first), str(second)).stdout)
    assert [r["id"] for r in out] == [first, second]


def test_report_plot_escapes_the_suite_name():
    name = unique("a<&>b")
    assert ctl("suite", "import", name, jsonl(small_set(1))).returncode == 0
    run = int(ctl("bench", "run", name, "--budgets", "10").stdout)
    path = os.path.join(TMP, "escaped.svg")
    assert ctl("bench", "report", "--plot", path, str(run)).returncode == 0
    texts = [t.text for t in ET.parse(path).getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert any(t and name in t for t in texts) and "no graded results yet" in texts


def test_report_of_a_run_without_results_has_no_figures_yet():
    suite = imported(2)
    run = int(ctl("bench", "run", suite, "--budgets", "10,20").stdout)
    out = json.loads(ctl("bench", "report", "--json", str(run)).stdout)
    assert (out["jobs"], out["pending"]) == (2, 2), "a ladder job per problem"
    assert out["control"] is None and out["scaling"] is None and out["performance"] is None
    assert all(c["accuracy"] is None and c["samples"] == 0 for c in out["curve"])
    p = ctl("bench", "report", str(run))
    assert "Control -   Scaling -   Performance -" in p.stdout
    assert re.search(r"^\s+10\s+0/2\s+0\s+0\s+-\s+-\s+-\s+-$", p.stdout, re.M)


def test_the_latest_run_is_the_latest_complete_one_unless_none_is():
    suite, done = completed_run()
    going = int(ctl("bench", "run", suite, "--budgets", "10").stdout)
    cancelled = int(ctl("bench", "run", suite, "--budgets", "20").stdout)
    psql(DB, f"UPDATE s1.jobs SET state = 'cancelled' WHERE bench_run_id = {cancelled}")
    assert json.loads(ctl("bench", "report", "--json", "--suite", suite).stdout)["id"] == done
    assert going < cancelled
    other = imported(1)
    only_going = int(ctl("bench", "run", other, "--budgets", "10").stdout)
    assert json.loads(ctl("bench", "report", "--json", "--suite", other).stdout)["id"] == only_going


def test_report_picks_the_latest_run_of_a_suite_or_of_all():
    suite = imported(1)
    first = int(ctl("bench", "run", suite, "--budgets", "10").stdout)
    second = int(ctl("bench", "run", suite, "--budgets", "20").stdout)
    assert first < second
    assert json.loads(ctl("bench", "report", "--json", "--suite", suite).stdout)["id"] == second
    latest_complete = psql(DB, "SELECT max(b.id) FROM s1.bench_runs b WHERE NOT EXISTS (SELECT FROM s1.jobs j "
                               "WHERE j.bench_run_id = b.id AND j.state IN ('queued', 'running')) AND EXISTS "
                               "(SELECT FROM s1.jobs j WHERE j.bench_run_id = b.id AND j.state = 'succeeded')")
    assert json.loads(ctl("bench", "report", "--json").stdout)["id"] == int(latest_complete[0][0])


def test_report_refuses_bad_arguments_with_one_line():
    cases = [(["12", "--suite", "x"], 2, "give a RUN_ID or --suite NAME, not both"),
             (["zero"], 2, "run id: 'zero' is not an integer"),
             (["1", "2", "3", "4", "5", "6", "7"], 2, "unexpected argument '7'"),
             (["--limit", "3"], 2, "unknown flag --limit"),
             (["987654"], 5, "run 987654: no such benchmark run"),
             (["--suite", "no-such-suite"], 5, "suite no-such-suite has no benchmark run"),
             (["--plot", ""], 2, "--plot: must not be empty")]
    for args, code, needle in cases:
        p = ctl("bench", "report", *args)
        assert p.returncode == code, (args, p.returncode, p.stderr)
        one_error_line(p, needle)


# ---- bench compare ----

def graded_run(suite, grades, **flags):
    """A run of suite at budget 100 whose problems' one sample grades as given."""
    extra = [x for k, v in flags.items() for x in (f"--{k}", v)]
    run = int(ctl("bench", "run", suite, "--budgets", "100", "--separate", *extra).stdout)
    jobs = [r[0] for r in psql(DB, f"SELECT id FROM s1.jobs WHERE bench_run_id = {run} ORDER BY id")]
    psql(DB, "INSERT INTO s1.results (job_id, attempt, sample, thinking_tokens, grade) VALUES "
             + ", ".join(f"({j}, 1, 0, 50, {str(g).lower()})" for j, g in zip(jobs, grades)))
    psql(DB, f"UPDATE s1.jobs SET state = 'succeeded', attempt = 1 WHERE bench_run_id = {run}")
    return run


def test_compare_gives_the_paired_difference_its_interval_and_p_per_budget():
    suite = imported(10)
    a = graded_run(suite, [True] * 10)
    b = graded_run(suite, [True, True] + [False] * 8, temperature="0.5")
    p = ctl("bench", "compare", str(a), str(b), "--json")
    assert p.returncode == 0, p.stderr
    assert f"warning: runs {a} and {b} differ in sampling" in p.stderr
    out = json.loads(p.stdout)
    [row] = out["budgets"]
    assert (out["a"], out["b"], row["budget"], row["problems"]) == (a, b, 100, 10)
    assert close(row["a"], 1.0) and close(row["b"], 0.2) and close(row["difference"], 0.8)
    # 8 discordant problems, all one way: McNemar's exact p is 2 / 2^8 = 0.0078.
    assert 0.004 < row["p"] < 0.013, row
    assert 0.4 < row["ci_low"] < 0.8 and close(row["ci_high"], 1.0), row
    assert ctl("bench", "compare", str(a), str(b), "--json").stdout == p.stdout, "fixed seed"
    text = ctl("bench", "compare", str(a), str(b)).stdout
    assert re.search(r"^\s+100\s+10\s+100\.0%\s+20\.0%\s+\+80\.0%", text, re.M), text
    same = graded_run(suite, [True] * 10)
    [row] = json.loads(ctl("bench", "compare", str(a), str(same), "--json").stdout)["budgets"]
    assert row["difference"] == 0 and row["p"] == 1


def test_compare_needs_two_existing_runs():
    for args, code, needle in ((["1"], 2, "give two run ids"), (["1", "2", "3"], 2, "unexpected argument"),
                               (["987654", "987655"], 5, "run 987654: no such benchmark run")):
        p = ctl("bench", "compare", *args)
        assert p.returncode == code, (args, p.stderr)
        one_error_line(p, needle)


# ---- bench regrade ----

def test_regrade_stores_what_the_grader_says_now_and_only_what_changed():
    suite = imported(1)  # the problem's reference answer is "1"
    run = int(ctl("bench", "run", suite, "--budgets", "100").stdout)
    [[jid]] = psql(DB, f"SELECT id FROM s1.jobs WHERE bench_run_id = {run}")
    psql(DB, f"UPDATE s1.jobs SET reference_answer = '204' WHERE id = {jid}")
    # As an older grader left them: a unit made sample 0 wrong; sample 1 had
    # no answer text; sample 2 is already right.
    psql(DB, "INSERT INTO s1.results (job_id, attempt, sample, answer, extracted_answer, grade) VALUES "
             f"({jid}, 1, 0, 'Final Answer: \\boxed{{204 \\text{{ minutes}}}}', '204minutes', false),"
             f"({jid}, 1, 1, NULL, NULL, false),"
             f"({jid}, 1, 2, 'so \\boxed{{204}}', '204', true)")
    p = ctl("bench", "regrade", str(run), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"run": run, "results": 3, "correct": 2, "changed": 1}
    rows = psql(DB, f"SELECT sample, extracted_answer, grade FROM s1.results WHERE job_id = {jid} ORDER BY sample")
    assert rows == [["0", "204 \\text{ minutes}", "t"], ["1", "", "f"], ["2", "204", "t"]], rows
    p = ctl("bench", "regrade", str(run))
    assert p.stdout == f"run {run}: 3 results regraded, 2 correct, 0 changed\n", p.stdout


def test_regrade_refuses_a_missing_run_and_bad_arguments():
    p = ctl("bench", "regrade", "987654")
    assert p.returncode == 5
    one_error_line(p, "run 987654: no such benchmark run")
    for args, needle in ((["regrade"], "no RUN_ID given"), (["regrade", "x"], "run id"),
                         (["regrade", "1", "2"], "unexpected argument '2'"),
                         (["regrade", "--plot", "a.svg", "1"], "--plot")):
        p = ctl("bench", *args)
        assert p.returncode == 2, (args, p.stderr)
        one_error_line(p, needle)


def test_report_plot_into_a_missing_directory_is_exit_2():
    _, run = completed_run()
    path = os.path.join(TMP, "no", "such", "dir.svg")
    p = ctl("bench", "report", "--plot", path, str(run))
    assert p.returncode == 2
    one_error_line(p, f"--plot {path}", "No such file or directory")


# ---- bench list ----

def test_bench_list_shows_runs_with_suite_budgets_and_progress():
    suite, run = completed_run()
    queued = int(ctl("bench", "run", suite, "--budgets", "8,16", "--model", "m1").stdout)
    rows = json.loads(ctl("bench", "list", "--json", "--suite", suite).stdout)
    assert [r["id"] for r in rows] == [queued, run]
    assert rows[0]["budgets"] == [8, 16] and rows[0]["model"] == "m1"
    assert (rows[0]["jobs"], rows[0]["pending"], rows[1]["succeeded"]) == (2, 2, 6)
    psql(DB, f"UPDATE s1.jobs SET state = 'cancelled' WHERE id = (SELECT min(id) FROM s1.jobs "
             f"WHERE bench_run_id = {queued})")
    rows = json.loads(ctl("bench", "list", "--json", "--suite", suite).stdout)
    assert (rows[0]["failed"], rows[0]["cancelled"], rows[0]["pending"]) == (0, 1, 1), "cancelled is not failed"
    p = ctl("bench", "list", "--limit", "1")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 2 and p.stdout.startswith("id")
    p = ctl("bench", "list", "--limit", "0")
    assert p.returncode == 2
    one_error_line(p, "--limit")


# ---- systemd ----

def test_the_service_runs_bench_run_with_the_env_file_and_is_hardened():
    # systemd-analyze verify runs on the installed unit (tests/daemon/test_install.py).
    text = open(os.path.join(SOURCE, "systemd", "s1-bench.service.in")).read()
    for line in ("Type=oneshot", "EnvironmentFile=/etc/s1d/bench.env", "DynamicUser=yes",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    assert re.search(r"^ExecStart=@BINDIR@/s1ctl bench run .*\$\{S1_BENCH_BUDGETS\}.*\$\{S1_BENCH_SUITE\}",
                     text, re.M)
    timer = open(os.path.join(SOURCE, "systemd", "s1-bench.timer")).read()
    for line in ("Persistent=true", "Unit=s1-bench.service", "WantedBy=timers.target"):
        assert re.search(rf"^{re.escape(line)}$", timer, re.M), line
    assert re.search(r"^OnCalendar=", timer, re.M) and re.search(r"^RandomizedDelaySec=", timer, re.M)
    env = open(os.path.join(SOURCE, "systemd", "s1-bench.env.example")).read()
    keys = set(re.findall(r"^([A-Z0-9_]+)=", env, re.M))
    assert {"DATABASE_URL", "S1_BENCH_SUITE", "S1_BENCH_BUDGETS", "S1_BENCH_ARGS"} <= keys


def test_the_example_env_file_gives_a_command_line_s1ctl_accepts():
    env = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$",
                          open(os.path.join(SOURCE, "systemd", "s1-bench.env.example")).read(), re.M))
    if not problems_of(env["S1_BENCH_SUITE"]):
        assert ctl("suite", "import", env["S1_BENCH_SUITE"], jsonl(small_set(1))).returncode == 0
    p = ctl("bench", "run", "--budgets", env["S1_BENCH_BUDGETS"], *env["S1_BENCH_ARGS"].split(),
            env["S1_BENCH_SUITE"])
    assert p.returncode == 0, p.stderr


tap_main(globals())
