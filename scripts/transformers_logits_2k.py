#!/usr/bin/env python3
"""The 2K-token reference of the device check: transformers_logits.py with its defaults
(--tokens 2048) and every 8th position stored unless --stride or --positions says otherwise.
Takes the same arguments as transformers_logits.py.

Usage: transformers_logits_2k.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf --out-dir /tmp/ref
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import transformers_logits  # noqa: E402

if __name__ == "__main__":
    if not any(a.startswith(("--stride", "--positions")) for a in sys.argv[1:]):
        sys.argv[1:1] = ["--stride", "8"]
    transformers_logits.main()
