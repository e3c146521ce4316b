#!/usr/bin/env bash
# Calibrates a shipped profile on a GPU machine over the default prompt set and validates it on the
# held-out set (no text or seed of any calibration set). Writes profile.yaml, minference.json (and
# minference-changes.txt, the table of the heads MInference runs differently) and the validation
# record into OUT_DIR.
# Usage: scripts/ship-profile.sh HEADCAL_BIN MODEL_GGUF OUT_DIR LENGTH DENSITY
#   profiles/smollm2-135m-instruct:        LENGTH 8192,  DENSITY 0.3
#   profiles/qwen2.5-coder-0.5b-instruct:  LENGTH 32768, DENSITY 0.2
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 5 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
bin="$1" model="$2" out="$3" length="$4" density="$5"
mkdir -p "$out"
"$bin" calibrate --model "$model" --prompt-set prompts/default-calibration.yaml --length "$length" \
  --global-density "$density" --objective mixed:1 --device cuda -o "$out/profile.yaml" \
  --atlas "$out/calibration.atlas.h5" | tee "$out/calibrate.txt"
# --force: MInference runs the block_sparse heads (k != 100) and the dense ones differently; the
# table of those heads goes to minference-changes.txt.
"$bin" export "$out/profile.yaml" --format minference --force -o "$out/minference.json" 2> "$out/minference-changes.txt"
"$bin" validate --model "$model" --profile "$out/profile.yaml" --prompt-set prompts/held-out.yaml --length "$length" \
  --device cuda --json "$out/validation-held-out.json" | tee "$out/validation-held-out.txt"
