#!/usr/bin/env bash
# Every sampler's rungs reading budget.rung_average: auto against the same code reading the model
# (none, the default when this ran), ours on both bench hypervolume tasks, seeds 0-4, 40 trials.
# Resumable: a run whose JSON exists is skipped. The design and the rule were fixed before any run
# (README.md here).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
AS=${AS:-.venv/bin/autostudent}
HERE=studies/results/bench_hypervolume/rungauto
for TASK in fashion-mnist-2k-flops fashion-mnist-2k; do
  for ARM in auto none; do
    $AS bench hypervolume --task $TASK --samplers botorch --rung-average $ARM --json \
        --out $HERE/$TASK-$ARM > $HERE/$TASK-$ARM.json
  done
done
