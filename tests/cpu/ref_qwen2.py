"""A numpy reference of the Qwen2 decoder (as published: Qwen2ForCausalLM),
for checking the CPU backend on models written by tools/gen_model.py.

    model = Qwen2(model_dir)
    logits = model.forward(ids)        # [len(ids), vocab], float64
    ids = model.greedy(prompt, n)      # n greedy tokens after prompt

Computed in float64 over the whole sequence at once (causal mask, no KV
cache), so it shares no code path with the backend."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.environ.get("S1_SOURCE_ROOT", ""), "tools"))
import safetensors_io  # noqa: E402


class Qwen2:
    def __init__(self, model_dir):
        self.cfg, t = safetensors_io.read_model(model_dir)
        self.w = {k: v.astype(np.float64) for k, v in t.items()}
        if "lm_head.weight" not in self.w:
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        c = self.cfg
        self.heads, self.kv = c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = c["hidden_size"] // self.heads
        self.eps = c["rms_norm_eps"]

    @staticmethod
    def vocab_of(model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            return json.load(f)["vocab_size"]

    def linear(self, x, name, bias=False):
        """x @ W.T (+ b), HF weights being [out_features, in_features]."""
        y = x @ self.w[name + ".weight"].T
        return y + self.w[name + ".bias"] if bias else y

    def rmsnorm(self, x, name):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * self.w[name]

    def rope(self, x, pos):
        """Rotate-half RoPE on x[n, heads, hd]: pairs (j, j + hd/2)."""
        half = self.hd // 2
        inv_freq = float(self.cfg["rope_theta"]) ** (-2.0 * np.arange(half) / self.hd)
        ang = pos[:, None] * inv_freq[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = x[..., :half], x[..., half:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)

    def attention(self, x, i):
        n, p = x.shape[0], f"model.layers.{i}.self_attn."
        pos = np.arange(n, dtype=np.float64)
        q = self.rope(self.linear(x, p + "q_proj", True).reshape(n, self.heads, self.hd), pos)
        k = self.rope(self.linear(x, p + "k_proj", True).reshape(n, self.kv, self.hd), pos)
        v = self.linear(x, p + "v_proj", True).reshape(n, self.kv, self.hd)
        group = self.heads // self.kv
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        s = np.einsum("ihd,jhd->hij", q, k) / np.sqrt(self.hd)
        s = np.where(np.tril(np.ones((n, n), dtype=bool))[None], s, -np.inf)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        out = np.einsum("hij,jhd->ihd", s, v).reshape(n, self.heads * self.hd)
        return self.linear(out, p + "o_proj")

    def mlp(self, x, i):
        p = f"model.layers.{i}.mlp."
        g = self.linear(x, p + "gate_proj")
        return self.linear(g / (1 + np.exp(-g)) * self.linear(x, p + "up_proj"), p + "down_proj")

    def forward(self, ids):
        x = self.w["model.embed_tokens.weight"][np.asarray(ids)]
        for i in range(self.cfg["num_hidden_layers"]):
            p = f"model.layers.{i}."
            x = x + self.attention(self.rmsnorm(x, p + "input_layernorm.weight"), i)
            x = x + self.mlp(self.rmsnorm(x, p + "post_attention_layernorm.weight"), i)
        return self.linear(self.rmsnorm(x, "model.norm.weight"), "lm_head")

    def greedy(self, prompt, n):
        ids = list(prompt)
        for _ in range(n):
            ids.append(int(np.argmax(self.forward(ids)[-1])))
        return ids[len(prompt):]
