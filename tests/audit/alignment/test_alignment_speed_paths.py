"""The issue-20 speed paths against their definitions: information imbalance with many neighbours (numba
window counts, fused with the neighbour searches from 4,096 rows) and LFRE's dual (Gram) local fits and
faiss neighbour candidates.

Ties are exact in floating point (small integers: every distance is an exact integer), so ranks and
neighbour orders can be compared for equality.
"""
import numpy as np
import pytest

from monoculture.audit.alignment import information_imbalance, local_reconstruction_error
from monoculture.audit.alignment.imbalance import _mean_rank
from monoculture.audit.alignment.reconstruction import (
    SKMATTER_ALPHAS,
    _folds,
    _local_neighbours,
    _local_predictions,
    _ridge_cutoff,
)

from test_alignment_reference import _pair, ref_lfre


def lattice(n, d, seed, high=4):
    return np.random.default_rng(seed).integers(0, high, (n, d)).astype(float)


def brute_mean_rank(A, B, k, chunk=256):
    """Definition, vectorised by row chunks: k nearest in A (ties to the lower index), their mid-ranks in B."""
    n = len(A)
    sqa, sqb = (A * A).sum(1), (B * B).sum(1)
    total = 0.0
    for s in range(0, n, chunk):
        rows = np.arange(s, min(s + chunk, n))
        DA = sqa[rows, None] + sqa[None] - 2 * A[rows] @ A.T  # exact: integer coordinates
        DB = sqb[rows, None] + sqb[None] - 2 * B[rows] @ B.T
        DA[np.arange(rows.size), rows] = np.inf
        DB[np.arange(rows.size), rows] = np.inf
        nn = np.argsort(DA, axis=1, kind="stable")[:, :k]
        T = np.take_along_axis(DB, nn, axis=1)
        S = np.sort(DB, axis=1)
        for r in range(rows.size):  # entries below the target, and equal to it besides itself
            closer = np.searchsorted(S[r], T[r], side="left")
            tied = np.searchsorted(S[r], T[r], side="right") - closer - 1
            total += float((1 + closer + 0.5 * tied).sum())
    return total / (n * k)


@pytest.mark.parametrize("k", [3, pytest.param(50, marks=pytest.mark.slow)])
def test_fused_imbalance_equals_definition_with_ties(k):
    n = 4096  # the fused sweeps start here (backend "auto", float32)
    X = lattice(n, 4, 1, high=24)
    Y = np.hstack([X[:, :2], lattice(n, 2, 2, high=24)])  # exact ties in both spaces
    fused = information_imbalance(X, Y, k)
    separate = information_imbalance(X, Y, k, backend="faiss")  # neighbour search, then one count sweep
    assert fused == separate
    assert fused.x_to_y == pytest.approx(2 / n * brute_mean_rank(X, Y, k), rel=1e-12)
    assert fused.y_to_x == pytest.approx(2 / n * brute_mean_rank(Y, X, k), rel=1e-12)


def test_window_counts_equal_definition_in_both_precisions_and_copies():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 5, (200, 6)).astype(float)
    X = np.vstack([base, base[:56]]) * 2.0 + 1024.0  # exact copies, a large offset, exact distances
    Y = np.hstack([X[:, :2], rng.integers(0, 3, (256, 1)) * 2.0])  # ties in Y too
    want = brute_mean_rank(X, Y, 9)
    for precision in ("float64", "float32"):  # k = 9 in both working precisions, numpy candidates
        assert _mean_rank(X, Y, 9, "numpy", 40, precision) == pytest.approx(want, rel=1e-12)


def test_imbalance_k50_is_deterministic_and_order_free():
    rng = np.random.default_rng(4)
    Z = rng.standard_normal((4500, 3))
    X = Z @ rng.standard_normal((3, 16)) + 0.1 * rng.standard_normal((4500, 16))
    Y = np.tanh(Z @ rng.standard_normal((3, 12)))
    a = information_imbalance(X, Y, 50)
    assert a == information_imbalance(X, Y, 50)
    p = rng.permutation(4500)  # relabelling the rows changes no rank
    b = information_imbalance(X[p], Y[p], 50)
    assert (a.x_to_y, a.y_to_x) == pytest.approx((b.x_to_y, b.y_to_x), rel=1e-12)


# -- LFRE -------------------------------------------------------------------------------------------------
def test_dual_local_fits_equal_the_svd_fits():
    rng = np.random.default_rng(5)
    b, m, d_x, d_y = 40, 15, 32, 20
    X = rng.standard_normal((b, m + 1, d_x)) * rng.uniform(0.1, 10, (b, 1, d_x))
    X -= X[:, :m].mean(axis=1, keepdims=True)
    Y = rng.standard_normal((b, m, d_y)) + X[:, :m, :d_y]
    Y -= Y.mean(axis=1, keepdims=True)
    f1, f2 = _folds(m, 0x5F3759DF)
    order = np.concatenate([f1, f2])
    X, Y = np.concatenate([X[:, order], X[:, m:]], axis=1), Y[:, order]
    got = _local_predictions(X, Y, f1.size, SKMATTER_ALPHAS)
    want = _ridge_cutoff(X[:, :m], Y, np.arange(f1.size), np.arange(f1.size, m), SKMATTER_ALPHAS, X[:, m:])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("d", [(24, 20), (20, 24)])
def test_lfre_equals_the_skmatter_procedure_in_wide_spaces(d):
    X, Y = _pair(300, 11, d=d)  # d_x >= 15 local points: the dual (Gram) path
    assert local_reconstruction_error(X, Y, 15) == pytest.approx(ref_lfre(X, Y, 15), rel=1e-9)


def test_lfre_of_a_rank_deficient_space_falls_back_to_svds():
    rng = np.random.default_rng(12)
    Z = rng.standard_normal((300, 3))
    X = Z @ rng.standard_normal((3, 20))  # rank 3 in 20 columns: every local Gram matrix is singular
    Y = np.tanh(Z @ rng.standard_normal((3, 8))) + 0.1 * rng.standard_normal((300, 8))
    assert local_reconstruction_error(X, Y, 15) == pytest.approx(ref_lfre(X, Y, 15), rel=1e-9)


def test_local_neighbours_are_exact_with_ties_to_the_lower_index():
    Xtr = lattice(600, 3, 6)  # many exact ties and copies
    Xte = lattice(300, 3, 7)
    got = _local_neighbours(Xtr, Xte, 15)
    D = ((Xte[:, None] - Xtr[None]) ** 2).sum(-1)
    want = np.argsort(D, axis=1, kind="stable")[:, :15]
    np.testing.assert_array_equal(got, want)
