#!/usr/bin/env python3
"""Markdown table of validation records (headcal validate --prompt-set ... --json), one row each,
sorted by method and density: the held-out weighted mean and worst prompt of next-token KL and
top-1 agreement, the worst prompt's top-1 where the dense model is sure of its next token (records
that carry it), mean recall, and the prompt each worst comes from.

Usage: quality_table.py RECORD.json [RECORD.json ...]
Exit 2 with the file named when a record is not a headcal-validation version 2 file.
"""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            j = json.load(f)
    except (OSError, ValueError) as e:
        print(f"quality_table: {path}: {e}", file=sys.stderr)
        sys.exit(2)
    if j.get("format") != "headcal-validation" or j.get("version") != 2:
        print(f"quality_table: {path}: not a headcal-validation version 2 record (validate --prompt-set --json)",
              file=sys.stderr)
        sys.exit(2)
    return j


def worst(j, key, pick):
    best = pick(j["prompts"], key=lambda p: p["summary"][key])
    return best["name"]


def row(path, j):
    s = j["summary"]
    return {
        "method": j.get("method", path),
        "profile": j["profile"]["path"].rsplit("/", 1)[-1],
        "density": s["density"],
        "mean_kl": s["mean_kl"],
        "worst_kl": s["worst_kl"],
        "worst_kl_prompt": worst(j, "mean_kl", max),
        "top1": s["top1_agreement"],
        "worst_top1": s["worst_top1"],
        "worst_top1_prompt": worst(j, "top1_agreement", min),
        "recall": s["mean_recall"],
        "worst_sure_top1": s.get("worst_confident_top1"),
    }


def main(paths):
    if not paths:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    rows = [row(p, load(p)) for p in paths]
    rows.sort(key=lambda r: (r["method"], r["density"]))
    print("| method | profile | density | mean KL | worst KL (prompt) | mean top-1 | worst top-1 (prompt) | "
          "worst top-1 where dense is sure | mean recall |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        sure = "—" if r["worst_sure_top1"] is None else f"{r['worst_sure_top1']:.4f}"
        print(f"| {r['method']} | {r['profile']} | {r['density']:.3f} | {r['mean_kl']:.4f} | "
              f"{r['worst_kl']:.4f} ({r['worst_kl_prompt']}) | {r['top1']:.4f} | "
              f"{r['worst_top1']:.4f} ({r['worst_top1_prompt']}) | {sure} | {r['recall']:.4f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
