"""The one interface every compared method answers (scikit-learn's estimator contract).

``__init__`` stores parameters only; ``fit(cases)`` learns from the training fold and
returns ``self``; learned state ends in ``_``; ``predict_proba(cases)`` returns P(DM) per
case as a float array of shape (n,). Segmenting methods add ``predict_mask(cases)``
(uint8 masks on each case's box grid). ``save(dir)`` writes weights + config in safe
formats (safetensors / JSON / numpy without pickles) and ``load(dir)`` rebuilds the method
from that folder alone, executing no code from it.

Optional hooks used by reports: ``embed(cases) -> (n, d)`` learned features (t-SNE, Fig 7)
and ``saliency(cases) -> list of (z, y, x) maps`` (Fig 6).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from chmfl.data.cases import CaseData


@runtime_checkable
class Method(Protocol):
    name: str

    def fit(self, cases: Sequence[CaseData]) -> Method: ...

    def predict_proba(self, cases: Sequence[CaseData]) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...


@runtime_checkable
class SegmentingMethod(Method, Protocol):
    def predict_mask(self, cases: Sequence[CaseData]) -> list[np.ndarray]: ...
