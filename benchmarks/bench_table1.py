"""Time ``chmfl reproduce table1`` end to end on a prepared cache (4 mm for CPU work) and
report each method's fit time per fold from the run's timing.csv.

    python benchmarks/bench_table1.py --data CACHE --out DIR [--epochs 1] [--speed-options]
                                      [--parallel-folds N] [--json FILE]

The paper protocol (200 epochs x 6 folds x 8 methods) takes hours on a 2-core CPU; run it with
``--epochs 1`` to measure the per-epoch cost and extrapolate (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import chmfl, machine, timed, write  # noqa: E402


def per_method(timing_csv: Path) -> dict:
    """Median and total fit / predict seconds per method, and the epochs run."""
    import pandas as pd

    df = pd.read_csv(timing_csv)
    out = {}
    for method, g in df.groupby("method", sort=False):
        out[method] = {"folds": len(g), "fit_s_median": round(float(g["fit_s"].median()), 2),
                       "fit_s_total": round(float(g["fit_s"].sum()), 2),
                       "predict_s_median": round(float(g["predict_s"].median()), 2),
                       "epochs": g["epochs"].tolist(), "peak_rss_gb_max": round(float(g["peak_rss_gb"].max()), 2)}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="cache folder (chmfl data prepare --voxel-mm 4)")
    p.add_argument("--out", required=True, help="results folder (a new one)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--experiment", default="table1")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="training override")
    p.add_argument("--speed-options", action="store_true", help="passed to chmfl reproduce")
    p.add_argument("--parallel-folds", type=int, default=1, help="passed to chmfl reproduce")
    p.add_argument("--json", default="benchmarks/results/table1_e2e.json")
    args = p.parse_args()
    if not (Path(args.data) / "manifest.csv").is_file():
        print(f"skipped: {args.data} is not a prepared cache (no manifest.csv)")
        return 0
    cmd = chmfl() + ["reproduce", args.experiment, "--data", args.data, "--out", args.out,
                     "--epochs", str(args.epochs), "--no-progress"]
    for kv in args.set:
        cmd += ["--set", kv]
    if args.speed_options:
        cmd.append("--speed-options")
    if args.parallel_folds > 1:
        cmd += ["--parallel-folds", str(args.parallel_folds)]
    run = timed(cmd)
    record = {"machine": machine(), "epochs": args.epochs, "run": run}
    timing = Path(args.out) / "timing.csv"
    if timing.is_file():
        record["methods"] = per_method(timing)
        for method, r in record["methods"].items():
            print(f"{method:<16} fit {r['fit_s_median']:>8.1f} s/fold (median of {r['folds']}), "
                  f"predict {r['predict_s_median']:.1f} s, peak {r['peak_rss_gb_max']:.2f} GB")
    print(f"total {run['wall_s']:.0f} s")
    write(args.json, record)
    return run["rc"]


if __name__ == "__main__":
    sys.exit(main())
