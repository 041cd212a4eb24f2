#!/usr/bin/env bash
# The launch-bound networks on a GPU, in one call (under 10 minutes on one H100/H200):
#   benchmarks/run_gpu_launch.sh OUTDIR
# The networks whose 1 mm steps took 11-32 ms on an H200 are bound by kernel launches and
# Python, not by the GPU. Measured here, each by the real loop (Trainer, batch 1, 1 mm):
# 1. host-device synchronisations per training step, per method (gpu_syncs.py);
# 2. the training cases kept on the GPU (default) against copied from the host every step
#    (data_on_device=false), one fold, 20 synthetic patients, 2 epochs, fast loop settings;
# 3. the same compiled with torch.compile's "reduce-overhead" mode (CUDA graphs); the first
#    epoch holds compilation and graph recording, the second epoch's time per step counts.
# Each step has its own time limit; every log and JSON lands in OUTDIR.
set -u
out=$1; py=${PYTHON:-python3}
mkdir -p "$out"
source "$(dirname "$0")/_gpu_steps.sh"  # step() and gpu.txt
methods="cnlpc cnn2d-petct cnn3d-petct 3dmcl mask-hmfl"
fast="--set deterministic=false --set channels_last=true --set fused_adam=true"
protocol="$py benchmarks/bench_protocol.py --device cuda --voxel-mm 1 --cases 20"
step syncs 100 "$py" benchmarks/gpu_syncs.py --voxel-mm 1 --json "$out/syncs.json"
# shellcheck disable=SC2086
step on_device 80 $protocol --methods $methods $fast --json "$out/launch_on_device.json"
# shellcheck disable=SC2086
step host_copies 80 $protocol --methods $methods $fast --set data_on_device=false \
  --json "$out/launch_host_copies.json"
# shellcheck disable=SC2086
step cuda_graphs 300 $protocol --methods $methods $fast --set compile=true \
  --set compile_mode=reduce-overhead --json "$out/launch_cuda_graphs.json"
