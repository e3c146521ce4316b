#!/usr/bin/env python3
"""bench/quality_table.py: one row per validation record, sorted by method and density, worst
prompts named; bad records exit 2 naming the file. Run by CTest from the source root."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "quality_table.py")


def record(method, density, kls, top1s):
    prompts = [{"name": f"p{i}", "summary": {"mean_kl": kl, "top1_agreement": t}}
               for i, (kl, t) in enumerate(zip(kls, top1s))]
    return {"format": "headcal-validation", "version": 2, "method": method,
            "profile": {"path": f"/x/{method}-{density}.yaml"},
            "summary": {"density": density, "mean_kl": sum(kls) / len(kls), "worst_kl": max(kls),
                        "top1_agreement": sum(top1s) / len(top1s), "worst_top1": min(top1s), "mean_recall": 0.9},
            "prompts": prompts}


class QualityTable(unittest.TestCase):
    def run_script(self, *records):
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for i, r in enumerate(records):
                p = os.path.join(d, f"r{i}.json")
                with open(p, "w") as f:
                    f.write(r if isinstance(r, str) else json.dumps(r))
                paths.append(p)
            return subprocess.run([sys.executable, SCRIPT, *paths], capture_output=True, text=True)

    def test_rows_sorted_and_worst_prompts_named(self):
        out = self.run_script(record("set", 0.3, [0.01, 0.03], [0.97, 0.95]),
                              record("kv", 0.2, [0.2, 0.1], [0.8, 0.9]),
                              record("set", 0.1, [0.05, 0.02], [0.9, 0.96]))
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = [l for l in out.stdout.splitlines() if l.startswith("| kv") or l.startswith("| set")]
        self.assertEqual([r.split("|")[3].strip() for r in rows], ["0.200", "0.100", "0.300"])
        self.assertIn("0.2000 (p0)", rows[0])  # worst KL from p0
        self.assertIn("0.8000 (p0)", rows[0])  # worst top-1 from p0
        self.assertIn("0.0500 (p0)", rows[1])
        self.assertIn("0.9000 (p0)", rows[1])
        self.assertIn("0.0300 (p1)", rows[2])

    def test_sure_top1_column(self):
        with_sure = record("set", 0.2, [0.01, 0.03], [0.97, 0.8])
        with_sure["summary"]["worst_confident_top1"] = 0.991
        out = self.run_script(with_sure, record("kv", 0.2, [0.01], [0.9]))
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = {l.split("|")[1].strip(): l.split("|")[8].strip() for l in out.stdout.splitlines()
                if l.startswith("| kv") or l.startswith("| set")}
        self.assertEqual(rows, {"set": "0.9910", "kv": "—"})

    def test_bad_record_exits_2_naming_the_file(self):
        bad = record("kv", 0.2, [0.1], [0.9])
        bad["version"] = 1
        out = self.run_script(bad)
        self.assertEqual(out.returncode, 2)
        self.assertIn("r0.json", out.stderr)
        out = self.run_script("{not json")
        self.assertEqual(out.returncode, 2)
        self.assertIn("r0.json", out.stderr)


if __name__ == "__main__":
    unittest.main()
