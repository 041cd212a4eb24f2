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

DEMO_TRAIN = {"epochs": 12, "batch_size": 4, "augment": True, "lr": 1e-3, "patience": 100,
              "precision": "auto"}


def demo_experiment(full: bool = False) -> Experiment:
    chmfl = MethodRun("chmfl") if full else MethodRun("chmfl", size="demo")
    return Experiment(
        name="demo", title="chmfl demo: 6-fold CV on the bundled 48-patient cohort (4 mm)",
        methods=(MethodRun("suvmax-volume"), MethodRun("clinical"), MethodRun("hc-rf"), chmfl),
        reference=chmfl.label, folds=6, repeats=1, train=dict(DEMO_TRAIN),
    )


def run_demo(out: str | Path = "chmfl-demo", epochs: int | None = None, full: bool = False,
             seed: int = 0, progress: bool = True) -> Path:
    """Cross-validate the demo methods on the bundled cohort and build the report."""
    from chmfl.preprocess.bundle import demo_cache_dir
    from chmfl.report import build_report

    cache = demo_cache_dir()
    if not (cache / "manifest.csv").is_file():
        raise ChmflError(f"the bundled demo data is missing from {cache} (reinstall chmfl)")
    t0 = time.perf_counter()
    out = Path(out)
    opts = RunOptions(seed=seed, epochs=epochs, progress=progress)
    run_experiment(demo_experiment(full), cache, out, opts)
    paths = build_report(out)
    log.info("demo finished in %.0f s", time.perf_counter() - t0)
    return Path(paths.html)
