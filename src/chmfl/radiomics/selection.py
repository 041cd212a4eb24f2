"""Feature filters and selectors on a training fold: pure functions of (X, y), seeded.

All take imputed, finite ``X`` (n_samples, n_features) and binary ``y``; none sees test data.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def univariate_auc(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """AUC of each column as a score for ``y == 1`` (Mann-Whitney U / (n1 n0), ties averaged)."""
    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return np.full(X.shape[1], 0.5)
    ranks = rankdata(X, axis=0)
    return (ranks[y].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)


def spearman_matrix(X: np.ndarray) -> np.ndarray:
    """Spearman rank correlation between columns (constant columns give 0)."""
    r = rankdata(X, axis=0)
    r = r - r.mean(axis=0)
    norm = np.sqrt((r**2).sum(axis=0))
    norm[norm == 0] = np.inf
    r = r / norm
    return r.T @ r


def near_constant(X: np.ndarray, max_mode_fraction: float = 0.95) -> np.ndarray:
    """True for columns with (almost) one value: zero spread, or one value in more than
    ``max_mode_fraction`` of the samples."""
    out = np.zeros(X.shape[1], bool)
    for j in range(X.shape[1]):
        col = X[:, j]
        scale = max(1.0, float(np.abs(col).max()))
        if float(col.max() - col.min()) <= 1e-12 * scale:
            out[j] = True
            continue
        _, counts = np.unique(col, return_counts=True)
        out[j] = counts.max() / len(col) > max_mode_fraction
    return out


def drop_correlated(X: np.ndarray, order: np.ndarray, max_corr: float) -> np.ndarray:
    """Greedy filter: walk columns in ``order`` (most relevant first) and keep a column only
    if its |Spearman| with every kept one is <= ``max_corr``. Returns kept indices, in order."""
    rho = np.abs(spearman_matrix(X))
    kept: list[int] = []
    for j in order:
        if all(rho[j, k] <= max_corr for k in kept):
            kept.append(int(j))
    return np.asarray(kept, int)


def balanced_bootstrap(y: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` bootstrap index sets, each drawing half its samples from each class with
    replacement (our reading of Vallieres' imbalance-adjusted bootstrap resampling)."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    half = len(y) // 2
    return [np.concatenate([rng.choice(pos, half), rng.choice(neg, len(y) - half)]) for _ in range(n)]


def gain_forward_selection(X: np.ndarray, y: np.ndarray, k: int, seed: int = 0,
                           n_bootstrap: int = 50, delta: float = 0.5) -> np.ndarray:
    """Vallieres et al. 2015's forward selection by a gain equation: start from the feature
    most correlated with the outcome, then add the one maximising
    ``delta * relevance + (1 - delta) * (1 - redundancy)``, where relevance is |Spearman(f, y)|
    averaged over balanced bootstrap samples and redundancy the mean |Spearman| with the
    features already chosen (the paper uses the maximal information coefficient there).
    Returns ``k`` column indices in the order chosen."""
    rng = np.random.default_rng(seed)
    rel = np.zeros(X.shape[1])
    for idx in balanced_bootstrap(y, n_bootstrap, rng):
        rho = spearman_matrix(np.column_stack([X[idx], y[idx]]))
        rel += np.abs(rho[-1, :-1])
    rel /= n_bootstrap
    red = np.abs(spearman_matrix(X))
    chosen = [int(np.argmax(rel))]
    while len(chosen) < min(k, X.shape[1]):
        gain = delta * rel + (1 - delta) * (1 - red[:, chosen].mean(axis=1))
        gain[chosen] = -np.inf
        chosen.append(int(np.argmax(gain)))
    return np.asarray(chosen, int)
