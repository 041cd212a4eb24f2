"""``chmfl train``: one method fitted on every included patient, saved for ``chmfl predict``.

The model folder carries the preprocessing config of the cache it was trained on, so a new
patient is prepared exactly as the training patients were.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import yaml

from chmfl.cv.experiment import Experiment, parse_methods
from chmfl.cv.fold import FoldJob, build_method
from chmfl.cv.runner import RunOptions, fold_settings
from chmfl.data.cases import load_cases
from chmfl.errors import ChmflError
from chmfl.methods.base import FitContext
from chmfl.methods.registry import METHODS


def train_final(method: str, cache: str | Path, out: str | Path, opts: RunOptions,
                pretrained: str | None = None, model_kwargs: dict | None = None) -> Path:
    """Fit ``method`` (a registry name, optionally ``NAME[key=value,...]``) on all included
    patients of ``cache``; write ``out/model``. ``model_kwargs`` add to the variant's."""
    runs = parse_methods(method)
    if len(runs) != 1:
        raise ChmflError(f"--method names one method, got {len(runs)}")
    run = runs[0]
    if model_kwargs:
        run = dataclasses.replace(run, model_kwargs={**run.model_kwargs, **model_kwargs})
    if pretrained and not Path(pretrained).is_file():
        raise ChmflError(f"pretrained weights file not found: {pretrained}")
    endpoint = METHODS[run.method].endpoint  # survival models train on every patient with an endpoint
    cases = load_cases(cache, endpoint=endpoint)
    prep_path = Path(cache) / "prepare_config.yaml"
    if not prep_path.is_file():
        raise ChmflError(f"{cache} has no prepare_config.yaml: prepare it with 'chmfl data prepare'")
    prepare = yaml.safe_load(prep_path.read_text())
    exp = Experiment("train", "final model", (run,), endpoint=endpoint)
    out = Path(out)
    train, runtime = fold_settings(exp, run, opts)
    job = FoldJob(run, 0, 0, FitContext(train, runtime, opts.seed, out / "work"), pretrained, out, endpoint)
    m = build_method(job, opts.progress)
    m.fit(cases)
    m.save(out / "model", extra={"preprocess": prepare, "trained_on": [c.patient_id for c in cases]})
    shutil.rmtree(out / "work", ignore_errors=True)  # checkpoints were for resuming only
    return out / "model"
