#!/usr/bin/env python3
"""bench/perf_tables.py: the bounds table's ceiling (thr/cuDNN with the pairs at the run's fastest
dense rate and the build as measured) and the points it names as out of any kernel's reach.
Run by CTest (tests/CMakeLists.txt) from the source root."""
import importlib.util
import os
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "perf_tables.py")
spec = importlib.util.spec_from_file_location("perf_tables", SCRIPT)
perf_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(perf_tables)

N, D, H = 8192, 64, 9
DENSE_FLOPS = 4 * N ** 2 * D * H / 2  # causal


def dense_point(ms, via_ms):
    return {"n": N, "d": D, "heads": H, "kv_heads": 3, "ms": ms, "via_index_ms": via_ms}


def sparse_point(config, pair_fraction, build, kernel, cudnn_ms):
    """A point whose kernel computes pair_fraction of the dense causal pairs (no estimator FLOPs)."""
    flops = pair_fraction * DENSE_FLOPS
    total = build + kernel
    return {"n": N, "d": D, "heads": H, "kv_heads": 3, "config": config, "density": pair_fraction,
            "build_ms": build, "kernel_ms": kernel, "total_ms": total,
            "tflops_total": flops / (total * 1e-3) / 1e12, "tflops_kernel": flops / (kernel * 1e-3) / 1e12,
            "sdpa_cudnn_ms": cudnn_ms, "throughput_vs_cudnn": (flops / total) / (DENSE_FLOPS / cudnn_ms)}


class Ceiling(unittest.TestCase):
    def test_fastest_dense_rate_is_the_bound(self):
        # cuDNN 0.26 ms is the fastest dense attention here (ours 0.30, via the index 0.35):
        # the pairs (a quarter) at that rate take 0.065 ms, plus the 0.05 ms build.
        r = sparse_point("vertical_slash(30,800)", 0.25, 0.05, 0.2, 0.26)
        self.assertAlmostEqual(perf_tables.ceiling(r, dense_point(0.30, 0.35)), 0.25 * 0.26 / (0.25 * 0.26 + 0.05))
        # our dense kernel faster than cuDNN: its rate bounds
        self.assertAlmostEqual(perf_tables.ceiling(r, dense_point(0.20, 0.35)), 0.25 * 0.26 / (0.25 * 0.20 + 0.05))
        # and the dense index through the index-driven kernel, when that is the fastest
        self.assertAlmostEqual(perf_tables.ceiling(r, dense_point(0.30, 0.18)), 0.25 * 0.26 / (0.25 * 0.18 + 0.05))

    def test_table_names_the_build_bound_points(self):
        dense = {"results": [dense_point(0.30, 0.35)]}
        slow_build = sparse_point("vertical_slash(30,800)", 0.25, 0.05, 0.2, 0.26)  # ceiling 0.57
        fast_build = sparse_point("a_shape(100,800)", 0.25, 0.005, 0.2, 0.26)       # ceiling 0.93
        table = perf_tables.bounds_table(dense, {"results": [slow_build, fast_build]})
        last = table.splitlines()[-1]
        self.assertIn("vertical_slash(30,800) at 8192, d = 64 (0.57)", last)
        self.assertNotIn("a_shape", last)
        rows = [line for line in table.splitlines() if line.startswith("| 8192")]
        self.assertEqual(len(rows), 2)
        self.assertEqual(rows[1].split("|")[10].strip(), "0.93")  # the ceiling column
        table = perf_tables.bounds_table(dense, {"results": [fast_build]})
        self.assertTrue(table.endswith("Ceiling below 0.7: none."))


if __name__ == "__main__":
    unittest.main()
