#!/usr/bin/env bash
# Optuna's GP and TPE with rung_average: auto on both bench hypervolume tasks, seeds 0-4, 40
# trials: run only if the rule of README.md here makes auto the product's default (fixed before
# any run). Resumable: a run whose JSON exists is skipped.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
AS=${AS:-.venv/bin/autostudent}
HERE=studies/results/bench_hypervolume/rungauto
for TASK in fashion-mnist-2k-flops fashion-mnist-2k; do
  $AS bench hypervolume --task $TASK --samplers gp,tpe --rung-average auto --json \
      --out $HERE/$TASK-optuna-auto > $HERE/$TASK-optuna-auto.json
done
