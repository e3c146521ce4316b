#!/usr/bin/env bash
# The quality frontier of a model at one length: held-out next-token KL and top-1 agreement against
# density, for profiles made three ways from the same kind of recordings:
#   kv      headcal's budgeted search on one kv_retrieval prompt (seed 1)
#   set     headcal's budgeted search on the default calibration set (prompts/default-calibration.yaml)
#   mi-*    MInference's own search rule (search --rule minference) on either atlas
# every profile validated on prompts/held-out.yaml, whose texts and seeds no calibration set uses.
# Also the search objectives on the set's atlas (OBJECTIVES) at OBJECTIVE_DENSITIES, and both
# frontiers again with layer weights (headcal sensitivity; search --layer-weights).
#
# Usage: scripts/quality-frontier.sh MODEL LENGTH OUT_DIR [DENSITIES]
#   DENSITIES: space-separated global densities (default "0.05 0.1 0.15 0.2 0.3 0.5")
#   env: HEADCAL (binary, default build/headcal), FRONTIER_OBJECTIVE (the kv and set profiles' search
#        objective, default mixed:1), OBJECTIVES (default "worst-recall output-error
#        mixed:1 recall-floor:0.8"; empty: none), OBJECTIVE_DENSITIES (default "0.1 0.2 0.3"),
#        HELD_OUT (default prompts/held-out.yaml), STAGES (default "record frontier minference objectives
#        weights"), WEIGHTS_DENSITY (default 0.15: the profile whose layer weights the weights stage
#        measures, on each atlas's own calibration prompts)
# Writes OUT_DIR/*.atlas.h5, profiles, validation records (v-*.json) and table.md
# (bench/quality_table.py over the records).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
model="$1" n="$2" out="$3"
densities="${4:-0.05 0.1 0.15 0.2 0.3 0.5}"
hc="${HEADCAL:-build/headcal}"
objectives="${OBJECTIVES-worst-recall output-error mixed:1 recall-floor:0.8}"
objective_densities="${OBJECTIVE_DENSITIES:-0.1 0.2 0.3}"
held_out="${HELD_OUT:-prompts/held-out.yaml}"
stages="${STAGES:-record frontier minference objectives weights}"
frontier_objective="${FRONTIER_OBJECTIVE:-mixed:1}"
mkdir -p "$out"
has_stage() { [[ " $stages " == *" $1 "* ]]; }

validate() {  # PROFILE NAME METHOD
  "$hc" validate --model "$model" --profile "$1" --prompt-set "$held_out" --length "$n" \
    --json "$out/v-$2.json" --method "$3" > "$out/v-$2.txt"
  grep -A3 "^over " "$out/v-$2.txt" | sed "s/^/[$2] /"
}

if has_stage record; then
  "$hc" record --model "$model" --generate kv_retrieval --seed 1 --length "$n" --out "$out/kv.atlas.h5"
  "$hc" record --model "$model" --prompt-set prompts/default-calibration.yaml --length "$n" --out "$out/set.atlas.h5"
fi
if has_stage frontier; then
  for d in $densities; do
    for atlas in kv set; do
      "$hc" search --atlas "$out/$atlas.atlas.h5" --global-density "$d" --objective "$frontier_objective" \
        --out "$out/$atlas-$d.yaml" --quiet >/dev/null
      validate "$out/$atlas-$d.yaml" "$atlas-$d" "$atlas-$frontier_objective"
    done
  done
fi
if has_stage minference; then
  for atlas in kv set; do
    "$hc" search --atlas "$out/$atlas.atlas.h5" --rule minference --out "$out/mi-$atlas.yaml" --quiet >/dev/null
    validate "$out/mi-$atlas.yaml" "mi-$atlas" "minference-rule-$atlas"
  done
fi
if has_stage objectives; then
  for objective in $objectives; do
    for d in $objective_densities; do
      name="set-$d-${objective//:/}"
      "$hc" search --atlas "$out/set.atlas.h5" --global-density "$d" --objective "$objective" --out "$out/$name.yaml" \
        --quiet >/dev/null
      validate "$out/$name.yaml" "$name" "set-$objective"
    done
  done
fi
if has_stage weights; then
  # Layer weights (headcal sensitivity) per calibration, measured on that calibration's own prompts,
  # then the frontier searched with them.
  weights_density="${WEIGHTS_DENSITY:-0.15}"
  for atlas in kv set; do
    if [ "$atlas" = kv ]; then prompt=(--generate kv_retrieval --seed 1); else prompt=(--prompt-set prompts/default-calibration.yaml); fi
    "$hc" search --atlas "$out/$atlas.atlas.h5" --global-density "$weights_density" --objective "$frontier_objective" \
      --out "$out/$atlas-weights-profile.yaml" --quiet >/dev/null
    "$hc" sensitivity --model "$model" --profile "$out/$atlas-weights-profile.yaml" "${prompt[@]}" --length "$n" \
      --out "$out/$atlas-layer-weights.yaml" > "$out/$atlas-layer-weights.txt"
    for d in $densities; do
      "$hc" search --atlas "$out/$atlas.atlas.h5" --global-density "$d" --objective "$frontier_objective" \
        --layer-weights "$out/$atlas-layer-weights.yaml" --out "$out/$atlas-lw-$d.yaml" --quiet >/dev/null
      validate "$out/$atlas-lw-$d.yaml" "$atlas-lw-$d" "$atlas-$frontier_objective-layer-weights"
    done
  done
fi
python3 bench/quality_table.py "$out"/v-*.json > "$out/table.md"
cat "$out/table.md"
