"""``chmfl demo``: the whole pipeline on the real cohort bundled with the package, offline.

Runs a 6-fold cross-validation of CHMFL and three baselines (the SUVmax + volume floor, the
clinical baseline on age, grade and histology, and HC+RF) on the 48 included patients of the
bundled 4 mm cache, then writes the report.
To fit in about ten minutes on two CPU cores, CHMFL runs in its named ``demo`` size
(``models.chmfl.SIZES``: narrower channels, 3x3x3 decoder convolutions: same architecture,
~1/20 of the FLOPs) with a short robust schedule; ``--full`` runs the faithful network instead
(hours on a CPU). Every setting used is written to the results' config.yaml; the same run is
``chmfl cv --data <bundled cache> --methods "suvmax-volume,clinical,hc-rf,chmfl[size=demo]" --set
epochs=12 --set batch_size=4 --set augment=true --set lr=0.001 --set patience=100``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from chmfl.cv.experiment import Experiment, MethodRun
from chmfl.cv.runner import RunOptions, run_experiment
from chmfl.errors import ChmflError

log = logging.getLogger(__name__)

# Precision and threads are pinned: both change how CHMFL's sums are rounded, and after 12
# epochs the rounding shows in the third decimal (bf16, which "auto" picks on CPUs with AMX:
# pooled AUC 0.720 instead of 0.731). With fp32 and 2 threads the numbers vary only with the
# CPU's vector instructions (README: what varies across machines).
DEMO_TRAIN = {"epochs": 12, "batch_size": 4, "augment": True, "lr": 1e-3, "patience": 100,
              "precision": "32", "num_threads": 2}


def demo_experiment(full: bool = False, threads: int = DEMO_TRAIN["num_threads"]) -> Experiment:
    chmfl = MethodRun("chmfl") if full else MethodRun("chmfl", size="demo")
    return Experiment(
        name="demo", title="chmfl demo: 6-fold CV on the bundled 48-patient cohort (4 mm)",
        methods=(MethodRun("suvmax-volume"), MethodRun("clinical"), MethodRun("hc-rf"), chmfl),
        reference=chmfl.label, folds=6, repeats=1, train={**DEMO_TRAIN, "num_threads": threads},
    )


def run_demo(out: str | Path = "chmfl-demo", epochs: int | None = None, full: bool = False,
             seed: int = 0, progress: bool = True, threads: int | str = DEMO_TRAIN["num_threads"]) -> Path:
    """Cross-validate the demo methods on the bundled cohort and build the report."""
    from chmfl.methods.threads import resolve_threads
    from chmfl.preprocess.bundle import demo_cache_dir
    from chmfl.report import build_report

    cache = demo_cache_dir()
    if not (cache / "manifest.csv").is_file():
        raise ChmflError(f"the bundled demo data is missing from {cache} (reinstall chmfl)")
    t0 = time.perf_counter()
    out = Path(out)
    n = resolve_threads(threads)
    log.info("CHMFL trains in fp32 with %d thread%s%s", n, "s" if n != 1 else "",
             " whatever the machine: bf16 or another thread count would round its sums differently "
             "(README: what varies across machines)" if n == DEMO_TRAIN["num_threads"]
             else f" ({threads}); the README's numbers need 2 (--threads 2): other counts round differently")
    opts = RunOptions(seed=seed, epochs=epochs, progress=progress)
    run_experiment(demo_experiment(full, n), cache, out, opts)
    paths = build_report(out)
    log.info("demo finished in %.0f s", time.perf_counter() - t0)
    return Path(paths.html)


def demo_summary(out: str | Path) -> list[str]:
    """The demo's numbers as the README quotes them: pooled AUC per method (all test patients
    of the 6 folds), and the mean Dice of the methods that segment."""
    import pandas as pd

    metrics = pd.read_csv(Path(out) / "metrics.csv", dtype={"fold": str})
    pooled = metrics[metrics["fold"] == "all"]
    lines = []
    for method, rows in pooled.groupby("method", sort=False):
        values = dict(zip(rows["metric"], rows["value"]))
        dice = f", Dice {values['dsc']:.3f}" if "dsc" in values else ""
        lines.append(f"{method}: pooled AUC {values.get('auc', float('nan')):.3f}{dice}")
    return lines
