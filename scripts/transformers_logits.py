#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers, to check headcal's forward pass on a real model.

Loads a GGUF (SmolLM2, Qwen2.5-Coder, any Llama-family file transformers reads) through
transformers' own GGUF support (dequantised to float32), tokenizes a prompt of exactly --tokens
tokens built from a fixed text, runs the forward pass and writes, into --out-dir:
  tokens.txt     the prompt's token ids, whitespace-separated (what `headcal record --tokens` reads)
  positions.txt  the positions whose logits are stored (--positions of them, evenly spaced, the
                 last one included)
  logits.f32     float32 little-endian [len(positions), vocab]
  meta.json      the GGUF's path and sha256, general.name, vocab, token count, device, versions
With several lengths (--tokens 2048,32768) the model loads once and each length gets its own
folder, --out-dir/N.
The [transformers] case of tests/calib/test_transformers_logits.cpp (HEADCAL_TRANSFORMERS_REF=out-dir;
the model is meta.json's GGUF unless HEADCAL_TRANSFORMERS_MODEL names another path) runs headcal's
engine on the same tokens and reports top-1 agreement and max abs logit error.

Only the stored positions go through the output head, so 32K tokens of a 152K vocabulary need
no [32K, vocab] logits matrix. Attention is PyTorch SDPA with is_causal and the key/value heads
repeated to the query heads: transformers' own SDPA path hands grouped-query attention to SDPA's
enable_gqa, which only the math backend runs, and that backend holds an N x N matrix per head
(60 GB for Qwen2.5-Coder's 14 heads at 32K in float32).
Where transformers ties the output head to the embedding but the file stores its own
output.weight (Qwen2.5 GGUFs do), the head is set to the file's output.weight, as headcal reads it.

Needs torch, transformers and gguf (on the device: carry the gguf wheel, see the device README).
Usage: transformers_logits.py --gguf MODEL.gguf --out-dir /tmp/ref [--tokens 2048[,32768...]] [--positions 256]
Exit codes: 0 ok, 2 bad arguments or a model/tokenizer that cannot give the prompt.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np


def die(message):
    print(f"transformers_logits: {message}", file=sys.stderr)
    sys.exit(2)


def build_text(min_chars):
    # Deterministic, varied English-like text with numbers, so attention has real structure
    # (repeated entities, lists, a key-value section) and the prompt is reproducible.
    parts = []
    i = 0
    while sum(len(p) for p in parts) < min_chars:
        parts.append(
            f"Record {i}: the station at kilometre {i * 7 % 113} reported {i * 13 % 29} trains, "
            f"{i * 5 % 17} delays and a temperature of {(i * 3) % 31 - 5} degrees. "
        )
        if i % 9 == 4:
            parts.append(f"Note: the key for entry {i} is {1000 + i * 37 % 997}. ")
        i += 1
    parts.append("Question: which key belongs to entry 13? Answer:")
    return "".join(parts)


def spaced_positions(n_tokens, count):
    """`count` positions spread evenly over [0, n_tokens), the last token always among them."""
    count = max(1, min(count, n_tokens))
    if count == 1:
        return [n_tokens - 1]
    return sorted({round(i * (n_tokens - 1) / (count - 1)) for i in range(count)})


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def gguf_output_head(path):
    """The file's own output.weight as float32 [vocab, hidden], or None when the head is tied."""
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(path)
    name = ""
    if "general.name" in reader.fields:
        name = str(reader.fields["general.name"].contents())
    for t in reader.tensors:
        if t.name == "output.weight":
            return dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32), name
    return None, name


def causal_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Causal softmax attention through PyTorch SDPA, key/value heads repeated to the query heads.

    query [batch, heads, N, d], key/value [batch, kv_heads, N, d]; returns [batch, N, heads, d].
    """
    import torch

    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1)
    value = value.repeat_interleave(groups, dim=1)
    if attention_mask is None:
        out = torch.nn.functional.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling)
    else:
        mask = attention_mask[:, :, :, : key.shape[-2]]
        out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def attention_implementation():
    """The name transformers should load the model with: causal_attention where it can be registered."""
    try:
        from transformers import AttentionInterface
    except ImportError:  # transformers before custom attention functions: its own SDPA path
        return "sdpa"
    AttentionInterface.register("headcal_causal_sdpa", causal_attention)
    return "headcal_causal_sdpa"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", required=True, help="the model's GGUF file")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--tokens", default="2048", help="prompt length in tokens, or several, comma-separated (default 2048)")
    ap.add_argument("--positions", type=int, default=256, help="logit rows to store (default 256)")
    ap.add_argument("--stride", type=int, help="store every STRIDE-th position (and the last) instead")
    args = ap.parse_args()
    if not os.path.isfile(args.gguf):
        ap.error(f"--gguf {args.gguf}: no such file")
    try:
        lengths = [int(t) for t in args.tokens.split(",")]
    except ValueError:
        ap.error(f"--tokens {args.tokens}: expected a whole number or a comma-separated list of them")
    if min(lengths) < 1 or args.positions < 1 or (args.stride is not None and args.stride < 1):
        ap.error("--tokens, --positions and --stride must be positive")

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = os.path.abspath(args.gguf)
    folder, name = os.path.split(path)
    attention = attention_implementation()
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation=attention)
    model.eval()
    context = getattr(model.config, "max_position_embeddings", max(lengths))
    if max(lengths) > context:
        die(f"--tokens {max(lengths)} is beyond the model's context {context}")

    head, general_name = gguf_output_head(path)
    head_source = "tied to the embedding"
    if head is not None:
        head_source = "output.weight"
        current = model.lm_head.weight.detach().cpu().numpy()
        if current.shape != head.shape or not np.array_equal(current, head):
            # A new Parameter for the head alone: the embedding keeps its own weights.
            model.lm_head.weight = torch.nn.Parameter(torch.from_numpy(head))
            model.config.tie_word_embeddings = False
            head_source = "output.weight (set over transformers' tied head)"

    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except Exception as e:  # the logits check stands without real text: fixed pseudo-random ids
        print(f"tokenizer unavailable ({e}); using seeded random token ids", file=sys.stderr)
        tok = None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    info = {"gguf": path, "sha256": file_sha256(path), "name": general_name, "output_head": head_source,
            "device": device, "attention": attention, "torch": torch.__version__, "transformers": transformers.__version__}
    for n_tokens in lengths:
        out_dir = args.out_dir if len(lengths) == 1 else os.path.join(args.out_dir, str(n_tokens))
        write_reference(model, tok, n_tokens, args, out_dir, dict(info))


def write_reference(model, tok, n_tokens, args, out_dir, meta):
    import torch

    vocab = model.config.vocab_size
    if tok is not None:
        ids = tok(build_text(n_tokens * 8), add_special_tokens=False)["input_ids"][:n_tokens]
    else:
        ids = np.random.default_rng(n_tokens).integers(0, vocab, n_tokens).tolist()
    if len(ids) < n_tokens:
        die(f"prompt too short: {len(ids)} tokens")

    if args.stride:
        positions = list(range(0, len(ids), args.stride))
        if positions[-1] != len(ids) - 1:
            positions.append(len(ids) - 1)
    else:
        positions = spaced_positions(len(ids), args.positions)

    device = meta["device"]
    with torch.no_grad():
        hidden = model.model(torch.tensor([ids], device=device)).last_hidden_state[0]
        logits = model.lm_head(hidden[torch.tensor(positions, device=device)]).float().cpu().numpy()
    del hidden
    if device == "cuda":
        torch.cuda.empty_cache()

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokens.txt"), "w") as f:
        f.write(" ".join(str(t) for t in ids) + "\n")
    with open(os.path.join(out_dir, "positions.txt"), "w") as f:
        f.write(" ".join(str(p) for p in positions) + "\n")
    np.ascontiguousarray(logits, dtype="<f4").tofile(os.path.join(out_dir, "logits.f32"))
    meta.update({"vocab": int(logits.shape[1]), "tokens": len(ids), "positions": len(positions)})
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"transformers {len(ids)} tokens of {meta['name'] or meta['gguf']} on {device}: vocab {logits.shape[1]}, "
          f"head {meta['output_head']}, {len(positions)} positions written to {out_dir}")


if __name__ == "__main__":
    main()
