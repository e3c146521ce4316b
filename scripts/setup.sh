#!/usr/bin/env bash
# Sets up headcal on Debian/Ubuntu: installs the missing system packages (apt), optionally the Python
# packages the tests use into the project's own virtual environment (.venv/), and builds into
# ${BUILD_DIR:-build}. The binary is then ${BUILD_DIR:-build}/headcal.
#
# Usage: scripts/setup.sh [--test-deps] [extra cmake args...]
#   --test-deps          also create .venv/ with scripts/requirements-test.txt (numpy, h5py)
# Environment: BUILD_DIR (default build), HEADCAL_JOBS (parallel jobs, default: all cores),
#   HEADCAL_APT_WAIT (seconds to wait for another apt/dpkg process to finish, default 600).
set -euo pipefail
cd "$(dirname "$0")/.."

test_deps=0
if [ "${1:-}" = "--test-deps" ]; then
  test_deps=1
  shift
fi

say() { echo "setup: $*" >&2; }

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)

# apt-get that waits (bounded) while another package manager holds the apt/dpkg lock, instead of
# failing at once with exit 100. Its output is shown only when it fails.
apt_get() {
  local wait_s="${HEADCAL_APT_WAIT:-600}" log waited=0
  local deadline=$(($(date +%s) + wait_s))
  log="$(mktemp)"
  while true; do
    if "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=10 "$@" >"$log" 2>&1; then
      rm -f "$log"
      return 0
    fi
    if grep -qiE 'could not get lock|unable to (acquire|lock)|is another process using it' "$log" &&
      [ "$(date +%s)" -lt "$deadline" ]; then
      [ "$waited" -eq 0 ] && say "another apt/dpkg process holds the package lock; waiting for it (up to ${wait_s} s)"
      waited=1
      sleep 5
      continue
    fi
    cat "$log" >&2
    rm -f "$log"
    say "error: 'apt-get $*' failed (see above)"
    return 1
  done
}

pkgs=(cmake g++ ninja-build libeigen3-dev libhdf5-dev libyaml-cpp-dev libcli11-dev catch2 nlohmann-json3-dev
      python3 python3-pip unzip)
[ "$test_deps" -eq 1 ] && pkgs+=(python3-venv)
if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 && continue
    # python3, pip and venv may come from elsewhere (pyenv): ask apt only when they do not work.
    case "$p" in
      python3) command -v python3 >/dev/null 2>&1 && continue ;;
      python3-pip) python3 -m pip --version >/dev/null 2>&1 && continue ;;
      python3-venv) python3 -c 'import ensurepip, venv' >/dev/null 2>&1 && continue ;;
    esac
    missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    apt_get update
    apt_get install -y "${missing[@]}"
  else
    say "system packages: all present"
  fi
fi

if [ "$test_deps" -eq 1 ]; then
  if [ ! -x .venv/bin/python3 ]; then
    say "creating the Python environment .venv/ for the tests"
    python3 -m venv .venv
  fi
  say "installing the tests' Python packages into .venv/ (scripts/requirements-test.txt)"
  .venv/bin/python3 -m pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
fi

build_dir="${BUILD_DIR:-build}"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  say "configuring $build_dir/"
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
elif [ "$#" -gt 0 ] || [ "$test_deps" -eq 1 ]; then
  cmake -S . -B "$build_dir" "$@" >/dev/null  # picks up new options and the tests' .venv/
fi
jobs="${HEADCAL_JOBS:-$(nproc)}"
say "building $build_dir/ with $jobs parallel jobs (about 12 minutes on 2 cores with CUDA off)"
cmake --build "$build_dir" -j "$jobs"
say "built $build_dir/headcal"
