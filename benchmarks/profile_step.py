"""Where one CHMFL training step spends its time: torch.profiler over ``Trainer.step`` (the loop's
own step, set up as a fold sets it up), per operator and input shape (one row per convolution
layer shape), with the step's share per category (convolutions forward / backward, BatchNorm,
ELU, layout reorders and copies, Adam, the rest).

    python benchmarks/profile_step.py --voxel-mm 4 --threads 2 [--no-speed-options] [--json F]

Synthetic inputs, batch 1; one untimed step first (oneDNN's kernel creation), then the profiled
step(s). docs/performance.md ("Profile of one step") holds the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict

import torch

from chmfl.accel.options import NO_SPEED_OPTIONS
from chmfl.bench.networks import box_shape, synthetic_case
from chmfl.cv.record import cpu_model
from chmfl.methods.runtime import RuntimeConfig
from chmfl.methods.train_config import TrainConfig
from chmfl.methods.trainer import Trainer
from chmfl.models import build_model

CATEGORIES = (  # (category, substrings of the operator name), first match wins
    ("conv backward", ("convolution_backward", "gemmwgrad", "wgrad")),
    ("conv forward", ("convolution", "conv3d", "conv_transpose")),
    ("batchnorm", ("batch_norm",)),
    ("elu", ("elu",)),
    ("reorder/copy", ("copy_", "to_dense", "reorder", "contiguous", "clone", "::to", "cat")),
    ("adam", ("adam", "_foreach")),
)


def category(name: str) -> str:
    low = name.lower()
    for cat, keys in CATEGORIES:
        if any(k in low for k in keys):
            return cat
    return "other"


def profile(voxel_mm: float, threads: int, plain: bool, steps: int, timed: int = 3,
            off: tuple[str, ...] = ()) -> dict:
    torch.set_num_threads(threads)
    runtime = RuntimeConfig(precision="auto", accelerator="cpu", deterministic=False)
    if plain:
        runtime = runtime.replace(**NO_SPEED_OPTIONS)
    runtime = runtime.replace(**dict.fromkeys(off, False))  # single options off (an ablation)
    torch.manual_seed(0)
    trainer = Trainer(build_model("chmfl"), TrainConfig(), runtime, seed=0, progress=False)
    trainer.model.train()
    data = synthetic_case(box_shape(voxel_mm))
    trainer.step(data)  # warm-up: oneDNN primitive creation
    walls, cpus = [], []
    for _ in range(timed):  # unprofiled steps: wall and process CPU time (less load-sensitive)
        w, c = time.perf_counter(), time.process_time()
        trainer.step(data)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    acts = [torch.profiler.ProfilerActivity.CPU]
    t0 = time.perf_counter()
    with torch.profiler.profile(activities=acts, record_shapes=True) as prof:
        for _ in range(steps):
            trainer.step(data)
    wall = (time.perf_counter() - t0) / steps
    rows = []
    for ev in prof.key_averages(group_by_input_shape=True):
        if ev.self_cpu_time_total <= 0:
            continue
        rows.append({"op": ev.key, "shapes": str(ev.input_shapes)[:120], "calls": ev.count // steps,
                     "self_s": ev.self_cpu_time_total / 1e6 / steps})
    total = sum(r["self_s"] for r in rows)
    by_cat: dict[str, float] = defaultdict(float)
    for r in rows:
        r["share"] = r["self_s"] / total
        by_cat[category(r["op"])] += r["self_s"]
    rows.sort(key=lambda r: -r["self_s"])
    return {"cpu": cpu_model(), "torch": torch.__version__, "threads": threads, "voxel_mm": voxel_mm,
            "box_zyx": box_shape(voxel_mm), "speed_options": trainer.runtime.speed.to_dict(),
            "precision": runtime.precision,
            "step_wall_s_profiled": wall, "step_wall_s": walls, "step_cpu_s": cpus, "profiled_self_s": total, "load_avg": os.getloadavg(),
            "categories": {k: {"s": v, "share": v / total} for k, v in sorted(by_cat.items(), key=lambda x: -x[1])},
            "top_ops": rows[:25]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--voxel-mm", type=float, default=4.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=1, help="profiled steps")
    p.add_argument("--timed", type=int, default=3, help="unprofiled timed steps before them")
    p.add_argument("--no-speed-options", action="store_true", help="the plain step (all options off)")
    p.add_argument("--off", action="append", default=[], metavar="OPTION",
                   help="this speed option off, the others at their defaults (repeatable)")
    p.add_argument("--json")
    args = p.parse_args()
    res = profile(args.voxel_mm, args.threads, args.no_speed_options, args.steps, args.timed,
                  tuple(args.off))
    print(f"{res['cpu']}, {res['threads']} threads, box {res['box_zyx']}, {res['precision']}, "
          f"load {res['load_avg'][0]:.2f}, step {res['step_wall_s_profiled']:.3f} s (profiled); "
          f"unprofiled best {min(res['step_wall_s']):.3f} s wall, {min(res['step_cpu_s']):.3f} s CPU")
    for k, v in res["categories"].items():
        print(f"  {k:<14} {v['s']:8.3f} s  {v['share']:6.1%}")
    for r in res["top_ops"][:20]:
        print(f"  {r['self_s']:7.3f} s {r['share']:6.1%} x{r['calls']:<3} {r['op']:<40} {r['shapes'][:90]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
