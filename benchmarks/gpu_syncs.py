"""How often the training loop makes the host wait for the GPU, per method (needs CUDA).

A host-device synchronisation (a tensor read on the host, a blocking host-to-GPU copy) stops
the host from queueing the next kernels until the GPU has finished the queued ones: for the
networks whose steps are bound by kernel launches, every one costs the GPU's tail of the step.
``torch.cuda.set_sync_debug_mode("warn")`` warns at each; this counts them over one and over
two epochs of the training loop (``Trainer``, the method's own settings, batch 1) on ``--cases`` synthetic
patients: the difference is one steady epoch, divided by the steps.

    python benchmarks/gpu_syncs.py [--voxel-mm 1] [--cases 8] [--methods ...] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fit, machine, method_setup, with_settings, write  # noqa: E402


def count_syncs(name: str, a: argparse.Namespace, epochs: int) -> int:
    import torch
    net, data, train, _ = method_setup(name, a.voxel_mm, a.cases)
    cfg = with_settings(train, {"epochs": epochs, "patience": 10**6, "accelerator": "cuda", **a.sets})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fit(net, data, cfg, seed=0)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--voxel-mm", type=float, default=1.0)
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--methods", nargs="+", default=["chmfl", "mask-hmfl", "3dmcl", "cnn3d-petct",
                                                    "cnn2d-petct", "cnlpc", "mor-3dcnn"])
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", default="benchmarks/results/gpu_syncs.json")
    a = p.parse_args()
    import torch

    from chmfl.cli.args import parse_key_values

    if not torch.cuda.is_available():
        print("gpu_syncs.py: needs a CUDA device (none here)", file=sys.stderr)
        return 2
    a.sets = parse_key_values(a.sets)
    record = {"machine": machine(), "gpu": torch.cuda.get_device_name(), "args": vars(a), "methods": []}
    for name in a.methods:
        one, two = count_syncs(name, a, 1), count_syncs(name, a, 2)
        per_step = (two - one) / a.cases
        record["methods"].append({"method": name, "syncs_1_epoch": one, "syncs_2_epochs": two,
                                  "syncs_per_steady_step": per_step})
        print(f"{name:<14} {one:>5} syncs in 1 epoch, {two:>5} in 2: {per_step:.2f} per step", flush=True)
    write(a.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
