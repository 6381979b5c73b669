"""s1_model_load on generated model directories: the values seen through the
s1_tensor views equal what tools/safetensors_io.py reads, in every dtype,
tied or not, sharded or not; and every bad directory fails with one line
naming the file and the problem.

usage: test_model_load.py MODEL_DUMP GEN_MODEL"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import s1test  # noqa: E402
import gen_model  # noqa: E402
import safetensors_io as st  # noqa: E402

MODEL_DUMP, GEN_MODEL = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="s1model.")
_base = {}


def gen(*flags):
    """A generated model directory, made once per flag set; returns a fresh copy."""
    key = " ".join(flags)
    if key not in _base:
        _base[key] = os.path.join(TMP, f"base{len(_base)}")
        subprocess.run([sys.executable, GEN_MODEL, "--out", _base[key], *flags], check=True)
    d = os.path.join(TMP, f"case{len(os.listdir(TMP))}")
    shutil.copytree(_base[key], d)
    return d


def load(d, out=None):
    args = [MODEL_DUMP, d] + ([out] if out else [])
    return subprocess.run(args, capture_output=True, text=True)


def load_fails(d):
    """Loads d expecting failure; returns the error line."""
    r = load(d)
    assert r.returncode == 1, f"loading {d} should fail, got rc {r.returncode}: {r.stdout[:300]}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got: {r.stderr!r}"
    return lines[0]


RAW = {"f32": np.dtype("<f4"), "f16": np.dtype("<f2"), "bf16": np.dtype("<u2")}
SAFE = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


def assert_same_values(d):
    """Every weight read through the C views equals Python's reading."""
    out = os.path.join(d, "dump.bin")
    r = load(d, out)
    assert r.returncode == 0, r.stderr
    config, tensors = st.read_model(d)
    lines = r.stdout.splitlines()
    raw = open(out, "rb").read()
    off = 0
    for line in lines[1:]:
        name, dtype, rows, cols, stride = line.split()
        rows, cols = int(rows), int(cols)
        n = rows * cols * RAW[dtype].itemsize
        got = st.to_float32(np.frombuffer(raw[off:off + n], RAW[dtype]), SAFE[dtype])
        off += n
        if name == "lm_head.weight" and config.get("tie_word_embeddings"):
            name = "model.embed_tokens.weight"
        want = tensors[name]
        assert got.size == want.size, f"{name}: {got.size} values, expected {want.size}"
        assert np.array_equal(got, want.reshape(-1)), f"{name}: values differ"
    assert off == len(raw)
    return lines[0], lines[1:]


def test_the_tiny_f32_model_loads_with_the_values_python_reads():
    cfg, weights = assert_same_values(gen("--preset", "tiny"))
    assert "layers=2 heads=4 kv=2 head_dim=16" in cfg and "dtype=f32" in cfg, cfg
    assert len(weights) == 1 + 2 * 12 + 2
    assert weights[0].startswith("model.embed_tokens.weight f32 ")


def test_the_small_bf16_model_loads_with_the_values_python_reads():
    cfg, weights = assert_same_values(gen("--preset", "small"))
    assert "hidden=256" in cfg and "layers=4" in cfg and "dtype=bf16" in cfg, cfg


def test_an_f16_model_of_custom_shape_loads_with_the_values_python_reads():
    cfg, _ = assert_same_values(gen("--hidden", "96", "--layers", "3", "--heads", "6",
                                    "--kv-heads", "3", "--intermediate", "160", "--vocab", "640",
                                    "--dtype", "f16", "--rope-theta", "500000", "--seed", "7"))
    assert "vocab=640 hidden=96 inter=160 layers=3 heads=6 kv=3 head_dim=16" in cfg, cfg
    assert "theta=500000" in cfg and "dtype=f16" in cfg, cfg


def test_a_tied_model_uses_the_embedding_as_lm_head():
    d = gen("--preset", "tiny", "--tie", "--dtype", "bf16")
    assert "lm_head.weight" not in st.read_model(d)[1]
    cfg, weights = assert_same_values(d)
    assert "tie=1" in cfg
    assert weights[-1].split()[1:] == weights[0].split()[1:]


def test_a_sharded_model_loads_the_same_values_as_one_file():
    d = gen("--preset", "small", "--shards", "3")
    assert os.path.exists(os.path.join(d, "model-00003-of-00003.safetensors"))
    _, sharded = assert_same_values(d)
    one = gen("--preset", "small")
    a = load(d, os.path.join(d, "a.bin"))
    b = load(one, os.path.join(one, "b.bin"))
    assert a.returncode == 0 and b.returncode == 0
    assert open(os.path.join(d, "a.bin"), "rb").read() == open(os.path.join(one, "b.bin"), "rb").read()


def test_a_sharded_tied_f16_model_loads():
    assert_same_values(gen("--preset", "tiny", "--shards", "2", "--tie", "--dtype", "f16"))


def test_tensors_of_mixed_dtypes_load_each_with_its_own_dtype():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    tensors = st.read_safetensors(path)
    dtypes = ["F32", "BF16", "F16"]
    st.write_safetensors(path, {n: (dtypes[i % 3], a) for i, (n, a) in enumerate(tensors.items())})
    _, weights = assert_same_values(d)
    assert {w.split()[1] for w in weights} == {"f32", "bf16", "f16"}


def test_num_key_value_heads_defaults_to_the_number_of_heads():
    d = gen("--preset", "tiny", "--kv-heads", "4")
    edit_config(d, lambda c: c.pop("num_key_value_heads"))
    cfg, _ = assert_same_values(d)
    assert "heads=4 kv=4" in cfg, cfg


# --- bad directories -------------------------------------------------------

def edit_config(d, fn):
    path = os.path.join(d, "config.json")
    with open(path) as f:
        c = json.load(f)
    fn(c)
    with open(path, "w") as f:
        json.dump(c, f)
    return path


def edit_header(path, fn):
    """Rewrites the JSON header of a safetensors file, keeping its data."""
    head, start = st.read_header(path)
    data = open(path, "rb").read()[start:]
    fn(head)
    text = json.dumps(head).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def write_bytes(path, b):
    with open(path, "wb") as f:
        f.write(b)


def test_a_missing_directory_is_named():
    msg = load_fails(os.path.join(TMP, "no-such-model"))
    assert "no-such-model" in msg and "No such file or directory" in msg, msg


def test_a_file_given_as_the_directory_is_refused():
    d = gen("--preset", "tiny")
    msg = load_fails(os.path.join(d, "config.json"))
    assert "config.json" in msg and "not a directory" in msg, msg


def test_a_directory_without_config_json_is_named():
    d = gen("--preset", "tiny")
    os.remove(os.path.join(d, "config.json"))
    msg = load_fails(d)
    assert os.path.join(d, "config.json") in msg and "No such file" in msg, msg


def test_a_directory_without_safetensors_is_named():
    d = gen("--preset", "tiny")
    os.remove(os.path.join(d, "model.safetensors"))
    msg = load_fails(d)
    assert d in msg and "no model.safetensors or model.safetensors.index.json" in msg, msg


def test_invalid_config_json_is_named():
    d = gen("--preset", "tiny")
    write_bytes(os.path.join(d, "config.json"), b'{"hidden_size": 64,')
    msg = load_fails(d)
    assert "config.json: invalid JSON" in msg, msg


def test_an_unsupported_architecture_is_named():
    d = gen("--preset", "tiny")
    path = edit_config(d, lambda c: c.update(architectures=["LlamaForCausalLM"]))
    msg = load_fails(d)
    assert path in msg and "unsupported architecture LlamaForCausalLM" in msg, msg
    assert "Qwen2ForCausalLM" in msg


def test_a_missing_config_key_is_named():
    d = gen("--preset", "tiny")
    path = edit_config(d, lambda c: c.pop("hidden_size"))
    msg = load_fails(d)
    assert path in msg and "missing key hidden_size" in msg, msg


def test_a_config_key_of_the_wrong_type_is_named():
    d = gen("--preset", "tiny")
    edit_config(d, lambda c: c.update(num_hidden_layers="2"))
    msg = load_fails(d)
    assert "config.json: num_hidden_layers must be an integer" in msg, msg


def test_a_non_positive_config_value_is_named():
    d = gen("--preset", "tiny")
    edit_config(d, lambda c: c.update(intermediate_size=0))
    msg = load_fails(d)
    assert "config.json: intermediate_size is 0, must be a positive" in msg, msg


def test_hidden_size_not_a_multiple_of_the_heads_is_refused():
    d = gen("--preset", "tiny")
    edit_config(d, lambda c: c.update(num_attention_heads=5))
    msg = load_fails(d)
    assert "hidden_size 64 is not a multiple of num_attention_heads 5" in msg, msg


def test_heads_not_a_multiple_of_the_kv_heads_is_refused():
    d = gen("--preset", "tiny")
    edit_config(d, lambda c: c.update(num_key_value_heads=3))
    msg = load_fails(d)
    assert "num_attention_heads 4 is not a multiple of num_key_value_heads 3" in msg, msg


def test_rope_scaling_is_refused_by_name():
    d = gen("--preset", "tiny")
    edit_config(d, lambda c: c.update(rope_scaling={"type": "yarn", "factor": 4.0}))
    msg = load_fails(d)
    assert "config.json: rope_scaling is set" in msg, msg


def test_an_unsupported_torch_dtype_is_named():
    d = gen("--preset", "tiny")
    edit_config(d, lambda c: c.update(torch_dtype="int8"))
    msg = load_fails(d)
    assert "config.json: torch_dtype int8 is not supported" in msg, msg


def test_a_file_shorter_than_8_bytes_is_truncated():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    write_bytes(path, b"\x10\x00\x00")
    msg = load_fails(d)
    assert path in msg and "3 bytes" in msg and "truncated" in msg, msg


def test_a_header_length_past_the_end_is_truncated():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    write_bytes(path, struct.pack("<Q", 5000) + b'{"a": 1}')
    msg = load_fails(d)
    assert path in msg and "header length 5000 runs past the end" in msg, msg


def test_an_oversized_header_is_refused():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    write_bytes(path, struct.pack("<Q", 200 << 20) + b"{}")
    msg = load_fails(d)
    assert path in msg and "exceeds the limit" in msg, msg


def test_an_invalid_header_json_is_named():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    write_bytes(path, struct.pack("<Q", 8) + b'{"x": [1')
    msg = load_fails(d)
    assert path in msg and "header is not valid JSON" in msg, msg


def test_a_tensor_whose_data_leaves_the_file_is_named():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    os.truncate(path, os.path.getsize(path) - 100)
    msg = load_fails(d)
    assert path in msg and "lm_head.weight" in msg and "past its end" in msg, msg


def test_overlapping_tensors_are_named():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    a, b = "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight"

    def overlap(h):
        h[b]["data_offsets"] = list(h[a]["data_offsets"])
    edit_header(path, overlap)
    msg = load_fails(d)
    assert path in msg and a in msg and b in msg and "overlap" in msg, msg


def test_offsets_that_disagree_with_dtype_and_shape_are_named():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    name = "model.norm.weight"
    edit_header(path, lambda h: h[name].update(shape=[63]))
    msg = load_fails(d)
    assert path in msg and name in msg and "span 256 bytes but f32 [63] needs 252" in msg, msg


def test_an_unsupported_tensor_dtype_is_named():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    name = "model.norm.weight"
    edit_header(path, lambda h: h[name].update(dtype="I32"))
    msg = load_fails(d)
    assert path in msg and name in msg and "dtype I32" in msg, msg


def test_a_missing_tensor_is_named():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    name = "model.layers.1.mlp.up_proj.weight"
    edit_header(path, lambda h: h.pop(name))
    msg = load_fails(d)
    assert path in msg and f"tensor {name} is missing" in msg, msg


def test_a_missing_lm_head_of_an_untied_model_is_named():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    edit_header(path, lambda h: h.pop("lm_head.weight"))
    msg = load_fails(d)
    assert path in msg and "tensor lm_head.weight is missing" in msg, msg


def test_a_tensor_of_the_wrong_shape_says_expected_and_found():
    d = gen("--preset", "tiny")
    path = os.path.join(d, "model.safetensors")
    edit_config(d, lambda c: c.update(intermediate_size=64))
    msg = load_fails(d)
    assert path in msg and "model.layers.0.mlp.gate_proj.weight" in msg, msg
    assert "has shape [128, 64], expected [64, 64]" in msg, msg


def test_an_index_naming_a_missing_shard_is_named():
    d = gen("--preset", "small", "--shards", "3")
    os.remove(os.path.join(d, "model-00002-of-00003.safetensors"))
    msg = load_fails(d)
    assert "model.safetensors.index.json" in msg and "model-00002-of-00003.safetensors" in msg, msg
    assert "does not exist" in msg, msg


def test_a_tensor_absent_from_the_index_is_named():
    d = gen("--preset", "small", "--shards", "2")
    path = os.path.join(d, "model.safetensors.index.json")
    with open(path) as f:
        index = json.load(f)
    del index["weight_map"]["model.norm.weight"]
    with open(path, "w") as f:
        json.dump(index, f)
    msg = load_fails(d)
    assert path in msg and "model.norm.weight is missing from weight_map" in msg, msg


def test_a_tensor_missing_from_the_shard_the_index_names_is_named():
    d = gen("--preset", "small", "--shards", "2")
    path = os.path.join(d, "model.safetensors.index.json")
    with open(path) as f:
        index = json.load(f)
    index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors"
    with open(path, "w") as f:
        json.dump(index, f)
    msg = load_fails(d)
    assert "model-00001-of-00002.safetensors: tensor model.norm.weight is missing" in msg, msg


def test_an_index_with_a_path_outside_the_directory_is_refused():
    d = gen("--preset", "small", "--shards", "2")
    path = os.path.join(d, "model.safetensors.index.json")
    with open(path) as f:
        index = json.load(f)
    index["weight_map"]["model.norm.weight"] = "../model.safetensors"
    with open(path, "w") as f:
        json.dump(index, f)
    msg = load_fails(d)
    assert path in msg and "not a file name in the model directory" in msg, msg


def test_gen_model_is_deterministic_and_the_seed_changes_the_weights():
    a, b = gen("--preset", "tiny", "--shards", "2"), gen("--preset", "tiny", "--shards", "2")
    for name in os.listdir(a):
        assert open(os.path.join(a, name), "rb").read() == open(os.path.join(b, name), "rb").read()
    c = gen("--preset", "tiny", "--shards", "2", "--seed", "1")
    ta, tc = st.read_model(a)[1], st.read_model(c)[1]
    assert not np.array_equal(ta["model.embed_tokens.weight"], tc["model.embed_tokens.weight"])


def test_gen_model_run_again_into_a_sharded_directory_leaves_no_stale_shards():
    d = gen("--preset", "tiny", "--shards", "2")
    subprocess.run([sys.executable, GEN_MODEL, "--out", d, "--preset", "tiny"], check=True)
    assert sorted(f for f in os.listdir(d) if "safetensors" in f) == ["model.safetensors"]
    assert_same_values(d)


def test_the_bytes_tokenizer_has_the_budget_forcing_tokens():
    d = gen("--preset", "tiny")
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    vocab = tok["model"]["vocab"]
    merges = [tuple(m.split(" ")) for m in tok["model"]["merges"]]
    byte_char = dict(gen_model.bytes_to_unicode())
    for text in ["Wait", "answer", "Final", " Answer", ":", "think"]:
        (word,) = gen_model.pre_tokens(text, byte_char)
        assert len(gen_model.bpe_encode(word, merges)) == 1, f"{text!r} is not one token"
    pieces = [gen_model.bpe_encode(w, merges) for w in gen_model.pre_tokens("Final Answer:", byte_char)]
    assert pieces == [("Final",), ("\u0120Answer",), (":",)], pieces
    assert all(a in vocab and b in vocab and a + b in vocab for a, b in merges)
    added = {t["content"]: t["id"] for t in tok["added_tokens"]}
    assert added == {"<|endoftext|>": len(vocab), "<|im_start|>": len(vocab) + 1,
                     "<|im_end|>": len(vocab) + 2}
    assert len(tok["model"]["merges"]) >= 200
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    assert c["vocab_size"] % 64 == 0 and c["vocab_size"] > len(vocab) + 3
    assert c["eos_token_id"] == added["<|im_end|>"]


def test_the_qwen_tokenizer_is_copied_when_asked():
    src = os.path.join(s1test.SHARED, "models", "qwen2.5-tokenizer")
    if not os.path.isdir(src):
        print(f"# SKIP: {src} is absent")
        return
    d = gen("--preset", "tiny", "--tokenizer", "qwen", "--layers", "1", "--tie", "--dtype", "bf16")
    assert open(os.path.join(d, "tokenizer.json"), "rb").read() == \
        open(os.path.join(src, "tokenizer.json"), "rb").read()
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    assert (c["bos_token_id"], c["eos_token_id"]) == (151643, 151645)
    assert c["vocab_size"] >= 151665
    cfg, _ = assert_same_values(d)
    assert f"vocab={c['vocab_size']}" in cfg


if __name__ == "__main__":
    try:
        s1test.tap_main(globals())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
