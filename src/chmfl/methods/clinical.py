"""The clinical baseline: grade, age and MSKCC histology group (docs/methods.md, "clinical").

``clinical_table`` codes the covariates every clinician would ask for; ``ClinicalLogistic``
(registry ``clinical``) classifies DM from them exactly as the SUVmax + volume floor does
(training-fold median imputation and standardisation, balanced logistic regression), and
``methods.survival.CoxClinical`` (``cox-clinical``) fits a Cox model to the same table.
No image is read: these methods need no contour.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from chmfl.cohort.endpoint import GRADES, HISTOLOGY_GROUPS
from chmfl.data.cases import CaseData
from chmfl.errors import ChmflError
from chmfl.methods.classical import SuvmaxVolume

CLINICAL_COLUMNS = ("age_years", "grade", *(f"histology_{g}" for g in HISTOLOGY_GROUPS[1:]))


def clinical_table(cases: Sequence[CaseData]) -> pd.DataFrame:
    """(n, 5): age in years, grade coded low 1 / intermediate 2 / high 3, and one indicator per
    histology group other than the reference "mfh". Unrecorded values are NaN (the methods
    impute them with the training fold's median)."""
    rows = []
    for c in cases:
        cov = c.covariates
        if cov is None:
            raise ChmflError(f"case {c.patient_id} has no clinical covariates (re-run 'chmfl data prepare')")
        row = {"age_years": np.nan if cov.age_years is None else float(cov.age_years),
               "grade": GRADES.get(cov.grade, np.nan)}
        for g in HISTOLOGY_GROUPS[1:]:
            row[f"histology_{g}"] = float(cov.histology_group == g) if cov.histology_group else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CLINICAL_COLUMNS))


class ClinicalLogistic(SuvmaxVolume):
    """Clinical baseline classifier: grade, age, MSKCC histology group -> standardise ->
    balanced logistic regression (the floor's pipeline on the clinical table)."""

    contour_at_test = None  # the covariates only: no contour at test time

    def __init__(self, name: str = "clinical", seed: int = 0, C: float = 1.0) -> None:
        super().__init__(name, seed, C)

    def _table(self, cases: Sequence[CaseData]) -> pd.DataFrame:
        return clinical_table(cases)
