#!/usr/bin/env bash
# MInference's released pattern configs (minference/configs/*.json in the `minference` source
# distribution on PyPI, which publishes no wheel) read by `headcal import`, each against the
# random: shape of its model where headcal has one (the table below). One line per file:
#   imported  FILE  random:SHAPE (layers x heads, reference length), how many notes import gave
#   rejected  FILE  random:SHAPE, headcal's error
#   skipped   FILE  no random: shape for this model
# Exit 0 when every file with a shape imports, 1 when one is rejected, 77 (CTest's skip) when the
# package cannot be downloaded (no registry, or its metadata step fails).
#
# Usage: scripts/check-minference-configs.sh [--version V] [--cache DIR]
#   --version V  the minference release (default: the newest)
#   --cache DIR  keeps the download and the helper environment (default .cache/minference)
#   env: HEADCAL (binary, default build/headcal)
set -euo pipefail
cd "$(dirname "$0")/.."
version="" cache=".cache/minference"
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
hc="${HEADCAL:-build/headcal}"
[ -x "$hc" ] || { echo "check-minference-configs: no headcal binary at $hc (set HEADCAL)" >&2; exit 2; }

# The random: shape for a config file, by the model its name starts with; empty for none.
shape_for() {
  case "$1" in
    Llama_3.1_8B_* | Llama_3_8B_*) echo llama3-8b ;;
    GLM_4_9B_*) echo glm4-9b ;;
    Phi_3_mini_128k_*) echo phi3-mini ;;
    *) echo "" ;;
  esac
}

skip() { echo "check-minference-configs: skipped: $*" >&2; exit 77; }

mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
sdist="$(ls "$cache"/dl/minference-"${version:-*}".tar.gz 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$version" ] || [ -z "$sdist" ]; then
  # setup.py imports torch only to set up its CUDA extension, which MINFERENCE_SKIP_CUDA_BUILD
  # turns off; a stand-in module lets pip read the metadata without installing torch. Nothing of
  # the package is installed or run: only its JSON files are read.
  if [ ! -x "$cache/venv/bin/pip" ]; then
    python3 -m venv "$cache/venv" >/dev/null 2>&1 || skip "python3 -m venv failed"
  fi
  "$cache/venv/bin/pip" install -q --disable-pip-version-check setuptools wheel packaging >/dev/null 2>&1 ||
    skip "could not install setuptools, wheel and packaging from the package registry"
  mkdir -p "$cache/stub/torch/utils"
  echo '__version__ = "0.0"' > "$cache/stub/torch/__init__.py"
  : > "$cache/stub/torch/utils/__init__.py"
  printf 'CUDA_HOME = None\nclass BuildExtension: pass\ndef CUDAExtension(*args, **kwargs): return None\n' \
    > "$cache/stub/torch/utils/cpp_extension.py"
  rm -rf "$cache/dl.tmp"
  PYTHONPATH="$cache/stub" MINFERENCE_SKIP_CUDA_BUILD=TRUE \
    "$cache/venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-build-isolation \
    --no-binary minference -d "$cache/dl.tmp" "minference${version:+==$version}" >"$cache/download.log" 2>&1 ||
    skip "pip download minference${version:+==$version} failed (see $cache/download.log)"
  mkdir -p "$cache/dl"
  mv "$cache"/dl.tmp/minference-*.tar.gz "$cache/dl/"
  rm -rf "$cache/dl.tmp"
  sdist="$(ls "$cache"/dl/minference-"${version:-*}".tar.gz | sort -V | tail -n 1)"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -xzf "$sdist" -C "$work" --wildcards '*/minference/configs/*.json'
echo "$(basename "$sdist"): $(ls "$work"/*/minference/configs/*.json | wc -l) pattern configs"
imported=0 rejected=0 skipped=0
for json in "$work"/*/minference/configs/*.json; do
  name="$(basename "$json")"
  shape="$(shape_for "$name")"
  if [ -z "$shape" ]; then
    printf 'skipped   %s  no random: shape for this model\n' "$name"
    skipped=$((skipped + 1))
    continue
  fi
  if out="$("$hc" import --model "random:$shape" "$json" -o "$work/profile.yaml" 2>&1)"; then
    notes="$(echo "$out" | grep -c '^headcal: note:' || true)"
    printf 'imported  %s  random:%s %s, %s notes\n' "$name" "$shape" "$(echo "$out" | tail -n 1 | sed 's/^wrote [^(]*//')" "$notes"
    imported=$((imported + 1))
  else
    printf 'rejected  %s  random:%s, %s\n' "$name" "$shape" "$(echo "$out" | tr '\n' ' ')"
    rejected=$((rejected + 1))
  fi
done
echo "$imported imported, $rejected rejected, $skipped skipped"
[ "$rejected" -eq 0 ]
