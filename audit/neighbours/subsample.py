"""k nearest neighbours within subsamples of a set, read from one exact search of the whole set.

A bootstrap or m-out-of-n loop evaluates neighbour metrics (CKNNA, mutual k-NN) on many subsamples of the
same rows. Instead of one search per subsample, :func:`full_lists` searches the whole set once for
``K > k`` exact neighbours per row (:func:`~.exact.neighbour_search` with ``exact_values=True``: float64
squared distances from explicit differences, ascending, ties to the lower index), and
:func:`subsample_search` reads every subsample's k-NN from those lists.

Why it is exact
---------------
For a row i of a subsample S, list the full-set neighbours of i in order and keep those in S. If the list
holds at least ``k + 1`` members of S and the ``(k + 1)``-th is farther than the k-th by more than the
rounding tolerance ``tol_i``, the first k are the k nearest members of S: every member of S missing from
the list is at least as far as the list's last entry, hence not closer than the ``(k + 1)``-th member. Rows
where that fails (fewer than ``k + 1`` members in the list, or a tie within ``tol_i`` at the boundary) are
searched exactly against the subsample alone (explicit float64 differences of the subsample centred on
its own mean, ties to the lower subsample position: what a from-scratch search of the subsample does for
the rows it refines). The neighbour *sets* therefore equal those of a from-scratch search up to ties within
float64 rounding (which go to the fallback and are decided as the from-scratch search decides them).

``tol_i = 4 (2 d + 16) 2^-53 (|x_i|^2 + max_j |x_j|^2)`` (rows centred on the full set's mean): four times
the bound of the float64 GEMM form of :mod:`.exact`, which is larger than the error of the explicit
differences either computation uses.

Cosine neighbours are the Euclidean neighbours of the L2-normalised rows, and the normalisation is per row,
so the same lists serve every subsample.

List length
-----------
For a subsample holding a share ``f`` of the rows, the number of a row's K listed neighbours that are in the
subsample is hypergeometric with mean ``f K``; :func:`list_length` takes
``K = ceil(((k + 1) + z sqrt((k + 1)(1 - f))) / f)`` with ``z = 4``, so that fewer than ``k + 1`` members is
rare (for k = 25, f = 1/2: K = 81; measured fallback rates are in ``docs/alignment_speed.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .exact import NeighbourSearch, _exact_rows, neighbour_search

__all__ = ["NeighbourLists", "full_lists", "list_length", "subsample_search", "SubsampleSearch"]

_U64 = 2.0**-53
_TOL_FACTOR = 4.0  # tol = _TOL_FACTOR x the float64 GEMM rounding bound of .exact


@dataclass(frozen=True)
class NeighbourLists:
    """Exact K nearest neighbours of every row of a full set (the input of :func:`subsample_search`).

    Attributes
    ----------
    d2 : numpy.ndarray, shape (n, K), float64
        Squared distances (units of the rows squared; chord distances for cosine), ascending, from explicit
        float64 differences.
    indices : numpy.ndarray, shape (n, K), int64
        Neighbour rows, ordered by (distance, index); the row itself is never listed.
    points : numpy.ndarray, shape (n, d), float64
        The rows searched (L2-normalised for ``metric="cosine"``).
    tol : numpy.ndarray, shape (n,), float64
        Tie tolerance of each row's squared distances (see the module docstring).
    metric : str
        ``"euclidean"`` or ``"cosine"``.
    """

    d2: np.ndarray
    indices: np.ndarray
    points: np.ndarray
    tol: np.ndarray
    metric: str

    @property
    def n_neighbours(self) -> int:
        """K, the neighbours listed per row."""
        return int(self.indices.shape[1])


@dataclass(frozen=True)
class SubsampleSearch:
    """The k-NN of one subsample and how it was obtained.

    Attributes
    ----------
    search : NeighbourSearch
        As :func:`~.exact.neighbour_search` on the subsample's rows would return it, with subsample
        positions as indices, float64 distances for every row and ``refined`` all True; ``eps`` holds
        the tie tolerance of each row.
    fallback : numpy.ndarray, shape (n_fallback,), int64
        Subsample positions searched directly (too few listed members, or a tie at the k-th neighbour).
    """

    search: NeighbourSearch
    fallback: np.ndarray


def list_length(k: int, fraction: float, n: int, z: float = 4.0) -> int:
    """Neighbours K to list per row so that a subsample holding ``fraction`` of the n rows rarely has fewer
    than ``k + 1`` of them: ``ceil(((k + 1) + z sqrt((k + 1)(1 - f))) / f)``, at most ``n - 1``.

    Parameters
    ----------
    k : int
        Neighbours wanted in each subsample.
    fraction : float
        Share of the rows a subsample holds, in (0, 1].
    n : int
        Rows of the full set.
    z : float
        Standard deviations of margin.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
    need = k + 1
    K = math.ceil((need + z * math.sqrt(need * (1.0 - fraction))) / fraction)
    return int(max(1, min(n - 1, K)))


def full_lists(X: np.ndarray, K: int, *, metric: str = "euclidean", backend: str = "auto") -> NeighbourLists:
    """Exact K nearest neighbours of every row of X, in order, with float64 squared distances.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d), float64, finite
    K : int
        ``1 <= K <= n - 1``.
    metric : {"euclidean", "cosine"}
    backend : {"auto", "faiss", "numpy"}
        Candidate search of :func:`~.exact.neighbour_search` (same result for every backend).

    Returns
    -------
    NeighbourLists
    """
    res = neighbour_search(X, K, metric=metric, backend=backend, exact_values=True)
    P = res.points
    Pc = P - P.mean(axis=0)
    sq = np.einsum("ij,ij->i", Pc, Pc)
    tol = _TOL_FACTOR * (2 * P.shape[1] + 16) * _U64 * (sq + sq.max())
    return NeighbourLists(res.d2, res.indices, P, tol, metric)


def subsample_search(lists: NeighbourLists, rows: np.ndarray, k: int) -> SubsampleSearch:
    """Exact k nearest neighbours of every row of the subsample ``points[rows]`` among the subsample.

    Parameters
    ----------
    lists : NeighbourLists
        Full-set lists (:func:`full_lists`).
    rows : numpy.ndarray, shape (m,), int
        Distinct row indices of the full set; subsample position p is full row ``rows[p]``.
    k : int
        ``1 <= k <= m - 1``.

    Returns
    -------
    SubsampleSearch
        Indices are subsample positions; ties at the k-th neighbour and rows with too few listed members
        are searched directly (``fallback``).
    """
    rows = np.asarray(rows, dtype=np.int64)
    n, K = lists.indices.shape
    m = rows.size
    if not 1 <= k <= m - 1:
        raise ValueError(f"k must satisfy 1 <= k <= m - 1 = {m - 1}; got {k}")
    pos = np.full(n, -1, dtype=np.int64)
    pos[rows] = np.arange(m)
    if np.count_nonzero(pos >= 0) != m:
        raise ValueError("subsample rows must be distinct")
    L = pos[lists.indices[rows]]  # (m, K) subsample positions, -1 outside
    member = L >= 0
    rank = np.cumsum(member, axis=1)
    ok = rank[:, -1] >= k + 1
    d2 = np.empty((m, k))
    idx = np.empty((m, k), dtype=np.int64)
    good = np.flatnonzero(ok)
    if good.size:
        take = member[good] & (rank[good] <= k + 1)
        Ls = L[good][take].reshape(good.size, k + 1)
        Ds = lists.d2[rows[good]][take].reshape(good.size, k + 1)
        gap_ok = Ds[:, k] - Ds[:, k - 1] > lists.tol[rows[good]]
        ok[good[~gap_ok]] = False
        good, Ls, Ds = good[gap_ok], Ls[gap_ok, :k], Ds[gap_ok, :k]
        if not np.all(rows[1:] > rows[:-1]):  # positions not in row order: ties within the k by position
            order = np.lexsort((Ls, Ds), axis=1)
            Ls, Ds = np.take_along_axis(Ls, order, axis=1), np.take_along_axis(Ds, order, axis=1)
        d2[good], idx[good] = Ds, Ls
    fallback = np.flatnonzero(~ok)
    points = lists.points[rows]
    if fallback.size:
        Pc = points - points.mean(axis=0)  # as a from-scratch search of the subsample centres it
        d2[fallback], idx[fallback] = _exact_rows(Pc, fallback, k)
    search = NeighbourSearch(d2, idx, np.ones(m, dtype=bool), lists.tol[rows], points)
    return SubsampleSearch(search, fallback)
