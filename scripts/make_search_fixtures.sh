#!/usr/bin/env bash
# Writes the grid fixtures of tests/data used by tests/io/test_grid.cpp and the CLI tests.
# Run from anywhere: scripts/make_search_fixtures.sh
set -euo pipefail
data="$(cd "$(dirname "$0")/.." && pwd)/tests/data"
mkdir -p "$data"

cat >"$data/good_grid.yaml" <<'EOF'
# A small user grid: one a_shape window family, a vertical-slash cross product, two block counts.
format: headcal-grid
version: 1
candidates:
  - {pattern: a_shape, sink: 64, local: [256, 0.125N]}
  - {pattern: vertical_slash, v: [30, 0.0625N], s: [100, 0.25N]}
  - {pattern: block_sparse, k: [4, 16]}
EOF

cat >"$data/bad_grid_unknown_pattern.yaml" <<'EOF'
# "streaming" is not a headcal pattern (the name is a_shape): must be refused with exit 2.
format: headcal-grid
version: 1
candidates:
  - {pattern: streaming, sink: 4, local: 1024}
EOF
echo "make_search_fixtures: wrote $data/good_grid.yaml $data/bad_grid_unknown_pattern.yaml" >&2
