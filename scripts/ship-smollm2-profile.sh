#!/usr/bin/env bash
# Calibrates the shipped SmolLM2 profile on a GPU machine and validates it on prompts that were not
# used in calibration. Writes profile.yaml, minference.json and the validation records into OUT_DIR.
# Usage: scripts/ship-smollm2-profile.sh HEADCAL_BIN MODEL_GGUF OUT_DIR
set -euo pipefail
bin="$1" model="$2" out="$3"
mkdir -p "$out"
"$bin" calibrate --model "$model" --generate kv_retrieval --length 8192 --seed 1 --global-density 0.2 \
  --device cuda --out "$out/profile.yaml" --atlas "$out/calibration.atlas.h5" | tee "$out/calibrate.txt"
"$bin" export "$out/profile.yaml" --format minference --out "$out/minference.json"
# Unseen prompts: another kv_retrieval draw, a passkey prompt, and a repeated-text prompt.
"$bin" validate --model "$model" --profile "$out/profile.yaml" --generate kv_retrieval --length 8192 --seed 2 \
  --device cuda --json "$out/validation-kv_retrieval-seed2.json" | tee "$out/validation-kv_retrieval-seed2.txt"
"$bin" validate --model "$model" --profile "$out/profile.yaml" --generate passkey --length 8192 --seed 3 \
  --device cuda --json "$out/validation-passkey-seed3.json" | tee "$out/validation-passkey-seed3.txt"
