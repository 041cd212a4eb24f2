#!/usr/bin/env bash
# Issue 16 flagship table (README.md). Usage: benchmarks/flagship/run.sh OUT [CHMFL]
# CHMFL: the chmfl command (default: chmfl on PATH). CPU time per part: OUT/time_<part>.txt
set -euo pipefail
OUT=${1:?results folder}
CHMFL=${2:-chmfl}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$(${PYTHON:-python} -c "from chmfl.preprocess.bundle import demo_cache_dir; print(demo_cache_dir())")
mkdir -p "$OUT"
for part in reference uptake_head norm_none flagship; do
  /usr/bin/time -v -o "$OUT/time_$part.txt" nice -n 10 $CHMFL reproduce "$HERE/$part.yaml" \
    --data "$DATA" --out "$OUT" --seed 1 --parallel-folds 2 --no-progress
done
