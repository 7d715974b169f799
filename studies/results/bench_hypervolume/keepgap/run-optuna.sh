#!/usr/bin/env bash
# Optuna's GP and TPE on both bench hypervolume tasks, same code and machine as this round's arms
# of ours (README.md here: added before these ran). Resumable: a run whose JSON exists is skipped.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
AS=${AS:-.venv/bin/autostudent}
HERE=studies/results/bench_hypervolume/keepgap
for TASK in fashion-mnist-2k-flops fashion-mnist-2k; do
  $AS bench hypervolume --task $TASK --samplers gp,tpe --json \
      --out $HERE/$TASK-optuna > $HERE/$TASK-optuna.json
done
