"""A reference byte-level BPE tokenizer for tokenizer.json, written from the
published algorithm (GPT-2's byte-to-unicode table and pre-tokenizer, BPE
merges by rank as Hugging Face tokenizers applies them) to check s1d's C
encoder id for id. Slow and simple on purpose."""
import json
import unicodedata

import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode():
    """GPT-2: printable Latin-1 bytes stand for themselves, the rest are
    shifted to 256 and up, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def onig_regex(pattern):
    """Hugging Face runs the pattern with Oniguruma, whose \\s is exactly the
    Unicode White_Space property."""
    return pattern.replace(r"\s", r"\p{White_Space}").replace(r"\S", r"\P{White_Space}")


class RefTokenizer:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        model = j["model"]
        assert model["type"] == "BPE"
        self.vocab = model["vocab"]
        self.byte_char = bytes_to_unicode()
        char_byte = {c: b for b, c in self.byte_char.items()}
        self.id_bytes = {i: bytes(char_byte[c] for c in s) for s, i in self.vocab.items()}
        self.merges = {}
        for rank, m in enumerate(model["merges"]):
            a, b = m.split(" ") if isinstance(m, str) else m
            self.merges[(self.vocab[a], self.vocab[b])] = (rank, self.vocab[a + b])
        self.added = [(t["content"], t["id"], t.get("normalized", not t.get("special", False)))
                      for t in j.get("added_tokens") or []]
        for content, i, _ in self.added:
            self.id_bytes[i] = content.encode("utf-8")
        self.nfc = (j.get("normalizer") or {}).get("type") == "NFC"
        self.pattern = None
        pre = j["pre_tokenizer"]
        steps = pre["pretokenizers"] if pre["type"] == "Sequence" else [pre]
        for step in steps:
            if step["type"] == "Split":
                self.pattern = regex.compile(onig_regex(step["pattern"]["Regex"]))
            elif step["type"] == "ByteLevel" and step.get("use_regex", True):
                self.pattern = regex.compile(onig_regex(GPT2_PATTERN))

    def split_added(self, text, normalized):
        """Pieces of text: (str, None) or (content, id), matching the leftmost
        then longest added token."""
        tokens = [(c, i) for c, i, n in self.added if n == normalized]
        out, start, i = [], 0, 0
        while i < len(text):
            hits = [(c, tid) for c, tid in tokens if text.startswith(c, i)]
            if hits:
                c, tid = max(hits, key=lambda h: len(h[0]))
                if i > start:
                    out.append((text[start:i], None))
                out.append((c, tid))
                i = start = i + len(c)
            else:
                i += 1
        if start < len(text):
            out.append((text[start:], None))
        return out

    def words(self, text):
        if self.pattern is None:
            return [text] if text else []
        out, done = [], 0
        for m in self.pattern.finditer(text):
            if m.start() == m.end():
                continue
            if m.start() > done:
                out.append(text[done:m.start()])
            out.append(m.group())
            done = m.end()
        if done < len(text):
            out.append(text[done:])
        return out

    def bpe(self, word):
        """Repeatedly merges the adjacent pair of lowest rank, leftmost first."""
        syms = [self.vocab[self.byte_char[b]] for b in word.encode("utf-8")]
        pos = list(range(len(syms)))
        while True:
            best = None
            for k in range(len(syms) - 1):
                m = self.merges.get((syms[k], syms[k + 1]))
                if m and (best is None or (m[0], pos[k]) < best[0]):
                    best = ((m[0], pos[k]), k, m[1])
            if best is None:
                return syms
            _, k, new = best
            syms[k:k + 2] = [new]
            del pos[k + 1]

    def encode(self, text, special):
        ids = []
        outer = self.split_added(text, False) if special else [(text, None)]
        for seg, tid in outer:
            if tid is not None:
                ids.append(tid)
                continue
            seg = unicodedata.normalize("NFC", seg) if self.nfc else seg
            inner = self.split_added(seg, True) if special else [(seg, None)]
            for piece, tid2 in inner:
                if tid2 is not None:
                    ids.append(tid2)
                    continue
                for w in self.words(piece):
                    ids.extend(self.bpe(w))
        return ids

    def decode(self, ids):
        return b"".join(self.id_bytes[i] for i in ids).decode("utf-8", "replace")
