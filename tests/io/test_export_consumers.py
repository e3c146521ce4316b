"""`headcal export` files read by the consumers' own loading logic.

Two loaders are re-implemented here from the consumers' code, with what they accept, raise on and
clamp, and what each head then runs at a prompt of L tokens:
- MInference (HF patch, `config_path`): the JSON list is loaded whole; layer `l` is `config[l]`
  (IndexError when missing); a head is `config[l].get(str(h), ("vertical_and_slash", 1000, 6096, 1))`
  unpacked into 4 values; the type picks a kernel from a dict (KeyError for an unknown type).
  vertical_and_slash keeps min(L, max(v, 30)) columns and min(L, max(s, 50)) diagonals, the first 30
  columns and the nearest 100 diagonals forced, estimated from the last 64 queries; stream_llm keeps
  the first n_init keys and a window of n_local; block_sparse ignores its parameters and keeps the
  top min(100, L // 64) 64-key blocks.
- vLLM <= 0.10.2 dual-chunk attention: only when config.json has `dual_chunk_attention_config` and
  the model type's attention passes it on (qwen2, qwen2_moe, qwen3, qwen3_moe);
  `sparse_attention_config.json` in the model folder is loaded into it (sparse enabled when present);
  each layer becomes `{int(k): v}` (ValueError for a non-integer key) and every head of the rank is
  looked up (KeyError when missing); at prefill, sparse only when the prompt is longer than
  `sparse_attention_threshold` (32768), every head must be vertical_and_slash (assert), a v of 30
  becomes 130, s and v are cut to L, the first 30 columns and nearest 100 diagonals forced, the
  estimate from the last `sparse_attention_last_q` (64) queries.
The tests run the built `headcal export` on hand-made profiles and on every shipped one, load what it
wrote, and check that every head means there what it means in headcal, or that export refused it.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = sorted(os.path.join(ROOT, "profiles", d, "profile.yaml") for d in os.listdir(os.path.join(ROOT, "profiles"))
                 if os.path.isfile(os.path.join(ROOT, "profiles", d, "profile.yaml")))


def headcal_bin():
    for path in (os.environ.get("HEADCAL_BIN"), os.path.join(ROOT, "build", "headcal")):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


# ----- what a head means in headcal, as the set it computes at L tokens ---------------------------

def headcal_meaning(head, L, defaults=(30, 100, 64)):
    """head: dict with pattern and parameters as in the profile."""
    v_sink, s_local, last_q = defaults
    pat = head["pattern"]
    if pat == "dense":
        return ("dense",)
    if pat == "a_shape":
        return ("a_shape", head["sink"], head["local"])
    if pat == "block_sparse":
        return ("blocks", min(head["k"], L // 64))
    v, s = min(L, head["v"]), min(L, head["s"])
    if v >= L and s >= L:
        return ("dense",)
    return ("vs", v, s, min(v_sink, L), min(s_local, L), last_q)


# ----- MInference's loader and what it runs -------------------------------------------------------

def minference_load(path, num_layers, num_heads, L):
    with open(path) as f:
        config = json.load(f)  # models_patch.py: attn_kwargs["best_pattern"] = json.load(f)
    runs = {}
    for layer in range(num_layers):
        layer_config = config[layer]  # IndexError: a missing layer
        for h in range(num_heads):
            ty, v, s, _ = layer_config.get(str(h), ("vertical_and_slash", 1000, 6096, 1))
            kernel = {"stream_llm": "stream_llm", "vertical_and_slash": "vs", "block_sparse": "blocks"}[ty]
            if kernel == "blocks":
                runs[(layer, h)] = ("blocks", min(100, L // 64))
                continue
            if not isinstance(v, int) or not isinstance(s, int):
                raise TypeError("torch.topk / slicing need integer sizes: %r, %r" % (v, s))
            if kernel == "stream_llm":
                runs[(layer, h)] = ("a_shape", v, s)
                continue
            v, s = min(L, max(v, 30)), min(L, max(s, 50))
            runs[(layer, h)] = ("dense",) if v >= L and s >= L else ("vs", v, s, min(30, L), min(100, L), 64)
    return runs


# ----- vLLM 0.10.2's dual-chunk loader and what it runs ------------------------------------------

VLLM_DUAL_CHUNK_TYPES = ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe")


def vllm_dual_chunk_load(model_dir, num_layers, num_heads, L, tp_size=1):
    """Per head what runs at an L-token prefill; None when the model runs no sparse attention."""
    with open(os.path.join(model_dir, "config.json")) as f:
        hf = json.load(f)
    if "dual_chunk_attention_config" not in hf or hf.get("model_type") not in VLLM_DUAL_CHUNK_TYPES:
        return None
    sparse_path = os.path.join(model_dir, "sparse_attention_config.json")
    sparse = {}
    if os.path.exists(sparse_path):
        with open(sparse_path) as f:
            sparse = json.load(f)
    dca = dict(hf["dual_chunk_attention_config"])
    if sparse:
        dca["sparse_attention_config"] = sparse
        dca.setdefault("sparse_attention_enabled", True)
    if not dca.get("sparse_attention_config"):
        return None
    threshold = dca.get("sparse_attention_threshold", 32768)
    last_q = dca.get("sparse_attention_last_q", 64)
    heads_per_rank = num_heads // tp_size
    per_layer = []
    for layer in range(num_layers):
        by_int = {int(i): j for i, j in dca["sparse_attention_config"][layer].items()}
        for rank in range(tp_size):
            start = heads_per_rank * rank
            per_layer.append((layer, start, [by_int[i] for i in range(start, start + heads_per_rank)]))
    runs = {}
    for layer, start, entries in per_layer:
        for i, (ty, v, s, _) in enumerate(entries):
            if not (dca.get("sparse_attention_enabled") and L > threshold):
                runs[(layer, start + i)] = ("dense",)
                continue
            assert ty == "vertical_and_slash", "only support slash mode"
            if v == 30:
                v += 100
            v, s = min(int(v), L), min(int(s), L)
            runs[(layer, start + i)] = ("dense",) if v >= L and s >= L else ("vs", v, s, 30, 100, last_q)
    return runs


# ----- profiles -----------------------------------------------------------------------------------

HEAD_LINE = re.compile(r"^\s*- \{(.*)\}\s*$")


def read_heads(profile_path):
    """(layers, heads, N, {(layer, head): head dict}) from a profile's flow-map head lines."""
    text = open(profile_path).read()
    layers = int(re.search(r"^\s+layers: (\d+)$", text, re.M).group(1))
    heads = int(re.search(r"^\s+heads: (\d+)$", text, re.M).group(1))
    n = int(re.search(r"^\s+tokens: (\d+)$", text, re.M).group(1))
    out = {}
    for line in text.splitlines():
        m = HEAD_LINE.match(line)
        if not m or "pattern:" not in line:
            continue
        d = {}
        for part in m.group(1).split(", "):
            key, value = part.split(": ", 1)
            d[key] = value if key == "pattern" else float(value) if "." in value else int(value)
        out[(d["layer"], d["head"])] = d
    return layers, heads, n, out


def write_profile(path, arch, tokens, heads, layers=1, defaults="{block: 64, last_q: 64, v_sink: 30, s_local: 100}"):
    """heads: one parameter string per head of every layer, e.g. 'pattern: a_shape, sink: 64, local: 512'."""
    lines = [
        "format: headcal-profile", "version: 1",
        "model:", "  name: hand-made", "  arch: %s" % arch, "  layers: %d" % layers, "  heads: %d" % len(heads),
        "  kv_heads: 1", "  head_dim: 64", "  fingerprint: fp",
        "calibration:", "  prompt: hand-made", "  tokens: %d" % tokens, "  sha256: none",
        "  budget: {mode: global-density, value: 0.3}", "  achieved_density: 0.3", "  mean_recall: 0.9",
        "  tool_version: test", "defaults: %s" % defaults, "heads:",
    ]
    for layer in range(layers):
        for h, params in enumerate(heads):
            scores = "recall: 1, density: 1, out_err: 0" if "dense" in params else "recall: 0.9, density: 0.2, out_err: 0.01"
            lines.append("  - {layer: %d, head: %d, %s, %s}" % (layer, h, params, scores))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def printed_block(stdout):
    """The dual_chunk_attention_config block export prints, as a dict."""
    m = re.search(r'"dual_chunk_attention_config": (\{.*?\n\s*\})', stdout, re.S)
    assert m, stdout
    return json.loads(m.group(1))


@unittest.skipIf(headcal_bin() is None, "no built headcal (build/headcal or HEADCAL_BIN)")
class ExportConsumers(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="headcal-export-consumers-")
        self.addCleanup(shutil.rmtree, self.dir)

    def export(self, *args):
        return subprocess.run([headcal_bin(), "export", *args], capture_output=True, text=True)

    def assert_same_meaning(self, profile, runs, lengths):
        layers, heads, n, by_head = read_heads(profile)
        for L, r in zip(lengths, runs):
            for key, head in by_head.items():
                self.assertEqual(r[key], headcal_meaning(head, L), "head %s at L = %d" % (key, L))

    # MInference -----------------------------------------------------------------------------------

    def test_minference_runs_an_honest_profile_as_calibrated(self):
        profile = os.path.join(self.dir, "p.yaml")
        write_profile(profile, "llama", 8192, ["pattern: a_shape, sink: 64, local: 512",
                                               "pattern: vertical_slash, v: 1000, s: 800",
                                               "pattern: vertical_slash, v: 30, s: 100",
                                               "pattern: block_sparse, k: 100"], layers=2)
        out = os.path.join(self.dir, "p.json")
        r = self.export(profile, "--format", "minference", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("would not run", r.stderr)
        runs = [minference_load(out, 2, 4, L) for L in (8192, 65536)]
        self.assert_same_meaning(profile, runs, (8192, 65536))

    def test_minference_changes_are_refused_then_forced_and_are_what_the_loader_runs(self):
        profile = os.path.join(self.dir, "p.yaml")
        write_profile(profile, "llama", 8192, ["pattern: dense", "pattern: block_sparse, k: 8",
                                               "pattern: vertical_slash, v: 1000, s: 800"])
        out = os.path.join(self.dir, "p.json")
        r = self.export(profile, "--format", "minference", "-o", out)
        self.assertEqual(r.returncode, 2)
        self.assertFalse(os.path.exists(out))
        self.assertIn("p.yaml", r.stderr)
        self.assertRegex(r.stderr, r"\n\s+0\s+0\s+dense\s+vertical_and_slash\(8192, 8192\)")
        self.assertRegex(r.stderr, r"\n\s+0\s+1\s+block_sparse\(k=8\)\s+block_sparse\(k=100\)")
        self.assertNotRegex(r.stderr, r"\n\s+0\s+2\s")  # the vertical_slash head runs as it is

        r = self.export(profile, "--format", "minference", "--force", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("block_sparse(k=8)", r.stderr)  # the table is printed with --force too
        _, _, _, heads = read_heads(profile)
        at_n, beyond = minference_load(out, 1, 3, 8192), minference_load(out, 1, 3, 65536)
        # At its calibration length the dense stand-in is dense; beyond it, it is not.
        self.assertEqual(at_n[(0, 0)], ("dense",))
        self.assertNotEqual(beyond[(0, 0)], headcal_meaning(heads[(0, 0)], 65536))
        # k = 8 runs as 100 blocks.
        self.assertEqual(at_n[(0, 1)], ("blocks", 100))
        self.assertNotEqual(at_n[(0, 1)], headcal_meaning(heads[(0, 1)], 8192))
        self.assertEqual(at_n[(0, 2)], headcal_meaning(heads[(0, 2)], 8192))

    def test_shipped_profile_forced_table_counts_the_heads_minference_changes(self):
        self.assertGreaterEqual(len(SHIPPED), 2)
        for shipped in SHIPPED:
            with self.subTest(profile=shipped):
                out = os.path.join(self.dir, "shipped.json")
                self.assertEqual(self.export(shipped, "--format", "minference", "-o", out).returncode, 2)
                r = self.export(shipped, "--format", "minference", "--force", "-o", out)
                self.assertEqual(r.returncode, 0, r.stderr)
                layers, heads, n, by_head = read_heads(shipped)
                listed = sum(int(c) for c in re.findall(r": (\d+) head\(s\)\n", r.stderr))
                differ = set()
                for L in (n, 4 * n):
                    runs = minference_load(out, layers, heads, L)
                    differ |= {k for k, h in by_head.items() if runs[k] != headcal_meaning(h, L)}
                self.assertGreater(len(differ), 0)
                self.assertEqual(listed, len(differ))

    # vLLM dual-chunk ------------------------------------------------------------------------------

    def model_dir(self, model_type):
        d = os.path.join(self.dir, "model")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump({"model_type": model_type, "num_hidden_layers": 2, "num_attention_heads": 4}, f)
        return d

    def add_block(self, model_dir, stdout):
        path = os.path.join(model_dir, "config.json")
        with open(path) as f:
            hf = json.load(f)
        hf["dual_chunk_attention_config"] = printed_block(stdout)
        with open(path, "w") as f:
            json.dump(hf, f)

    def test_dual_chunk_honest_profile_loads_in_vllm_and_means_the_same(self):
        profile = os.path.join(self.dir, "p.yaml")
        write_profile(profile, "qwen2", 65536, ["pattern: vertical_slash, v: 1000, s: 800",
                                                "pattern: vertical_slash, v: 31, s: 100",
                                                "pattern: vertical_slash, v: 4000, s: 2000",
                                                "pattern: vertical_slash, v: 200, s: 6000"], layers=2)
        d = self.model_dir("qwen2")
        r = self.export(profile, "--format", "dual-chunk", d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("vLLM <= 0.10.2", r.stdout)
        self.assertIn("SGLang <= 0.5.19", r.stdout)
        written = json.load(open(os.path.join(d, "sparse_attention_config.json")))
        self.assertEqual(len(written), 2)
        self.assertEqual(sorted(written[0], key=int), [str(h) for h in range(4)])  # every head, int keys
        self.assertIsNone(vllm_dual_chunk_load(d, 2, 4, 65536))  # nothing before the block is added
        self.add_block(d, r.stdout)
        runs = [vllm_dual_chunk_load(d, 2, 4, L, tp) for L, tp in ((65536, 1), (131072, 2))]
        self.assert_same_meaning(profile, runs, (65536, 131072))

    def test_dual_chunk_refusals(self):
        d = self.model_dir("qwen2")
        cases = [
            # (arch, tokens, heads, expected text, forced file loads to the changed meaning)
            ("qwen2", 65536, ["pattern: vertical_slash, v: 30, s: 800"], "v = 30 runs as 130", True),
            ("qwen2", 8192, ["pattern: vertical_slash, v: 1000, s: 800"], "sparse_attention_threshold = 32768", True),
            ("llama", 65536, ["pattern: vertical_slash, v: 1000, s: 800"], "qwen2, qwen2_moe, qwen3, qwen3_moe", True),
            ("qwen2", 65536, ["pattern: dense"], "dense up to 65536 tokens only", True),
            ("qwen2", 65536, ["pattern: a_shape, sink: 64, local: 512"], "not vertical_slash", False),
            ("qwen2", 65536, ["pattern: block_sparse, k: 100"], "not vertical_slash", False),
        ]
        target = os.path.join(d, "sparse_attention_config.json")
        for arch, tokens, heads, text, forceable in cases:
            with self.subTest(arch=arch, tokens=tokens, heads=heads):
                if os.path.exists(target):
                    os.remove(target)
                profile = os.path.join(self.dir, "p.yaml")
                write_profile(profile, arch, tokens, heads)
                r = self.export(profile, "--format", "dual-chunk", d)
                self.assertEqual(r.returncode, 2)
                self.assertIn(text, r.stderr)
                self.assertFalse(os.path.exists(target))
                r = self.export(profile, "--format", "dual-chunk", d, "--force")
                self.assertEqual(r.returncode, 0 if forceable else 2, r.stderr)
                self.assertEqual(os.path.exists(target), forceable)
                if not forceable:
                    continue
                self.add_block(d, r.stdout)
                with open(os.path.join(d, "config.json")) as f:
                    hf = json.load(f)
                hf["model_type"] = arch
                with open(os.path.join(d, "config.json"), "w") as f:
                    json.dump(hf, f)
                runs = vllm_dual_chunk_load(d, 1, 1, 2 * tokens if tokens > 32768 else tokens)
                L = 2 * tokens if tokens > 32768 else tokens
                _, _, _, by_head = read_heads(profile)
                meaning = headcal_meaning(by_head[(0, 0)], L)
                if runs is None:  # the model type never reads the file: dense
                    self.assertNotEqual(meaning, ("dense",))
                else:
                    self.assertNotEqual(runs[(0, 0)], meaning)

    def test_shipped_profile_cannot_go_to_dual_chunk(self):
        for shipped in SHIPPED:
            with self.subTest(profile=shipped):
                d = self.model_dir("qwen2")
                r = self.export(shipped, "--format", "dual-chunk", d, "--force")
                self.assertEqual(r.returncode, 2)
                self.assertIn("not vertical_slash", r.stderr)
                self.assertFalse(os.path.exists(os.path.join(d, "sparse_attention_config.json")))

    def test_loaders_raise_as_the_consumers_do(self):
        # The re-implemented loaders fail where the consumers fail: a missing layer, a missing
        # head (vLLM), an unknown type (MInference), a non-integer key (vLLM).
        path = os.path.join(self.dir, "c.json")
        json.dump([{"0": ["vertical_and_slash", 1000, 800, 1]}], open(path, "w"))
        with self.assertRaises(IndexError):
            minference_load(path, 2, 1, 8192)
        self.assertEqual(minference_load(path, 1, 2, 65536)[(0, 1)], ("vs", 1000, 6096, 30, 100, 64))
        json.dump([{"0": ["dilated", 1, 2, 1]}], open(path, "w"))
        with self.assertRaises(KeyError):
            minference_load(path, 1, 1, 8192)
        d = self.model_dir("qwen2")
        self.add_block(d, '"dual_chunk_attention_config": {\n  "chunk_size": 262144\n  }')
        sparse = os.path.join(d, "sparse_attention_config.json")
        json.dump([{"0": ["vertical_and_slash", 1000, 800, 1]}], open(sparse, "w"))
        with self.assertRaises(KeyError):
            vllm_dual_chunk_load(d, 1, 2, 65536)
        json.dump([{"x": ["vertical_and_slash", 1000, 800, 1]}], open(sparse, "w"))
        with self.assertRaises(ValueError):
            vllm_dual_chunk_load(d, 1, 1, 65536)
        json.dump([{"0": ["stream_llm", 64, 512, 1]}], open(sparse, "w"))
        with self.assertRaises(AssertionError):
            vllm_dual_chunk_load(d, 1, 1, 65536)
        self.assertEqual(vllm_dual_chunk_load(d, 1, 1, 8192), {(0, 0): ("dense",)})  # below the threshold


if __name__ == "__main__":
    unittest.main()
