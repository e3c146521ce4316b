#!/usr/bin/env python3
"""Markdown tables for docs/PERFORMANCE.md from one run's JSON files.

Usage: perf_tables.py SDPA.json DENSE.json SPARSE.json
  SDPA.json   bench/sdpa_baseline.py --json output
  DENSE.json  headcal bench dense  --baseline SDPA.json --json output
  SPARSE.json headcal bench sparse --baseline SDPA.json --json output
All three must come from the same device command (the ratios compare timings of one run).
"""
import json
import sys


def load(path, kind=None):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"perf_tables.py: {path}: {e}")
    if "results" not in data or (kind and data.get("kind") != kind):
        sys.exit(f"perf_tables.py: {path}: not a {kind or 'sdpa'} benchmark file")
    return data


def sdpa_ms(sdpa, n, d, heads, backend):
    for p in sdpa["results"]:
        if (p["n"], p["d"], p["heads"], p["backend"]) == (n, d, heads, backend):
            return p["ms"]
    return None


def dense_table(sdpa, dense):
    out = ["| N | d | H/Hkv | headcal ms | TF/s | SDPA flash (FA2) ms | headcal vs FA2 | SDPA cuDNN ms | headcal vs cuDNN | via index ms |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in dense["results"]:
        fa2 = sdpa_ms(sdpa, r["n"], r["d"], r["heads"], "flash")
        cudnn = sdpa_ms(sdpa, r["n"], r["d"], r["heads"], "cudnn")
        out.append(f"| {r['n']} | {r['d']} | {r['heads']}/{r['kv_heads']} | {r['ms']:.4g} | {r['tflops']:.1f} | "
                   f"{fa2:.4g} | **{fa2 / r['ms']:.2f}×** | {cudnn:.4g} | {cudnn / r['ms']:.2f}× | {r['via_index_ms']:.4g} |")
    return "\n".join(out)


def sparse_table(sparse):
    out = ["| N | d | config | density | build ms | kernel ms | total ms | TF/s | vs our dense | vs cuDNN time | thr/cuDNN |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sparse["results"]:
        out.append(f"| {r['n']} | {r['d']} | {r['config']} | {r['density']:.3f} | {r['build_ms']:.3g} | "
                   f"{r['kernel_ms']:.4g} | {r['total_ms']:.4g} | {r['tflops_total']:.1f} | "
                   f"{r['speedup_vs_dense']:.2f}× | {r.get('speedup_vs_cudnn', 0):.2f}× | "
                   f"{r.get('throughput_vs_cudnn', 0):.2f} |")
    return "\n".join(out)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sdpa = load(sys.argv[1])
    dense = load(sys.argv[2], "dense")
    sparse = load(sys.argv[3], "sparse")
    print(f"Device: {sdpa.get('device')} (PyTorch {sdpa.get('torch')})\n")
    print(dense_table(sdpa, dense))
    print()
    print(sparse_table(sparse))


if __name__ == "__main__":
    main()
