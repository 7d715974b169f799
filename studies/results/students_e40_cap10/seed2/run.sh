#!/usr/bin/env bash
# Issue 16's evidence, round 4, search seed 2: ../run_seed.sh 2 (README.md here has the rules).
exec "$(dirname "$0")/../run_seed.sh" 2
