#!/usr/bin/env python3
"""bench/combine_runs.py: per-point medians of repeated rounds and the ratios recomputed from them.
Run by CTest (tests/CMakeLists.txt) from the source root."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "combine_runs.py")


def sdpa(cudnn_ms, flash_ms):
    # 8K tokens, d = 64, H = 9: causal FLOPs 4 N^2 d H / 2
    flops = 4 * 8192 ** 2 * 64 * 9 / 2
    return {"device": "X", "torch": "t", "results": [
        {"n": 8192, "d": 64, "heads": 9, "kv_heads": 3, "backend": b, "ms": ms, "tflops": flops / (ms * 1e-3) / 1e12}
        for b, ms in (("flash", flash_ms), ("cudnn", cudnn_ms))]}


def dense(ms, via_ms):
    flops = 4 * 8192 ** 2 * 64 * 9 / 2
    return {"device": "X", "kind": "dense", "dtype": "bf16", "results": [
        {"n": 8192, "d": 64, "heads": 9, "kv_heads": 3, "ms": ms, "tflops": flops / (ms * 1e-3) / 1e12,
         "via_index_ms": via_ms, "sdpa_flash_ms": 0, "speed_vs_flash": 0, "sdpa_cudnn_ms": 0, "speed_vs_cudnn": 0}]}


def sparse(build, kernel, total, cudnn_ms, config="a_shape(100,800)"):
    pair_flops = 1e9  # the index's pairs x 4 d, the same in every round
    dense_flops = 4 * 8192 ** 2 * 64 * 9 / 2
    return {"device": "X", "kind": "sparse", "results": [
        {"n": 8192, "d": 64, "heads": 9, "kv_heads": 3, "config": config, "density": 0.2,
         "build_ms": build, "kernel_ms": kernel, "total_ms": total,
         "tflops_total": pair_flops / (total * 1e-3) / 1e12, "tflops_kernel": pair_flops / (kernel * 1e-3) / 1e12,
         "dense_ms": 0.2, "speedup_vs_dense": 0.2 / total, "stage_fill": 0.9, "blocks_per_stage": 2.0,
         "sdpa_cudnn_ms": cudnn_ms, "speedup_vs_cudnn": cudnn_ms / total,
         "throughput_vs_cudnn": (pair_flops / total) / (dense_flops / cudnn_ms)}]}


class CombineRuns(unittest.TestCase):
    def run_script(self, rounds, out):
        paths = []
        for i, (s, d, p) in enumerate(rounds):
            for name, data in (("sdpa", s), ("dense", d), ("sparse", p)):
                path = os.path.join(self.tmp, f"{name}_{i}.json")
                with open(path, "w") as f:
                    json.dump(data, f)
                paths.append(path)
        return subprocess.run([sys.executable, SCRIPT, out] + paths, capture_output=True, text=True)

    def setUp(self):
        self._dir = tempfile.TemporaryDirectory()
        self.tmp = self._dir.name

    def tearDown(self):
        self._dir.cleanup()

    def test_medians_and_ratios(self):
        out = os.path.join(self.tmp, "out")
        rounds = [(sdpa(0.25, 0.40), dense(0.22, 0.30), sparse(0.010, 0.080, 0.090, 0.25)),
                  (sdpa(0.27, 0.39), dense(0.21, 0.29), sparse(0.012, 0.081, 0.095, 0.27)),
                  (sdpa(0.24, 0.41), dense(0.23, 0.31), sparse(0.011, 0.079, 0.089, 0.24))]
        r = self.run_script(rounds, out)
        self.assertEqual(r.returncode, 0, r.stderr)
        s = json.load(open(os.path.join(out, "sdpa.json")))
        cudnn = [p for p in s["results"] if p["backend"] == "cudnn"][0]
        self.assertAlmostEqual(cudnn["ms"], 0.25)
        self.assertEqual(s["runs"], 3)
        d = json.load(open(os.path.join(out, "dense.json")))["results"][0]
        self.assertAlmostEqual(d["ms"], 0.22)
        self.assertAlmostEqual(d["via_index_ms"], 0.30)
        self.assertAlmostEqual(d["speed_vs_flash"], 0.40 / 0.22)
        self.assertAlmostEqual(d["speed_vs_cudnn"], 0.25 / 0.22)
        p = json.load(open(os.path.join(out, "sparse.json")))["results"][0]
        self.assertAlmostEqual(p["build_ms"], 0.011)
        self.assertAlmostEqual(p["kernel_ms"], 0.080)
        self.assertAlmostEqual(p["total_ms"], 0.090)
        self.assertAlmostEqual(p["speedup_vs_cudnn"], 0.25 / 0.090)
        # medians, not means: total 0.090 of (0.090, 0.095, 0.089), cuDNN 0.25 of (0.25, 0.27, 0.24)
        # throughput over the pairs at the median total, against cuDNN's at its median time
        dense_flops = 4 * 8192 ** 2 * 64 * 9 / 2
        self.assertAlmostEqual(p["throughput_vs_cudnn"], (1e9 / 0.090) / (dense_flops / 0.25))
        self.assertAlmostEqual(p["stage_fill"], 0.9)

    def test_rounds_with_different_points_are_refused(self):
        rounds = [(sdpa(0.25, 0.40), dense(0.22, 0.30), sparse(0.01, 0.08, 0.09, 0.25)),
                  (sdpa(0.26, 0.39), dense(0.21, 0.29), sparse(0.01, 0.08, 0.09, 0.26, "block_sparse(100)"))]
        r = self.run_script(rounds, os.path.join(self.tmp, "out"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("not hold the same points", r.stderr)

    def test_wrong_file_kind_is_named(self):
        rounds = [(sdpa(0.25, 0.40), sparse(0.01, 0.08, 0.09, 0.25), sparse(0.01, 0.08, 0.09, 0.25))]
        r = self.run_script(rounds, os.path.join(self.tmp, "out"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("dense_0.json: not a dense benchmark file", r.stderr)


if __name__ == "__main__":
    unittest.main()
