#!/usr/bin/env python3
"""Reads a single-prompt headcal atlas with h5py alone (no headcal code) and checks its layout.

Usage: check_atlas_h5py.py ATLAS LAYERS HEADS TOKENS MAP_SIZE RECORDED
  RECORDED: comma-separated layer indices expected in /recorded_layers.
Exit 0 when every check passes, 1 with a message otherwise, 77 when h5py/numpy are missing
(the test treats 77 as "skipped").
"""
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # the calling test skips
    print(f"skip: {e}")
    sys.exit(77)


def fail(msg):
    print(f"check_atlas_h5py: {msg}")
    sys.exit(1)


def main():
    path, layers, heads, tokens, msize, recorded = sys.argv[1:7]
    layers, heads, tokens, msize = int(layers), int(heads), int(tokens), int(msize)
    recorded = [int(x) for x in recorded.split(",")]
    with h5py.File(path, "r") as f:
        fmt = f.attrs["format"]
        fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
        if fmt != "headcal-atlas":
            fail(f"format attribute {fmt!r}")
        if int(f.attrs["version"]) != 2:
            fail(f"version {f.attrs['version']}")
        meta = f["meta"].attrs
        for key, want in (("layers", layers), ("heads", heads), ("tokens", tokens), ("map_size", msize)):
            if int(meta[key]) != want:
                fail(f"meta {key} = {meta[key]}, expected {want}")
        for key in ("model_fingerprint", "arch", "prompt_sha256", "tool_version", "kv_heads", "head_dim",
                    "block_size", "last_q", "v_sink", "s_local"):
            if key not in meta:
                fail(f"meta lacks {key}")
        prompt = f["prompt_00"]  # single-prompt atlas: its one prompt
        for key in ("name", "description", "sha256", "weight", "tokens", "map_size"):
            if key not in prompt.attrs:
                fail(f"prompt_00 lacks attribute {key}")
        if prompt["tokens"].shape != (tokens,) or prompt["tokens"].dtype != np.int32:
            fail(f"tokens {prompt['tokens'].shape} {prompt['tokens'].dtype}")
        got = list(f["recorded_layers"][...])
        if got != recorded:
            fail(f"recorded_layers {got}, expected {recorded}")
        # statistics = 0 (record --no-statistics): no colmass, diagmass or map; absent: they are there
        statistics = int(meta["statistics"]) if "statistics" in meta else 1
        for layer in recorded:
            g = prompt[f"layer_{layer:02d}"]
            if not statistics:
                if any(name in g for name in ("colmass", "diagmass", "map")):
                    fail(f"layer {layer} holds statistics in an atlas recorded without them")
            else:
                if g["colmass"].shape != (heads, tokens) or g["colmass"].dtype != np.float32:
                    fail(f"layer {layer} colmass {g['colmass'].shape}")
                if g["diagmass"].shape != (heads, tokens):
                    fail(f"layer {layer} diagmass {g['diagmass'].shape}")
                if g["map"].shape != (heads, msize, msize):
                    fail(f"layer {layer} map {g['map'].shape}")
            cand = g["candidates"][...]
            names = set(cand.dtype.names)
            want = {"head", "pattern", "p1", "p2", "cost", "density", "recall", "out_err"}
            if names != want:
                fail(f"layer {layer} candidate fields {sorted(names)}")
            mapping = h5py.check_enum_dtype(g["candidates"].dtype["pattern"])
            if mapping != {"dense": 0, "a_shape": 1, "vertical_slash": 2, "block_sparse": 3}:
                fail(f"pattern enum {mapping}")
            if len(cand) == 0 or cand["head"].min() < 0 or cand["head"].max() >= heads:
                fail(f"layer {layer} candidate heads out of range")
            if not np.all((cand["recall"] >= 0) & (cand["recall"] <= 1.01)):
                fail(f"layer {layer} recall out of range")
            dense = cand[cand["pattern"] == 0]
            if len(dense) != heads or not np.allclose(dense["density"], 1.0):
                fail(f"layer {layer}: expected one dense row per head with density 1")
    print("check_atlas_h5py: ok")


if __name__ == "__main__":
    main()
