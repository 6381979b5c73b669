#!/usr/bin/python3
"""Writes a deterministic random Qwen2 model directory, as Hugging Face
publishes one: config.json, safetensors weights (one file or shards with an
index), tokenizer.json, tokenizer_config.json, generation_config.json.

    gen_model.py --out DIR [--preset tiny|small|0.5b|7b] [--hidden N] [--layers N]
       [--heads N] [--kv-heads N] [--intermediate N] [--vocab N] [--max-position N]
       [--rope-theta F] [--dtype bf16|f16|f32] [--seed N] [--tokenizer bytes|qwen]
       [--qwen-tokenizer DIR] [--tie | --no-tie] [--shards N] [--weight-std F]

The same arguments give byte-identical files. Each tensor's values depend only
on the seed and the tensor's name, so sharding does not change them. Tensors
are generated and written in chunks on a few threads, never held whole."""
import argparse
import collections
import concurrent.futures
import json
import os
import shutil
import sys
import zlib

import numpy as np
import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402

PRESETS = {
    "tiny": dict(hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128, dtype="f32",
                 tokenizer="bytes", max_position=4096, rope_theta=10000.0, tie=False),
    "small": dict(hidden=256, layers=4, heads=8, kv_heads=2, intermediate=512, dtype="bf16",
                  tokenizer="bytes", max_position=4096, rope_theta=10000.0, tie=False),
    "0.5b": dict(hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864, vocab=151936,
                 tie=True, dtype="bf16", rope_theta=1000000.0, max_position=32768, tokenizer="qwen"),
    # The byte tokenizer: the 7b preset is generated on GPU machines, where the
    # Qwen tokenizer (../shared) is absent; the vocabulary keeps Qwen's rows.
    "7b": dict(hidden=3584, layers=28, heads=28, kv_heads=4, intermediate=18944, vocab=152064,
               tie=False, dtype="bf16", rope_theta=1000000.0, max_position=32768, tokenizer="bytes"),
}

# The Qwen2 pre-tokenizer: the same Split regex as Qwen's tokenizer.json.
SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
N_MERGES = 400
# Words the budget-forcing tests feed or look for; each must be one token.
REQUIRED_TOKENS = ["Wait", "answer", "Final", " Answer", "think", ":"]
ADDED_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# --think-tags adds these, as QwQ-32B's tokenizer has them.
THINK_TAGS = ["<think>", "</think>"]
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
# --markup deepseek: the chat markup of the DeepSeek-R1-Distill-Qwen models,
# which keep the Qwen2 architecture and vocabulary but not its chat tokens.
DEEPSEEK_TOKENS = ["<\uff5cend\u2581of\u2581sentence\uff5c>", "<\uff5cUser\uff5c>",
                   "<\uff5cAssistant\uff5c>", "<\uff5cbegin\u2581of\u2581sentence\uff5c>"]
DEEPSEEK_TEMPLATE = ("{{ bos_token }}{% for message in messages %}"
                     "{% if message['role'] == 'system' %}{{ message['content'] }}"
                     "{% elif message['role'] == 'user' %}{{ '<\uff5cUser\uff5c>' + message['content'] }}"
                     "{% else %}{{ '<\uff5cAssistant\uff5c>' + message['content'] + eos_token }}"
                     "{% endif %}{% endfor %}"
                     "{% if add_generation_prompt %}{{ '<\uff5cAssistant\uff5c><think>\\n' }}{% endif %}")
# Per markup: the added tokens, then (bos, eos) among them.
MARKUPS = {
    "qwen": (ADDED_TOKENS, "<|endoftext|>", "<|im_end|>", CHAT_TEMPLATE),
    "deepseek": (DEEPSEEK_TOKENS, DEEPSEEK_TOKENS[3], DEEPSEEK_TOKENS[0], DEEPSEEK_TEMPLATE),
}

# The text the byte-level BPE merges are learned from.
CORPUS = """\
Let me think about this problem step by step. We are given a triangle with sides 3, 4 and 5.
The area of the triangle is one half of the base times the height, so the area is 6.
Wait, let me check that again. The triangle is a right triangle because 3^2 + 4^2 = 5^2.
So the answer is 6. Final Answer: 6
Find the number of positive integers n less than 1000 such that n is divisible by 7.
There are 142 multiples of 7 between 1 and 999, since 7 * 142 = 994 and 7 * 143 = 1001.
Wait, is 994 less than 1000? Yes. So the answer is 142. Final Answer: 142
Compute the sum of the first 100 positive integers. The sum is n(n+1)/2 = 100 * 101 / 2 = 5050.
Let me verify: pairing the first and the last terms gives 101, and there are 50 such pairs.
Therefore the answer is 5050. Final Answer: 5050
Suppose that x + y = 10 and x - y = 4. Then adding the two equations gives 2x = 14, so x = 7.
Substituting back, we find y = 3. Wait, we should check: 7 + 3 = 10 and 7 - 3 = 4. Correct.
The answer is x = 7 and y = 3. Final Answer: (7, 3)
What is the probability that a fair coin lands heads three times in a row? Each toss is
independent, so the probability is (1/2)^3 = 1/8. Final Answer: 1/8
How many ways are there to choose 2 people from a group of 10? The number of ways is the
binomial coefficient 10 choose 2, which equals 45. Wait, let me recount: 10 * 9 / 2 = 45.
So the answer is 45. Final Answer: 45
The equation of the circle is x^2 + y^2 = 25. The point (3, 4) lies on the circle because
9 + 16 = 25. The radius of the circle is 5, and the area is 25 pi. Final Answer: 25 pi
Let f(x) = 2x + 3. Then f(f(x)) = 2(2x + 3) + 3 = 4x + 9. We want f(f(x)) = 21, so x = 3.
Wait, that is right: 4 * 3 + 9 = 21. The answer is 3. Final Answer: 3
We think the answer is the smallest prime greater than 20, which is 23. Final Answer: 23
Answer: the value of the expression is the number of solutions of the equation.
"""


def bytes_to_unicode():
    """GPT-2's map from bytes to printable characters, in its order: the
    printable bytes first, then the rest mapped to U+0100 and up."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


def pre_tokens(text, byte_char):
    """The byte-level pre-tokens of text, each a tuple of symbols."""
    return [tuple(byte_char[b] for b in w.encode()) for w in regex.findall(SPLIT_REGEX, text)]


def merge_word(word, pair):
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def learn_merges(words, n):
    """Classic BPE training: merges the most frequent adjacent pair, ties
    broken by the pair's text, until n merges or no pairs are left."""
    counts = collections.Counter(words)
    merges = []
    while len(merges) < n:
        pairs = collections.Counter()
        for w, c in counts.items():
            for p in zip(w, w[1:]):
                pairs[p] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        merges.append(best[0])
        merged = collections.Counter()
        for w, c in counts.items():
            merged[merge_word(w, best[0])] += c
        counts = merged
    return merges


def bpe_encode(word, merges):
    rank = {p: i for i, p in enumerate(merges)}
    while len(word) > 1:
        p = min(zip(word, word[1:]), key=lambda q: rank.get(q, len(merges)))
        if p not in rank:
            break
        word = merge_word(word, p)
    return word


def bytes_tokenizer(corpus=CORPUS, n_merges=N_MERGES, added_tokens=ADDED_TOKENS):
    """The tokenizer.json dict of a small byte-level BPE tokenizer in the
    format of Qwen's, its merges learned from corpus (tools/train_tiny.py
    passes the text of its task)."""
    table = bytes_to_unicode()
    byte_char = dict(table)
    merges = learn_merges(pre_tokens(corpus, byte_char), n_merges)
    for text in REQUIRED_TOKENS:
        # Merging the pieces left to right makes text one token: these merges
        # rank last, so the earlier ones leave exactly these pieces.
        word = bpe_encode(pre_tokens(text, byte_char)[0], merges)
        while len(word) > 1:
            merges.append((word[0], word[1]))
            word = (word[0] + word[1],) + word[2:]
    vocab = {c: i for i, (_, c) in enumerate(table)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    added = {t: len(vocab) + i for i, t in enumerate(added_tokens)}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                  "use_regex": False}
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for t, i in added.items()],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": SPLIT_REGEX}, "behavior": "Isolated",
             "invert": False},
            byte_level]},
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                  "byte_fallback": False, "ignore_merges": False, "vocab": vocab,
                  "merges": [f"{a} {b}" for a, b in merges]},
    }
    return tok


def added_ids(tok):
    return {t["content"]: t["id"] for t in tok["added_tokens"]}


def n_tokens(tok):
    return max(max(tok["model"]["vocab"].values()), max(added_ids(tok).values())) + 1


def qwen_tokenizer_dir(args):
    if args.qwen_tokenizer:
        return args.qwen_tokenizer
    shared = os.environ.get("S1_SHARED") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
    return os.path.join(shared, "models", "qwen2.5-tokenizer")


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def tokenizer_config(ids, max_position, markup="qwen"):
    """tokenizer_config.json of the bytes tokenizer whose added tokens are ids."""
    _, bos, eos, template = MARKUPS[markup]
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(i): {"content": t, "lstrip": False, "normalized": False,
                                          "rstrip": False, "single_word": False, "special": True}
                                 for t, i in ids.items()},
        "bos_token": bos if markup != "qwen" else None,
        "chat_template": template,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "errors": "replace",
        "model_max_length": max_position,
        "pad_token": bos if markup == "qwen" else eos,
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
    }


def write_tokenizer(args, out):
    """Writes tokenizer.json and tokenizer_config.json; returns the number of
    token ids and the added tokens' ids."""
    if args.tokenizer == "qwen":
        src = qwen_tokenizer_dir(args)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            path = os.path.join(src, name)
            if not os.path.isfile(path):
                sys.exit(f"gen_model: {path}: missing; pass --qwen-tokenizer DIR or set S1_SHARED")
            shutil.copyfile(path, os.path.join(out, name))
        with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
            tok = json.load(f)
        return n_tokens(tok), added_ids(tok)
    markup_tokens = MARKUPS[args.markup][0]
    tok = bytes_tokenizer(added_tokens=markup_tokens + (THINK_TAGS if args.think_tags else []))
    write_json(os.path.join(out, "tokenizer.json"), tok)
    ids = added_ids(tok)
    write_json(os.path.join(out, "tokenizer_config.json"),
               tokenizer_config(ids, args.max_position, args.markup))
    return n_tokens(tok), ids


def write_configs(args, out, ids):
    _, bos_token, eos_token, _ = MARKUPS[args.markup]
    bos, eos = ids[bos_token], ids[eos_token]
    write_json(os.path.join(out, "config.json"), {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "hidden_act": "silu",
        "hidden_size": args.hidden,
        "initializer_range": args.weight_std,
        "intermediate_size": args.intermediate,
        "max_position_embeddings": args.max_position,
        "max_window_layers": args.layers,
        "model_type": "qwen2",
        "num_attention_heads": args.heads,
        "num_hidden_layers": args.layers,
        "num_key_value_heads": args.kv_heads,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": args.rope_theta,
        "sliding_window": args.max_position,
        "tie_word_embeddings": args.tie,
        "torch_dtype": st.TORCH[st.SHORT[args.dtype]],
        "transformers_version": "4.46.1",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": args.vocab,
    })
    write_json(os.path.join(out, "generation_config.json"), {
        "bos_token_id": bos,
        "do_sample": True,
        "eos_token_id": [eos, bos],
        "pad_token_id": bos,
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.8,
        "transformers_version": "4.46.1",
    })


def tensor_specs(a):
    """[(name, shape, kind)] in Hugging Face order; kind picks the values:
    'w' N(0, std), 'b' small biases, 'n' norm gains around 1."""
    hd = a.hidden // a.heads
    q, kv = a.heads * hd, a.kv_heads * hd
    specs = [("model.embed_tokens.weight", (a.vocab, a.hidden), "w")]
    for i in range(a.layers):
        p = f"model.layers.{i}."
        specs += [
            (p + "input_layernorm.weight", (a.hidden,), "n"),
            (p + "self_attn.q_proj.weight", (q, a.hidden), "w"),
            (p + "self_attn.q_proj.bias", (q,), "b"),
            (p + "self_attn.k_proj.weight", (kv, a.hidden), "w"),
            (p + "self_attn.k_proj.bias", (kv,), "b"),
            (p + "self_attn.v_proj.weight", (kv, a.hidden), "w"),
            (p + "self_attn.v_proj.bias", (kv,), "b"),
            (p + "self_attn.o_proj.weight", (a.hidden, q), "w"),
            (p + "post_attention_layernorm.weight", (a.hidden,), "n"),
            (p + "mlp.gate_proj.weight", (a.intermediate, a.hidden), "w"),
            (p + "mlp.up_proj.weight", (a.intermediate, a.hidden), "w"),
            (p + "mlp.down_proj.weight", (a.hidden, a.intermediate), "w"),
        ]
    specs.append(("model.norm.weight", (a.hidden,), "n"))
    if not a.tie:
        specs.append(("lm_head.weight", (a.vocab, a.hidden), "w"))
    return specs


CHUNK = 1 << 22  # elements per generated chunk; part of the output's definition


def gen_chunk(seed, name, kind, index, count, std, dtype):
    """Chunk `index` of a tensor as a contiguous little-endian array of dtype:
    its own generator, so chunks can be made on several threads and still
    come out the same."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        [seed, zlib.crc32(name.encode()), index])))
    x = rng.standard_normal(count, dtype=np.float32)
    if kind == "n":
        x *= np.float32(0.1)
        x += np.float32(1.0)
    else:
        x *= np.float32(std)
    if dtype == "BF16":
        # Truncation to the high half: cheap, and the values are random anyway.
        return np.ascontiguousarray(x.view("<u2")[1::2])
    return st.to_dtype(x, dtype)


def write_shard(path, specs, args, pool, threads):
    dtype = st.SHORT[args.dtype]
    head, _ = st.header_bytes([(n, dtype, s) for n, s, _ in specs])
    jobs = []
    for name, shape, kind in specs:
        total = int(np.prod(shape, dtype=np.int64))
        for i, begin in enumerate(range(0, total, CHUNK)):
            jobs.append((name, kind, i, min(CHUNK, total - begin)))
    with open(path, "wb") as f:
        f.write(head)
        # Bounded look-ahead keeps memory to a few chunks per thread.
        pending = collections.deque()
        for job in jobs:
            pending.append(pool.submit(gen_chunk, args.seed, *job, args.weight_std, dtype))
            if len(pending) > 2 * threads:
                f.write(pending.popleft().result())
        while pending:
            f.write(pending.popleft().result())


def split_shards(specs, n, elem):
    """Cuts the tensor list into n runs of roughly equal bytes."""
    sizes = [elem * int(np.prod(s, dtype=np.int64)) for _, s, _ in specs]
    total, shards, acc = sum(sizes), [[] for _ in range(n)], 0
    for spec, size in zip(specs, sizes):
        shards[min(n - 1, acc * n // max(total, 1))].append(spec)
        acc += size
    return [s for s in shards if s]


def remove_old_weights(out):
    """A rerun into the same directory must not leave an index or shards of
    an earlier run behind: the loader would read them instead."""
    for name in os.listdir(out):
        if name == "model.safetensors.index.json" or \
                (name.startswith("model") and name.endswith(".safetensors")):
            os.remove(os.path.join(out, name))


def write_weights(args, out):
    remove_old_weights(out)
    specs = tensor_specs(args)
    elem = st.DTYPES[st.SHORT[args.dtype]][0]
    threads = min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        if args.shards <= 1:
            write_shard(os.path.join(out, "model.safetensors"), specs, args, pool, threads)
            return
        shards = split_shards(specs, args.shards, elem)
        weight_map = {}
        for i, shard in enumerate(shards):
            name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            write_shard(os.path.join(out, name), shard, args, pool, threads)
            weight_map.update({n: name for n, _, _ in shard})
    total = sum(elem * int(np.prod(s, dtype=np.int64)) for _, s, _ in specs)
    write_json(os.path.join(out, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": weight_map})


def parse_args(argv):
    p = argparse.ArgumentParser(description="Writes a deterministic random Qwen2 model directory.")
    p.add_argument("--out", required=True)
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    for flag in ("hidden", "layers", "heads", "kv-heads", "intermediate", "vocab",
                 "max-position", "seed", "shards"):
        p.add_argument("--" + flag, type=int)
    p.add_argument("--rope-theta", type=float)
    p.add_argument("--weight-std", type=float)
    p.add_argument("--dtype", choices=sorted(st.SHORT))
    p.add_argument("--tokenizer", choices=["bytes", "qwen"])
    p.add_argument("--qwen-tokenizer")
    p.add_argument("--think-tags", action="store_true",
                   help="the bytes tokenizer also has <think> and </think> as added tokens")
    p.add_argument("--markup", choices=sorted(MARKUPS), default="qwen",
                   help="the bytes tokenizer's chat tokens: Qwen's, or DeepSeek's "
                        "(R1-distill; implies --think-tags)")
    p.add_argument("--tie", dest="tie", action="store_true", default=None)
    p.add_argument("--no-tie", dest="tie", action="store_false")
    a = p.parse_args(argv)
    for k, v in PRESETS[a.preset].items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    if a.markup != "qwen" and a.tokenizer == "qwen":
        p.error("--markup applies to the bytes tokenizer, not --tokenizer qwen")
    a.think_tags = a.think_tags or a.markup == "deepseek"
    a.seed = 0 if a.seed is None else a.seed
    a.shards = 1 if a.shards is None else a.shards
    a.weight_std = 0.02 if a.weight_std is None else a.weight_std
    for k in ("hidden", "layers", "heads", "kv_heads", "intermediate", "max_position", "shards"):
        if getattr(a, k) <= 0:
            p.error(f"--{k.replace('_', '-')} must be positive")
    if a.hidden % a.heads or a.heads % a.kv_heads or (a.hidden // a.heads) % 2:
        p.error("--hidden must be a multiple of --heads, with an even quotient, "
                "and --heads a multiple of --kv-heads")
    if a.seed < 0:
        p.error("--seed must be non-negative")
    return a


def main(argv):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    ntok, ids = write_tokenizer(args, args.out)
    if args.vocab is None:
        # Whole multiples of 64 with spare rows, as published models have.
        args.vocab = (ntok + 63) // 64 * 64 + 64
    if args.vocab < ntok:
        sys.exit(f"gen_model: --vocab {args.vocab} is smaller than the tokenizer's {ntok} ids")
    write_configs(args, args.out, ids)
    write_weights(args, args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
