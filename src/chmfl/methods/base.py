"""The one contract every compared method answers, declared once and checked at import.

``Method`` (scikit-learn's estimator contract): ``build`` makes the method from its registered
arguments, the run's model arguments and the ``FitContext`` the runner gives every method
(typed training settings, seed, work folder); ``fit(cases)`` learns from the training fold
and returns ``self`` (learned state ends in ``_``); ``predict_proba(cases)`` returns P(DM) per
case, shape (n,); ``save(dir)`` writes weights + config in safe formats (safetensors / JSON /
numpy without pickles) and the classmethod ``load(dir)`` rebuilds the method from that folder
alone, executing no code from it.

A method that reads the test patient's contour when it predicts says why in
``contour_at_test`` (``needs_contour()``), so annotation-free runs leave it out, saying so,
instead of feeding it the truth.

Optional abilities are declared in ``capabilities``, never probed: "predict_mask" (uint8 masks
on each case's box grid), "embed" (learned features (n, d) for t-SNE, Fig 7), "saliency"
(input-gradient maps (n, z, y, x), Fig 6). A subclass overrides exactly the methods it
declares -- ``__init_subclass__`` refuses any other class at import, so a broken method fails
in a test, not in fold 4 of a run. ``predict_all`` (what a fold records) and ``fit_info``
(what a fold's done.json says about the fit) have defaults built from the declared
abilities.

The survival contract (the DM-free survival endpoint) is two more declared abilities:
"predict_risk" (``predict_risk(cases) -> (n,)``, higher = earlier DM) makes a method a
survival model -- ``predict_all`` then records "risk" instead of "probability", and its
``predict_proba`` refuses (``risk_only``); "predict_survival" (``predict_survival(cases,
times) -> (n, len(times))`` DM-free probabilities) needs "predict_risk". The registry's
``endpoint`` of a method says the same and ``registry.method_class`` checks that they agree.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from chmfl.data.cases import CaseData
from chmfl.errors import ChmflError
from chmfl.methods.runtime import RuntimeConfig
from chmfl.methods.train_config import TrainConfig

CAPABILITIES = ("predict_mask", "embed", "saliency", "predict_risk", "predict_survival")
SURVIVAL = "predict_risk"  # the ability that makes a method a survival model


@dataclass(frozen=True)
class FitContext:
    """What the runner gives every method: the typed training settings (science and runtime;
    methods without a network ignore them), the fold's seed, where to keep checkpoints, and
    whether to show progress bars."""

    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    seed: int = 0
    workdir: Path | None = None
    progress: bool = True


@dataclass(frozen=True)
class FitInfo:
    """What a fitted method tells the fold record (done.json, log.csv)."""

    history: list[dict] = field(default_factory=list)  # per epoch (networks); empty otherwise
    diagnostics: dict[str, float] | None = None  # training-fold checks, e.g. train AUCs
    device: str = "cpu"
    precision: str | None = None  # the resolved precision, where a network trained
    train: TrainConfig | None = None  # the science it trained with (networks)
    runtime: RuntimeConfig | None = None  # and the runtime settings


class Method(abc.ABC):
    """Base class of every registered method (module docstring)."""

    capabilities: ClassVar[frozenset[str]] = frozenset()
    # Why the method reads the test patient's tumour contour when it predicts (the mask, or
    # features computed inside it), or None. Such a method cannot run where test boxes are
    # placed without a contour (``chmfl cv --test-box hotspot``, ``chmfl predict`` without one).
    contour_at_test: ClassVar[str | None] = None
    name: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_contract(cls)

    @classmethod
    @abc.abstractmethod
    def build(cls, name: str, registered: Mapping[str, Any], model_kwargs: Mapping[str, Any],
              ctx: FitContext, size: str | None = None) -> Method:
        """The method ``name`` from its registry arguments ``registered``, the run's
        ``model_kwargs`` (a network's options for neural methods, the method's own otherwise;
        an unknown key is a one-line error) and the network's named ``size``."""

    @abc.abstractmethod
    def fit(self, cases: Sequence[CaseData]) -> Method: ...

    @abc.abstractmethod
    def predict_proba(self, cases: Sequence[CaseData]) -> np.ndarray: ...

    @abc.abstractmethod
    def save(self, directory: str | Path, extra: dict | None = None) -> None: ...

    @classmethod
    @abc.abstractmethod
    def load(cls, directory: str | Path) -> Method: ...

    def needs_contour(self) -> str | None:
        """Why this method needs the test patient's contour at prediction time, or None
        (``contour_at_test``; a method whose need depends on its network overrides this)."""
        return self.contour_at_test

    def predict_mask(self, cases: Sequence[CaseData]) -> list[np.ndarray]:
        raise ChmflError(f"method {self.name} does not segment")

    def embed(self, cases: Sequence[CaseData]) -> np.ndarray:
        raise ChmflError(f"method {self.name} has no embeddings")

    def saliency(self, cases: Sequence[CaseData]) -> np.ndarray:
        raise ChmflError(f"method {self.name} has no saliency maps")

    def predict_risk(self, cases: Sequence[CaseData]) -> np.ndarray:
        raise ChmflError(f"method {self.name} is not a survival model (no risk score)")

    def predict_survival(self, cases: Sequence[CaseData], times: Sequence[float]) -> np.ndarray:
        raise ChmflError(f"method {self.name} predicts no DM-free probabilities")

    def predict_all(self, cases: Sequence[CaseData], saliency: bool = True) -> dict[str, np.ndarray]:
        """Everything a fold records for ``cases``: "probability" (a survival model: "risk"),
        and "mask", "features", "saliency" as the method declares them."""
        if SURVIVAL in self.capabilities:
            out = {"risk": np.asarray(self.predict_risk(cases), dtype=float)}
        else:
            out = {"probability": np.asarray(self.predict_proba(cases), dtype=float)}
        if "embed" in self.capabilities:
            out["features"] = np.asarray(self.embed(cases), dtype=float)
        if "predict_mask" in self.capabilities:
            out["mask"] = np.stack(self.predict_mask(cases))
        if saliency and "saliency" in self.capabilities:
            out["saliency"] = self.saliency(cases)
        return out

    def fit_info(self) -> FitInfo:
        return FitInfo()


def check_contract(cls: type) -> None:
    """Refuse a ``Method`` subclass whose declared abilities and overridden methods disagree
    (an ability declared but not implemented, or implemented but not declared), whose
    ``build`` / ``load`` are not classmethods, that names an unknown ability, or that predicts
    DM-free probabilities without a risk score."""
    caps = set(cls.capabilities)
    unknown = caps - set(CAPABILITIES)
    if unknown:
        raise TypeError(f"{cls.__name__}: unknown capabilities {sorted(unknown)}; known: {CAPABILITIES}")
    for cap in CAPABILITIES:
        overridden = getattr(cls, cap) is not getattr(Method, cap)
        if overridden != (cap in caps):
            state = "implements" if overridden else "declares"
            raise TypeError(f"{cls.__name__} {state} {cap!r} but "
                            f"{'does not declare' if overridden else 'does not implement'} it")
    if "predict_survival" in caps and SURVIVAL not in caps:
        raise TypeError(f"{cls.__name__} declares 'predict_survival' but not 'predict_risk' (a survival "
                        "model ranks patients by its risk)")
    for name in ("build", "load"):
        if not isinstance(cls.__dict__.get(name, classmethod(lambda c: None)), classmethod):
            raise TypeError(f"{cls.__name__}.{name} must be a classmethod")


def risk_only(method: Method) -> ChmflError:
    """The error a survival model's ``predict_proba`` raises: it ranks, it gives no P(DM)."""
    return ChmflError(f"method {method.name} predicts a DM risk score (DM-free survival), not a "
                      "probability: run it with --endpoint dm-free-survival")


def check_options(method: str, given: Mapping[str, Any], accepted: Sequence[str]) -> None:
    """One-line error for options a method does not take."""
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ChmflError(f"method {method!r} has no option {', '.join(unknown)}; "
                         f"options: {', '.join(accepted) or 'none'}")
