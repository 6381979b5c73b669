#!/usr/bin/python3
"""Trains s1-tiny, a small Qwen2 model that reasons in the s1 trace format,
on one CPU thread, and writes it as a Hugging Face directory s1d loads as is.

    env -u OPENBLAS_CORETYPE tools/train_tiny.py --work DIR [--steps N] [--decay N]
        [--stop-at N] [--seed N] [--out models/s1-tiny] [--suite models/s1-tiny/heldout.jsonl]

The task: repeated addition ("Start at 27 and add 6, 12 times. What is the
result?"). The thinking restates the start and the count ("27, 12 left"),
then writes a line per addition with the step, the new total and the
additions left ("+6=33, 11 left"): each line depends only on the line
before it and on the prompt's fixed places, "0 left" says where to stop,
and the thinking grows with the count, so that cutting it short (a small
budget) leaves the result unfinished. Some traces, after a "Wait" fed
where the count ended, count again ("Wait, check from the start:"); their
first count may hold a slip, which the second corrects, and their answer
is the second count's. (Tried before: sums of lettered terms, "a=7 b=3
...", where looking up the next letter's value stayed at chance; numbered
lines without the count left, where the model learned the sums but not the
first line nor where to stop; and a check of the last addition alone,
"Wait, check: 149+5=154.", whose additions in that form were worse than the
count's. The second count still restates the start wrong: see
models/s1-tiny/README.md.)

Training is deterministic from --seed (one thread, each step's batch drawn
from its own generator), checkpointed to --work every --save-every steps and
resumed from there. --eval only measures a checkpoint; --write only exports it."""
import argparse
import json
import math
import os
import random
import sys
import time
import types

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_model  # noqa: E402
import safetensors_io as st  # noqa: E402

SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
MIN_STEPS, MAX_STEPS = 1, 20
WAIT_SHARE = 0.3       # traces that count again after "Wait"
SLIP_SHARE = 0.5       # of those, the share whose first count holds a slip
TRUNCATED_SHARE = 0.2  # traces cut short by a forced end, as a small budget does
WARMUP = 100
NEWLINE_SHARE = 0.25  # problems that end with a newline
SHAPE = dict(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=384,
             max_position=2048, rope_theta=10000.0, tie=True, dtype="f32", weight_std=0.02)
SPECIALS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")


# ---------------------------------------------------------------- the task

def problem_text(spec):
    """spec: (start, step, count) → the question, as s1d's user turn carries it."""
    start, step, count = spec
    return f"Start at {start} and add {step}, {count} times. What is the result?"


def pass_lines(spec, slip_at=-1, slip=0):
    """One pass: a line restating the start and the count, then a line per
    addition with the step, the running total and how many additions are
    left. Every line depends only on the line before it and on the prompt's
    fixed places, and "0 left" says where to stop. A slip adds `slip` to
    the total at addition slip_at (and so to every later total). Returns
    (lines, final total)."""
    start, step, count = spec
    lines, total = [f"{start}, {count} left\n"], start
    for i in range(count):
        total += step + (slip if i == slip_at else 0)
        lines.append(f"+{step}={total}, {count - i - 1} left\n")
    return lines, total


def answer_of(spec):
    start, step, count = spec
    return start + step * count


def draw_problem(rng, n=None):
    n = n or rng.randint(MIN_STEPS, MAX_STEPS)
    return (rng.randint(1, 60), rng.randint(2, 9), n)


def draw_trace(rng, spec, plain=False):
    """A training trace as segments [(kind, text)]: 'think' text the model
    writes, 'slip' a wrong total (not learned), 'wait' and 'forced' text that
    budget forcing feeds (not learned), 'answer' the answer the model writes.
    plain: the whole trace, no Wait, no cut (what evaluation checks)."""
    answer = "<|im_start|>answer\nFinal Answer: \\boxed{%d}<|im_end|>" % answer_of(spec)
    segs = []
    if not plain and rng.random() < WAIT_SHARE:
        slip_at = rng.randrange(spec[2]) if rng.random() < SLIP_SHARE else -1
        lines, _ = pass_lines(spec, slip_at, rng.choice([-2, -1, 1, 2]))
        for i, line in enumerate(lines):
            if slip_at >= 0 and i == slip_at + 1:
                head, rest = line.split("=")
                total, tail = rest.split(",", 1)
                segs += [("think", head + "="), ("slip", total), ("think", "," + tail)]
            else:
                segs.append(("think", line))
        segs += [("wait", "Wait"), ("think", ", check from the start:\n")]
        return segs + [("think", line) for line in pass_lines(spec)[0]] + [("answer", answer)]
    segs = [("think", line) for line in pass_lines(spec)[0]]
    if not plain and rng.random() < TRUNCATED_SHARE:
        return truncated(rng, segs, answer_of(spec))
    return segs + [("answer", answer)]


def truncated(rng, segs, answer):
    """segs cut at a random character, then the forced end and a guess at
    the answer (the true one: the model learns to answer in form, whatever
    it knows by then)."""
    text_len = sum(len(t) for _, t in segs)
    cut, out = rng.randrange(text_len), []
    for kind, text in segs:
        if cut < len(text) and kind != "think":
            break
        if cut <= 0:
            break
        out.append((kind, text[:cut]))
        cut -= len(text)
    return out + [("forced", "<|im_start|>answer\nFinal Answer:"),
                  ("answer", " \\boxed{%d}<|im_end|>" % answer)]


def prompt_text(problem):
    """engine/prompt.c's s1 template with its default system prompt."""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{problem}<|im_end|>\n"
            "<|im_start|>assistant\n<|im_start|>think\n")


def heldout(seed, count):
    """The held-out suite: count problems, term counts spread evenly."""
    rng = random.Random(f"heldout-{seed}")
    rows = []
    for i in range(count):
        spec = draw_problem(rng, MIN_STEPS + i * (MAX_STEPS - MIN_STEPS + 1) // count)
        rows.append({"id": f"tiny-{i + 1:03d}", "problem": problem_text(spec),
                     "answer": str(answer_of(spec)), "steps": spec[2]})
    return rows


# ---------------------------------------------------------------- tokenizer

def corpus(seed):
    """Text the BPE merges are learned from: the template and task text."""
    rng = random.Random(f"corpus-{seed}")
    parts = []
    for _ in range(300):
        spec = draw_problem(rng)
        segs = draw_trace(rng, spec)
        parts.append(prompt_text(problem_text(spec)) + "".join(t for _, t in segs))
    text = "\n".join(parts)
    for s in SPECIALS:
        text = text.replace(s, "\n")
    return text


class Tokenizer:
    """Encodes text as s1d's tokenizer does (special tokens matched first,
    then the pre-tokenizer and BPE merges by rank), caching each word."""

    def __init__(self, tok):
        self.vocab = tok["model"]["vocab"]
        self.rank = {tuple(m.split(" ")): i for i, m in enumerate(tok["model"]["merges"])}
        self.merges = [tuple(m.split(" ")) for m in tok["model"]["merges"]]
        self.special = gen_model.added_ids(tok)
        self.byte_char = dict(gen_model.bytes_to_unicode())
        self.cache = {}

    def word(self, w):
        if w not in self.cache:
            self.cache[w] = [self.vocab[s] for s in gen_model.bpe_encode(w, self.merges)]
        return self.cache[w]

    def encode(self, text):
        ids, rest = [], text
        while rest:
            at = [(rest.find(s), s) for s in SPECIALS if s in rest]
            pos, s = min(at) if at else (len(rest), None)
            for w in gen_model.pre_tokens(rest[:pos], self.byte_char):
                ids += self.word(w)
            if s is None:
                break
            ids.append(self.special[s])
            rest = rest[pos + len(s):]
        return ids


def example(tk, problem, segs):
    """(ids, learned) of one sequence: learned[i] says whether token i is a
    target (the model's own thinking and answer, not the prompt, not what
    the policy feeds, not a slip)."""
    ids = tk.encode(prompt_text(problem))
    learned = [False] * len(ids)
    for kind, text in segs:
        t = tk.encode(text)
        ids += t
        learned += [kind in ("think", "answer")] * len(t)
    return ids, learned


# ---------------------------------------------------------------- the model

class Qwen2(torch.nn.Module):
    """The Qwen2 decoder with Hugging Face's tensor names (see
    tests/cpu/ref_qwen2.py, which s1d's CPU backend is checked against)."""

    def __init__(self, vocab, s):
        super().__init__()
        self.s, hd = s, s["hidden"] // s["heads"]
        g = torch.Generator().manual_seed(0)
        p = {"model.embed_tokens.weight": (vocab, s["hidden"]), "model.norm.weight": None}
        for i in range(s["layers"]):
            a, m = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp."
            p.update({
                f"model.layers.{i}.input_layernorm.weight": None,
                f"model.layers.{i}.post_attention_layernorm.weight": None,
                a + "q_proj.weight": (s["heads"] * hd, s["hidden"]), a + "q_proj.bias": 0,
                a + "k_proj.weight": (s["kv_heads"] * hd, s["hidden"]), a + "k_proj.bias": 0,
                a + "v_proj.weight": (s["kv_heads"] * hd, s["hidden"]), a + "v_proj.bias": 0,
                a + "o_proj.weight": (s["hidden"], s["heads"] * hd),
                m + "gate_proj.weight": (s["intermediate"], s["hidden"]),
                m + "up_proj.weight": (s["intermediate"], s["hidden"]),
                m + "down_proj.weight": (s["hidden"], s["intermediate"]),
            })
        self.names = sorted(p)
        self.w = torch.nn.ParameterList()
        for name in self.names:
            shape = p[name]
            if shape is None:
                t = torch.ones(s["hidden"])
            elif shape == 0:
                t = torch.zeros(self._bias_size(name))
            else:
                t = torch.randn(shape, generator=g) * s["weight_std"]
            self.w.append(torch.nn.Parameter(t))
        self.index = {n: i for i, n in enumerate(self.names)}

    def _bias_size(self, name):
        hd = self.s["hidden"] // self.s["heads"]
        return (self.s["heads"] if "q_proj" in name else self.s["kv_heads"]) * hd

    def p(self, name):
        return self.w[self.index[name]]

    def rmsnorm(self, x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.p(name)

    def rope(self, x):
        """Rotate-half RoPE on x[b, heads, n, hd]."""
        n, hd = x.shape[2], x.shape[3]
        inv = self.s["rope_theta"] ** (-torch.arange(0, hd // 2, dtype=torch.float32) * 2 / hd)
        ang = torch.arange(n, dtype=torch.float32)[:, None] * inv[None, :]
        cos, sin = ang.cos(), ang.sin()
        a, b = x[..., :hd // 2], x[..., hd // 2:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

    def attention(self, x, i, mask):
        b, n, _ = x.shape
        s, hd, pre = self.s, self.s["hidden"] // self.s["heads"], f"model.layers.{i}.self_attn."

        def proj(name, heads):
            y = F.linear(x, self.p(pre + name + ".weight"), self.p(pre + name + ".bias"))
            return y.view(b, n, heads, hd).transpose(1, 2)
        q, k, v = proj("q_proj", s["heads"]), proj("k_proj", s["kv_heads"]), proj("v_proj", s["kv_heads"])
        q, k = self.rope(q), self.rope(k)
        group = s["heads"] // s["kv_heads"]
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
        out = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, n, s["heads"] * hd)
        return F.linear(out, self.p(pre + "o_proj.weight"))

    def mlp(self, x, i):
        pre = f"model.layers.{i}.mlp."
        g = F.linear(x, self.p(pre + "gate_proj.weight"))
        return F.linear(F.silu(g) * F.linear(x, self.p(pre + "up_proj.weight")),
                        self.p(pre + "down_proj.weight"))

    def forward(self, ids):
        n = ids.shape[1]
        mask = torch.full((n, n), float("-inf")).triu(1)
        emb = self.p("model.embed_tokens.weight")
        x = emb[ids]
        for i in range(self.s["layers"]):
            pre = f"model.layers.{i}."
            x = x + self.attention(self.rmsnorm(x, pre + "input_layernorm.weight"), i, mask)
            x = x + self.mlp(self.rmsnorm(x, pre + "post_attention_layernorm.weight"), i)
        return F.linear(self.rmsnorm(x, "model.norm.weight"), emb)


# ---------------------------------------------------------------- training

def batch_of(tk, seed, step, tokens, held):
    """Step's batch, from its own generator: problems of similar length (a
    term count drawn for the batch, ±2), as many as fill `tokens`, none of
    them in the held-out set `held`."""
    rng = random.Random(f"batch-{seed}-{step}")
    centre = rng.randint(MIN_STEPS, MAX_STEPS)
    seqs = []
    while sum(len(s[0]) for s in seqs) < tokens:
        n = min(MAX_STEPS, max(MIN_STEPS, centre + rng.randint(-2, 2)))
        spec = draw_problem(rng, n)
        if problem_text(spec) in held:
            continue
        # A problem read from a file often ends with a newline: s1d keeps it.
        tail = "\n" if rng.random() < NEWLINE_SHARE else ""
        seqs.append(example(tk, problem_text(spec) + tail, draw_trace(rng, spec)))
    return padded(seqs)


def padded(seqs):
    """(inputs, targets) tensors; targets are -100 where nothing is learned."""
    n = max(len(ids) for ids, _ in seqs)
    x = torch.zeros(len(seqs), n - 1, dtype=torch.long)
    y = torch.full((len(seqs), n - 1), -100, dtype=torch.long)
    for r, (ids, learned) in enumerate(seqs):
        x[r, :len(ids) - 1] = torch.tensor(ids[:-1])
        y[r, :len(ids) - 1] = torch.tensor([t if ok else -100 for t, ok in zip(ids[1:], learned[1:])])
    return x, y


def lr_at(step, args):
    """Warm-up, a constant rate, then a linear decay over the last --decay
    steps. Until the decay starts the rate does not depend on --steps, so a
    run can be resumed with fewer steps than it was started with and ends
    as a run started with those would."""
    if step < WARMUP:
        return args.lr * (step + 1) / WARMUP
    left = args.steps - step
    return args.lr * (0.05 + 0.95 * min(1.0, left / args.decay))


def evaluate(model, tk, seed, count=96):
    """Share of whole plain traces the model reproduces token for token under
    teacher forcing: exactly the problems greedy decoding solves with a
    budget that suffices. Also per term-count band."""
    rng = random.Random(f"eval-{seed}")
    seqs, ns = [], []
    for i in range(count):
        spec = draw_problem(rng, MIN_STEPS + i * (MAX_STEPS - MIN_STEPS + 1) // count)
        seqs.append(example(tk, problem_text(spec), draw_trace(rng, spec, plain=True)))
        ns.append(spec[2])
    ok = []
    with torch.no_grad():
        for b in range(0, count, 16):
            x, y = padded(seqs[b:b + 16])
            pred = model(x).argmax(-1)
            ok += (((pred == y) | (y == -100)).all(-1)).tolist()
    bands = {}
    for n, good in zip(ns, ok):
        bands.setdefault((n - 1) // 6, []).append(good)
    per = " ".join(f"{6 * k + 1}-{6 * k + 6}:{sum(v) / len(v):.2f}" for k, v in sorted(bands.items()))
    return sum(ok) / len(ok), per


def train(args, model, tk, state):
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    step = 0
    if state:
        opt.load_state_dict(state["opt"])
        step = state["step"]
    held = {row["problem"] for row in heldout(args.seed, args.suite_size)}
    t0 = time.time()
    end = end_step(args)
    while step < end:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        x, y = batch_of(tk, args.seed, step, args.tokens, held)
        loss = F.cross_entropy(model(x).reshape(-1, model.w[0].shape[0]), y.reshape(-1),
                               ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            print(f"step {step} loss {loss.item():.4f} {(time.time() - t0) / 10:.2f}s/step", flush=True)
            t0 = time.time()
        if step % args.save_every == 0 or step == end:
            save(args, model, opt, step)
            acc, per = evaluate(model, tk, args.seed)
            print(f"step {step} eval exact {acc:.3f} [{per}]", flush=True)


def save(args, model, opt, step):
    path = os.path.join(args.work, "checkpoint.pt")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, path + ".tmp")
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------- export

def write_model(args, model, tok, steps):
    os.makedirs(args.out, exist_ok=True)
    shape = types.SimpleNamespace(**{k.replace("-", "_"): v for k, v in SHAPE.items()})
    shape.vocab = model.w[model.index["model.embed_tokens.weight"]].shape[0]
    shape.markup = "qwen"
    ids = gen_model.added_ids(tok)
    gen_model.write_json(os.path.join(args.out, "tokenizer.json"), tok)
    gen_model.write_json(os.path.join(args.out, "tokenizer_config.json"),
                         gen_model.tokenizer_config(ids, shape.max_position))
    gen_model.write_configs(shape, args.out, ids)
    tensors = {name: ("F32", model.p(name).detach().numpy())
               for name, _, _ in gen_model.tensor_specs(shape)}
    st.write_safetensors(os.path.join(args.out, "model.safetensors"), tensors,
                         {"format": "pt", "trained_steps": str(steps), "seed": str(args.seed)})


def write_suite(path, seed, count):
    """The held-out problems as s1ctl suite import reads them, each once, in
    an order that mixes the term counts: any first N of them (s1ctl bench
    run --limit N) span easy to hard."""
    rows, seen = [], set()
    for row in heldout(seed, count):
        if row["problem"] not in seen:
            seen.add(row["problem"])
            rows.append(row)
    random.Random(f"order-{seed}").shuffle(rows)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def end_step(args):
    return min(args.steps, args.stop_at or args.steps)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, help="checkpoint directory (resumed when it has one)")
    p.add_argument("--out", default="models/s1-tiny")
    p.add_argument("--suite", help="also write the held-out suite (JSONL) here")
    p.add_argument("--suite-size", type=int, default=92)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--tokens", type=int, default=2048, help="tokens per batch")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--decay", type=int, default=600, help="steps of the final decay")
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--stop-at", type=int, help="stop (checkpointed) after this step: resume later, "
                   "perhaps with other --steps/--decay")
    p.add_argument("--eval", action="store_true", help="only evaluate the checkpoint")
    p.add_argument("--write", action="store_true", help="only export the checkpoint")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    os.makedirs(args.work, exist_ok=True)
    tok = gen_model.bytes_tokenizer(corpus(args.seed), 300)
    tk = Tokenizer(tok)
    model = Qwen2(gen_model.n_tokens(tok), SHAPE)
    ckpt = os.path.join(args.work, "checkpoint.pt")
    state = torch.load(ckpt) if os.path.exists(ckpt) else None
    if state:
        model.load_state_dict(state["model"])
        print(f"resumed at step {state['step']}", flush=True)
    if args.eval:
        print("eval exact %.3f [%s]" % evaluate(model, tk, args.seed), flush=True)
        return
    if not args.write:
        train(args, model, tk, state)
    write_model(args, model, tok, state["step"] if args.write and state else end_step(args))
    if args.suite:
        write_suite(args.suite, args.seed, args.suite_size)


if __name__ == "__main__":
    main(sys.argv[1:])
