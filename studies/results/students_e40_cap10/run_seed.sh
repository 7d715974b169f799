#!/usr/bin/env bash
# Issue 16's evidence, round 4, a further search seed: round 4's run.sh with only the search's
# seed, the study name and the storage changed (seedN/: its study file, README with the rules
# fixed before its runs, results). Every step resumes where it stopped; rerun to continue.
#   run_seed.sh N     (seed1/run.sh and seed2/run.sh call it)
set -euo pipefail
SEED=${1:?usage: run_seed.sh SEED}
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
HERE=studies/results/students_e40_cap10/seed$SEED
DB=sqlite:///$HERE/seed$SEED.db
STUDY=fashion-mnist-e40-cap10-seed$SEED

# 1. The search: round 4's study file with seed $SEED (nothing if it is finished).
$PY -m autostudent search $HERE/fashion_mnist_e40_cap10_seed$SEED.yaml --quiet

# 2. The export, exactly round 4's command.
if [ ! -f "$HERE/export-30807/metrics.json" ]; then
  $PY -m autostudent export --storage "$DB" --study "$STUDY" \
      --pick "max-accuracy-under:30807" --rerank 3 --rerank-seeds 3 --epochs 5 --seeds 3 \
      --workers 2 --threads 1 --out "$HERE/export-30807" 2>&1 | tee "$HERE/export-30807.log"
fi

# 3. Both families sized to the exported student, with this study's KD settings and without.
P=$($PY -c "import json; print(json.load(open('$HERE/export-30807/metrics.json'))['params'])")
$PY -m autostudent baselines --storage "$DB" --study "$STUDY" --sizes "$P" --no-students \
    --seeds 3 --epochs 5 --workers 2 --threads 1 --raw $HERE/runs --json \
    > $HERE/baselines.json

# 4. The margins (seedN/margins.py): over the best hand-designed student of at most its params in
#    this study, in the other seeds' and in round 2's; the headline is the lowest.
$PY $HERE/margins.py > $HERE/summary.json
