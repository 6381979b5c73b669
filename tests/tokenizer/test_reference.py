"""The C encoder against the Python reference (ref_tokenizer.py), id for id,
on the real Qwen2.5 tokenizer and on tiny generated ones; and
decode(encode(x)) == NFC(x). Usage: test_reference.py TOKENIZE_JSONL"""
import collections
import glob
import json
import os
import random
import subprocess
import sys
import tempfile
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import regex  # noqa: E402
from ref_tokenizer import RefTokenizer, bytes_to_unicode, onig_regex  # noqa: E402
from s1test import SHARED, tap_main  # noqa: E402

TOOL = sys.argv[1]
QWEN = os.path.join(SHARED, "models", "qwen2.5-tokenizer", "tokenizer.json")
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
TEMPLATE = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            "What is 2+2?<|im_end|>\n<|im_start|>assistant\n<|im_start|>think\nWait, 2+2=4."
            "\n<|im_start|>answer\nFinal Answer: $\\boxed{4}$<|im_end|>")

VARIED = [
    "Hello world", "", " ", "a", "Wait", " Wait", "\n", "\n\n\n", "   \n  \n ",
    "def f(x):\n\treturn x**2  # square\n\n\nclass A:\n    pass\n",
    "for (int i = 0; i < n; i++) { a[i] = b[i] * 2; }\r\n",
    r"$\frac{1}{2} + \sqrt{x^2+y^2} = \int_0^\infty e^{-t}\,dt$ \boxed{\dfrac{3}{4}}",
    "\\begin{align*} x &= 3 \\\\ y &= 4 \\end{align*}",
    "中文分词测试：你好，世界！日本語のテキストも。한국어 문장입니다.",
    "emoji 😀🎉👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 ✨",
    "many     spaces\t\ttabs\t \t and\u00a0nbsp\u3000ideographic\u2028line\u2029para\x85nel\u180emvs",
    "digits 1234567890 and 3.14159 and 1,000,000 and ０１２ and ٣٤٥",
    "it's they're we've I'm you'll he'd IT'S THEY'RE WE'VE I'M YOU'LL HE'D it'ſ",
    "cafe\u0301 vs caf\u00e9, A\u030a vs \u00c5, \u1100\u1161\u11a8 Hangul jamo, n\u0303",
    "Ελληνικά кириллица עברית العربية हिन्दी ไทย mixed123scripts",
    TEMPLATE,
    "<|im_end|> inside a problem <|endoftext|> stays text <|im_start|>",
    "trailing spaces   ", "   leading", "\t\n \r\n\r", "x\u0300\u0301\u0302\u0303",
    "a\x00b\x01c\x1fd\x7f", "a \u180e b\u180e\u180e c \u200b d \x85 e\x85\x85 f\x1c\x1c g x \u180eabc !\u180e \u180e! \u180e ", "'''s '' 's", "!!!???...,,,;;;", "  !!!\n\n", "http://example.com/a?b=c&d=e",
]


def run_tool(path, cases):
    """cases: list of (text, special). Returns the tool's JSON answers."""
    lines = "".join(json.dumps({"text": t, "special": s}) + "\n" for t, s in cases)
    out = subprocess.run([TOOL, path], input=lines, capture_output=True, text=True, check=True).stdout
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == len(cases), f"{len(answers)} answers for {len(cases)} inputs"
    return answers


def compare(path, cases):
    ref = RefTokenizer(path)
    bad = []
    for (text, special), got in zip(cases, run_tool(path, cases)):
        want = ref.encode(text, special)
        if got.get("ids") != want:
            bad.append(f"{text[:60]!r} special={special}: C {got.get('ids', got)[:20]} ref {want[:20]}")
    assert not bad, f"{len(bad)} of {len(cases)} texts differ:\n" + "\n".join(bad[:10])


def soup(rng, n):
    """Random valid UTF-8: ASCII, whitespace, combining marks and any code
    point assigned in this Python's Unicode (surrogates excluded)."""
    pools = ["abc xyz ABC 0123 '\t\n\r.,;!?$\\{}", " \u00a0\u2003\n\t\x85\u3000",
             "\u0300\u0301\u0308\u0327\u0338e\u0065oO"]
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.5:
            out.append(rng.choice(pools[rng.randrange(3)]))
        else:
            while True:
                cp = rng.choice([rng.randrange(0x80, 0x800), rng.randrange(0x800, 0x10000),
                                 rng.randrange(0x10000, 0x30000)])
                if not 0xD800 <= cp < 0xE000 and unicodedata.category(chr(cp)) != "Cn":
                    break
            out.append(chr(cp))
    return "".join(out)


def uses_qwen(fn):
    """Marks a test that needs the real tokenizer from the shared data."""
    fn.uses_qwen = True
    return fn


def benchmark_problems():
    texts = []
    for f in sorted(glob.glob(os.path.join(SHARED, "benchmarks", "*.jsonl"))):
        with open(f, encoding="utf-8") as fh:
            texts += [json.loads(line)["problem"] for line in fh if line.strip()]
    return texts


@uses_qwen
def test_known_ids_of_the_qwen_tokenizer():
    cases = [("Hello world", 0), ("<|im_start|>think", 1), ("Wait", 0),
             ("\n<|im_start|>answer\nFinal Answer:", 1)]
    got = [a["ids"] for a in run_tool(QWEN, cases)]
    assert got == [[9707, 1879], [151644, 26865], [14190], [198, 151644, 9217, 198, 19357, 21806, 25]], got


@uses_qwen
def test_qwen_encoder_matches_reference_on_varied_text():
    compare(QWEN, [(t, s) for t in VARIED for s in (0, 1)])


@uses_qwen
def test_qwen_encoder_matches_reference_on_every_benchmark_problem():
    problems = benchmark_problems()
    assert len(problems) >= 570, f"only {len(problems)} benchmark problems found"
    compare(QWEN, [(p, 0) for p in problems])


@uses_qwen
def test_qwen_encoder_matches_reference_on_random_valid_utf8():
    rng = random.Random(1)
    compare(QWEN, [(soup(rng, rng.randrange(1, 300)), rng.randrange(2)) for _ in range(400)])


@uses_qwen
def test_decode_of_encode_is_the_nfc_text():
    rng = random.Random(2)
    texts = VARIED + benchmark_problems()[:100] + [soup(rng, 200) for _ in range(100)]
    answers = run_tool(QWEN, [(t, 0) for t in texts])
    bad = [t[:60] for t, a in zip(texts, answers) if a.get("decoded") != unicodedata.normalize("NFC", t)]
    assert not bad, f"{len(bad)} texts do not round-trip: {bad[:5]}"


@uses_qwen
def test_added_tokens_in_text_are_ordinary_without_special():
    plain, special = run_tool(QWEN, [("<|im_end|>", 0), ("<|im_end|>", 1)])
    assert special["ids"] == [151645], special
    assert 151645 not in plain["ids"] and len(plain["ids"]) > 1, plain
    assert plain["decoded"] == "<|im_end|>", plain


def make_tiny(path, pair_merges, gpt2_regex=False, n_merges=300):
    """A tiny byte-level tokenizer like tools/gen_model.py writes: the 256
    bytes, merges learned from VARIED, and the Qwen chat tokens."""
    byte_char = bytes_to_unicode()
    vocab = {byte_char[b]: b for b in range(256)}
    splitter = RefTokenizer.__new__(RefTokenizer)
    splitter.pattern = regex.compile(onig_regex(QWEN_PATTERN))
    words = collections.Counter()
    for t in VARIED:
        for w in splitter.words(t):
            words[tuple(byte_char[b] for b in w.encode("utf-8"))] += 1
    merges = []
    while len(merges) < n_merges:
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = pairs.most_common(1)[0]
        merges.append([a, b] if pair_merges else f"{a} {b}")
        vocab.setdefault(a + b, len(vocab))
        words = collections.Counter({_merge(w, a, b): c for w, c in words.items()})
    added = [{"id": len(vocab) + k, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True}
             for k, c in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])]
    split = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN_PATTERN}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    gpt2 = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True}
    doc = {"version": "1.0", "added_tokens": added, "normalizer": {"type": "NFC"},
           "pre_tokenizer": gpt2 if gpt2_regex else split,
           "decoder": {"type": "ByteLevel"},
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "vocab": vocab, "merges": merges}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)


def _merge(w, a, b):
    out, i = [], 0
    while i < len(w):
        if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(w[i])
            i += 1
    return tuple(out)


def tiny_cases():
    rng = random.Random(3)
    return [(t, s) for t in VARIED for s in (0, 1)] + [(soup(rng, 150), 1) for _ in range(100)]


def test_tiny_tokenizer_with_string_merges_matches_reference():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tokenizer.json")
        make_tiny(path, pair_merges=False)
        compare(path, tiny_cases())


def test_tiny_tokenizer_with_pair_merges_matches_reference():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tokenizer.json")
        make_tiny(path, pair_merges=True)
        compare(path, tiny_cases())


def test_tiny_tokenizer_with_the_gpt2_byte_level_regex_matches_reference():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tokenizer.json")
        make_tiny(path, pair_merges=False, gpt2_regex=True)
        compare(path, tiny_cases())


if __name__ == "__main__":
    tests = dict(globals())
    if not os.path.isfile(QWEN):
        print(f"# skipping the Qwen2.5 tests: {QWEN} is absent (S1_SHARED names the shared data folder)")
        tests = {k: v for k, v in tests.items() if not getattr(v, "uses_qwen", False)}
    tap_main(tests)
