#!/usr/bin/env bash
# Issue 16 flagship table (README.md). Usage: benchmarks/flagship/run.sh OUT [CHMFL]
# CHMFL: the chmfl command (default: chmfl on PATH). Every row of flagship.yaml on the same
# splits (split seeds 1-5); an interrupted run resumes where it stopped (finished folds and
# checkpoints are reused). CPU seconds per fold: timing.csv (fit_cpu_s); the whole run's CPU
# time: OUT/time_flagship.txt. Then: python benchmarks/flagship/table.py OUT
set -euo pipefail
OUT=${1:?results folder}
CHMFL=${2:-chmfl}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$(${PYTHON:-python} -c "from chmfl.preprocess.bundle import demo_cache_dir; print(demo_cache_dir())")
mkdir -p "$OUT"
/usr/bin/time -v -o "$OUT/time_flagship.txt" nice -n 10 $CHMFL reproduce "$HERE/flagship.yaml" \
  --data "$DATA" --out "$OUT" --seed 1 --parallel-folds 2 --no-progress
