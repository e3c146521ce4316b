#!/usr/bin/env bash
# Builds the fuzz driver with ASan + UBSan (fuzz/, into build-fuzz/) and runs a campaign over every
# reader: a fixed seed, so a run is reproducible. Fails on any finding (sanitizer report, hang,
# exception other than bad input, error message not one line naming the file).
#   scripts/fuzz.sh                 bounded campaign (what scripts/test.sh runs): 2000 inputs per target
#   scripts/fuzz.sh --long          long campaign: 10000 inputs per target
#   scripts/fuzz.sh --runs N [--seed S] [TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=2000
SEED=20261207
TARGET=all
while [[ $# -gt 0 ]]; do
  case "$1" in
    --long) RUNS=10000; shift ;;
    --runs) RUNS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    -*) echo "scripts/fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGET="$1"; shift ;;
  esac
done
BUILD="${FUZZ_BUILD_DIR:-build-fuzz}"
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  cmake -S fuzz -B "$BUILD" "${GENERATOR[@]}" >/dev/null
fi
cmake --build "$BUILD" -j "${HEADCAL_JOBS:-$(nproc)}" >/dev/null
WORK="$(mktemp -d "${TMPDIR:-/tmp}/headcal-fuzz.XXXXXX")"
# One allocation above 256 MiB is a finding: the inputs are at most 1 MiB. C++ `new` beyond it is
# reported whatever the options say; a C malloc beyond it returns null, which libhdf5 (whose
# metadata cache asks for sizes read from a damaged file) turns into an error headcal reports.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:max_allocation_size_mb=256"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
status=0
"$BUILD/headcal_fuzz" "$TARGET" --runs "$RUNS" --seed "$SEED" --timeout 20 --work "$WORK" || status=$?
if [[ $status -ne 0 ]]; then
  echo "scripts/fuzz.sh: findings (exit $status); inputs under $WORK" >&2
  exit 1
fi
rm -rf "$WORK"
