"""s1ctl generate and tokenize: the engine in-process on a tiny generated
model (tools/gen_model.py); no database."""
import json
import os
import subprocess
import tempfile

from ctltest import EXAMPLE, SOURCE, one_error_line, s1ctl, tempdir
from s1test import tap_main

TMP = tempdir("s1gen.")
MODEL = os.path.join(TMP, "tiny")
subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "tools", "gen_model.py"), "--out", MODEL,
                "--preset", "tiny"], check=True, capture_output=True)
TOKENIZER = json.load(open(os.path.join(MODEL, "tokenizer.json")))
SPECIAL = {t["content"]: t["id"] for t in TOKENIZER["added_tokens"]}
THINKING, FORCED, ANSWER = 1, 2, 3


def file_with(text, name):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_tokenize_prints_ids_and_matches_special_tokens():
    p = s1ctl("tokenize", "--model", MODEL, stdin="hi<|im_end|>")
    assert p.returncode == 0, p.stderr
    ids = [int(x) for x in p.stdout.split()]
    assert ids[-1] == SPECIAL["<|im_end|>"] and len(ids) >= 2


def test_tokenize_decode_reverses_tokenize():
    text = "What is 2+2?<|im_start|>answer\nfour"
    ids = s1ctl("tokenize", "--model", MODEL, stdin=text).stdout
    back = s1ctl("tokenize", "--model", MODEL, "--decode", stdin=ids)
    assert back.returncode == 0 and back.stdout == text


def test_tokenize_json_prints_an_array_and_decode_json_a_string():
    ids = json.loads(s1ctl("tokenize", "--model", MODEL, "--json", stdin="ab").stdout)
    assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)
    text = json.loads(s1ctl("tokenize", "--model", MODEL, "--decode", "--json",
                            stdin=" ".join(map(str, ids))).stdout)
    assert text == "ab"


def test_tokenize_decode_refuses_ids_outside_the_vocabulary():
    p = s1ctl("tokenize", "--model", MODEL, "--decode", stdin="1 2 999999")
    assert p.returncode == 2
    one_error_line(p, "'999999' is not a token id")
    assert s1ctl("tokenize", "--model", MODEL, "--decode", stdin="1 x").returncode == 2


def test_a_model_dir_that_cannot_be_used_is_exit_6_with_one_line():
    empty = tempfile.mkdtemp(dir=TMP)
    p = s1ctl("tokenize", "--model", empty, stdin="x")
    assert p.returncode == 6
    one_error_line(p, "tokenizer.json")
    p = s1ctl("generate", "--model", empty, EXAMPLE)
    assert p.returncode == 6
    one_error_line(p)


def test_a_tokenizer_larger_than_the_embedding_is_refused_naming_both_sizes():
    # The tiny model's 704 embedding rows with a tokenizer of 617 ids, made
    # too large by appending added tokens beyond the embedding.
    small = tempfile.mkdtemp(dir=TMP)
    for name in os.listdir(MODEL):
        with open(os.path.join(MODEL, name), "rb") as src, open(os.path.join(small, name), "wb") as dst:
            dst.write(src.read())
    tok = json.load(open(os.path.join(small, "tokenizer.json")))
    rows = json.load(open(os.path.join(small, "config.json")))["vocab_size"]
    first = max(t["id"] for t in tok["added_tokens"]) + 1
    tok["added_tokens"] += [{"id": i, "content": f"<|extra_{i}|>", "single_word": False, "lstrip": False,
                             "rstrip": False, "normalized": False, "special": True}
                            for i in range(first, rows + 1)]
    json.dump(tok, open(os.path.join(small, "tokenizer.json"), "w"))
    p = s1ctl("generate", "--model", small, "--budget", "4", EXAMPLE)
    assert p.returncode == 6, p.stderr
    # The model's own load is logged first; the error is the last line.
    assert p.stderr.splitlines()[-1].endswith(
        f"the tokenizer has {rows + 1} ids but the model only {rows} embedding rows"), p.stderr


def test_tokenize_and_generate_need_a_model():
    one_error_line(s1ctl("tokenize", stdin="x"), "--model DIR is required")
    p = s1ctl("generate", EXAMPLE)
    assert p.returncode == 2
    one_error_line(p, "--model DIR is required")


def test_generate_refuses_bad_input_like_submit():
    for args, needle in ((["--budget", "0"], "--budget"), (["--budget", "5", "--min-think", "6"], "above"),
                         (["--top-p", "2"], "--top-p"), (["--bogus"], "unknown flag")):
        p = s1ctl("generate", "--model", MODEL, *args, EXAMPLE)
        assert p.returncode == 2, args
        one_error_line(p, needle)
    for name, text, needle in (("empty.txt", "", "empty"), ("nul.txt", "a\0b", "NUL")):
        p = s1ctl("generate", "--model", MODEL, file_with(text, name))
        assert p.returncode == 2
        one_error_line(p, name, needle)
    assert s1ctl("generate", "--model", MODEL, EXAMPLE, EXAMPLE).returncode == 2


def generate_json(*args):
    p = s1ctl("generate", "--model", MODEL, "--json", *args, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_generate_with_budget_64_forces_the_end_after_exactly_64_thinking_tokens():
    # --min-think 64 suppresses any earlier end, so the budget is what ends the thinking.
    out = generate_json("--budget", "64", "--min-think", "64", "--max-answer", "8", EXAMPLE)
    kinds = out["token_kinds"]
    assert out["thinking_tokens"] == 64 and kinds.count(THINKING) == 64
    assert out["forced_end"] is True
    last_thinking = max(i for i, k in enumerate(kinds) if k == THINKING)
    # The forced end starts with the delimiter, fed right after the 64th thinking token.
    assert kinds[last_thinking + 1] == FORCED
    assert out["token_ids"][last_thinking + 1] == SPECIAL["<|im_start|>"]
    assert out["answer_tokens"] <= 8 and out["answer_tokens"] == kinds.count(ANSWER)
    assert len(out["token_ids"]) == out["thinking_tokens"] + out["forced_tokens"] + out["answer_tokens"]
    assert len(out["prompt_ids"]) == out["prompt_tokens"]


def test_generate_prints_the_answer_and_counts_and_the_trace_on_request():
    p = s1ctl("generate", "--model", MODEL, "--budget", "16", "--min-think", "16", "--max-answer", "4",
              EXAMPLE, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "thinking 16," in p.stdout and "forced end yes" in p.stdout
    assert "--- trace" not in p.stdout
    t = s1ctl("generate", "--model", MODEL, "--budget", "16", "--min-think", "16", "--max-answer", "4",
              "--trace", EXAMPLE, timeout=300)
    assert "--- trace" in t.stdout


def test_generate_raw_feeds_the_file_as_the_prompt_and_stops_at_max_tokens():
    text = "<|im_start|>user\nhi"
    out = generate_json("--raw", "--max-tokens", "5", file_with(text, "raw.txt"))
    assert len(out["token_ids"]) == 5 and out["thinking_tokens"] == 0
    ids = [int(x) for x in s1ctl("tokenize", "--model", MODEL, stdin=text).stdout.split()]
    assert out["prompt_ids"] == ids and out["prompt"] == text


def test_generate_is_deterministic_for_a_seed():
    args = ("--budget", "20", "--max-answer", "4", "--temperature", "0.8", "--seed", "7", EXAMPLE)
    assert generate_json(*args)["token_ids"] == generate_json(*args)["token_ids"]


tap_main(globals())
