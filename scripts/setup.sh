#!/usr/bin/env bash
# Installs what is missing (Debian/Ubuntu packages) and builds headcal into ${BUILD_DIR:-build}.
# Usage: scripts/setup.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(cmake g++ make libeigen3-dev libhdf5-dev libyaml-cpp-dev libcli11-dev catch2 nlohmann-json3-dev
      python3 python3-pip unzip)
if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  # python3/pip may come from elsewhere (pyenv): only ask apt when the command is absent.
  if command -v python3 >/dev/null 2>&1; then missing=("${missing[@]/python3}"); fi
  if python3 -m pip --version >/dev/null 2>&1; then missing=("${missing[@]/python3-pip}"); fi
  read -r -a missing <<<"${missing[*]:-}"
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

build_dir="${BUILD_DIR:-build}"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
elif [ "$#" -gt 0 ]; then
  cmake -S . -B "$build_dir" "$@"
fi
jobs="${HEADCAL_JOBS:-$(nproc)}"
cmake --build "$build_dir" -j "$jobs"
echo "setup: built $build_dir/headcal" >&2
