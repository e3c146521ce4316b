#!/usr/bin/env python3
"""Per-point medians of repeated benchmark runs, in the files' own format (for perf_tables.py).

Usage: combine_runs.py OUT_DIR SDPA1.json DENSE1.json SPARSE1.json [SDPA2.json DENSE2.json SPARSE2.json ...]

Each triple is one round of one device command: bench/sdpa_baseline.py, then `headcal bench
dense` and `headcal bench sparse` with --baseline that round's SDPA file. A single run's ratios move
with the machine's state (the same kernels gave 10 to 13 of the 36 sparse points at or above 0.7
from one run to another: cuDNN alone moved by up to 5% between runs), so the rounds are
alternated in one command and every time (ours and PyTorch's alike) is the median over the
rounds; the ratios are recomputed from those medians. Writes OUT_DIR/{sdpa,dense,sparse}.json
with "runs": the number of rounds.
"""
import json
import os
import statistics
import sys

from perf_tables import fail, load, sdpa_point  # bench/, beside this script


def by_key(runs, key):
    """{key(point): [the point in each run]}; every run must hold the same points."""
    points = {}
    first_keys = set(key(p) for p in runs[0]["results"])
    for run in runs:
        if set(key(p) for p in run["results"]) != first_keys:
            fail("the runs do not hold the same points")
        for p in run["results"]:
            points.setdefault(key(p), []).append(p)
    return points


def median(points, field):
    return statistics.median(p[field] for p in points)


def combine_sdpa(runs):
    out = dict(runs[0], results=[], runs=len(runs))
    for points in by_key(runs, lambda p: (p["n"], p["d"], p["heads"], p["backend"])).values():
        flops = points[0]["tflops"] * points[0]["ms"]  # TF/s * ms: the same for every run
        ms = median(points, "ms")
        out["results"].append(dict(points[0], ms=ms, tflops=flops / ms))
    return out


def sdpa_of(sdpa, p, backend):
    s = sdpa_point(sdpa, p["n"], p["d"], p["heads"], backend)
    if s is None:
        fail(f"no SDPA {backend} point for N={p['n']} d={p['d']} H={p['heads']}")
    return s


def combine_dense(runs, sdpa):
    out = dict(runs[0], results=[], runs=len(runs))
    for points in by_key(runs, lambda p: (p["n"], p["d"], p["heads"])).values():
        flops = points[0]["tflops"] * points[0]["ms"]
        ms = median(points, "ms")
        r = dict(points[0], ms=ms, tflops=flops / ms, via_index_ms=median(points, "via_index_ms"))
        fa2, cudnn = sdpa_of(sdpa, r, "flash")["ms"], sdpa_of(sdpa, r, "cudnn")["ms"]
        r.update(sdpa_flash_ms=fa2, speed_vs_flash=fa2 / ms, sdpa_cudnn_ms=cudnn, speed_vs_cudnn=cudnn / ms)
        out["results"].append(r)
    return out


def combine_sparse(runs, sdpa):
    out = dict(runs[0], results=[], runs=len(runs))
    for points in by_key(runs, lambda p: (p["n"], p["d"], p["heads"], p["config"])).values():
        r = dict(points[0])
        flops = r["tflops_total"] * r["total_ms"]  # the pairs' FLOPs, the same index in every run
        for field in ("build_ms", "kernel_ms", "total_ms", "dense_ms"):
            r[field] = median(points, field)
        r.update(tflops_total=flops / r["total_ms"], tflops_kernel=flops / r["kernel_ms"],
                 speedup_vs_dense=r["dense_ms"] / r["total_ms"])
        if "sdpa_cudnn_ms" in r:
            cudnn = sdpa_of(sdpa, r, "cudnn")
            r.update(sdpa_cudnn_ms=cudnn["ms"], speedup_vs_cudnn=cudnn["ms"] / r["total_ms"],
                     throughput_vs_cudnn=r["tflops_total"] / cudnn["tflops"])
        out["results"].append(r)
    return out


def main():
    if len(sys.argv) < 5 or (len(sys.argv) - 2) % 3 != 0:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out_dir, files = sys.argv[1], sys.argv[2:]
    sdpa_runs = [load(f) for f in files[0::3]]
    dense_runs = [load(f, "dense") for f in files[1::3]]
    sparse_runs = [load(f, "sparse") for f in files[2::3]]
    sdpa = combine_sdpa(sdpa_runs)
    combined = {"sdpa": sdpa, "dense": combine_dense(dense_runs, sdpa), "sparse": combine_sparse(sparse_runs, sdpa)}
    os.makedirs(out_dir, exist_ok=True)
    for name, data in combined.items():
        path = os.path.join(out_dir, f"{name}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(data, f, indent=1)
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
