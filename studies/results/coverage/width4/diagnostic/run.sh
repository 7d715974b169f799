#!/bin/sh
# The diagnostic that motivated ../README.md (run before its design was fixed): the digits
# population of ../../covauto at the product's defaults (epochs 6, one rung at 3), search seeds
# 2-5, the demo's width floor (w8.yaml) against NAGO's own (w4.yaml). ~35 s a search on 2 cores.
# Run from the repository's root:  sh studies/results/coverage/width4/diagnostic/run.sh
set -e
cd "$(dirname "$0")"
for seed in 2 3 4 5; do for w in 8 4; do
  s=digits-w$w-seed$seed
  [ -f $s.json ] && continue
  ../../../../../.venv/bin/autostudent search w$w.yaml --study $s --seed $seed --quiet > $s.log 2>&1
  ../../../../../.venv/bin/python ../../coverage_report.py sqlite:///digits.db $s > $s.json
done; done
