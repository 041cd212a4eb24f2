"""Training throughput with K folds at once: K processes, each running the real training loop
(``methods.trainer.Trainer``) of one method (default CHMFL) on its own synthetic training
fold, started together.

    python benchmarks/bench_folds.py [--device cuda] [--voxel-mm 1] [--folds 1 6] [--cases 40]
                                     [--epochs 1] [--precision auto] [--method chmfl] [--json FILE]

For each K in ``--folds``: the wall time until all K folds finished ``--epochs`` epochs of
``--cases`` patients (batch 1, the paper's setting), the steps per second summed over the K
processes (with ``--epochs`` > 1 also without the first epoch, which pays CUDA/cuDNN start-up),
and the paper protocol extrapolated from that rate: 6 folds x 40 training patients x
``--protocol-epochs`` epochs (200 = the paper's maximum). On one GPU, K processes share it
(batch 1 leaves most of an H100/H200 idle); on a CPU each process gets cores/K threads. This
is what ``chmfl cv / reproduce --parallel-folds K`` does with the real folds.
Inputs are random PET/CT with a spherical tumour (timing does not depend on the values).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fit, machine, method_setup, with_settings, write  # noqa: E402


def _fold(args: tuple) -> dict:
    """One fold's training, in its own process; returns its timings."""
    rank, method, device, voxel_mm, cases, epochs, precision, threads, sets, barrier = args
    import torch
    torch.set_num_threads(threads)
    net, data, train, _ = method_setup(method, voxel_mm, cases, seed=rank)
    cfg = with_settings(train, {"epochs": epochs, "patience": 10**6, "accelerator": device,
                                "precision": precision, "num_threads": threads, **sets})
    barrier.wait()  # all folds start training together
    t0 = time.perf_counter()
    history = fit(net, data, cfg, seed=rank)
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else float("nan")
    return {"rank": rank, "wall_s": wall, "epoch_s": [h["seconds"] for h in history], "gpu_peak_gb": peak}


def run_k(k: int, a: argparse.Namespace, method: str = "chmfl") -> dict:
    """``a.epochs`` epochs of ``method`` on K folds at once; rates, and the paper protocol
    (6 folds x 40 cases x ``a.protocol_epochs``) extrapolated from them."""
    threads = max(1, (os.cpu_count() or 1) // k)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(k)
        t0 = time.perf_counter()
        with ctx.Pool(k) as pool:
            folds = pool.map(_fold, [(r, method, a.device, a.voxel_mm, a.cases, a.epochs, a.precision, threads,
                                      a.sets, barrier) for r in range(k)])
        total = time.perf_counter() - t0
    train_wall = max(f["wall_s"] for f in folds)
    steps = k * a.cases * a.epochs
    rate = steps / train_wall
    protocol_steps = 6 * 40 * a.protocol_epochs
    steady = {}
    if a.epochs > 1:  # without the first epoch (CUDA/cuDNN start-up, algorithm search)
        later = max(sum(f["epoch_s"][1:]) / (a.epochs - 1) for f in folds)  # slowest fold's epoch
        steady = {"steady_epoch_s": round(later, 3), "steady_steps_per_s": round(k * a.cases / later, 3),
                  "steady_step_s_per_fold": round(later / a.cases, 4),
                  "steady_protocol_hours": round(protocol_steps / (k * a.cases / later) / 3600, 3)}
    return {**steady, "method": method, "k": k, "threads_per_fold": threads, "train_wall_s": round(train_wall, 2),
            "total_wall_s_with_startup": round(total, 2), "steps_per_s": round(rate, 3),
            "step_s_per_fold": round(train_wall / (a.cases * a.epochs), 4),
            "protocol_hours": round(protocol_steps / rate / 3600, 3), "folds": folds}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--voxel-mm", type=float, default=1.0)
    p.add_argument("--folds", type=int, nargs="+", default=[1, 6], help="K values to time")
    p.add_argument("--cases", type=int, default=40, help="training patients per fold")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--precision", default="auto")
    p.add_argument("--method", default="chmfl", help="a neural method of Tables I/II (bench_protocol.py's names)")
    p.add_argument("--protocol-epochs", type=int, default=200)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="training setting, e.g. --set deterministic=false --set channels_last=true")
    p.add_argument("--json", default="benchmarks/results/folds.json")
    a = p.parse_args()
    from chmfl.cli.args import parse_key_values

    a.sets = parse_key_values(a.sets)
    record = {"machine": machine(), "args": vars(a), "runs": []}
    print(f"training settings: {a.sets or 'defaults (deterministic, contiguous)'}", flush=True)
    if a.device == "cuda":
        import torch

        record["gpu"] = torch.cuda.get_device_name()
    for k in a.folds:
        r = run_k(k, a, a.method)
        record["runs"].append(r)
        print(f"K={k}: {r['train_wall_s']:.1f} s for {a.epochs} epoch(s) x {a.cases} cases per fold, "
              f"{r['steps_per_s']:.2f} steps/s in all, {r['step_s_per_fold']:.3f} s/step per fold; "
              f"paper protocol (6 folds x 40 x {a.protocol_epochs} epochs) ~ {r['protocol_hours']:.2f} h",
              flush=True)
        if "steady_epoch_s" in r:
            print(f"     after the first epoch: {r['steady_epoch_s']:.1f} s/epoch, "
                  f"{r['steady_steps_per_s']:.2f} steps/s in all, {r['steady_step_s_per_fold']:.3f} s/step "
                  f"per fold; paper protocol ~ {r['steady_protocol_hours']:.2f} h", flush=True)
    write(a.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
