"""``chmfl demo``: cross-validation and report on the real cohort bundled with the package."""

from __future__ import annotations

import argparse

from chmfl.cli.args import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    from chmfl.demo import DEMO_REPEATS, DEMO_SEED

    p = sub.add_parser("demo", help="run CHMFL and three baselines on the bundled real cohort and write the report")
    p.add_argument("--out", default="chmfl-demo", help="results folder")
    p.add_argument("--epochs", type=positive_int, default=12, help="CHMFL epochs")
    p.add_argument("--full", action="store_true", help="the faithful full-size CHMFL (slow on a CPU)")
    p.add_argument("--seed", type=int, default=DEMO_SEED,
                   help="split seed of repeat 0; repeat r uses seed + r (0 is the development split the "
                        "demo's settings were chosen on)")
    p.add_argument("--repeats", type=positive_int, default=DEMO_REPEATS, help="repeats of the 6-fold CV")
    p.add_argument("--parallel-folds", type=positive_int, default=1, metavar="N",
                   help="run N fold jobs at once in separate processes (each with 1/N of the threads: "
                        "other numbers than the README's)")
    p.add_argument("--threads", default="2", metavar="N|auto",
                   help="CPU threads for CHMFL; 2 gives the README's numbers on any CPU, 'auto' one per "
                        "free core (faster on a large idle machine; numbers then round differently)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (none either when stderr "
                   "is not a terminal)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from chmfl.cli.args import show_progress
    from chmfl.demo import demo_summary, run_demo

    t0 = time.perf_counter()
    html = run_demo(args.out, args.epochs, args.full, args.seed, progress=show_progress(args.no_progress),
                    repeats=args.repeats, parallel_folds=args.parallel_folds, threads=args.threads)
    for line in demo_summary(html.parent):
        print(line)
    print(f"report: {html}  ({time.perf_counter() - t0:.0f} s)")
    return 0
