"""Experiments as plain data: ``chmfl/experiments/<name>.yaml`` (no code in them).

An experiment names its methods, folds, repeats, the reference method for the paper's
t-tests, its endpoint ("dm", the paper's binary DM label, or "dm-free-survival"), and the
training settings (science and runtime keys together; routed by name). A
method entry is a registry name, or a mapping ``{method: NAME, train: {...}, model_kwargs:
{...}, size: NAME, pretrained: KEY, label: LABEL}`` for a variant (``methods.spec.MethodRun``);
on the command line the same variant is ``NAME[key=value,...]``. A variant's label in the
results is LABEL, or else ``NAME[key=value,...]`` of its science (never parsed back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from chmfl.data.cases import ENDPOINTS
from chmfl.errors import ChmflError
from chmfl.methods.registry import METHODS, check_run
from chmfl.methods.spec import (
    MethodRun,
    RuntimeOverrides,
    TrainOverrides,
    parse_method_arg,
    split_top_level,
    typed_settings,
)

__all__ = ["PAPER_EXPERIMENTS", "Experiment", "MethodRun", "custom_experiment", "load_experiment",
           "parse_experiment", "parse_methods"]

PAPER_EXPERIMENTS = ("table1", "table2", "tableS2", "tableS3", "tableS4", "fig5")


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    methods: tuple[MethodRun, ...]
    reference: str = "chmfl"
    folds: int = 6
    repeats: int = 1
    # the experiment's settings for every method; a flat mapping is split by name
    train: TrainOverrides | Mapping[str, Any] = field(default_factory=TrainOverrides)
    runtime: RuntimeOverrides = field(default_factory=RuntimeOverrides)
    # what every method predicts and is scored on: "dm" (the binary DM label) or
    # "dm-free-survival" (time from the PET scan to DM; cv.survival)
    endpoint: str = "dm"

    def __post_init__(self) -> None:
        typed_settings(self)
        if self.endpoint not in ENDPOINTS:
            raise ChmflError(f"unknown endpoint {self.endpoint!r}: use one of {', '.join(ENDPOINTS)}")
        if self.endpoint == "dm":  # a survival model gives no P(DM); a classifier ranks on either
            surv = [m.label for m in self.methods if METHODS[m.method].endpoint != "dm"]
            if surv:
                raise ChmflError(f"{', '.join(surv)} predict(s) DM-free survival: run with --endpoint dm-free-survival")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "reference": self.reference, "endpoint": self.endpoint,
            "folds": self.folds, "repeats": self.repeats, "train": self.train.to_dict(),
            "runtime": self.runtime.to_dict(), "methods": [m.to_dict() for m in self.methods],
        }


def _method_run(entry: Any) -> MethodRun:
    run = MethodRun.from_dict(entry)
    check_run(run)  # a bad model argument or size fails here, not in a fold
    return run


def parse_experiment(data: dict[str, Any]) -> Experiment:
    methods = tuple(_method_run(e) for e in data.get("methods") or [])
    if not methods:
        raise ChmflError("an experiment needs at least one method")
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        raise ChmflError(f"experiment lists a method twice: {labels}")
    return Experiment(
        name=str(data.get("name", "custom")), title=str(data.get("title", data.get("name", "custom"))),
        methods=methods, reference=str(data.get("reference", methods[-1].label)),
        folds=int(data.get("folds", 6)), repeats=int(data.get("repeats", 1)),
        train=dict(data.get("train") or {}), endpoint=str(data.get("endpoint", "dm")),
    )


def load_experiment(name_or_path: str) -> Experiment:
    """A packaged experiment by name (table1, ..., fig5) or a YAML file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        text = path.read_text()
    elif name_or_path in PAPER_EXPERIMENTS:
        text = resources.files("chmfl.experiments").joinpath(f"{name_or_path}.yaml").read_text()
    else:
        raise ChmflError(f"unknown experiment {name_or_path!r}: use one of {', '.join(PAPER_EXPERIMENTS)} or a YAML file")
    return parse_experiment(yaml.safe_load(text))


def parse_methods(text: str) -> list[MethodRun]:
    """``--methods "chmfl[size=demo,seg_weight=0.3],hc-rf"``: comma-separated registry names,
    each optionally with a bracketed variant (``methods.spec.parse_method_arg``)."""
    runs = [parse_method_arg(m) for m in split_top_level(text)]
    if not runs:
        raise ChmflError("--methods names no method")
    for run in runs:
        check_run(run)
    return runs


def custom_experiment(methods: list[str | MethodRun], folds: int, repeats: int,
                      reference: str | None = None, endpoint: str = "dm") -> Experiment:
    """The experiment behind ``chmfl cv --methods a,b[k=v],c [--endpoint ...]``."""
    runs = [m if isinstance(m, MethodRun) else _method_run(parse_method_arg(m)) for m in methods]
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise ChmflError(f"--methods lists a method twice: {labels}")
    ref = reference or ("chmfl" if "chmfl" in labels else labels[-1])
    return Experiment("custom", "Cross-validation", tuple(runs), ref, folds, repeats, endpoint=endpoint)
