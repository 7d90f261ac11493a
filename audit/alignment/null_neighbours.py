"""Permutation nulls of the neighbourhood metrics: mutual k-NN and CKNNA from each model's k-NN graph, and
information imbalance from each model's rank matrix, both computed once and relabelled by every
permutation. Overview: :mod:`.calibration`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from ._validation import check_embeddings, check_k, check_pair
from .neighbours import _exact_rows, knn, neighbour_search

__all__ = ["CosineGraph", "cosine_graph", "graph_nulls", "imbalance_null"]


# -- neighbourhood metrics: k-NN graphs reused across permutations ----------------------------------------
@dataclass(frozen=True)
class CosineGraph:
    """One model's neighbour lists and kernel values, as :func:`~.metrics.cknna` / :func:`~.metrics.mutual_knn`
    compute them.

    Attributes
    ----------
    indices : numpy.ndarray, shape (n, m), int64
        Neighbours of every row (self excluded), each row sorted by index.
    values : numpy.ndarray, shape (n, m), float64
        Kernel values ``x_i . x_j`` of the (L2-normalised, for cosine) rows, in the order of ``indices``.
    diagonal : numpy.ndarray, shape (n,)
        ``|x_i|^2`` of the searched rows (1, or 0 for a zero row, for cosine).
    metric : str
    """

    indices: np.ndarray
    values: np.ndarray
    diagonal: np.ndarray
    metric: str


def cosine_graph(X, m: int, *, metric: str = "cosine", backend: str = "auto") -> CosineGraph:
    """Exact m nearest neighbours of every row of X and their kernel values (one search; see
    :func:`~.neighbours.neighbour_search`). Kernel values as :func:`~.metrics.cknna` forms them:
    ``x.y = (|x|^2 + |y|^2 - |x - y|^2) / 2`` on the searched rows."""
    X = check_embeddings(X)
    n = X.shape[0]
    if m == 0:
        pts = neighbour_search(X, 1, metric=metric, backend=backend, exact_values=False).points
        return CosineGraph(np.zeros((n, 0), np.int64), np.zeros((n, 0)), np.einsum("ij,ij->i", pts, pts), metric)
    res = neighbour_search(X, m, metric=metric, backend=backend, exact_values=False)
    nrm = np.einsum("ij,ij->i", res.points, res.points)
    vals = 0.5 * (nrm[:, None] + nrm[res.indices] - res.d2)
    order = np.argsort(res.indices, axis=1, kind="stable")
    return CosineGraph(np.ascontiguousarray(np.take_along_axis(res.indices, order, axis=1)),
                       np.ascontiguousarray(np.take_along_axis(vals, order, axis=1)), nrm, metric)


def _graph_pass(gx: CosineGraph, gy: CosineGraph, perms: np.ndarray, *, self_pairs: bool = False,
                unbiased: bool = True, hsic: bool = True):
    """Mutual-pair counts (self excluded) and CKNNA numerators for every permutation (rows of ``perms``)."""
    from ._null_kernels import graph_null

    return graph_null(gx.indices, gx.values, gx.diagonal, gy.indices, gy.values, gy.diagonal,
                  np.ascontiguousarray(perms, dtype=np.int64), bool(self_pairs), bool(unbiased), bool(hsic))


def _self_alignment(g: CosineGraph, *, self_pairs: bool, unbiased: bool) -> float:
    """HSIC of a model's masked kernel with itself (CKNNA's denominator factor; invariant to relabelling)."""
    ident = np.arange(g.indices.shape[0], dtype=np.int64)[None, :]
    return float(_graph_pass(g, g, ident, self_pairs=self_pairs, unbiased=unbiased)[1][0])


def graph_nulls(gx: CosineGraph, gy: CosineGraph, perms: np.ndarray, *, cknna: bool = True,
                unbiased: bool = True, self_pairs: bool = False, eps: float = 1e-6,
                den: tuple[float, float] | None = None) -> dict:
    """Raw score and permutation null of mutual k-NN and CKNNA from two models' graphs.

    Parameters
    ----------
    gx, gy : CosineGraph
        Graphs of X and Y with the same number of neighbours m (mutual k-NN: m = k; CKNNA: m = k, or
        k - 1 with ``self_pairs``).
    perms : numpy.ndarray, shape (P, n)
        Permutations (:func:`permutations`); Y is paired as ``Y[pi]``.
    cknna : bool
        Also the CKNNA numerators (else only the overlap counts).
    unbiased, self_pairs, eps
        CKNNA variant (:func:`~.metrics.cknna`).
    den : (float, float), optional
        Precomputed self-alignments of X and Y for this variant.

    Returns
    -------
    dict
        ``{"mutual_knn": (raw, null), "cknna": (raw, null)}`` (CKNNA only if asked), ``null`` of shape (P,).
    """
    n, m = gx.indices.shape
    allp = np.vstack([np.arange(n, dtype=np.int64)[None, :], perms])
    counts, num = _graph_pass(gx, gy, allp, self_pairs=self_pairs, unbiased=unbiased, hsic=cknna)
    out = {"mutual_knn": (float(counts[0]) / (n * max(m, 1)), counts[1:] / (n * max(m, 1)))}
    if cknna:
        if den is None:
            den = (_self_alignment(gx, self_pairs=self_pairs, unbiased=unbiased),
                   _self_alignment(gy, self_pairs=self_pairs, unbiased=unbiased))
        kk, ll = den
        if not (kk > 0 and ll > 0):
            vals = np.full(num.shape, np.nan)
        else:
            vals = num / (np.sqrt(kk * ll) + eps)
        out["cknna"] = (float(vals[0]), vals[1:])
    return out


# -- information imbalance -----------------------------------------------------------------------------
def _rank_matrix(X: np.ndarray) -> np.ndarray:
    """Doubled mid-ranks ``2 r`` of every row's Euclidean distances to the other rows (``r = 1`` nearest;
    ``r = 1 + #closer + #others tied / 2``, as :func:`~.imbalance.information_imbalance`), self last.

    Distances in float64 from the centred rows; rows with exactly equal distances get their mid-ranks from
    ``scipy.stats.rankdata``. Integers (uint16 below 32,768 rows, else int32): shape (n, n).
    """
    return _ranks_and_neighbours(X, 0)[0]


def _ranks_and_neighbours(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_rank_matrix` of ``X`` and the exact k-NN sets of its rows, from one sort of one distance matrix.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d), float64
    k : int
        Neighbours per row, ``0 <= k <= n - 1``.

    Returns
    -------
    R : numpy.ndarray, shape (n, n)
        As :func:`_rank_matrix`.
    indices : numpy.ndarray, shape (n, k), int64
        The first k rows of each row's distance order: the same *sets* as ``knn(X, k)[1]`` (the order within
        a row may differ). The order comes from the Gram-form distances, whose rounding error is bounded as in
        :func:`~.neighbours.neighbour_search` (``(2 d + 16) u (|x_i|^2 + max |x|^2)``); a row whose k-th and
        (k+1)-th distances are closer than twice that bound (a tie or a near tie) is searched again from
        explicit differences with :func:`~.neighbours.knn`'s (distance, index) order.
    """
    n, d = X.shape
    Xc = X - X.mean(axis=0)
    sq = np.einsum("ij,ij->i", Xc, Xc)
    D = sq[:, None] + sq[None, :] - 2.0 * (Xc @ Xc.T)
    np.fill_diagonal(D, np.inf)
    order = np.argsort(D, axis=1)
    R = np.empty((n, n), dtype=np.uint16 if 2 * n < 2**16 else np.int32)
    np.put_along_axis(R, order, (2 * np.arange(1, n + 1)).astype(R.dtype)[None, :], axis=1)
    Ds = np.take_along_axis(D, order, axis=1)
    tied = np.flatnonzero((Ds[:, 1:] == Ds[:, :-1]).any(axis=1))
    if tied.size:
        R[tied] = (2.0 * sps.rankdata(D[tied], method="average", axis=1)).astype(R.dtype)
    idx = np.ascontiguousarray(order[:, :k], dtype=np.int64)
    if 0 < k < n - 1:
        eps = (2 * d + 16) * 2.0**-53 * (sq + sq.max())
        unsure = np.flatnonzero(~(Ds[:, k] - Ds[:, k - 1] > 2.0 * eps))
        if unsure.size:
            idx[unsure] = _exact_rows(Xc, unsure, k)[1]
    return R, idx


def imbalance_null(X, Y, perms: np.ndarray, k: int = 1, *, ranks=None, neighbours=None) -> dict:
    """Information imbalance in both directions and their permutation nulls, exactly, from rank matrices.

    ``Delta(X -> Y[pi]) = (2 / n) mean_i mean_{j in N_k^X(i)} r^Y(pi(i), pi(j))`` and
    ``Delta(Y[pi] -> X) = (2 / n) mean_i mean_{j in N_k^Y(i)} r^X(pi^-1(i), pi^-1(j))``: one rank matrix
    per model (n x n doubled mid-ranks, :func:`_rank_matrix`) and one neighbour list per model serve
    every permutation (n k look-ups).
    Memory O(n^2): meant for the subsample of :func:`calibrate_pairs` (default 2,000 rows).

    Returns
    -------
    dict
        ``{"x_to_y": (raw, null), "y_to_x": (raw, null)}``.
    """
    X, Y = check_pair(X, Y)
    n = X.shape[0]
    k = check_k(k, n)
    if ranks is None and neighbours is None:
        (Rx, nx), (Ry, ny) = _ranks_and_neighbours(X, k), _ranks_and_neighbours(Y, k)
    else:
        Rx, Ry = ranks if ranks is not None else (_rank_matrix(X), _rank_matrix(Y))
        nx, ny = neighbours if neighbours is not None else (knn(X, k)[1], knn(Y, k)[1])
    from ._null_kernels import rank_sums as kernel

    ident = np.arange(n, dtype=np.int64)[None, :]
    allp = np.vstack([ident, perms]).astype(np.int64)
    inv = np.empty_like(allp)
    np.put_along_axis(inv, allp, np.broadcast_to(np.arange(n), allp.shape), axis=1)
    # Delta = (2 / n) * mean rank = (doubled-rank sum) / (n * n k)
    xy = kernel(np.ascontiguousarray(nx[:, :k]), Ry, allp) / (n * n * k)
    yx = kernel(np.ascontiguousarray(ny[:, :k]), Rx, inv) / (n * n * k)
    return {"x_to_y": (float(xy[0]), xy[1:]), "y_to_x": (float(yx[0]), yx[1:])}
