#!/usr/bin/env python3
"""Writes the tiny Hugging Face model fixtures under tests/data (good_hf_*, bad_hf_*).

Needs only numpy: safetensors is an 8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets}}, then the raw little-endian data, so it is written by hand.

Every weight value is deterministic so the C++ tests can recompute it:
    phase(name) = (sum of the name's UTF-8 bytes % 101) * 0.1
    w[i]        = float32(sin(0.37 * i + phase(name)))      (i = row-major flat index, float64 sin)
then rounded to the stored dtype with round-to-nearest-even (float32 -> bf16 / f16).

Usage: scripts/make_hf_fixtures.py [--out tests/data]
"""
import argparse
import json
import os
import shutil

import numpy as np


def phase(name):
    return (sum(name.encode("utf-8")) % 101) * 0.1


def values_f32(name, shape):
    n = int(np.prod(shape)) if shape else 1
    i = np.arange(n, dtype=np.float64)
    return np.sin(0.37 * i + phase(name)).astype(np.float32).reshape(shape)


def to_bf16_bits(x):
    """float32 -> bf16 bit pattern, round to nearest even (finite inputs only)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype(np.uint16)


def encode(x, dtype):
    if dtype == "BF16":
        return to_bf16_bits(x).astype("<u2").tobytes()
    if dtype == "F16":
        return x.astype("<f2").tobytes()
    if dtype == "F32":
        return x.astype("<f4").tobytes()
    if dtype == "F64":
        return x.astype("<f8").tobytes()
    raise ValueError(dtype)


def safetensors_bytes(tensors, dtype, overrides=None):
    """tensors: list of (name, shape). overrides: name -> dict of header fields to replace after layout."""
    overrides = overrides or {}
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, shape in tensors:
        tensor_dtype = overrides.get(name, {}).get("dtype", dtype)
        blob = encode(values_f32(name, shape), tensor_dtype)
        header[name] = {"dtype": tensor_dtype, "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        for key, value in overrides.get(name, {}).items():
            if key != "dtype":
                header[name][key] = value
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # the format pads the header to 8 bytes with spaces
    return len(text).to_bytes(8, "little") + text + b"".join(blobs)


def llama_tensors(cfg, with_lm_head=True):
    """(name, shape) in checkpoint order for a Llama-family config dict."""
    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", heads)
    hd = cfg.get("head_dim", hidden // heads)
    inter = cfg["intermediate_size"]
    vocab = cfg["vocab_size"]
    bias = cfg["model_type"] == "qwen2"
    out = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        out.append((p + "input_layernorm.weight", (hidden,)))
        out.append((p + "self_attn.q_proj.weight", (heads * hd, hidden)))
        out.append((p + "self_attn.k_proj.weight", (kv * hd, hidden)))
        out.append((p + "self_attn.v_proj.weight", (kv * hd, hidden)))
        if bias:
            out.append((p + "self_attn.q_proj.bias", (heads * hd,)))
            out.append((p + "self_attn.k_proj.bias", (kv * hd,)))
            out.append((p + "self_attn.v_proj.bias", (kv * hd,)))
        out.append((p + "self_attn.o_proj.weight", (hidden, heads * hd)))
        out.append((p + "post_attention_layernorm.weight", (hidden,)))
        out.append((p + "mlp.gate_proj.weight", (inter, hidden)))
        out.append((p + "mlp.up_proj.weight", (inter, hidden)))
        out.append((p + "mlp.down_proj.weight", (hidden, inter)))
    out.append(("model.norm.weight", (hidden,)))
    if with_lm_head:
        out.append(("lm_head.weight", (vocab, hidden)))
    return out


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_config(d, cfg):
    write(os.path.join(d, "config.json"), (json.dumps(cfg, indent=2) + "\n").encode("utf-8"))


TINY_LLAMA = {
    "_name_or_path": "headcal/tiny-llama",
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_act": "silu",
    "num_hidden_layers": 2,
    "hidden_size": 32,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 24,
    "vocab_size": 64,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "bfloat16",
}

# GQA 3:1 with an odd head count (like SmolLM2's 9:3), q/k/v biases, tied embeddings, two shards.
TINY_QWEN2 = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_act": "silu",
    "num_hidden_layers": 2,
    "hidden_size": 24,
    "num_attention_heads": 3,
    "num_key_value_heads": 1,
    "intermediate_size": 20,
    "vocab_size": 48,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "sliding_window": 512,
    "use_sliding_window": False,
    "tie_word_embeddings": True,
    "bos_token_id": 46,
    "eos_token_id": [47, 45],
    "torch_dtype": "float16",
}

# Llama 3 RoPE scaling and an explicit head_dim (16) that differs from hidden/heads (8).
TINY_LLAMA3 = {
    "_name_or_path": "headcal/tiny-llama3",
    "model_type": "llama",
    "num_hidden_layers": 1,
    "hidden_size": 16,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "intermediate_size": 24,
    "vocab_size": 32,
    "max_position_embeddings": 1024,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 256,
        "rope_type": "llama3",
    },
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "eos_token_id": [1, 2],
    "torch_dtype": "float32",
}

# The smallest valid model, base of the bad_* cases.
MICRO = {
    "model_type": "llama",
    "num_hidden_layers": 1,
    "hidden_size": 8,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "intermediate_size": 12,
    "vocab_size": 16,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}


def make_good(out):
    d = os.path.join(out, "good_hf_tiny_llama")
    write_config(d, TINY_LLAMA)
    write(os.path.join(d, "model.safetensors"), safetensors_bytes(llama_tensors(TINY_LLAMA), "BF16"))

    d = os.path.join(out, "good_hf_tiny_qwen2")
    write_config(d, TINY_QWEN2)
    tensors = llama_tensors(TINY_QWEN2, with_lm_head=False)
    split = [t for t in tensors if t[0].startswith("model.embed_tokens") or t[0].startswith("model.layers.0.")]
    rest = [t for t in tensors if t not in split]
    shards = {"model-00001-of-00002.safetensors": split, "model-00002-of-00002.safetensors": rest}
    weight_map = {}
    total = 0
    for shard, ts in shards.items():
        write(os.path.join(d, shard), safetensors_bytes(ts, "F16"))
        for name, shape in ts:
            weight_map[name] = shard
            total += 2 * int(np.prod(shape))
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    write(os.path.join(d, "model.safetensors.index.json"), (json.dumps(index, indent=2) + "\n").encode("utf-8"))

    d = os.path.join(out, "good_hf_tiny_llama3")
    write_config(d, TINY_LLAMA3)
    write(os.path.join(d, "model.safetensors"), safetensors_bytes(llama_tensors(TINY_LLAMA3), "F32"))


def make_bad(out):
    micro = llama_tensors(MICRO)
    good = safetensors_bytes(micro, "BF16")

    def model(name, cfg=MICRO, data=good):
        d = os.path.join(out, name)
        if cfg is not None:
            write_config(d, cfg)
        write(os.path.join(d, "model.safetensors"), data)

    model("bad_hf_no_config", cfg=None)

    # Header length field says more bytes than the whole file has.
    model("bad_hf_header_len", data=(len(good) + 1000).to_bytes(8, "little") + good[8:])

    # One byte of the JSON header turned into garbage (length unchanged): the first ',' becomes '#'.
    hlen = int.from_bytes(good[:8], "little")
    header = good[8:8 + hlen].replace(b",", b"#", 1)
    model("bad_hf_json", data=good[:8] + header + good[8 + hlen:])

    # q_proj's byte range is 2 bytes short of what BF16 [8, 8] needs.
    q = "model.layers.0.self_attn.q_proj.weight"
    q_begin = json.loads(good[8:8 + hlen])[q]["data_offsets"][0]
    model("bad_hf_offsets",
          data=safetensors_bytes(micro, "BF16", {q: {"data_offsets": [q_begin, q_begin + 2 * 64 - 2]}}))

    model("bad_hf_dtype", data=safetensors_bytes(micro, "BF16", {"model.norm.weight": {"dtype": "F64"}}))

    d = os.path.join(out, "bad_hf_missing_shard")
    write_config(d, MICRO)
    first = micro[:3]
    write(os.path.join(d, "model-00001-of-00002.safetensors"), safetensors_bytes(first, "BF16"))
    weight_map = {n: ("model-00001-of-00002.safetensors" if (n, s) in first else "model-00002-of-00002.safetensors")
                  for n, s in micro}
    write(os.path.join(d, "model.safetensors.index.json"),
          (json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2) + "\n").encode("utf-8"))

    model("bad_hf_model_type", cfg=dict(MICRO, model_type="gpt_neox"))

    model("bad_hf_missing_tensor",
          data=safetensors_bytes([t for t in micro if t[0] != "model.layers.0.mlp.up_proj.weight"], "BF16"))

    model("bad_hf_shape", data=safetensors_bytes(
        [(n, (6, 8) if n == q else s) for n, s in micro], "BF16"))

    # Cut in the middle of the data: the last tensors' offsets run past the end of the file.
    model("bad_hf_truncated", data=good[:8 + hlen + (len(good) - 8 - hlen) // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data"))
    args = ap.parse_args()
    out = os.path.normpath(args.out)
    for entry in os.listdir(out) if os.path.isdir(out) else []:
        if entry.startswith(("good_hf_", "bad_hf_")):
            shutil.rmtree(os.path.join(out, entry))
    make_good(out)
    make_bad(out)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(out) for f in fs
                if os.path.relpath(r, out).startswith(("good_hf_", "bad_hf_")))
    print("wrote HF fixtures under %s (%d bytes)" % (out, total))


if __name__ == "__main__":
    main()
