#!/usr/bin/env python3
"""Reference logits of Qwen2.5-Coder-0.5B-Instruct for tests/calib/test_qwen_logits.cpp, from a
plain numpy forward pass in float64.

The forward here is written from the Qwen2 architecture alone (RMSNorm, Q/K/V projections with
bias, rotate-half RoPE of base rope.freq_base over Hugging Face-ordered rows, causal grouped-query
attention, SwiGLU MLP, the file's own output head), with weights from gguf.quants.dequantize: an
implementation independent of headcal's, which the C++ test feeds the same token ids and compares
on the top-k logits of a few positions.

Token ids come from --tokens (whitespace-separated, e.g. `headcal tokenize --ids` of a text), so
the check does not depend on a Python tokenizer.

Usage: make_qwen_logits_fixture.py --gguf Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf --tokens ids.txt
       --out tests/data/qwen2.5_coder_logits.json
Needs numpy and gguf.
"""
import argparse
import hashlib
import json
import sys

import numpy as np

N_POSITIONS = 8
TOP_K = 10


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, theta):
    """x: [heads, N, d] in Hugging Face order: pairs (i, i + d/2) rotate together."""
    d = x.shape[-1]
    inv_freq = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    angles = np.arange(x.shape[1], dtype=np.float64)[:, None] * inv_freq[None, :]
    cos, sin = np.cos(angles), np.sin(angles)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--tokens", required=True, help="token ids, whitespace-separated")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(args.gguf)
    field = lambda k: reader.fields[k].contents()  # noqa: E731
    if field("general.architecture") != "qwen2":
        sys.exit(f"{args.gguf}: not a qwen2 GGUF")
    n_layers, n_heads = int(field("qwen2.block_count")), int(field("qwen2.attention.head_count"))
    n_kv = int(field("qwen2.attention.head_count_kv"))
    hidden = int(field("qwen2.embedding_length"))
    theta, eps = float(field("qwen2.rope.freq_base")), float(field("qwen2.attention.layer_norm_rms_epsilon"))
    d = hidden // n_heads
    tensors = {t.name: t for t in reader.tensors}

    def w(name):
        t = tensors[name]
        return dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64)

    ids = [int(s) for s in open(args.tokens).read().split()]
    n = len(ids)
    if n < 64:
        sys.exit(f"{args.tokens}: {n} tokens, want at least 64")
    embed = tensors["token_embd.weight"]
    x = dequantize(np.asarray(embed.data), embed.tensor_type)[ids].astype(np.float64)  # [N, hidden]
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    for i in range(n_layers):
        p = f"blk.{i}."
        h = rms_norm(x, w(p + "attn_norm.weight"), eps)
        q = (h @ w(p + "attn_q.weight").T + w(p + "attn_q.bias")).reshape(n, n_heads, d).transpose(1, 0, 2)
        k = (h @ w(p + "attn_k.weight").T + w(p + "attn_k.bias")).reshape(n, n_kv, d).transpose(1, 0, 2)
        v = (h @ w(p + "attn_v.weight").T + w(p + "attn_v.bias")).reshape(n, n_kv, d).transpose(1, 0, 2)
        q, k = rope(q, theta), rope(k, theta)
        group = n_heads // n_kv
        out = np.empty((n_heads, n, d))
        for head in range(n_heads):
            s = q[head] @ k[head // group].T / np.sqrt(d) + mask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            out[head] = (s / s.sum(axis=-1, keepdims=True)) @ v[head // group]
        x = x + out.transpose(1, 0, 2).reshape(n, hidden) @ w(p + "attn_output.weight").T
        h = rms_norm(x, w(p + "ffn_norm.weight"), eps)
        gate = h @ w(p + "ffn_gate.weight").T
        x = x + ((gate / (1 + np.exp(-gate))) * (h @ w(p + "ffn_up.weight").T)) @ w(p + "ffn_down.weight").T
        print(f"layer {i + 1}/{n_layers}", file=sys.stderr)
    x = rms_norm(x, w("output_norm.weight"), eps)
    head_name = "output.weight" if "output.weight" in tensors else "token_embd.weight"
    positions = sorted({round(j * (n - 1) / (N_POSITIONS - 1)) for j in range(N_POSITIONS)})
    logits = x[positions] @ w(head_name).T  # [positions, vocab]

    entries = []
    for row, pos in zip(logits, positions):
        top = np.argsort(-row)[:TOP_K]
        m = row.max()
        entries.append({"position": pos, "ids": [int(t) for t in top], "logits": [float(row[t]) for t in top],
                         "logsumexp": float(m + np.log(np.exp(row - m).sum()))})
    fixture = {"model": str(field("general.name")), "model_sha256": sha256_file(args.gguf),
               "reference": "numpy float64 forward (scripts/make_qwen_logits_fixture.py)",
               "tokens": ids, "positions": positions, "entries": entries}
    with open(args.out, "w") as f:
        json.dump(fixture, f, indent=1)
    print(f"wrote {args.out}: {n} tokens, {len(positions)} positions x top-{TOP_K}", file=sys.stderr)


if __name__ == "__main__":
    main()
