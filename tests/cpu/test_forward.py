"""The CPU backend (through forward_dump) against the numpy reference of
Qwen2 (ref_qwen2.py) on tiny models from tools/gen_model.py, and against
itself run other ways: chunked, token by token, batched with other
sequences on scattered KV blocks, forked through copy_block, other kernel
sets, tensor parallel.

Tolerances, as max |C - reference| / max |reference| over all logits:
f32 and f16 weights 1e-5 (f32 sums in another order than float64; seen:
3e-7); bf16 weights 1e-4 (AVX-512 BF16 keeps 16 bits of each input's
mantissa, engine/cpu/kernels.h; seen: 8e-6); TP=2/4 against TP=1 1e-5 (only
the order of the all-reduce sums differs; seen: 4e-6 on 12 bf16 layers).
The same batch run other ways must give the same bits: each output is summed
in one fixed order."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.environ["S1_SOURCE_ROOT"], "tests", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s1test import tap_main  # noqa: E402
from ref_qwen2 import Qwen2  # noqa: E402

DUMP, GEN = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="s1cpu.")
atexit.register(shutil.rmtree, TMP, True)
PROMPT = [(i * 37 + 11) % 600 for i in range(29)]
_models = {}


def model(dtype="f32", *extra):
    """A tiny model directory (generated once per set of arguments)."""
    key = (dtype,) + extra
    if key not in _models:
        d = os.path.join(TMP, "-".join(key).replace("--", ""))
        subprocess.run([sys.executable, GEN, "--out", d, "--preset", "tiny", "--dtype", dtype,
                        "--weight-std", "0.08", *extra], check=True)
        _models[key] = d
    return _models[key]


def dump(d, prompts, *args, env=None):
    """(logits [positions, vocab], generated ids per sequence) from forward_dump."""
    out = os.path.join(TMP, "logits.bin")
    text = ";".join(",".join(map(str, p)) for p in prompts)
    r = subprocess.run([DUMP, d, "--prompt", text, "--out", out, *map(str, args)],
                       capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert r.returncode == 0, r.stderr
    vocab = Qwen2.vocab_of(d)
    gen = [list(map(int, line.split(":")[1].split())) for line in r.stdout.splitlines()]
    return np.fromfile(out, dtype=np.float32).reshape(-1, vocab), gen


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def check_reference(dtype, tol):
    d = model(dtype)
    ref = Qwen2(d).forward(PROMPT)
    got, _ = dump(d, [PROMPT])
    assert got.shape == ref.shape, (got.shape, ref.shape)
    err = rel(got, ref)
    assert err < tol, f"{dtype}: relative difference {err:.2e} >= {tol}"


def test_prompt_logits_match_the_reference_with_f32_weights():
    check_reference("f32", 1e-5)


def test_prompt_logits_match_the_reference_with_f16_weights():
    check_reference("f16", 1e-5)


def test_prompt_logits_match_the_reference_with_bf16_weights():
    check_reference("bf16", 1e-4)


def test_prompt_logits_match_the_reference_with_tied_embeddings_and_no_simd():
    d = model("bf16", "--tie")
    got, _ = dump(d, [PROMPT], env={"S1_CPU_KERNELS": "portable"})
    assert rel(got, Qwen2(d).forward(PROMPT)) < 1e-4


def test_a_greedy_continuation_matches_the_reference_token_for_token():
    d = model("f32")
    _, gen = dump(d, [PROMPT[:8]], "--generate", 24)
    assert gen[0] == Qwen2(d).greedy(PROMPT[:8], 24), gen[0]
    assert len(set(gen[0])) > 1, "a degenerate continuation proves little"


def test_prefill_in_one_chunk_in_chunks_and_token_by_token_give_the_same_logits():
    for dtype in ("f32", "bf16"):
        d = model(dtype)
        whole, g1 = dump(d, [PROMPT], "--generate", 5)
        chunks, g2 = dump(d, [PROMPT], "--chunk", 7, "--generate", 5)
        steps, g3 = dump(d, [PROMPT], "--chunk", 1, "--generate", 5, "--threads", 1)
        assert np.array_equal(whole, chunks) and np.array_equal(whole, steps), dtype
        assert g1 == g2 == g3


def runs_here(kernels):
    """Whether this CPU runs the kernel set (forward_dump refuses otherwise)."""
    r = subprocess.run([DUMP, model("f32"), "--prompt", "1"], capture_output=True, text=True,
                       env={**os.environ, "S1_CPU_KERNELS": kernels})
    assert r.returncode == 0 or "cannot run on this CPU" in r.stderr, r.stderr
    return r.returncode == 0


def test_every_kernel_set_agrees_with_the_others_and_generates_the_same_tokens():
    d = model("bf16")
    best, gen = dump(d, [PROMPT], "--generate", 12)
    for k in ("portable", "avx2", "avx512bf16"):
        if runs_here(k):
            got, g = dump(d, [PROMPT], "--generate", 12, env={"S1_CPU_KERNELS": k})
            assert rel(got, best) < 1e-4, k
            assert g == gen, (k, g, gen)


def test_interleaved_sequences_on_scattered_blocks_match_each_run_alone():
    d = model("bf16")
    prompts = [PROMPT, PROMPT[3:12], [5, 9, 200, 7, 7, 1, 300, 42, 8, 15, 16, 23, 4]]
    batched, gen = dump(d, prompts, "--chunk", 3, "--scatter", "--generate", 6, "--block-size", 16)
    alone = [dump(d, [p], "--generate", 6, "--block-size", 16) for p in prompts]
    assert np.array_equal(batched, np.concatenate([a[0] for a in alone]))
    assert gen == [a[1][0] for a in alone]


def test_a_sequence_forked_through_copy_block_goes_on_as_if_never_forked():
    d = model("f32")
    straight, _ = dump(d, [PROMPT])
    for at in (10, 12):  # inside a block of 4, and at its edge
        forked, _ = dump(d, [PROMPT], "--fork-at", at, "--chunk", 5, "--scatter")
        assert np.array_equal(forked, straight), at


def test_tensor_parallel_ranks_give_the_logits_of_one_rank():
    d = model("bf16", "--heads", "8", "--kv-heads", "4")
    one, g1 = dump(d, [PROMPT], "--generate", 8)
    for tp in (2, 4):
        got, g = dump(d, [PROMPT], "--tp", tp, "--generate", 8, "--threads", 4)
        assert rel(got, one) < 1e-5, (tp, rel(got, one))
        assert g == g1, tp
    steps, _ = dump(d, [PROMPT, PROMPT[5:]], "--tp", 2, "--chunk", 1, "--scatter")
    assert rel(steps[:len(PROMPT)], one[:len(PROMPT)]) < 1e-5


def test_a_tp_that_does_not_divide_the_kv_heads_is_refused_with_the_reason():
    r = subprocess.run([DUMP, model("f32"), "--prompt", "1,2", "--tp", "4"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "2 kv heads do not split into 4 ranks" in r.stderr, r.stderr


def test_a_token_id_outside_the_vocabulary_is_an_error_not_a_crash():
    r = subprocess.run([DUMP, model("f32"), "--prompt", "1,99999"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "outside the vocabulary" in r.stderr, r.stderr


tap_main(globals())
