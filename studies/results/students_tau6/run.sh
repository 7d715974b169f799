#!/usr/bin/env bash
# Proxy → final Kendall τ of the demo's 6-epoch proxy over 12 students (README.md here: the
# design was fixed before any run). Resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
HERE=studies/results/students_tau6
[ -f "$HERE/tau6.db" ] || cp studies/results/coverage/fidelity6/e40.db "$HERE/tau6.db"
$PY -m autostudent bench students --storage "sqlite:///$HERE/tau6.db" --study e40-e6g3-seed0 \
    --top 12 --seeds 1 --epochs 5 --families resnet --workers 2 --threads 1 \
    --raw "$HERE/runs" --out "$HERE/summary.json" --json > /dev/null
