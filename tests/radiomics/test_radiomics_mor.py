"""Many-objective radiomics: Pareto sorting, the SVM-as-arrays, the seeded search."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.svm import SVC

from chmfl.radiomics.mor import (
    MORConfig,
    crowding,
    fit_member,
    mor_proba,
    pareto_ranks,
    search_pareto,
)

SMALL = MORConfig(population=6, generations=2, inner_folds=3, max_pareto=5)
SEARCH = MORConfig(population=10, generations=6, inner_folds=3, max_pareto=5)


def _data(n=60, m=12, seed=0, noise=0.6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m))
    y = (X[:, 0] + 0.8 * X[:, 3] + rng.normal(0, noise, n) > 0).astype(int)
    return X, y


def test_pareto_ranks_and_crowding():
    F = np.array([[1, 0, 0.5], [0, 1, 0.5], [0.5, 0.5, 0.9], [0.4, 0.4, 0.8], [0, 0, 0]])
    assert pareto_ranks(F).tolist() == [0, 0, 0, 1, 2]
    d = crowding(F[:3])
    assert np.isinf(d).sum() >= 2 and (d >= 0).all()


def test_svm_arrays_reproduce_sklearn():
    X, y = _data()
    genome = (np.array([True, False, False, True] + [False] * 8), 1.0, -3.0)
    folds = [(np.arange(20, 60), np.arange(20)), (np.arange(20), np.arange(20, 60))]
    member = fit_member(X, y, genome, folds)
    svc = SVC(C=2.0, gamma=2.0**-3, class_weight="balanced").fit(X[:, [0, 3]], y)
    np.testing.assert_allclose(member.decision(X), svc.decision_function(X[:, [0, 3]]), atol=1e-10)
    p = member.proba(X)
    assert ((p > 0) & (p < 1)).all() and roc_auc_score(y, p) > 0.9  # Platt keeps the ranking


def test_search_is_seeded():
    X, y = _data(n=30, m=6)
    g1, F1, _ = search_pareto(X, y, SMALL, seed=3)
    g2, F2, _ = search_pareto(X, y, SMALL, seed=3)
    np.testing.assert_array_equal(F1, F2)
    assert all((a[0] == b[0]).all() and a[1:] == b[1:] for a, b in zip(g1, g2))
    assert 1 <= len(g1) <= SMALL.max_pareto and pareto_ranks(F1).max() == 0  # non-dominated only


def test_search_finds_the_signal():
    """Label from features 0 and 3: the Pareto models use them, and the ER-fused MOR output
    ranks held-out cases well."""
    X, y = _data(n=90, m=8, seed=1, noise=0.4)
    tr, te = np.arange(60), np.arange(60, 90)
    genomes, F, folds = search_pareto(X[tr], y[tr], SEARCH, seed=1)
    assert (F > SEARCH.min_objective).all()
    used = np.sum([g[0] for g in genomes], axis=0)
    assert used[0] == used[3] == len(genomes) > used[[1, 2, 4, 5, 6, 7]].mean()
    members = [fit_member(X[tr], y[tr], g, folds) for g in genomes]
    p = mor_proba(members, F[:, 2] / F[:, 2].sum(), X[te])
    assert p.shape == (30,) and roc_auc_score(y[te], p) > 0.85
