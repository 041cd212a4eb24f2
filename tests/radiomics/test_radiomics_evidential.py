"""The ER rule against the special cases Yang & Xu (2013) prove, and two classic examples."""

from __future__ import annotations

import numpy as np
import pytest

from chmfl.errors import ChmflError
from chmfl.radiomics.evidential import er_binary, er_combine


def dempster(B: np.ndarray) -> np.ndarray:
    """Dempster's rule for belief distributions on singletons (textbook form)."""
    p = np.prod(B, axis=0)
    return p / p.sum()


def analytical_er(B: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The original ER algorithm in the analytical form of Wang, Yang & Xu (2006, EJOR 175:35):
    m_n,i = w_i b_n,i, m_H,i = 1 - w_i sum_n b_n,i, m-bar_H,i = 1 - w_i,
    k = [sum_n prod_i (m_n,i + m_H,i) - (N - 1) prod_i m_H,i]^-1,
    b_n = k [prod_i (m_n,i + m_H,i) - prod_i m_H,i] / (1 - k prod_i m-bar_H,i)."""
    m = w[:, None] * B
    m_h = 1 - w * B.sum(1)
    m_bar = 1 - w
    prod = np.prod(m + m_h[:, None], axis=0)
    k = 1.0 / (prod.sum() - (B.shape[1] - 1) * np.prod(m_h))
    denom = 1 - k * np.prod(m_bar)
    return np.append(k * (prod - np.prod(m_h)) / denom, k * (np.prod(m_h) - np.prod(m_bar)) / denom)


def test_fully_reliable_is_dempster():
    B = np.array([[0.9, 0.1], [0.8, 0.2]])
    out = er_combine(B, [0.3, 0.9], [1.0, 1.0])  # weights do not matter when r = 1
    np.testing.assert_allclose(out[:2], dempster(B))
    np.testing.assert_allclose(out[:2], [0.72 / 0.74, 0.02 / 0.74])


def test_reliability_equal_weight_is_original_er_algorithm():
    rng = np.random.default_rng(0)
    for _ in range(20):
        L, N = rng.integers(2, 6), rng.integers(2, 5)
        B = rng.dirichlet(np.ones(N + 1), size=L)[:, :N]  # incomplete beliefs: some ignorance
        w = rng.random(L)
        w /= w.sum()
        np.testing.assert_allclose(er_combine(B, w, w), analytical_er(B, w), atol=1e-12)


def test_zadeh_example():
    """Zadeh's counter-example: Dempster's rule gives full belief to the class both experts
    found nearly impossible; with less than full reliability the ER rule splits A and C."""
    B = np.array([[0.99, 0.01, 0.0], [0.0, 0.01, 0.99]])
    np.testing.assert_allclose(er_combine(B, [1, 1], [1, 1])[:3], [0, 1, 0], atol=1e-12)
    out = er_combine(B, [0.9, 0.9], [0.9, 0.9])
    assert out[0] == pytest.approx(out[2]) and out[1] < 0.05


def test_zero_weight_evidence_is_ignored_and_order_free():
    B = np.array([[0.7, 0.3], [0.1, 0.9], [0.6, 0.4]])
    w, r = np.array([0.5, 0.0, 0.7]), np.array([0.8, 0.0, 0.6])
    ignored = er_combine(B, w, r)
    np.testing.assert_allclose(ignored, er_combine(B[[0, 2]], w[[0, 2]], r[[0, 2]]))
    np.testing.assert_allclose(ignored, er_combine(B[::-1], w[::-1], r[::-1]))


def test_er_binary():
    P = np.array([[0.9, 0.2, 0.5], [0.7, 0.1, 0.5]])
    out = er_binary(P, [0.5, 0.5], [0.5, 0.5])
    # two pieces with w = r = 1/2: p = (p1 + p2 + p1 p2) / (2 + p1 p2 + (1 - p1)(1 - p2))
    p1, p2 = P
    np.testing.assert_allclose(out, (p1 + p2 + p1 * p2) / (2 + p1 * p2 + (1 - p1) * (1 - p2)))
    assert 0.7 < out[0] < 0.9 and 0.1 < out[1] < 0.2 and out[2] == pytest.approx(0.5)


def test_bad_input():
    with pytest.raises(ChmflError):
        er_combine([[0.8, 0.5]], [1.0], [1.0])
    with pytest.raises(ChmflError):
        er_combine([[0.5, 0.5], [0.5, 0.5]], [1.2, 0.5], [1.0, 1.0])
    with pytest.raises(ChmflError):
        er_combine([[1.0, 0.0], [0.0, 1.0]], [1, 1], [1, 1])  # total conflict
