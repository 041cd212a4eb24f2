"""``chmfl-surv``: CHMFL with its DM classifier replaced by a Cox partial-likelihood head.

The network is CHMFL unchanged (both branches, hierarchical fusion, the tumour-constrained
decoder) except that its last fully connected layer has one output, the log relative hazard.
Training minimises Eq. (1) with the DM cross-entropy swapped for the negative log Cox partial
likelihood (``TrainConfig.objective = "cox"``: ``Trainer.step`` calls
``models.losses.eq1_cox_terms``, Breslow ties). The partial likelihood compares a patient with
everyone still at risk at its event time, so a batch of one patient has no risk set: the loss
is computed over each mini-batch's risk sets (``batch_size`` >= 8 where the settings ask for
less, the demo's schedule; a batch without a DM contributes only its segmentation term). After
training the Breslow baseline hazard is estimated from the training patients' risks, which
gives DM-free probabilities (``predict_survival``).

A ``methods.base.Method`` declaring the survival abilities ("predict_risk",
"predict_survival") besides CHMFL's masks and embeddings; no saliency maps (they explain P(DM)).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chmfl.data.cases import CaseData, survival_of
from chmfl.errors import ChmflError
from chmfl.methods.base import Method, risk_only
from chmfl.methods.neural import NeuralMethod, read_model_config
from chmfl.methods.runtime import RuntimeConfig
from chmfl.methods.survival import breslow, cox_survival, train_concordance
from chmfl.methods.train_config import TrainConfig

MIN_COX_BATCH = 8  # batch size of the Cox objective where the settings give < 2: ~4 events per batch


def cox_settings(train: TrainConfig | None) -> TrainConfig:
    """``train`` with the Cox objective, its batch size raised to ``MIN_COX_BATCH`` where it
    holds no risk set (the paper's batch of one)."""
    train = train or TrainConfig()
    return train.replace(objective="cox", batch_size=train.batch_size if train.batch_size >= 2 else MIN_COX_BATCH)


class NeuralSurvivalMethod(NeuralMethod):
    """A one-output chmfl network trained with the Cox objective (see module docstring)."""

    capabilities = frozenset({"predict_mask", "embed", "predict_risk", "predict_survival"})
    saliency = Method.saliency  # not offered: input gradients of P(DM) have no meaning here

    def __init__(self, name: str, model: str, model_kwargs: dict | None = None,
                 train: TrainConfig | None = None, runtime: RuntimeConfig | None = None,
                 seed: int = 0, workdir: str | Path | None = None, progress: bool = True) -> None:
        super().__init__(name, model, {**dict(model_kwargs or {}), "n_outputs": 1}, cox_settings(train),
                         runtime, seed, workdir, progress)

    def fit(self, cases: Sequence[CaseData]) -> NeuralSurvivalMethod:
        time, event = survival_of(cases)
        if not event.any():
            raise ChmflError(f"{self.name}: the training cases hold no DM event")
        super().fit(cases)
        self.base_times_, self.base_hazard_ = breslow(time, event, self.predict_risk(cases))
        return self

    def _diagnostics(self, data) -> dict[str, float]:
        """Training-fold Harrell's C with BatchNorm on running averages and on per-sample
        statistics (the classification method's train/eval check, for the Cox head)."""
        from chmfl.methods.inference import predict_network

        out = {}
        for mode in ("running", "sample"):
            r = predict_network(self.network_, data, bn_eval=mode, segment=False, **self._predict_settings())["risk"]
            out[f"train_c_eval_{mode}"] = train_concordance(data.time.numpy(), data.event.numpy(), r)
        return out

    def predict_risk(self, cases: Sequence[CaseData]) -> np.ndarray:
        return self._outputs(cases, segment=False)["risk"]

    def predict_survival(self, cases: Sequence[CaseData], times: Sequence[float]) -> np.ndarray:
        return cox_survival(self.predict_risk(cases), times, self.base_times_, self.base_hazard_)

    def predict_proba(self, cases: Sequence[CaseData]) -> np.ndarray:
        raise risk_only(self)

    def predict_all(self, cases: Sequence[CaseData], saliency: bool = True) -> dict[str, np.ndarray]:
        """Risk, predicted masks and features in one pass (no saliency maps: see the class)."""
        return self._outputs(cases)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "baseline": {"times": [float(t) for t in self.base_times_],
                                                 "hazard": [float(h) for h in self.base_hazard_]}}

    @classmethod
    def load(cls, directory: str | Path) -> NeuralSurvivalMethod:
        m = super().load(directory)
        baseline = read_model_config(Path(directory)).get("baseline")
        if not baseline:
            raise ChmflError(f"{directory}: config.json has no Breslow baseline (not a chmfl-surv model)")
        m.base_times_ = np.asarray(baseline["times"], float)
        m.base_hazard_ = np.asarray(baseline["hazard"], float)
        return m
