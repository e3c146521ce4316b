#!/usr/bin/env python3
"""Markdown tables for docs/PERFORMANCE.md from one run's JSON files.

Usage: perf_tables.py SDPA.json DENSE.json SPARSE.json
  SDPA.json   bench/sdpa_baseline.py --json output
  DENSE.json  headcal bench dense  --baseline SDPA.json --json output
  SPARSE.json headcal bench sparse --baseline SDPA.json --json output
All three must come from the same device command (the ratios compare timings of one run).
"""
import json
import os
import sys


def fail(message):
    """Bad input: the message, prefixed with the script's name, on stderr; exit code 2."""
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(2)


def load(path, kind=None):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        fail(f"{path}: {e}")
    if "results" not in data or (kind and data.get("kind") != kind):
        fail(f"{path}: not a {kind or 'sdpa'} benchmark file")
    return data


def sdpa_point(sdpa, n, d, heads, backend):
    """The SDPA file's point for (n, d, heads, backend), or None."""
    for p in sdpa["results"]:
        if (p["n"], p["d"], p["heads"], p["backend"]) == (n, d, heads, backend):
            return p
    return None


def sdpa_ms(sdpa, n, d, heads, backend):
    p = sdpa_point(sdpa, n, d, heads, backend)
    return p["ms"] if p else None


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


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def kv_tbps(r):
    """K and V bytes the loaders bring into shared memory per second of kernel time (64 keys per
    stage, bf16/fp16), from the stage walk's loaded stages."""
    if "loaded_stages" not in r:
        return None
    return r["loaded_stages"] * 64 * r["d"] * 2 * 2 / (r["kernel_ms"] * 1e-3) / 1e12


def best_dense_ms(r, dense_point):
    """The run's fastest dense attention at the point's shape: cuDNN (from the sparse file's
    baseline), our dense kernel, or our dense index through the index-driven kernel."""
    times = [dense_point["ms"], dense_point["via_index_ms"]]
    if r.get("sdpa_cudnn_ms"):
        times.append(r["sdpa_cudnn_ms"])
    return min(times)


def pair_fraction(r):
    """The point's computed pairs (kernel block granularity) over the dense causal pairs."""
    return r["tflops_kernel"] * r["kernel_ms"] * 1e9 / (2.0 * r["n"] ** 2 * r["d"] * r["heads"])


def thr_if(r, attention_ms, build_ms):
    """thr/cuDNN the point would have had its attention taken attention_ms and its build build_ms
    (the work over cuDNN's rate, thr x total, is the point's own whatever the times)."""
    return r["throughput_vs_cudnn"] * r["total_ms"] / (attention_ms + build_ms)


def ceiling(r, dense_point):
    """thr/cuDNN had the attention itself taken no longer than the run's fastest dense attention
    takes for the same pairs (best_dense_ms: no sparse kernel overhead at all, every stage full),
    with the index build as measured. Below the target, no attention kernel reaches it with this
    build."""
    return thr_if(r, pair_fraction(r) * best_dense_ms(r, dense_point), r["build_ms"])


def bounds_table(dense, sparse, target=0.7):
    """How far each sparse point is from the index-driven kernel's own best case: the dense index
    (every tile full, every tile shared by a work tile's row blocks) through the same kernel, from
    `headcal bench dense` ("via index"). "at the dense index's rate" is the time the point's pairs
    would take at that rate; the next two columns are thr/cuDNN had the kernel run at that rate,
    with the index build as measured and with a free build. "ceiling" is thr/cuDNN with the pairs
    at the run's fastest dense rate and the build as measured (`ceiling`). Stage fill and blocks
    per stage come from the kernel's stage walk (kernels/attention/stage_walk.h; "-" in files from
    before it). After the table, the points whose ceiling is below the target."""
    points = {(r["n"], r["d"], r["heads"]): r for r in dense["results"]}
    out = ["| N | d | config | thr/cuDNN | kernel ms | at the dense index's rate ms | kernel / that | "
           "thr/cuDNN at that rate | ... and no build | ceiling | stage fill | blocks per stage | "
           "K/V into shared memory TB/s |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    build_bound = []
    for r in sparse["results"]:
        key = (r["n"], r["d"], r["heads"])
        if key not in points or "throughput_vs_cudnn" not in r:
            continue
        rate_ms = pair_fraction(r) * points[key]["via_index_ms"]
        top = ceiling(r, points[key])
        if top < target:
            build_bound.append(f"{r['config']} at {r['n']}, d = {r['d']} ({top:.2f})")
        out.append(f"| {r['n']} | {r['d']} | {r['config']} | {r['throughput_vs_cudnn']:.2f} | {r['kernel_ms']:.4g} | "
                   f"{rate_ms:.4g} | {r['kernel_ms'] / rate_ms:.2f} | {thr_if(r, rate_ms, r['build_ms']):.2f} | "
                   f"{thr_if(r, rate_ms, 0):.2f} | {top:.2f} | "
                   f"{fmt(r.get('stage_fill'), '.2f')} | {fmt(r.get('blocks_per_stage'), '.2f')} | "
                   f"{fmt(kv_tbps(r), '.2f')} |")
    out.append("")
    out.append(f"Ceiling below {target}: " + ("; ".join(build_bound) if build_bound else "none") + ".")
    return "\n".join(out)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sdpa = load(sys.argv[1])
    dense = load(sys.argv[2], "dense")
    sparse = load(sys.argv[3], "sparse")
    print(f"Device: {sdpa.get('device')} (PyTorch {sdpa.get('torch')})\n")
    print(dense_table(sdpa, dense))
    print()
    print(sparse_table(sparse))
    print()
    print(bounds_table(dense, sparse))


if __name__ == "__main__":
    main()
