"""The evidential reasoning (ER) rule of Yang & Xu (2013, Artificial Intelligence 205:1-29).

Combines L pieces of evidence, each a belief distribution over N exclusive classes (plus,
implicitly, global ignorance: whatever a row leaves of 1), a weight ``w_i`` (importance) and a
reliability ``r_i`` (quality). Special cases proven in the paper and checked in the tests:
all ``r_i = 1`` gives Dempster's rule; ``r_i = w_i`` with normalised weights gives the original
ER algorithm (Yang & Xu 2002; analytical form Wang et al. 2006).
"""

from __future__ import annotations

import numpy as np

from chmfl.errors import ChmflError


def _check(beliefs: np.ndarray, weights: np.ndarray, reliabilities: np.ndarray) -> None:
    if beliefs.ndim != 2 or len(weights) != len(beliefs) or len(reliabilities) != len(beliefs):
        raise ChmflError(f"ER rule: beliefs {beliefs.shape}, {len(weights)} weights and "
                         f"{len(reliabilities)} reliabilities do not match")
    if (beliefs < -1e-12).any() or (beliefs.sum(axis=1) > 1 + 1e-9).any():
        raise ChmflError("ER rule: each belief row must be >= 0 and sum to at most 1")
    for name, v in (("weights", weights), ("reliabilities", reliabilities)):
        if (v < 0).any() or (v > 1).any():
            raise ChmflError(f"ER rule: {name} must lie in [0, 1], got {v.tolist()}")


def er_combine(beliefs, weights, reliabilities) -> np.ndarray:
    """Combined belief distribution, shape (N + 1,): N class beliefs, then global ignorance.

    ``beliefs`` (L, N): row i is evidence i's degrees of belief p_{n,i}. Recursively (Yang & Xu
    2013, eqs. 13-15), with masses m_{n,i} = w_i p_{n,i}, m_{Theta,i} = w_i (1 - sum_n p_{n,i})
    and the residual support of unreliability m_{P,i} = 1 - r_i:

        m^_n = m_P,i m_n,e + m_P,e m_n,i + m_n,e m_n,i + m_n,e m_Theta,i + m_Theta,e m_n,i
        m^_Theta = m_P,i m_Theta,e + m_P,e m_Theta,i + m_Theta,e m_Theta,i,   m^_P = m_P,i m_P,e

    normalised by their sum after each step; the result drops m_P and renormalises."""
    B = np.asarray(beliefs, float)
    w = np.asarray(weights, float).ravel()
    r = np.asarray(reliabilities, float).ravel()
    _check(B, w, r)
    m = w[:, None] * B  # (L, N)
    m_theta = w * (1.0 - B.sum(axis=1))
    m_p = 1.0 - r
    cm, ct, cp = m[0], m_theta[0], m_p[0]
    for i in range(1, len(B)):
        new_m = m_p[i] * cm + cp * m[i] + cm * m[i] + cm * m_theta[i] + ct * m[i]
        new_t = m_p[i] * ct + cp * m_theta[i] + ct * m_theta[i]
        new_p = m_p[i] * cp
        total = new_m.sum() + new_t + new_p
        if total <= 0:
            raise ChmflError("ER rule: the evidence is in total conflict (fully reliable and contradictory)")
        cm, ct, cp = new_m / total, new_t / total, new_p / total
    support = cm.sum() + ct
    if support <= 0:
        raise ChmflError("ER rule: no evidence carries any weight")
    return np.append(cm, ct) / support


def er_binary(probabilities, weights, reliabilities) -> np.ndarray:
    """ER rule for two classes, vectorised over cases: ``probabilities`` (L, n_cases) are each
    evidence's P(class 1); returns the combined P(class 1) per case (no ignorance left)."""
    P = np.atleast_2d(np.asarray(probabilities, float))
    out = np.empty(P.shape[1])
    for j in range(P.shape[1]):
        b = er_combine(np.column_stack([P[:, j], 1.0 - P[:, j]]), weights, reliabilities)
        out[j] = b[0] / (b[0] + b[1])
    return out
