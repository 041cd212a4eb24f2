#!/usr/bin/env bash
# The GPU measurements of docs/performance.md in one go (~8 minutes on one H100/H200):
#   benchmarks/run_gpu.sh OUTDIR [CACHE]
# CACHE defaults to the bundled 4 mm demo cohort. Each step has its own time limit, so a
# failing or slow step leaves the others' numbers; every log and JSON lands in OUTDIR.
set -u
out=$1; cache=${2:-src/chmfl/demo_data}; py=${PYTHON:-python3}
mkdir -p "$out"
ch=("$py" -m chmfl.cli.main)  # the chmfl command of this interpreter (timeout needs a program)
source "$(dirname "$0")/_gpu_steps.sh"  # step() and gpu.txt
"$py" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
# 1 mm (paper) box: CHMFL in bf16 (auto) with V-Net fp32 and bf16 beside it, then fp32
step bench_1mm 150 "${ch[@]}" bench --device cuda --voxel-mm 1 --repeats 5 --warmup 2 --json "$out/bench_1mm.json"
# the paper protocol at 1 mm: 40 training patients, batch 1, one epoch, 1 fold vs 6 folds at once
step folds_1mm 170 "$py" benchmarks/bench_folds.py --device cuda --voxel-mm 1 --folds 1 6 --cases 40 --epochs 1 --json "$out/folds_1mm.json"
# the same with the loop's speed options: non-deterministic cuDNN, channels_last_3d
step folds_1mm_fast 170 "$py" benchmarks/bench_folds.py --device cuda --voxel-mm 1 --folds 1 6 --cases 40 --epochs 1 \
  --set deterministic=false --set channels_last=true --json "$out/folds_1mm_fast.json"
# the real cohort (bundled, 4 mm), CHMFL with the demo's schedule, six folds at once
step cv_parallel 100 "${ch[@]}" cv --data "$cache" --methods chmfl --folds 6 --epochs 12 --set batch_size=4 \
  --set lr=0.001 --set augment=true --parallel-folds 6 --out "$out/cv_parallel" --no-progress
step bench_1mm_fp32 60 "${ch[@]}" bench --device cuda --voxel-mm 1 --precision 32 --repeats 5 --warmup 2 --skip-vnet --skip-matmul --json "$out/bench_1mm_fp32.json"
step bench_1mm_cl 60 "${ch[@]}" bench --device cuda --voxel-mm 1 --channels-last --repeats 5 --warmup 2 --skip-vnet --skip-matmul --json "$out/bench_1mm_cl.json"
for f in metrics.csv timing.csv; do cat "$out/cv_parallel/$f" 2>/dev/null | head -12; done
