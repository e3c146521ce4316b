#!/usr/bin/env bash
# Calibrates the shipped SmolLM2 profile on a GPU machine over the default prompt set and validates
# it on the held-out set (no text or seed of any calibration set). Writes profile.yaml,
# minference.json (and minference-changes.txt, the table of the heads MInference runs differently)
# and the validation record into OUT_DIR.
# Usage: scripts/ship-smollm2-profile.sh HEADCAL_BIN MODEL_GGUF OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$1" model="$2" out="$3"
mkdir -p "$out"
"$bin" calibrate --model "$model" --prompt-set prompts/default-calibration.yaml --length 8192 \
  --global-density 0.3 --objective mixed:1 --device cuda -o "$out/profile.yaml" --atlas "$out/calibration.atlas.h5" |
  tee "$out/calibrate.txt"
# --force: MInference runs the block_sparse heads (k != 100) and the dense ones differently; the
# table of those heads goes to minference-changes.txt.
"$bin" export "$out/profile.yaml" --format minference --force -o "$out/minference.json" 2> "$out/minference-changes.txt"
"$bin" validate --model "$model" --profile "$out/profile.yaml" --prompt-set prompts/held-out.yaml --length 8192 \
  --device cuda --json "$out/validation-held-out.json" | tee "$out/validation-held-out.txt"
