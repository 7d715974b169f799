#!/usr/bin/env bash
# Proxy → final Kendall τ over 12 students (README.md here: the design was fixed before any run).
# Resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
HERE=studies/results/students_tau12
[ -f "$HERE/tau12.db" ] || cp studies/results/coverage/grace2/e40.db "$HERE/tau12.db"
$PY -m autostudent bench students --storage "sqlite:///$HERE/tau12.db" --study e40-grace2-seed0 \
    --top 12 --seeds 1 --epochs 5 --families resnet --workers 2 --threads 1 \
    --raw "$HERE/runs" --out "$HERE/summary.json" --json > /dev/null
