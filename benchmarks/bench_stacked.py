"""K folds' training steps stacked into one (``torch.func`` vmap; ``chmfl.accel.stacked``)
against the same K steps one after another, per network, batch 1 (the paper's).

    python benchmarks/bench_stacked.py [--device cuda] [--voxel-mm 4] [--folds 6]
                                       [--methods chmfl cnlpc ...] [--bf16] [--json FILE]

Both sides run forward, Eq. (1), backward and Adam of every fold on its own synthetic patient;
the ratio separate / stacked is what stacking the folds would gain over training them one
after another in one process (processes, ``--parallel-folds``, are ``bench_folds.py``).
Stacked steps run without channels_last_3d and the CPU-only ``fast_wgrad`` (see
``chmfl.accel.stacked``), so the separate steps here run without them too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, method_setup, write  # noqa: E402

METHODS = ["chmfl", "mask-hmfl", "3dmcl", "mor-3dcnn", "cnn3d-petct", "cnn2d-petct", "cnlpc"]


def time_method(name: str, a: argparse.Namespace) -> dict:
    import copy

    import torch

    from chmfl.accel.stacked import StackedFolds, separate_steps
    from chmfl.bench.measure import time_call

    setups = [method_setup(name, a.voxel_mm, cases=1, seed=k) for k in range(a.folds)]
    nets = [s[0] for s in setups]
    batches = [s[1] for s in setups]
    train = setups[0][2][0]  # the science (lr, w)
    dtype = torch.bfloat16 if a.bf16 else None
    refs = [copy.deepcopy(n).to(a.device) for n in nets]
    opts = [torch.optim.Adam(n.parameters(), lr=train.lr) for n in refs]
    stacked = StackedFolds(nets, lr=train.lr, seg_weight=train.seg_weight, device=a.device, autocast_dtype=dtype)
    sep = time_call(lambda: separate_steps(refs, opts, batches, train.seg_weight, device=a.device,
                                           autocast_dtype=dtype), a.repeats, a.warmup, a.device).median_s
    stk = time_call(lambda: stacked.step(batches), a.repeats, a.warmup, a.device).median_s
    return {"method": name, "folds": a.folds, "separate_s": round(sep, 4), "stacked_s": round(stk, 4),
            "speedup": round(sep / stk, 3)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--voxel-mm", type=float, default=4.0)
    p.add_argument("--folds", type=int, default=6)
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast on both sides")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", default="benchmarks/results/stacked.json")
    a = p.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    record = {"machine": machine(), "args": vars(a), "threads": torch.get_num_threads(), "methods": []}
    if a.device == "cuda":
        record["gpu"] = torch.cuda.get_device_name()
    for name in a.methods:
        r = time_method(name, a)
        record["methods"].append(r)
        print(f"{name:<14} {a.folds} folds: separate {r['separate_s']:.4f} s, stacked {r['stacked_s']:.4f} s "
              f"per step of all folds -> {r['speedup']:.2f}x", flush=True)
    write(a.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
