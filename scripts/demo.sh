#!/usr/bin/env bash
# The main job: set up (idempotent), then run the benchmark of the fused BConv-Cell update.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec "${PYTHON:-python3}" -m pytest benchmarks/bench_cell.py --benchmark-columns=median,iqr,rounds --benchmark-sort=name "$@"
