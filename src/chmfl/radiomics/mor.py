"""Many-objective radiomics (MOR, Chen et al. 2019 PMB 64:075011, after Zhou et al. 2017 PMB
62:4460): SVM models whose feature subset and (C, gamma) are searched for three objectives at
once -- sensitivity, specificity and AUC -- giving a Pareto set of models whose outputs are fused
by the evidential reasoning rule.

The search is a small seeded clonal-selection (immune) algorithm: non-dominated sorting and
crowding pick the antibodies, each is cloned and hypermutated (feature bits flipped, log2 C and
log2 gamma perturbed), parents and clones compete for the next population. Objectives come
from a stratified inner cross-validation on the training fold only. Simplifications against the
paper's iterative multi-objective immune algorithm are listed in docs/methods.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chmfl.radiomics.evidential import er_binary
from chmfl.radiomics.selection import univariate_auc

LOG2_C = (-5.0, 15.0)  # LIBSVM's grid-search ranges
LOG2_GAMMA = (-15.0, 3.0)


@dataclass(frozen=True)
class MORConfig:
    population: int = 16
    generations: int = 12
    clones: int = 2  # clones per antibody
    inner_folds: int = 3
    max_pareto: int = 10
    min_objective: float = 0.5  # Pareto models need sensitivity, specificity and AUC above this
    init_features: float = 5.0  # expected number of features in an initial antibody


@dataclass(frozen=True)
class SVMArrays:
    """One fitted RBF-SVM as arrays: f(x) = sum_i dual_i exp(-gamma |x - sv_i|^2) + intercept,
    on columns ``features``; P(class 1) = sigmoid(a f + b) (Platt, from inner-CV outputs)."""

    features: np.ndarray
    support: np.ndarray
    dual: np.ndarray
    intercept: float
    gamma: float
    platt_a: float
    platt_b: float

    def decision(self, X: np.ndarray) -> np.ndarray:
        Z = X[:, self.features]
        d2 = (Z**2).sum(1)[:, None] - 2 * Z @ self.support.T + (self.support**2).sum(1)[None, :]
        return np.exp(-self.gamma * np.maximum(d2, 0.0)) @ self.dual + self.intercept

    def proba(self, X: np.ndarray) -> np.ndarray:
        z = self.platt_a * self.decision(X) + self.platt_b
        return 0.5 * (1.0 + np.tanh(0.5 * z))


def _svc(log2c: float, log2g: float):
    from sklearn.svm import SVC

    return SVC(kernel="rbf", C=2.0**log2c, gamma=2.0**log2g, class_weight="balanced")


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(univariate_auc(s[:, None], y)[0])


def inner_decisions(X: np.ndarray, y: np.ndarray, genome: tuple, folds: list) -> np.ndarray:
    """Out-of-fold SVM decision values for every training case."""
    bits, log2c, log2g = genome
    cols = np.flatnonzero(bits)
    out = np.zeros(len(y))
    for tr, te in folds:
        out[te] = _svc(log2c, log2g).fit(X[np.ix_(tr, cols)], y[tr]).decision_function(X[np.ix_(te, cols)])
    return out


def objectives(X: np.ndarray, y: np.ndarray, genome: tuple, folds: list) -> np.ndarray:
    """(sensitivity, specificity, AUC) of the inner-CV outputs, all to maximise."""
    d = inner_decisions(X, y, genome, folds)
    pred = d > 0
    return np.array([pred[y == 1].mean(), (~pred[y == 0]).mean(), _auc(y, d)])


def pareto_ranks(F: np.ndarray) -> np.ndarray:
    """Non-dominated sorting (maximisation): 0 for the first front, 1 for the next, ..."""
    n = len(F)
    ranks = np.full(n, -1)
    dominated = [(np.all(F >= F[i], 1) & np.any(F > F[i], 1)) for i in range(n)]
    remaining, r = set(range(n)), 0
    while remaining:
        front = [i for i in remaining if not any(dominated[i][j] for j in remaining)]
        for i in front:
            ranks[i] = r
        remaining -= set(front)
        r += 1
    return ranks


def crowding(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance within one set of objective vectors."""
    n, d = F.shape
    dist = np.zeros(n)
    for k in range(d):
        order = np.argsort(F[:, k], kind="stable")
        span = F[order[-1], k] - F[order[0], k]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0 and n > 2:
            dist[order[1:-1]] += (F[order[2:], k] - F[order[:-2], k]) / span
    return dist


def _best(F: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` best by (Pareto rank, -crowding)."""
    ranks = pareto_ranks(F)
    crowd = np.zeros(len(F))
    for r in np.unique(ranks):
        crowd[ranks == r] = crowding(F[ranks == r])
    return np.lexsort((-crowd, ranks))[:n]


def _mutate(genome: tuple, rng: np.random.Generator) -> tuple:
    bits, log2c, log2g = genome
    bits = bits.copy()
    flips = rng.random(len(bits)) < 1.0 / len(bits)
    flips[rng.integers(len(bits))] = True  # at least one bit changes
    bits ^= flips
    if not bits.any():
        bits[rng.integers(len(bits))] = True
    log2c = float(np.clip(log2c + rng.normal(0, 1.0), *LOG2_C))
    log2g = float(np.clip(log2g + rng.normal(0, 1.0), *LOG2_GAMMA))
    return bits, log2c, log2g


def _random_genome(m: int, cfg: MORConfig, rng: np.random.Generator) -> tuple:
    bits = rng.random(m) < min(1.0, cfg.init_features / m)
    if not bits.any():
        bits[rng.integers(m)] = True
    return bits, float(rng.uniform(*LOG2_C)), float(rng.uniform(*LOG2_GAMMA))


def search_pareto(X: np.ndarray, y: np.ndarray, cfg: MORConfig, seed: int) -> tuple[list[tuple], np.ndarray, list]:
    """Clonal-selection search; returns the Pareto-optimal genomes, their objectives and the
    inner folds used."""
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(seed)
    k = max(2, min(cfg.inner_folds, int(np.bincount(y).min())))
    folds = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(X, y))
    cache: dict[bytes, np.ndarray] = {}

    def evaluate(g):
        key = g[0].tobytes() + np.float64([g[1], g[2]]).tobytes()
        if key not in cache:
            cache[key] = objectives(X, y, g, folds)
        return cache[key]

    pop = [_random_genome(X.shape[1], cfg, rng) for _ in range(cfg.population)]
    F = np.array([evaluate(g) for g in pop])
    for _ in range(cfg.generations):
        parents = _best(F, max(1, cfg.population // 2))
        clones = [_mutate(pop[i], rng) for i in parents for _ in range(cfg.clones)]
        pop = pop + clones
        F = np.vstack([F, [evaluate(g) for g in clones]])
        keep = _best(F, cfg.population)
        pop, F = [pop[i] for i in keep], F[keep]
    front = np.flatnonzero(pareto_ranks(F) == 0)
    useful = front[(F[front] > cfg.min_objective).all(axis=1)]
    front = useful if len(useful) else front[np.argmax(F[front, 2])][None]  # else: the best-AUC one
    front = front[_best(F[front], cfg.max_pareto)]
    return [pop[i] for i in front], F[front], folds


def fit_member(X: np.ndarray, y: np.ndarray, genome: tuple, folds: list) -> SVMArrays:
    """Refit one Pareto genome on the whole training fold; Platt scaling from its inner-CV
    decision values (so the probabilities are not fitted on the SVM's own training outputs)."""
    from sklearn.linear_model import LogisticRegression

    bits, log2c, log2g = genome
    cols = np.flatnonzero(bits)
    svc = _svc(log2c, log2g).fit(X[:, cols], y)
    d = inner_decisions(X, y, genome, folds)
    platt = LogisticRegression(C=1e6).fit(d[:, None], y)
    return SVMArrays(cols, svc.support_vectors_.astype(float), svc.dual_coef_[0].astype(float),
                     float(svc.intercept_[0]), float(2.0**log2g),
                     float(platt.coef_[0, 0]), float(platt.intercept_[0]))


def mor_proba(members: list[SVMArrays], weights: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The Pareto models fused by the ER rule (reliability = weight: the original ER algorithm)."""
    P = np.vstack([m.proba(X) for m in members])  # (n_models, n_cases)
    return er_binary(P, weights, weights)
