#!/usr/bin/env bash
# Issue 16's evidence, round 5: the 1/40 budget searched with the demo's current settings, one
# search seed per call (README.md here: the rules, fixed before any run). Every step resumes
# where it stopped: rerun to continue.
#   run_seed.sh N      (N = 0, 1, 2 in that order)
# A later round of the same design runs it on its own folder, which holds one study file:
#   ROUND=studies/results/students_e40_cap40/rungauto run_seed.sh N
set -euo pipefail
SEED=${1:?usage: run_seed.sh SEED}
cd "$(dirname "$0")/../../../.."
PY=${PY:-.venv/bin/python}
ROUND=${ROUND:-studies/results/students_e40_cap40/current}
YAML=$(ls $ROUND/*.yaml)
HERE=$ROUND/seed$SEED
DB=sqlite:///$HERE/seed$SEED.db
STUDY=$($PY -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['study'])" "$YAML")-seed$SEED
mkdir -p "$HERE"

# 1. The search: the round's study file with this seed, study name and storage.
$PY -m autostudent search "$YAML" --seed "$SEED" \
    --study "$STUDY" --storage "$DB" --quiet

# 2. The export, round 3's command: the most accurate under 7,701 params, its 3 best candidates
#    re-ranked on their mean validation accuracy over 3 seeds, then 3 seeds with KD and without.
if [ ! -f "$HERE/export-7701/metrics.json" ]; then
  $PY -m autostudent export --storage "$DB" --study "$STUDY" \
      --pick "max-accuracy-under:7701" --rerank 3 --rerank-seeds 3 --epochs 5 --seeds 3 \
      --workers 2 --threads 1 --out "$HERE/export-7701" 2>&1 | tee "$HERE/export-7701.log"
fi

# 3. Both families sized to the exported student, with this study's KD settings and without.
P=$($PY -c "import json; print(json.load(open('$HERE/export-7701/metrics.json'))['params'])")
$PY -m autostudent baselines --storage "$DB" --study "$STUDY" --sizes "$P" --no-students \
    --seeds 3 --epochs 5 --workers 2 --threads 1 --raw $HERE/runs --json \
    > $HERE/baselines.json

# 4. The margins: over the best hand-designed student of at most its params in this study, in
#    round 3's and in round 2's; the headline is the lowest.
$PY studies/results/students_e40_cap40/current/margins.py "$SEED" "$ROUND" > $HERE/summary.json
