#!/usr/bin/env bash
# The main job on a fresh machine: set up, fetch SmolLM2-135M-Instruct, calibrate it and print the
# profile summary. On the GPU when there is one: the default prompt set (six prompts of prose, code
# and retrieval) at 8K tokens, budget 0.3 of dense, as the shipped profile; else on the CPU, one
# 1K-token kv_retrieval prompt (six would take about ten minutes on two cores; at 1K sparsity has
# less room: budget 0.5).
# Usage: scripts/run-demo.sh [OUT_DIR]   (default: demo-out/)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "demo: fetching SmolLM2-135M-Instruct (scripts/get-model.sh)" >&2
model="$(scripts/get-model.sh)"
out="${1:-demo-out}"
mkdir -p "$out"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  device=cuda length=8192 budget=0.3 prompt=(--prompt-set prompts/default-calibration.yaml)
  what="the default prompt set"
else
  device=cpu length=1024 budget=0.5 prompt=(--generate kv_retrieval --seed 1)
  what="a kv_retrieval prompt"
fi
echo "demo: calibrating on the $device: $what at $length tokens, budget $budget of dense attention's cost" >&2
"${BUILD_DIR:-build}/headcal" calibrate --model "$model" "${prompt[@]}" --length "$length" \
  --global-density "$budget" --device "$device" -o "$out/smollm2-profile.yaml"
