#!/usr/bin/env python3
"""Reference logits for tests/calib/test_smollm2_logits.cpp, from Hugging Face transformers.

transformers is an implementation independent of headcal: it dequantises the GGUF with gguf-py,
undoes llama.cpp's Q/K permutation itself and runs its own Llama forward in float32. The C++ test
feeds the same token ids (stored here) to headcal's CPU engine and compares the top-k logits.

Usage: make_logits_fixture.py --gguf PATH/SmolLM2-135M-Instruct.Q4_1.gguf --out tests/data/smollm2_logits.json
Needs: torch, transformers, accelerate, gguf, numpy (CUDA is used when available, else CPU).
"""
import argparse
import hashlib
import json
import os
import sys

# A varied English paragraph (no digits, so every byte-level BPE pre-tokenizer splits it alike),
# long enough for ~300 tokens: the last positions attend over a few hundred keys.
TEXT = (
    "The old lighthouse keeper climbed the spiral stairs every evening, counting the worn steps "
    "out of habit rather than need. From the lantern room he could see the fishing boats returning "
    "across the grey water, their hulls heavy with the day's catch, gulls wheeling above them like "
    "scraps of paper caught in the wind. He had kept the light burning through storms that tore "
    "slates from the roof and through calm nights when the sea lay flat as polished glass. "
    "Scientists who visited the island asked him about tides, currents and the migration of seabirds; "
    "children from the village asked whether ghosts lived in the tower. He answered both with the "
    "same patience. In winter the supply boat came only twice a month, so he baked his own bread, "
    "mended his nets and read whatever books the captain left behind: histories of distant empires, "
    "manuals on engine repair, a battered collection of poems about rivers and mountains. "
    "One morning a letter arrived announcing that the light would soon be automated. A machine "
    "would switch the lamp on at dusk and off at dawn, and a technician would inspect it each spring. "
    "The keeper folded the letter carefully, placed it beside the kettle, and went outside to watch "
    "the clouds gather over the western cliffs. Whatever happened next, he thought, the ships would "
    "still need to find their way home, and someone should remember how the light had been kept "
    "when it was tended by hand. That evening he wrote down everything he knew about the island: "
    "where the rocks hid beneath the surface, which winds brought fog, how the birds behaved before "
    "a gale, and why the northern channel was safer than it looked on the charts."
)

N_POSITIONS = 8
TOP_K = 10


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", required=True, help="path of the SmolLM2 GGUF file")
    ap.add_argument("--out", required=True, help="output JSON path")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = os.path.abspath(args.gguf)
    if not os.path.isfile(gguf_path):
        sys.exit(f"{gguf_path}: no such file")
    folder, name = os.path.split(gguf_path)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32,
                                                 attn_implementation="eager")
    model.to(device).eval()

    # The GGUF has no output.weight (tied embeddings): make sure transformers tied them rather
    # than leaving a randomly initialised lm_head.
    from gguf import GGUFReader
    reader = GGUFReader(gguf_path)
    has_output = any(t.name == "output.weight" for t in reader.tensors)
    if not has_output:
        emb = model.get_input_embeddings().weight
        head = model.get_output_embeddings().weight
        if not torch.equal(emb, head):
            sys.exit("transformers did not tie lm_head to the embeddings for this GGUF; fixture would be wrong")

    tokens = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    n = len(tokens)
    if n < 64:
        sys.exit(f"text tokenised to only {n} tokens")
    positions = sorted({round(i * (n - 1) / (N_POSITIONS - 1)) for i in range(N_POSITIONS)})

    with torch.no_grad():
        input_ids = torch.tensor([tokens], dtype=torch.long, device=device)
        logits = model(input_ids=input_ids).logits[0].float().cpu()  # [n, vocab]

    entries = []
    for p in positions:
        row = logits[p]
        values, ids = torch.topk(row, TOP_K)
        entries.append({
            "position": int(p),
            "ids": [int(i) for i in ids],
            "logits": [float(v) for v in values],
            "logsumexp": float(torch.logsumexp(row.double(), dim=0)),
        })

    out = {
        "model_sha256": sha256_file(gguf_path),
        "tokens": [int(t) for t in tokens],
        "positions": [int(p) for p in positions],
        "top_k": TOP_K,
        "entries": entries,
        "note": (f"made by scripts/make_logits_fixture.py with transformers {transformers.__version__}, "
                 f"torch {torch.__version__}, float32, eager attention, device {device}; "
                 f"model file {name}"),
    }
    out_path = os.path.abspath(args.out)
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(tmp, out_path)
    print(f"wrote {out_path}: {n} tokens, positions {positions}")


if __name__ == "__main__":
    main()
