#!/bin/sh
# kd_second_teacher: the two exports of README.md's design, in order; each resumes if stopped
# (an export that finished has its metrics.json and is not run again).
set -e
cd "$(dirname "$0")/../../.."
D=studies/results/kd_second_teacher
A="--storage sqlite:///studies/results/coverage/unseen_teacher/unseen.db --study unseen-seed0 --pick max-accuracy-under:27218 --epochs 5 --seeds 3 --workers 1 --threads 1"
[ -f $D/export/metrics.json ] || .venv/bin/autostudent export $A --out $D/export >> $D/export.log 2>&1
[ -f $D/export-hinton/metrics.json ] || .venv/bin/autostudent export $A --kd kd,4,0.9 --no-baseline --out $D/export-hinton >> $D/export-hinton.log 2>&1
