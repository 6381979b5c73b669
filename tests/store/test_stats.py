"""s1.scaling_stats, the SQL sibling of s1.scaling_curve, gives the numbers
of `s1ctl bench report --json` (n, accuracy, its Wilson interval, maj@k,
pass@k) per run and budget; the majority vote of each job's samples is
stored in the rows (results.majority, votes) by `bench regrade` as by s1d,
grouping answers the grader finds equal and breaking ties to the lowest
sample."""
import json
import os

from ctltest import HELD, migrated_db, psql, s1ctl, tempdir
from s1test import tap_main

DB = migrated_db("stats")
TMP = tempdir("s1stats.")
ENV = {"DATABASE_URL": DB}

# Per problem and budget, the answer texts of its 3 samples (those without a
# \boxed{} have no final answer to extract); the reference is "1/2".
ANSWERS = {
    ("q0", 10): ["\\boxed{\\dfrac{1}{2}}", "\\boxed{0.5}", "\\boxed{3}"],  # equal answers win: right
    ("q0", 20): ["\\boxed{3}", "\\boxed{1/2}", "\\boxed{4}"],             # a tie of 1: sample 0, wrong
    ("q1", 10): ["\\boxed{7}", "\\boxed{7}", "\\boxed{1/2}"],             # majority wrong, pass@3 right
    ("q1", 20): ["no answer here", "\\boxed{2/4}", "nothing"],            # one answer, right
    ("q2", 10): ["nothing", "nothing", "nothing"],                        # no answer: no majority
    ("q2", 20): ["\\boxed{1/2}", "\\boxed{1/2}", "\\boxed{1/2}"],
}


def ctl(*args):
    return s1ctl(*args, env=ENV)


def sql_quote(s):
    return "'" + s.replace("'", "''") + "'"


def a_run(layout):
    """A run of 3 problems at budgets 10 and 20, 3 samples each, its results
    written by SQL as daemons would (then regraded, which votes); returns its id."""
    name = "stats" + layout.strip("-")
    path = os.path.join(TMP, name + ".jsonl")
    with open(path, "w") as f:
        for q in ("q0", "q1", "q2"):
            f.write(json.dumps({"id": q, "problem": f"{q}: half of one?", "answer": "1/2"}) + "\n")
    assert ctl("suite", "import", name, path).returncode == 0
    p = ctl("bench", "run", name, "--budgets", "10,20", "--samples", "3", *([layout] if layout else []))
    assert p.returncode == 0, p.stderr
    run = int(p.stdout)
    jobs = psql(DB, "SELECT j.id, p.name, j.policy ->> 'max_think' FROM s1.jobs j"
                    f" JOIN s1.suite_problems p ON p.id = j.suite_problem_id WHERE j.bench_run_id = {run}")
    for jid, q, max_think in jobs:
        psql(DB, f"UPDATE s1.jobs SET state = 'running', {HELD} WHERE id = {jid}")
        budgets = [int(max_think)] if max_think else [10, 20]
        rows = []
        for rung, b in enumerate(budgets):
            for sample, text in enumerate(ANSWERS[(q, b)]):
                budget = "NULL" if max_think else str(b)
                answer = "Final Answer: " + text if "boxed" in text else text
                rows.append(f"({jid}, 1, {sample}, {rung if not max_think else 0}, {budget}, 5,"
                            f" {sql_quote(answer)})")
        psql(DB, "INSERT INTO s1.results (job_id, attempt, sample, rung, budget, thinking_tokens, answer)"
                 " VALUES " + ", ".join(rows))
        psql(DB, f"UPDATE s1.jobs SET state = 'succeeded', lease_until = NULL WHERE id = {jid}")
    p = ctl("bench", "regrade", str(run))
    assert p.returncode == 0, p.stderr
    return run


def close(a, b):
    """Equal to the 7 significant digits the report prints."""
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))


def check_view_equals_report(run):
    report = json.loads(ctl("bench", "report", str(run), "--json").stdout)
    view = psql(DB, "SELECT budget, n, accuracy, ci_low, ci_high, maj_at_k, pass_at_k, voted_problems, k"
                    f" FROM s1.scaling_stats WHERE bench_run_id = {run} ORDER BY budget")
    assert [int(v[0]) for v in view] == [c["budget"] for c in report["curve"]]
    for v, c in zip(view, report["curve"]):
        val = [None if x == "" else x for x in v]
        assert int(val[1]) == c["graded"], (val, c)
        keys = ((2, "accuracy"), (3, "ci_low"), (4, "ci_high"))
        if "k" in report:  # maj@k and pass@k are reported with several samples per problem
            keys += ((5, "maj_at_k"), (6, "pass_at_k"))
            assert int(val[7]) == c["voted_problems"] and int(val[8]) == report["k"]
        for i, key in keys:
            assert close(val[i], c[key]), (key, val, c)
    return {int(v[0]): [float(x) if x else None for x in v[2:7]] for v in view}


def test_the_view_gives_the_numbers_of_the_report_for_ladder_and_separate_runs():
    for layout in ("", "--separate"):
        stats = check_view_equals_report(a_run(layout))
        # budget 10: 3 right of 9 graded; majority right for q0 only; pass@3 q0, q1 right
        assert close(stats[10][0], 3 / 9) and close(stats[10][3], 1 / 3) and close(stats[10][4], 2 / 3)
        # budget 20: q0 1 right, q1 1 right, q2 3 right: 5 of 9; majority wrong, right, right
        assert close(stats[20][0], 5 / 9) and close(stats[20][3], 2 / 3) and close(stats[20][4], 1)


def test_each_job_and_rung_has_one_majority_row_with_its_votes_and_ties_go_to_the_lowest_sample():
    run = a_run("--separate")
    rows = psql(DB, "SELECT p.name, coalesce(r.budget, (j.policy ->> 'max_think')::int), r.sample, r.votes"
                    " FROM s1.results r JOIN s1.jobs j ON j.id = r.job_id"
                    " JOIN s1.suite_problems p ON p.id = j.suite_problem_id"
                    f" WHERE j.bench_run_id = {run} AND r.majority ORDER BY 1, 2")
    assert rows == [["q0", "10", "0", "2"], ["q0", "20", "0", "1"], ["q1", "10", "0", "2"],
                    ["q1", "20", "1", "1"], ["q2", "20", "0", "3"]], rows
    none = psql(DB, "SELECT count(*) FROM s1.results r JOIN s1.jobs j ON j.id = r.job_id"
                    f" WHERE j.bench_run_id = {run} AND r.majority IS NULL")
    assert none == [["0"]]


def test_a_run_without_results_has_every_budget_and_no_numbers_yet():
    name = "statsempty"
    path = os.path.join(TMP, name + ".jsonl")
    with open(path, "w") as f:
        f.write(json.dumps({"id": "q", "problem": "p", "answer": "1"}) + "\n")
    assert ctl("suite", "import", name, path).returncode == 0
    run = int(ctl("bench", "run", name, "--budgets", "5,50").stdout)
    rows = psql(DB, "SELECT budget, n, accuracy, ci_low, maj_at_k FROM s1.scaling_stats"
                    f" WHERE bench_run_id = {run} ORDER BY budget")
    assert rows == [["5", "0", "", "", ""], ["50", "0", "", "", ""]]
    check_view_equals_report(run)


tap_main(globals())
