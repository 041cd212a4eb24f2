#!/usr/bin/env bash
# The GPU measurements docs/performance.md still lacks, in one call (~8 minutes on one H100/H200):
#   benchmarks/run_gpu_protocol.sh OUTDIR
# (PROTOCOL_S / STACKED_S: each step's limit in seconds, 420 / 120; STACKED_S=0 skips step 2;
#  CASES: synthetic patients per fold, 20)
# 1. every neural method of Tables I and II with 6 folds at once (6 processes on the GPU, the
#    fast loop settings + fused Adam), 20 synthetic 1 mm patients per fold, 2 epochs: each method's share of
#    the paper protocol and the tables' total, measured instead of estimated;
# 2. stacked fold models (torch.func vmap, 6 folds in one step) against 6 separate steps, bf16.
# Each step has its own time limit; every log and JSON lands in OUTDIR.
set -u
out=$1; py=${PYTHON:-python3}
mkdir -p "$out"
source "$(dirname "$0")/_gpu_steps.sh"  # step() and gpu.txt
step protocol_6_at_once "${PROTOCOL_S:-420}" "$py" benchmarks/bench_protocol.py --device cuda --voxel-mm 1 --cases "${CASES:-20}" \
  --folds-at-once 6 --set deterministic=false --set channels_last=true --set fused_adam=true --json "$out/protocol_1mm_6_at_once.json"
[ "${STACKED_S:-120}" = 0 ] || step stacked_1mm "${STACKED_S:-120}" "$py" benchmarks/bench_stacked.py --device cuda --voxel-mm 1 --bf16 \
  --methods chmfl 3dmcl mor-3dcnn cnn3d-petct cnn2d-petct cnlpc --json "$out/stacked_1mm.json"
