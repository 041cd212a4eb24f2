"""What the paper protocol costs, network by network: every neural method of Tables I and II
trained by the real loop (``Trainer``, the method's own training settings: batch 1, Adam,
Eq. (1)) on ``--cases`` synthetic patients for 2 epochs, one after another in one process.
The second epoch's time per step (no start-up) x 40 training patients x ``--protocol-epochs``
x 6 folds is each method's share of the protocol at the epoch maximum (early stopping usually
ends sooner); the sums are the tables run one fold at a time.

    python benchmarks/bench_protocol.py [--device cuda] [--voxel-mm 1] [--cases 40] [--set KEY=VALUE]
                                        [--folds-at-once K] [--json FILE]

With ``--folds-at-once K`` (K > 1) each method trains K synthetic folds at once in K processes
(``bench_folds.py``; what ``chmfl reproduce --parallel-folds K`` does with the real folds): its
share is then the slowest fold's second-epoch time per step x 40 x ``--protocol-epochs`` x 6 / K.

MOR+3D CNNs is timed by its CNN (its radiomics search runs on the CPU); 3DMCL gets 100 random
handcrafted features. HC+RF and the SUVmax floor train in seconds on a CPU and are left out.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fit, machine, method_setup, with_settings, write  # noqa: E402

PROTOCOL_CASES = 40  # training patients per fold: 48 with labels, 6 folds
TABLE_I = ["cnlpc", "mor-3dcnn", "3dmcl", "mask-hmfl", "cfl", "chmfl"]
TABLE_II = ["cnn2d-ct", "cnn2d-pet", "cnn2d-petct", "cnn3d-ct", "cnn3d-pet", "cnn3d-petct",
            "mask-hmfl", "cfl", "chmfl"]


def _share_h(step_s: float, a: argparse.Namespace, folds_at_once: int) -> float:
    """Hours of the protocol: 6 folds x 40 training patients (batch 1) x the epoch maximum,
    ``folds_at_once`` folds advancing together at ``step_s`` per step each."""
    return step_s * PROTOCOL_CASES * a.protocol_epochs * 6 / folds_at_once / 3600


def time_method(name: str, a: argparse.Namespace) -> dict:
    if a.folds_at_once > 1:
        return _time_folds_at_once(name, a)
    net, data, train, network = method_setup(name, a.voxel_mm, a.cases)
    cfg = with_settings(train, {"epochs": 2, "patience": 10**6, "accelerator": a.device, **a.sets})
    t0 = time.perf_counter()
    history = fit(net, data, cfg, seed=0)
    epochs = [h["seconds"] for h in history]
    share_h = _share_h(epochs[-1] / a.cases, a, folds_at_once=1)
    return {"method": name, "network": network, "first_epoch_s": round(epochs[0], 3),
            "epoch_s": round(epochs[-1], 3), "step_s": round(epochs[-1] / a.cases, 4),
            "protocol_share_h": round(share_h, 3), "wall_s": round(time.perf_counter() - t0, 2)}


def _time_folds_at_once(name: str, a: argparse.Namespace) -> dict:
    """K folds of ``name`` at once (K processes); the slowest fold's second epoch sets the pace."""
    from bench_folds import run_k

    k = a.folds_at_once
    args = argparse.Namespace(device=a.device, voxel_mm=a.voxel_mm, cases=a.cases, epochs=2,
                              precision=a.sets.get("precision", "auto"), sets=a.sets,
                              protocol_epochs=a.protocol_epochs)
    r = run_k(k, args, name)
    first = max(f["epoch_s"][0] for f in r["folds"])
    epoch = r["steady_epoch_s"]
    return {"method": name, "folds_at_once": k, "first_epoch_s": round(first, 3), "epoch_s": epoch,
            "step_s": round(epoch / a.cases, 4),
            "protocol_share_h": round(_share_h(epoch / a.cases, a, k), 3),
            "wall_s": r["total_wall_s_with_startup"], "gpu_peak_gb": [f["gpu_peak_gb"] for f in r["folds"]]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--voxel-mm", type=float, default=1.0)
    p.add_argument("--cases", type=int, default=40, help="training patients per fold")
    p.add_argument("--protocol-epochs", type=int, default=200)
    p.add_argument("--methods", nargs="+", help="default: every neural method of Tables I and II")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="training setting for every method, e.g. --set channels_last=true")
    p.add_argument("--folds-at-once", type=int, default=1, metavar="K",
                   help="train K folds of each method at once in K processes (default 1: in this one)")
    p.add_argument("--json", default="benchmarks/results/protocol.json")
    a = p.parse_args()
    from chmfl.cli.args import parse_key_values

    a.sets = parse_key_values(a.sets)
    names = a.methods or list(dict.fromkeys(TABLE_I + TABLE_II))
    record = {"machine": machine(), "args": vars(a), "methods": []}
    if a.device == "cuda":
        import torch

        record["gpu"] = torch.cuda.get_device_name()
    for name in names:
        r = time_method(name, a)
        record["methods"].append(r)
        print(f"{name:<14} {r['epoch_s']:>8.2f} s/epoch ({r['step_s']:.3f} s/step per fold; first epoch "
              f"{r['first_epoch_s']:.1f} s) -> {r['protocol_share_h']:.2f} h of the protocol", flush=True)
    share = {r["method"]: r["protocol_share_h"] for r in record["methods"]}
    for label, table in (("Table I", TABLE_I), ("Table II", TABLE_II)):
        if all(n in share for n in table):
            record[label] = round(sum(share[n] for n in table), 3)
            how = f"{a.folds_at_once} folds at once" if a.folds_at_once > 1 else "one fold at a time"
            print(f"{label}: {record[label]:.2f} h at {a.protocol_epochs} epochs, {how}")
    if all(n in share for n in TABLE_I + TABLE_II):
        record["Tables I + II, shared methods once"] = round(sum(share.values()), 3)
        print(f"Tables I + II (shared methods trained once): {sum(share.values()):.2f} h")
    write(a.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
