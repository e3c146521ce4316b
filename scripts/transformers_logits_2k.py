#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers for the device check of the CUDA engine.

Loads the SmolLM2 GGUF through transformers' own GGUF support (dequantised to float32), tokenizes
a ~2K-token prompt built from a fixed text, runs the forward pass and writes, into --out-dir:
  tokens.txt     the prompt's token ids, whitespace-separated (what `headcal record --tokens` reads)
  positions.txt  the positions whose logits are stored (every --stride-th and the last)
  logits.f32     float32 little-endian [len(positions), vocab]
The [transformers] case of tests/calib/test_cuda_engine.cpp (env HEADCAL_TRANSFORMERS_REF=out-dir,
HEADCAL_MODEL=the GGUF) compares the CUDA engine's logits with these: top-1 agreement and max abs error.

Needs torch, transformers and gguf (on the device: carry the gguf wheel, see the device README).
Usage: transformers_logits_2k.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf --out-dir /tmp/ref [--tokens 2048]
"""
import argparse
import os
import sys

import numpy as np


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--stride", type=int, default=8)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(os.path.abspath(args.gguf))
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        ids = tok(build_text(args.tokens * 8), add_special_tokens=False)["input_ids"][: args.tokens]
    except Exception as e:  # the logits check stands without real text: fixed pseudo-random ids
        print(f"tokenizer unavailable ({e}); using seeded random token ids", file=sys.stderr)
        ids = np.random.default_rng(2048).integers(0, model.config.vocab_size, args.tokens).tolist()
    if len(ids) < args.tokens:
        sys.exit(f"prompt too short: {len(ids)} tokens")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    with torch.no_grad():
        logits = model(torch.tensor([ids], device=device)).logits[0].float().cpu().numpy()
    positions = list(range(0, len(ids), args.stride))
    if positions[-1] != len(ids) - 1:
        positions.append(len(ids) - 1)

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "tokens.txt"), "w") as f:
        f.write(" ".join(str(t) for t in ids) + "\n")
    with open(os.path.join(args.out_dir, "positions.txt"), "w") as f:
        f.write(" ".join(str(p) for p in positions) + "\n")
    np.ascontiguousarray(logits[positions], dtype="<f4").tofile(os.path.join(args.out_dir, "logits.f32"))
    print(f"transformers {len(ids)} tokens on {device}: vocab {logits.shape[1]}, "
          f"{len(positions)} positions written to {args.out_dir}")


if __name__ == "__main__":
    main()
