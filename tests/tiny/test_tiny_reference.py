#!/usr/bin/python3
"""s1-tiny (models/s1-tiny) on the CPU backend against the numpy reference
of Qwen2 (tests/cpu/ref_qwen2.py), token for token.

forward_dump decodes greedily; the reference then runs the whole sequence
(prompt and what the backend generated) in one forward. The greedy
continuations are equal exactly when, at every generated position, the
reference's most likely token is the one the backend chose. Trained weights
make this decisive, unlike random ones: the test also asserts that the
reference's winner leads the runner-up by far more than the two forwards'
difference, so a tie decided by rounding cannot pass or fail it."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

SOURCE = os.environ["S1_SOURCE_ROOT"]
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "cpu"))
from s1test import binary, tap_main  # noqa: E402
from ref_qwen2 import Qwen2  # noqa: E402

DUMP = sys.argv[1]
MODEL = os.path.join(SOURCE, "models", "s1-tiny")
SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
REF = Qwen2(MODEL)


def prompt_ids(problem):
    """The s1 template with s1d's default system prompt (engine/prompt.c),
    tokenized by s1ctl."""
    text = (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{problem}<|im_end|>\n"
            "<|im_start|>assistant\n<|im_start|>think\n")
    out = subprocess.run([binary("s1ctl"), "tokenize", "--model", MODEL, "--json"], input=text,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def decode(ids):
    return subprocess.run([binary("s1ctl"), "tokenize", "--model", MODEL, "--decode"],
                          input=" ".join(map(str, ids)), capture_output=True, text=True,
                          check=True).stdout


def backend_greedy(prompt, n, env=None):
    """(logits of every position, generated ids) from the CPU backend."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as out:
        r = subprocess.run([DUMP, MODEL, "--prompt", ",".join(map(str, prompt)), "--generate", str(n),
                            "--out", out.name], capture_output=True, text=True,
                           env={**os.environ, **(env or {})})
        assert r.returncode == 0, r.stderr
        gen = list(map(int, r.stdout.splitlines()[0].split(":")[1].split()))
        logits = np.fromfile(out.name, dtype=np.float32).reshape(-1, REF.vocab_of(MODEL))
    return logits, gen


def check_against_reference(problem, answer, env=None):
    prompt = prompt_ids(problem)
    logits, gen = backend_greedy(prompt, 200, env)
    end = gen.index(REF_EOS) + 1 if REF_EOS in gen else len(gen)
    seq = prompt + gen[:end]
    ref = REF.forward(seq[:-1])[len(prompt) - 1:]
    chosen = np.argmax(ref, axis=-1)
    assert chosen.tolist() == gen[:end], (chosen.tolist(), gen[:end])
    top2 = np.sort(ref, axis=-1)[:, -2:]
    margin = float(np.min(top2[:, 1] - top2[:, 0]))
    drift = float(np.max(np.abs(logits[len(prompt) - 1:len(seq) - 1] - ref)))
    assert margin > 10 * drift, (margin, drift)
    text = decode(gen[:end])
    assert f"\\boxed{{{answer}}}" in text, text


REF_EOS = json.load(open(os.path.join(MODEL, "generation_config.json")))["eos_token_id"]
if isinstance(REF_EOS, list):
    REF_EOS = REF_EOS[0]


def test_a_short_count_is_solved_and_matches_the_reference_token_for_token():
    check_against_reference("Start at 12 and add 3, 4 times. What is the result?", 24)


def test_a_long_count_is_solved_and_matches_the_reference_with_portable_kernels():
    check_against_reference("Start at 20 and add 8, 14 times. What is the result?", 132,
                            env={"S1_CPU_KERNELS": "portable"})


tap_main(globals())
