#!/usr/bin/env bash
# Issue 16's evidence, round 3: the student at most 1/40 of the teacher's params, searched as a
# user who needs one would search (the size cap at 7,701), against round 2's 40-epoch teacher.
# Every step resumes where it stopped: rerun this script to continue. The rules it applies were
# fixed on 2026-12-03, before any of its runs (README.md here).
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
HERE=studies/results/students_e40_cap40
TEACHER=studies/results/teacher_e40/fashion_mnist_resnet8_e40.pt2
DB=sqlite:///$HERE/cap40.db
STUDY=fashion-mnist-e40-cap40

# 1. The search: round 2's study file with the size cap at 1/40 (nothing if it is finished).
$PY -m autostudent search $HERE/fashion_mnist_e40_cap40.yaml --quiet

# 2. The hand-designed students at the front's sizes (ResNet, MobileNetV2), with the study's KD
#    settings and without, export's recipe at 5 epochs, 3 seeds; stored in the study first, so
#    that step 3's export measures its margin against them.
$PY -m autostudent baselines --storage "$DB" --study "$STUDY" --sizes auto --no-students \
    --seeds 3 --epochs 5 --workers 2 --threads 1 --raw $HERE/runs --json \
    > $HERE/baselines.json

# 3. The student a user would export: the most accurate under 7,701 params, its 3 best candidates
#    re-ranked on their mean validation accuracy over 3 seeds at this recipe, then 3 seeds (and
#    3 without KD). (--rerank-seeds 3: amended 2026-12-04, before any run; README.md)
if [ ! -f "$HERE/export-7701/metrics.json" ]; then
  $PY -m autostudent export --storage "$DB" --study "$STUDY" \
      --pick "max-accuracy-under:7701" --rerank 3 --rerank-seeds 3 --epochs 5 --seeds 3 --threads 1 \
      --out "$HERE/export-7701" 2>&1 | tee "$HERE/export-7701.log"
fi

# 3b. When the export's student is not on the front (the rerank can pick a dominated one), the
#     families sized to it as well: the comparison is with the best of at most its own size.
P=$($PY -c "import json; print(json.load(open('$HERE/export-7701/metrics.json'))['params'])")
$PY -m autostudent baselines --storage "$DB" --study "$STUDY" --sizes "$P" --no-students \
    --seeds 3 --epochs 5 --workers 2 --threads 1 --raw $HERE/runs --json \
    > $HERE/baselines-export.json

# 4. The margins of the rules (README.md): over this study's baselines of at most the student's
#    size and over round 2's (same teacher and recipe, other KD settings).
$PY $HERE/margins.py > $HERE/summary.json
