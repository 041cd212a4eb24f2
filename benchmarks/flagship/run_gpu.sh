#!/usr/bin/env bash
# Issue 16 on one GPU (README.md, "Full size on a GPU"): gpu_full_2mm.yaml on a 2 mm copy of
# the bundle, contour-centred test boxes, 8 fold jobs at once sharing the GPU.
#   benchmarks/flagship/run_gpu.sh OUT CACHE2MM [SECONDS]
# CACHE2MM: python -c "from dataclasses import replace; from chmfl.preprocess.bundle import *;
#   make_bundle(SRC, XLSX, CACHE2MM, config=replace(BUNDLE_CONFIG, voxel_mm=2.0))"
# EXP: another experiment YAML (a dry run); TEST_BOX: contour (default), hotspot or contour,hotspot. SECONDS bounds the run (default 900); an interrupted run resumes into the same OUT, and
# partial.py tabulates the (repeat, fold) pairs every row finished.
set -u
out=$1; cache=$2; lim=${3:-900}; py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd); exp=${EXP:-$here/gpu_full_2mm.yaml}
mkdir -p "$(dirname "$out")"
t0=$SECONDS
timeout "$lim" "$py" -m chmfl.cli.main reproduce "$exp" --data "$cache" --out "$out" \
  --seed 1 --parallel-folds "${PARALLEL:-8}" --test-box "${TEST_BOX:-contour}" --no-progress > "$out.log" 2>&1
echo "== flagship 2 mm: rc=$? in $((SECONDS - t0)) s"; grep -v -i warn "$out.log" | tail -n 5
"$py" "$here/partial.py" "$out" "$exp" > /dev/null 2>&1 && "$py" "$here/table.py" "$out/partial"
