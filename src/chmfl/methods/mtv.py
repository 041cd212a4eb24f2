"""The annotation-free floor: SUVmax + metabolic tumour volume (MTV), logistic regression.

What a nuclear-medicine reader measures without drawing a contour: the hottest voxel of the box
(SUVmax) and the volume of the voxels >= 40 % of SUVmax that are connected (26-neighbourhood) to
it (fixed-threshold region growing from the hottest voxel, the common 41-42 % SUVmax MTV
convention rounded as in the issue). Computed from the cached ``pet_suv`` box alone, on the
cache's grid (4 mm for the bundled cache: each voxel is 0.064 mL, so MTVs under ~1 mL are
coarse and the 40 % boundary is smoothed by the resampling); the contour (``mask``) is never
read. The box is placed by the cache's rule (contour-centred today; with a hotspot box no part
of the input depends on the contour). A ``methods.base.Method`` declaring "embed" (the
standardised SUVmax and log MTV), with the same fit / predict_proba / save / load as ``SuvmaxVolume``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from chmfl.data.cases import CaseData, labels_of
from chmfl.errors import ChmflError
from chmfl.methods.base import Method
from chmfl.methods.classical import LogisticState, build_classical, sigmoid
from chmfl.radiomics.transform import fit_feature_transform

MTV_COLUMNS = ("suvmax", "log_mtv_ml")


def suvmax_mtv_of(pet_suv: np.ndarray, spacing, fraction: float = 0.4) -> tuple[float, float]:
    """(SUVmax, MTV in mL) of one PET box: the voxels >= ``fraction`` x SUVmax connected to the
    hottest voxel (26-connectivity)."""
    from scipy import ndimage

    pet = np.asarray(pet_suv, np.float64)
    if pet.size == 0 or not np.isfinite(pet).any():
        raise ChmflError("PET box is empty or has no finite SUV")
    pet = np.where(np.isfinite(pet), pet, -np.inf)
    hottest = np.unravel_index(int(np.argmax(pet)), pet.shape)
    suvmax = float(pet[hottest])
    if suvmax <= 0:
        return suvmax, 0.0
    labels, _ = ndimage.label(pet >= fraction * suvmax, structure=np.ones((3, 3, 3), bool))
    n = int(np.count_nonzero(labels == labels[hottest]))
    return suvmax, n * float(np.prod(spacing)) / 1000.0


def suvmax_mtv(cases: Sequence[CaseData], fraction: float = 0.4) -> pd.DataFrame:
    """(n, 2) table of SUVmax and log(MTV mL) from each case's ``pet_suv`` box (never its mask)."""
    rows = []
    for c in cases:
        a = c.load()
        suvmax, mtv = suvmax_mtv_of(a.pet_suv, a.spacing, fraction)
        rows.append((suvmax, float(np.log(max(mtv, 1e-3)))))
    table = pd.DataFrame(rows, columns=list(MTV_COLUMNS), index=[c.patient_id for c in cases])
    table.attrs["source"] = "pet-box"
    return table


class SuvmaxMTV(LogisticState, Method):
    """Floor without a contour: SUVmax and log MTV (40 % of SUVmax, connected to the hottest
    voxel of the box) -> standardise -> logistic regression (balanced class weights)."""

    capabilities = frozenset({"embed"})
    OPTIONS = ("C", "fraction")

    @classmethod
    def build(cls, name, registered, model_kwargs, ctx, size=None) -> SuvmaxMTV:
        return build_classical(cls, name, registered, model_kwargs, ctx, size, cls.OPTIONS)

    def __init__(self, name: str = "suvmax-mtv", seed: int = 0, C: float = 1.0, fraction: float = 0.4) -> None:
        self.name = name
        self.seed = seed
        self.C = C
        self.fraction = fraction

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed, "C": self.C, "fraction": self.fraction}

    def fit(self, cases: Sequence[CaseData]) -> SuvmaxMTV:
        from sklearn.linear_model import LogisticRegression

        y = labels_of(cases)
        if len(np.unique(y)) < 2:
            raise ChmflError(f"{self.name}: the training cases hold one class only")
        table = suvmax_mtv(cases, self.fraction)
        self.transform_ = fit_feature_transform(table)
        lr = LogisticRegression(C=self.C, class_weight="balanced", random_state=self.seed)
        lr.fit(self.transform_.apply(table), y)
        self.coef_ = lr.coef_[0].astype(float)
        self.intercept_ = float(lr.intercept_[0])
        return self

    def embed(self, cases: Sequence[CaseData]) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise ChmflError(f"method {self.name} is not fitted")
        return self.transform_.apply(suvmax_mtv(cases, self.fraction))

    def predict_proba(self, cases: Sequence[CaseData]) -> np.ndarray:
        return sigmoid(self.embed(cases) @ self.coef_ + self.intercept_)
