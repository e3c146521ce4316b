#!/usr/bin/env bash
# The test command (CI runs it through .ci/run): sets up (system packages, the tests' Python
# packages in .venv/, the build), fetches SmolLM2-135M-Instruct and Qwen2.5-Coder-0.5B-Instruct (the
# models of the shipped profiles), and runs every test with CTest.
# GPU tests show as "Skipped" where no CUDA device exists.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test-deps
echo "test: fetching SmolLM2-135M-Instruct (scripts/get-model.sh)" >&2
HEADCAL_MODEL="$(scripts/get-model.sh)"
export HEADCAL_MODEL
# The shipped Qwen profile is checked against its model (490 MB, cached in .cache/ after the first run).
echo "test: fetching Qwen2.5-Coder-0.5B-Instruct (scripts/get-model.sh qwen2.5-coder-0.5b)" >&2
HEADCAL_QWEN_MODEL="$(scripts/get-model.sh qwen2.5-coder-0.5b)"
export HEADCAL_QWEN_MODEL
export PATH="$PWD/.venv/bin:$PATH"  # the tests' python3 is the project's environment
echo "test: running the tests (ctest)" >&2
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "${HEADCAL_JOBS:-$(nproc)}")
# Every reader under ASan + UBSan with mutated inputs, fixed seed (docs/RELIABILITY.md).
echo "test: bounded fuzz campaign (scripts/fuzz.sh)" >&2
scripts/fuzz.sh
