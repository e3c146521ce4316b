#!/usr/bin/env bash
# Calibrates a shipped profile on a GPU machine over the default prompt set and validates it on the
# held-out set (no text or seed of any calibration set). Writes profile.yaml, minference.json (and
# minference-changes.txt, the table of the heads MInference runs differently) and the validation
# record into OUT_DIR.
# Usage: scripts/ship-profile.sh HEADCAL_BIN MODEL_GGUF OUT_DIR LENGTH DENSITY [WEIGHTS_DENSITY]
#   profiles/smollm2-135m-instruct:        LENGTH 8192,  DENSITY 0.3, WEIGHTS_DENSITY 0.2
#   profiles/qwen2.5-coder-0.5b-instruct:  LENGTH 32768, DENSITY 0.2, WEIGHTS_DENSITY 0.15
# With WEIGHTS_DENSITY, the layer weights (OUT_DIR/layer-weights.yaml) are measured by `headcal
# sensitivity` on the calibration set with the profile searched at that density, and the shipped
# profile is searched with them (search --layer-weights).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 5 ] || [ $# -eq 6 ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
bin="$1" model="$2" out="$3" length="$4" density="$5" weights_density="${6:-}"
set_args=(--model "$model" --prompt-set prompts/default-calibration.yaml --length "$length" --device cuda)
mkdir -p "$out"
"$bin" record "${set_args[@]}" --out "$out/calibration.atlas.h5" | tee "$out/calibrate.txt"
weights=()
if [ -n "$weights_density" ]; then
  "$bin" search --atlas "$out/calibration.atlas.h5" --global-density "$weights_density" --objective mixed:1 \
    --out "$out/sensitivity-profile.yaml" --quiet
  "$bin" sensitivity "${set_args[@]}" --profile "$out/sensitivity-profile.yaml" --out "$out/layer-weights.yaml" |
    tee -a "$out/calibrate.txt"
  weights=(--layer-weights "$out/layer-weights.yaml")
fi
"$bin" search --atlas "$out/calibration.atlas.h5" --global-density "$density" --objective mixed:1 "${weights[@]}" \
  --out "$out/profile.yaml" | tee -a "$out/calibrate.txt"
# --force: MInference runs the block_sparse heads (k != 100) and the dense ones differently; the
# table of those heads goes to minference-changes.txt.
"$bin" export "$out/profile.yaml" --format minference --force -o "$out/minference.json" 2> "$out/minference-changes.txt"
"$bin" validate --model "$model" --profile "$out/profile.yaml" --prompt-set prompts/held-out.yaml --length "$length" \
  --device cuda --json "$out/validation-held-out.json" | tee "$out/validation-held-out.txt"
