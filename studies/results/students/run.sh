#!/usr/bin/env bash
# The evidence behind issue 16's targets, resumable: rerun this script to continue.
#   1. the demo search (40 trials, the demo's settings) into its own database;
#   2. bench students: the front and a sample of dominated trials, and the hand-designed
#      baselines at the front's sizes, retrained with export's recipe (5 epochs, 3 seeds),
#      every run stored in the database and as raw JSON in runs/; summary.json at the end.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DB=sqlite:///studies/results/students/fashion_mnist.db
STUDY=fashion-mnist-evidence
PY=${PY:-.venv/bin/python}
$PY -m autostudent search studies/fashion_mnist.yaml --storage "$DB" --study "$STUDY" --quiet
$PY -m autostudent bench students --storage "$DB" --study "$STUDY" --top 12 --seeds 3 \
    --epochs 5 --workers 2 --threads 1 --raw studies/results/students/runs \
    --out studies/results/students/round1.json --json
