"""Intrinsic dimension of an embedding: TwoNN, Levina-Bickel MLE and TwoNN across scales."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._validation import check_embeddings, check_k
from .neighbours import knn

__all__ = ["IntrinsicDimension", "twonn", "mle_id", "id_vs_scale", "drop_exact_duplicates"]


@dataclass(frozen=True)
class IntrinsicDimension:
    """An intrinsic-dimension estimate and what went into it.

    Attributes
    ----------
    dimension : float
        The estimate.
    method : str
        ``"twonn"`` or ``"mle"``.
    n_points : int
        Rows given.
    n_duplicates : int
        Exact duplicate rows removed before estimating (a row identical to an earlier row).
    n_used : int
        Points that entered the fit (after duplicates and, for TwoNN, the discarded tail).
    params : dict
        Estimator parameters (``discard_fraction`` or ``k``).
    """

    dimension: float
    method: str
    n_points: int
    n_duplicates: int
    n_used: int
    params: dict = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.dimension)


def drop_exact_duplicates(X: np.ndarray) -> tuple[np.ndarray, int]:
    """Keep the first occurrence of every distinct row (original order); return it and the count dropped.

    Zero nearest-neighbour distances make ``r2 / r1`` (TwoNN) and ``log(T_k / T_j)`` (MLE) undefined, so
    exact duplicates are removed before either estimator and reported.

    Rows are equal when all their values are (``0.0 == -0.0``), as for ``numpy.unique(X, axis=0)``. Found by
    a 64-bit multiplicative hash of each row's float64 bit pattern (after ``+ 0.0``, which turns -0.0 into
    0.0), sorting the n hashes and comparing the rows of equal hashes exactly: O(n d) instead of the
    lexicographic row sort of ``numpy.unique`` (measured 20 times faster at n = 10,000, d = 256).

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d)

    Returns
    -------
    numpy.ndarray, shape (n_distinct, d)
    int
    """
    n = X.shape[0]
    if n < 2:
        return X, 0
    bits = np.ascontiguousarray(np.asarray(X, dtype=np.float64) + 0.0).view(np.uint64)
    mult = np.random.default_rng(0x5EED).integers(1, 2**63, size=bits.shape[1], dtype=np.uint64) * 2 + 1
    h = (bits * mult).sum(axis=1, dtype=np.uint64)  # wraps modulo 2^64
    order = np.argsort(h, kind="stable")
    hs = h[order]
    dup = hs[1:] == hs[:-1]
    if not dup.any():
        return X, 0
    keep = np.ones(n, dtype=bool)
    starts = np.flatnonzero(np.r_[True, ~dup])
    for a, b in zip(starts, np.r_[starts[1:], n]):
        if b - a < 2:
            continue
        members = order[a:b]  # ascending row index (stable sort)
        for pos, i in enumerate(members[1:], start=1):
            if any(keep[j] and np.array_equal(X[i], X[j]) for j in members[:pos]):
                keep[i] = False
    first = np.flatnonzero(keep)
    return X[first], n - first.size


def _twonn_from_mu(mu: np.ndarray, discard_fraction: float) -> tuple[float, int]:
    """Slope through the origin of ``-log(1 - F_i)`` against ``log(mu_(i))`` (Facco et al. 2017)."""
    N = mu.size
    n_keep = int(N * (1.0 - discard_fraction))
    n_keep = min(n_keep, N - 1)  # F = 1 would give log(0)
    if n_keep < 2:
        raise ValueError(f"too few points left for TwoNN: {N} points, discard_fraction={discard_fraction}")
    x = np.log(np.sort(mu)[:n_keep])
    y = -np.log(1.0 - np.arange(1, n_keep + 1) / N)
    return float(x @ y / (x @ x)), n_keep


def twonn(X, discard_fraction: float = 0.1, *, backend: str = "auto") -> IntrinsicDimension:
    """TwoNN intrinsic dimension, Facco, d'Errico, Rodriguez & Laio (2017), Sci. Rep. 7, 12140.

    For each point ``mu_i = r2_i / r1_i`` (second over first nearest-neighbour distance, Euclidean). If the
    data are locally uniform on a d-dimensional manifold, ``F(mu) = 1 - mu^(-d)``, so
    ``-log(1 - F(mu)) = d log(mu)``. The ``mu`` are sorted, the largest ``discard_fraction`` of them are
    discarded (the paper's heuristic against outliers and curvature; default 0.1 as the paper and
    scikit-dimension), the empirical ``F_i = i / N`` (i = 1..n_keep, N = all points) is used and d is the
    least-squares slope through the origin. This is the same estimator as ``skdim.id.TwoNN()``.

    Exact duplicate rows are removed first (first occurrence kept) and counted in ``n_duplicates``.

    Parameters
    ----------
    X : array-like, shape (n, d)
    discard_fraction : float
        Fraction of the largest ``mu`` dropped from the fit, ``0 <= f < 1``. At least the single largest
        ``mu`` is always dropped (its ``F`` would be 1).
    backend : {"auto", "faiss", "numpy"}
        k-NN backend.

    Returns
    -------
    IntrinsicDimension
    """
    if not 0.0 <= discard_fraction < 1.0:
        raise ValueError(f"discard_fraction must be in [0, 1); got {discard_fraction}")
    X = check_embeddings(X, min_rows=3)
    n = X.shape[0]
    U, n_dup = drop_exact_duplicates(X)
    if U.shape[0] < 3:
        raise ValueError(f"TwoNN needs at least 3 distinct rows; got {U.shape[0]}")
    dist, _ = knn(U, 2, backend=backend)
    d, n_keep = _twonn_from_mu(dist[:, 1] / dist[:, 0], discard_fraction)
    return IntrinsicDimension(d, "twonn", n, n_dup, n_keep, {"discard_fraction": discard_fraction})


def mle_id(X, k: int = 50, *, backend: str = "auto") -> IntrinsicDimension:
    """Maximum-likelihood intrinsic dimension, Levina & Bickel (2005), NIPS 17, with the averaging of
    MacKay & Ghahramani (2005, "Comments on Levina & Bickel").

    With ``T_j(x_i)`` the distance from x_i to its j-th nearest neighbour, the local estimate is
    ``m_k(x_i) = [ (1/(k-1)) sum_{j=1}^{k-1} log(T_k(x_i) / T_j(x_i)) ]^(-1)``. Levina & Bickel average the
    ``m_k(x_i)``; MacKay & Ghahramani point out that the likelihood combines the *inverses*, so the global
    estimate here is ``m_k = [ (1/n) sum_i m_k(x_i)^(-1) ]^(-1)`` (the harmonic mean; ``comb="mle"`` in
    scikit-dimension). arXiv 2512.03750 scanned k from 5 to 1000 and showed k = 50.

    Exact duplicate rows are removed first and counted.

    Parameters
    ----------
    X : array-like, shape (n, d)
    k : int
        Neighbours per point, ``2 <= k <= n_distinct - 1``.
    backend : {"auto", "faiss", "numpy"}

    Returns
    -------
    IntrinsicDimension
    """
    X = check_embeddings(X, min_rows=3)
    n = X.shape[0]
    U, n_dup = drop_exact_duplicates(X)
    k = check_k(k, U.shape[0])
    if k < 2:
        raise ValueError("mle_id needs k >= 2")
    dist, _ = knn(U, k, backend=backend)
    inv_local = np.log(dist[:, -1:] / dist[:, :-1]).mean(axis=1)  # 1 / m_k(x_i)
    return IntrinsicDimension(float(1.0 / inv_local.mean()), "mle", n, n_dup, U.shape[0], {"k": k})


def id_vs_scale(
    X, *, n_min: int = 20, discard_fraction: float = 0.1, seed: int = 0, backend: str = "auto"
) -> pd.DataFrame:
    """TwoNN intrinsic dimension as a function of scale, by decimation (after DADApy's
    ``return_id_scaling_2NN``; Facco et al. 2017, Sec. "scale dependence"; Denti et al. 2022).

    At level ``L = 0, 1, 2, ...`` the rows (exact duplicates removed) are shuffled with
    ``numpy.random.default_rng(seed)`` and split into ``2^L`` disjoint subsets of ``n // 2^L`` points;
    TwoNN runs on each subset. Fewer points means larger neighbour distances, so each level probes a
    coarser scale. Levels stop when a subset would have fewer than ``n_min`` points.

    Parameters
    ----------
    X : array-like, shape (n, d)
    n_min : int
        Smallest subset size (>= 3).
    discard_fraction : float
        Passed to the TwoNN fit.
    seed : int
        Seed of the shuffle.
    backend : {"auto", "faiss", "numpy"}

    Returns
    -------
    pandas.DataFrame
        One row per level with columns ``n_points`` (points per subset), ``n_subsets``, ``nn_distance``
        (mean over all points of all subsets of the second-nearest-neighbour distance ``r2``, the scale
        DADApy reports; units of X), ``id`` (mean TwoNN over subsets) and ``id_std`` (standard deviation
        over subsets, 0 for one subset).
    """
    if n_min < 3:
        raise ValueError(f"n_min must be >= 3; got {n_min}")
    X = check_embeddings(X, min_rows=3)
    U, _ = drop_exact_duplicates(X)
    perm = np.random.default_rng(seed).permutation(U.shape[0])
    records = []
    level = 0
    while U.shape[0] // 2**level >= max(n_min, 3):
        size = U.shape[0] // 2**level
        ids, r2 = [], []
        for s in range(2**level):
            sub = U[perm[s * size : (s + 1) * size]]
            dist, _ = knn(sub, 2, backend=backend)
            ids.append(_twonn_from_mu(dist[:, 1] / dist[:, 0], discard_fraction)[0])
            r2.append(dist[:, 1])
        records.append(
            {
                "n_points": size,
                "n_subsets": 2**level,
                "nn_distance": float(np.concatenate(r2).mean()),
                "id": float(np.mean(ids)),
                "id_std": float(np.std(ids)),
            }
        )
        level += 1
    return pd.DataFrame.from_records(records, columns=["n_points", "n_subsets", "nn_distance", "id", "id_std"])
