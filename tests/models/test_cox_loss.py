"""The Cox partial-likelihood loss of chmfl-surv against lifelines and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from chmfl.errors import ChmflError
from chmfl.models.base import ModelOutput
from chmfl.models.losses import cox_partial_likelihood, eq1_cox_terms


def _data(n: int = 30, seed: int = 0, ties: bool = False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    time = rng.exponential(400 * np.exp(-0.7 * x[:, 0])) + 1.0
    if ties:
        time = np.round(time / 50.0) * 50.0 + 1.0
    event = rng.random(n) < 0.6
    return x, time, event


def test_cox_loss_equals_lifelines_partial_likelihood():
    """Without tied times lifelines' (Efron) partial likelihood is Breslow's."""
    from lifelines import CoxPHFitter

    x, time, event = _data()
    cph = CoxPHFitter().fit(pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "T": time, "E": event}), "T", "E")
    risk = torch.tensor(x @ cph.params_.to_numpy())
    loss = cox_partial_likelihood(risk, torch.tensor(time), torch.tensor(event))
    assert float(loss) * event.sum() == pytest.approx(-cph.log_likelihood_, rel=1e-9)


def test_cox_loss_with_ties_equals_statsmodels_breslow():
    from statsmodels.duration.hazard_regression import PHReg

    x, time, event = _data(seed=1, ties=True)
    assert len(np.unique(time[event])) < event.sum()  # there are tied event times
    model = PHReg(time, x, status=event.astype(int), ties="breslow")
    beta = np.array([0.3, -0.2])
    loss = cox_partial_likelihood(torch.tensor(x @ beta), torch.tensor(time), torch.tensor(event))
    assert float(loss) * event.sum() == pytest.approx(-model.loglike(beta), rel=1e-9)


def test_cox_loss_gradient_and_edge_cases():
    x, time, event = _data(n=8, seed=2)
    risk = torch.tensor(x[:, 0], requires_grad=True)
    cox_partial_likelihood(risk, torch.tensor(time), torch.tensor(event)).backward()
    assert risk.grad is not None and torch.isfinite(risk.grad).all()
    none = cox_partial_likelihood(risk, torch.tensor(time), torch.zeros(8, dtype=torch.bool))
    assert float(none) == 0.0 and none.requires_grad  # no event: no signal, still in the graph
    one = cox_partial_likelihood(risk[:1], torch.tensor(time[:1]), torch.ones(1, dtype=torch.bool))
    assert float(one) == 0.0  # a batch of one: its own risk set, log(1) = 0


def test_eq1_cox_terms_mixes_the_segmentation_term():
    torch.manual_seed(0)
    out = ModelOutput(logits=torch.randn(4, 1), seg_logits=torch.randn(4, 2, 4, 4, 4))
    mask = (torch.rand(4, 1, 4, 4, 4) > 0.5).float()
    time, event = torch.tensor([5.0, 3.0, 8.0, 1.0]), torch.tensor([1, 0, 1, 1]).bool()
    total, cox, seg = eq1_cox_terms(out, time, event, mask, w=0.5)
    assert float(total) == pytest.approx(0.5 * float(cox) + 0.5 * float(seg))
    with pytest.raises(ChmflError, match="one risk output"):
        eq1_cox_terms(ModelOutput(logits=torch.randn(4, 2)), time, event, None)
