"""Reading and writing safetensors files and Hugging Face model directories
with numpy only (no torch, no safetensors package), for tools/gen_model.py and
the tests' numpy references.

    config, tensors = read_model(dir)   # tensors: name -> float32 ndarray

Format: 8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
then the data; offsets are relative to the end of the header."""
import json
import os
import struct

import numpy as np

# safetensors dtype name -> (bytes per element, numpy dtype of the raw bits)
DTYPES = {"F32": (4, np.dtype("<f4")), "F16": (2, np.dtype("<f2")), "BF16": (2, np.dtype("<u2"))}
# gen_model's --dtype and config.json's torch_dtype, per safetensors dtype
SHORT = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
TORCH = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def header_bytes(entries, metadata=None):
    """Builds a header for entries [(name, dtype, shape)], laid out in that
    order with no gaps. Returns (header including its 8-byte length, data size).
    The JSON is padded with spaces to a multiple of 8 bytes, as the safetensors
    library does, so the data stays aligned."""
    head = {"__metadata__": metadata if metadata is not None else {"format": "pt"}}
    off = 0
    for name, dtype, shape in entries:
        size = DTYPES[dtype][0] * int(np.prod(shape, dtype=np.int64))
        head[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + size]}
        off += size
    text = json.dumps(head, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, off


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: (dtype, array)} in insertion order; each array is
    converted to dtype (BF16 by rounding to nearest even)."""
    entries = [(n, d, a.shape) for n, (d, a) in tensors.items()]
    head, _ = header_bytes(entries, metadata)
    with open(path, "wb") as f:
        f.write(head)
        for dtype, a in tensors.values():
            f.write(to_dtype(np.asarray(a, dtype=np.float32), dtype).tobytes())


def to_dtype(a, dtype):
    """float32 array -> raw little-endian array of dtype."""
    if dtype == "F32":
        return a.astype("<f4")
    if dtype == "F16":
        return a.astype("<f2")
    bits = a.astype("<f4").view("<u4")
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")


def to_float32(raw, dtype):
    """Raw array of dtype -> float32 (exact for all three dtypes)."""
    if dtype == "BF16":
        return (raw.astype("<u4") << 16).view("<f4")
    return raw.astype(np.float32)


def read_header(path):
    """Returns (header dict without __metadata__, offset of the data)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        head = json.loads(f.read(n))
    head.pop("__metadata__", None)
    return head, 8 + n


def read_safetensors(path):
    """Reads every tensor of one file: {name: float32 ndarray}."""
    head, start = read_header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, t in head.items():
        size, npdtype = DTYPES[t["dtype"]]
        b, e = t["data_offsets"]
        raw = data[start + b:start + e].view(npdtype).reshape(t["shape"])
        out[name] = to_float32(raw, t["dtype"])
    return out


def model_files(d):
    """The safetensors files of a model directory: model.safetensors when
    present, else the shards named by model.safetensors.index.json (the
    order transformers and s1d use)."""
    single = os.path.join(d, "model.safetensors")
    if os.path.exists(single):
        return [single]
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    return [os.path.join(d, s) for s in shards]


def read_model(d):
    """(config dict, {tensor name: float32 ndarray}) of a model directory."""
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    tensors = {}
    for path in model_files(d):
        tensors.update(read_safetensors(path))
    return config, tensors
