#!/usr/bin/env bash
# Sets up (packages, build), fetches the model, and runs the whole test suite with CTest.
# GPU tests (tag [gpu]) skip themselves where no CUDA device exists. Then a bounded fuzz campaign.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HEADCAL_MODEL="$(scripts/get-model.sh)"
python3 -m pip install -q -r scripts/requirements-test.txt >&2 || true
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "${HEADCAL_JOBS:-$(nproc)}")
# Every reader under ASan + UBSan with mutated inputs, fixed seed (docs/RELIABILITY.md).
scripts/fuzz.sh
