#!/usr/bin/env bash
# Issue 16's KD target with a patient, consistent recipe: export's own command, one seed per call
# (each call trains the KD student and its no-KD baseline side by side, one core each), so the
# round resumes by seed: rerun this script to continue. The design was fixed before any run
# (README.md here).
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
HERE=studies/results/kd_patient
E40=studies/results/students_e40
TEACHER=studies/results/teacher_e40/fashion_mnist_resnet8_e40.pt2

for SEED in 0 1 2; do
  OUT=$HERE/seed$SEED
  [ -f "$OUT/metrics.json" ] && continue
  rm -rf "$OUT"  # a killed export leaves nothing worth keeping
  $PY -m autostudent export --storage "sqlite:///$E40/fashion_mnist_e40.db" \
      --study fashion-mnist-evidence-e40 --trial 25 --epochs 40 \
      --augment views --views 8 --kd kd,4,0.9 --seed "$SEED" --seeds 1 \
      --workers 2 --threads 1 --teacher "$TEACHER" --out "$OUT" > "$HERE/seed$SEED.log" 2>&1
  rm -f "$OUT/student.pt"  # the record is metrics.json and card.md; the weights are not kept
done
$PY $HERE/summary.py > $HERE/summary.json
