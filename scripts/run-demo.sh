#!/usr/bin/env bash
# The main job on a fresh machine: set up, fetch SmolLM2-135M-Instruct, calibrate it and print the
# profile summary. On the GPU when there is one (8K-token kv_retrieval prompt, budget 0.2 of dense),
# else on the CPU (1K tokens, where sparsity has less room: budget 0.5).
# Usage: scripts/run-demo.sh [OUT_DIR]   (default: demo-out/)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "demo: fetching SmolLM2-135M-Instruct (scripts/get-model.sh)" >&2
model="$(scripts/get-model.sh)"
out="${1:-demo-out}"
mkdir -p "$out"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  device=cuda length=8192 budget=0.2
else
  device=cpu length=1024 budget=0.5
fi
echo "demo: calibrating on the $device: $length-token kv_retrieval prompt, budget $budget of dense attention's cost" >&2
"${BUILD_DIR:-build}/headcal" calibrate --model "$model" --generate kv_retrieval --length "$length" --seed 1 \
  --global-density "$budget" --device "$device" -o "$out/smollm2-profile.yaml"
