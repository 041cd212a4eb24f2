"""``chmfl demo``: cross-validation and report on the real cohort bundled with the package."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run CHMFL and two baselines on the bundled real cohort and write the report")
    p.add_argument("--out", default="chmfl-demo", help="results folder (default: ./chmfl-demo)")
    p.add_argument("--epochs", type=int, help="CHMFL epochs (default: the demo's 12)")
    p.add_argument("--full", action="store_true", help="the faithful full-size CHMFL (slow on a CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from chmfl.demo import run_demo

    t0 = time.perf_counter()
    html = run_demo(args.out, args.epochs, args.full, args.seed, progress=not args.no_progress)
    print(f"report: {html}  ({time.perf_counter() - t0:.0f} s)")
    return 0
