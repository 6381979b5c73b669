"""The 7b preset of tools/gen_model.py, which bench/gpu and
tests/gpu/device_run.sh generate on a GPU machine, needs nothing from
../shared: it writes the byte tokenizer and keeps Qwen2.5-7B's 152064-row
vocabulary. Checked at the 7b preset's vocabulary and tokenizer with the other
sizes made small, and run by the engine (s1ctl generate)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from s1test import SOURCE, binary, tap_main  # noqa: E402

WORK = tempfile.mkdtemp(prefix="s1-bench-model-")
MODEL = os.path.join(WORK, "model")


def test_the_7b_preset_generates_without_shared():
    env = dict(os.environ, S1_SHARED=os.path.join(WORK, "absent"))
    subprocess.run([sys.executable, os.path.join(SOURCE, "tools", "gen_model.py"), "--out", MODEL,
                    "--preset", "7b", "--hidden", "64", "--layers", "1", "--heads", "4",
                    "--kv-heads", "2", "--intermediate", "64"], env=env, check=True,
                   capture_output=True)
    with open(os.path.join(MODEL, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["vocab_size"] == 152064, cfg["vocab_size"]
    with open(os.path.join(MODEL, "tokenizer.json")) as f:
        vocab = json.load(f)["model"]["vocab"]
    assert len(vocab) < 152064, len(vocab)


def test_the_engine_runs_it():
    p = subprocess.run([binary("s1ctl"), "generate", "--model", MODEL, "--threads", "1",
                        "--budget", "2", "--max-answer", "2", "-"], input="What is 2+2?",
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


if __name__ == "__main__":
    try:
        tap_main(globals())
    finally:
        shutil.rmtree(WORK, True)
