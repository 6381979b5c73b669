"""s1ctl's one flag parser (cli/flags.c): every command's --help lists
exactly the flags it takes, prefixes resolve or are reported as ambiguous,
an exact name wins over longer ones, unknown flags get a suggestion, and
the job-parameter rules give one line naming the flag and the range."""
import re

from ctltest import EXAMPLE, one_error_line, s1ctl
from s1test import tap_main

NO_DB = "host=/nonexistent/s1 dbname=x"

COMMANDS = [["submit"], ["show"], ["list"], ["result"], ["wait"], ["cancel"], ["retry"],
            ["migrate"], ["generate"], ["tokenize"], ["export"], ["suite", "import"],
            ["suite", "list"], ["suite", "show"], ["bench", "run"], ["bench", "report"],
            ["bench", "list"], ["bench", "regrade"], ["bench", "compare"]]

REFUSALS = ("unknown flag", "ambiguous", "is not taken")


def listed_flags(command):
    """The flags a command's --help lists, with whether each takes a value."""
    p = s1ctl(*command, "--help")
    assert p.returncode == 0, (command, p.stderr)
    return {m.group(1): bool(m.group(2)) for m in re.finditer(r"^  --([a-z-]+)( [A-Z])?", p.stdout, re.M)}


def test_every_flag_a_help_lists_is_taken_by_its_command():
    for command in COMMANDS:
        flags = listed_flags(command)
        assert "help" in flags and "db" in flags or command[0] in ("generate", "tokenize"), command
        for flag, takes_value in flags.items():
            if flag == "help":
                continue
            args = [f"--{flag}"] if takes_value else [f"--{flag}", "--db" if "db" in flags else "--help"]
            if not takes_value and "db" in flags:
                args.append(NO_DB)
            p = s1ctl(*command, *args)
            for refusal in REFUSALS:
                assert refusal not in p.stderr, (command, flag, p.stderr)
            if takes_value:
                one_error_line(p, f"flag --{flag} needs a value")


def test_bench_run_help_lists_neither_budget_nor_waits_and_refuses_them_by_name():
    flags = listed_flags(["bench", "run"])
    assert "budget" not in flags and "waits" not in flags and "budgets" in flags
    for flag in ("--budget", "--waits"):
        p = s1ctl("bench", "run", "s", flag, "5")
        assert p.returncode == 2
        one_error_line(p, f"flag {flag} is not taken by s1ctl bench run", "--budgets N,N")


def test_an_exact_name_wins_over_the_longer_flags_it_begins():
    # --wait is a switch of submit, and a prefix of --waits and --wait-string.
    p = s1ctl("submit", "--wait")
    assert p.returncode == 2
    one_error_line(p, "no problem file given")


def test_a_prefix_of_one_flag_is_that_flag():
    p = s1ctl("submit", "--sampl", "0", EXAMPLE)
    assert p.returncode == 2
    one_error_line(p, "--samples: 0 is not an integer from 1 to 1024")
    p = s1ctl("submit", "--tempe=-1", EXAMPLE)
    one_error_line(p, "--temperature: -1 is not a number in [0, 1e+06]")


def test_an_ambiguous_prefix_names_every_candidate():
    p = s1ctl("submit", "--wai", EXAMPLE)
    assert p.returncode == 2
    one_error_line(p, "flag --wai is ambiguous:", "--wait", "--waits", "--wait-string")
    p = s1ctl("submit", "--max", "1", EXAMPLE)
    one_error_line(p, "flag --max is ambiguous: --max-answer, --max-attempts, --max-bytes")


def test_an_unknown_flag_gets_the_nearest_name_or_one_whose_help_names_it():
    p = s1ctl("submit", "--budgt", "5", EXAMPLE)
    assert p.returncode == 2
    one_error_line(p, "unknown flag --budgt (did you mean --budget?)")
    one_error_line(s1ctl("bench", "report", "--svg", "x.svg"), "unknown flag --svg (did you mean --plot?)")
    p = s1ctl("list", "--frobnicate")
    one_error_line(p, "unknown flag --frobnicate (see s1ctl list --help)")
    one_error_line(s1ctl("list", "-x"), "unknown flag -x")


def test_values_are_refused_where_none_is_taken_and_required_where_one_is():
    one_error_line(s1ctl("list", "--json=yes"), "flag --json takes no value")
    one_error_line(s1ctl("list", "--limit"), "flag --limit needs a value (N)")
    p = s1ctl("list", "--limit=0")
    one_error_line(p, "--limit: '0' is not an integer from 1 to 1000000")


def test_words_after_a_double_dash_are_arguments():
    p = s1ctl("show", "--", "--json")
    assert p.returncode == 2
    one_error_line(p, "job id: '--json' is not an integer")


def test_job_parameter_rules_are_stated_with_the_flag_and_the_range():
    for args, needle in ((["--priority", "1000001"], "--priority: 1000001 is not an integer from -1000000 to 1000000"),
                         (["--max-attempts", "0"], "--max-attempts: 0 is not an integer from 1 to 1000"),
                         (["--top-p", "0"], "--top-p: 0 is not a number in (0, 1]"),
                         (["--top-k", "-1"], "--top-k: -1 is not an integer from 0 to 2147483647"),
                         (["--budget", "0"], "--budget: 0 is not an integer from 1 to 2147483647"),
                         (["--min-think", "x"], "--min-think: 'x' is not an integer from 0"),
                         (["--budget", "10", "--min-think", "11"], "--min-think 11 is above --budget 10"),
                         (["--seed", "-1"], "--seed: '-1' is not an integer from 0")):
        p = s1ctl("submit", *args, EXAMPLE, db=NO_DB)
        assert p.returncode == 2, (args, p.stderr)
        one_error_line(p, needle)


def test_generate_refuses_ladders_by_name():
    p = s1ctl("generate", "--budgets", "1,2", EXAMPLE)
    assert p.returncode == 2
    one_error_line(p, "flag --budgets is not taken by s1ctl generate", "s1ctl submit")


tap_main(globals())
