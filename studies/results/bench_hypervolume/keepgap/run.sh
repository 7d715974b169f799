#!/usr/bin/env bash
# Ours with search.prune_gap_proposals: false against ours with the default, same code, both
# bench hypervolume tasks, seeds 0-4, 40 trials. Resumable: a run whose JSON exists is skipped.
# The design and the rule were fixed before any run (README.md here).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
AS=${AS:-.venv/bin/autostudent}
HERE=studies/results/bench_hypervolume/keepgap
for TASK in fashion-mnist-2k-flops fashion-mnist-2k; do
  $AS bench hypervolume --task $TASK --samplers botorch --keep-gap-proposals --json \
      --out $HERE/$TASK-keepgap > $HERE/$TASK-keepgap.json
  # the default when these ran; since this round the default keeps them, so it is said
  $AS bench hypervolume --task $TASK --samplers botorch --prune-gap-proposals --json \
      --out $HERE/$TASK-default > $HERE/$TASK-default.json
done
