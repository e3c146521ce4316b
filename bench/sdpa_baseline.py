#!/usr/bin/env python3
"""PyTorch SDPA baseline for `headcal bench dense|sparse --baseline FILE`.

Times causal scaled_dot_product_attention (batch 1) with the flash (FlashAttention-2) and cuDNN
backends on the same shapes `headcal bench` uses and writes JSON:
  {"device": ..., "torch": ..., "results": [{"n", "d", "heads", "kv_heads", "backend", "ms", "tflops"}]}
FLOPs = 4 N^2 d H / 2. K/V are given with all H heads (the backends need equal head counts; the
FLOPs are the same as GQA's). Run it in the same device command as headcal: absolute times drift
between machines.
"""
import argparse
import json
import os
import sys


def parse_list(text):
    return [int(x) for x in text.split(",") if x]


def time_ms(fn, seconds):
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def once():
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    first = once()  # warm-up, also sizes the number of runs
    reps = max(3, min(30, int(seconds * 1000.0 / max(first, 1e-3))))
    times = sorted(once() for _ in range(reps))
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="8192,32768,131072")
    ap.add_argument("--d", default="64,128")
    ap.add_argument("--heads", type=int, default=0, help="default: 32 for d=128, 9 for d=64")
    ap.add_argument("--kv-heads", type=int, default=0, help="recorded only (K/V are repeated)")
    ap.add_argument("--json", required=True)
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)]
    results = []
    for d in parse_list(args.d):
        heads = args.heads or (32 if d == 128 else 9)
        kv_heads = args.kv_heads or (args.heads if args.heads else (8 if d == 128 else 3))
        for n in parse_list(args.n):
            q = torch.randn(1, heads, n, d, device="cuda", dtype=torch.bfloat16)
            k = torch.randn_like(q)
            v = torch.randn_like(q)
            flops = 4.0 * n * n * d * heads / 2.0
            for name, backend in backends:
                try:
                    with sdpa_kernel(backend):
                        ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), args.seconds)
                except RuntimeError as e:  # a backend that does not take this shape
                    print(f"sdpa {name} N={n} d={d}: skipped ({str(e).splitlines()[0]})", file=sys.stderr)
                    continue
                tf = flops / (ms * 1e-3) / 1e12
                print(f"sdpa {name:5s} N={n:7d} d={d:3d} H={heads:3d}: {ms:9.3f} ms {tf:7.1f} TF/s", flush=True)
                results.append({"n": n, "d": d, "heads": heads, "kv_heads": kv_heads, "backend": name,
                                "ms": ms, "tflops": tf})
            del q, k, v
            torch.cuda.empty_cache()
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "results": results}
    tmp = args.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
