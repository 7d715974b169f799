#!/usr/bin/env bash
# Issue 16's evidence, round 4: the student at most 1/10 of the teacher's params, searched as a
# user who needs one would search (the size cap at 30,807), against round 2's 40-epoch teacher.
# Every step resumes where it stopped (the export too: its finished retrains are kept in
# .export-30807.retrains until it is written); rerun this script to continue. The rules it applies were fixed on 2026-12-04, before any of its runs
# (README.md here).
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
HERE=studies/results/students_e40_cap10
DB=sqlite:///$HERE/cap10.db
STUDY=fashion-mnist-e40-cap10

# 1. The search: round 2's study file with the size cap at 1/10 (nothing if it is finished).
$PY -m autostudent search $HERE/fashion_mnist_e40_cap10.yaml --quiet

# 2. The student a user would export: the most accurate under 30,807 params, its 3 best
#    candidates re-ranked on their mean validation accuracy over 3 seeds at this recipe, then
#    3 seeds with KD and 3 without; two retrains at a time, one thread each.
if [ ! -f "$HERE/export-30807/metrics.json" ]; then
  $PY -m autostudent export --storage "$DB" --study "$STUDY" \
      --pick "max-accuracy-under:30807" --rerank 3 --rerank-seeds 3 --epochs 5 --seeds 3 \
      --workers 2 --threads 1 --out "$HERE/export-30807" 2>&1 | tee "$HERE/export-30807.log"
fi

# 3. Both families sized to the exported student (ResNet, MobileNetV2), with this study's KD
#    settings and without, the same recipe, 3 seeds.
P=$($PY -c "import json; print(json.load(open('$HERE/export-30807/metrics.json'))['params'])")
$PY -m autostudent baselines --storage "$DB" --study "$STUDY" --sizes "$P" --no-students \
    --seeds 3 --epochs 5 --workers 2 --threads 1 --raw $HERE/runs --json \
    > $HERE/baselines.json

# 4. The margin of the rules (README.md): over the best hand-designed student of at most the
#    exported one's params in this study and in round 2's.
$PY $HERE/margins.py > $HERE/summary.json
