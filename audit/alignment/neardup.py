"""Near-duplicate guard: find rows that sit far closer to another row than rows typically do.

Near copies (the same structure relabelled, a relaxation step that barely moved, the same composition
sampled twice) put mass at tiny nearest-neighbour distances and drag neighbour-based estimates down
(TwoNN reads huge ``r2 / r1`` ratios as a low dimension). Drop them before estimating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ._validation import check_embeddings
from .neighbours import knn

__all__ = ["NearDuplicates", "find_near_duplicates"]


@dataclass(frozen=True)
class NearDuplicates:
    """Result of :func:`find_near_duplicates`.

    Attributes
    ----------
    drop_mask : numpy.ndarray, shape (n,), bool
        True for rows to drop (every member of a cluster except its lowest index).
    clusters : list of numpy.ndarray
        Each cluster of >= 2 mutually linked rows, ascending indices; the first is the one kept.
        Clusters are ordered by their first index.
    threshold : float
        Distance below which two rows are linked (units of X).
    median_nn_distance : float
        The reference scale: median nearest-neighbour distance over rows whose nearest neighbour is not an
        exact duplicate.
    tau : float
        ``threshold / median_nn_distance``.
    """

    drop_mask: np.ndarray
    clusters: list
    threshold: float
    median_nn_distance: float
    tau: float

    @property
    def keep_mask(self) -> np.ndarray:
        """Rows to keep, shape (n,), bool."""
        return ~self.drop_mask

    @property
    def fraction(self) -> float:
        """Fraction of rows dropped."""
        return float(self.drop_mask.mean()) if self.drop_mask.size else 0.0

    @property
    def n_dropped(self) -> int:
        return int(self.drop_mask.sum())


def find_near_duplicates(
    X, tau: float = 0.05, *, groups=None, n_neighbours: int = 16, backend: str = "auto"
) -> NearDuplicates:
    """Find near-duplicate rows of an embedding.

    Rule: rows i and j are linked when ``||x_i - x_j|| < tau * median_nn`` (Euclidean) and, if ``groups``
    is given, ``groups[i] == groups[j]``. ``median_nn`` is the median over rows of the distance to the
    nearest other row, ignoring rows whose nearest neighbour is at distance exactly 0 (so that many exact
    copies cannot shrink the scale to zero); exact copies are always linked (0 < threshold). Clusters are
    the connected components of the links (single linkage); each keeps its lowest row index and drops the
    rest, which makes the result deterministic and independent of row order within a cluster.

    Default ``tau = 0.05``: for data of intrinsic dimension d, a genuine point has its nearest neighbour
    closer than ``tau`` times the median with probability of order ``ln(2) tau^d`` (about 2e-7 for d = 5),
    so the guard removes copies, not the tail of an honest distribution, unless d <= 2.

    Parameters
    ----------
    X : array-like, shape (n, d)
        Embeddings (or any descriptors), one row per structure.
    tau : float
        Threshold as a fraction of the median nearest-neighbour distance, > 0.
    groups : array-like of hashables, shape (n,), optional
        Only rows with equal labels can be duplicates (e.g. reduced composition strings).
    n_neighbours : int
        Neighbours searched per row; rows whose ``n_neighbours``-th neighbour is still under the threshold
        are searched exhaustively, so the links are complete whatever this value.
    backend : {"auto", "faiss", "numpy"}

    Returns
    -------
    NearDuplicates
    """
    if not tau > 0:
        raise ValueError(f"tau must be > 0; got {tau}")
    X = check_embeddings(X)
    n = X.shape[0]
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must have shape ({n},); got {groups.shape}")
        _, labels = np.unique(groups.astype(str) if groups.dtype == object else groups, return_inverse=True)
    kk = min(n_neighbours, n - 1)
    dist, idx = knn(X, kk, backend=backend)
    nn = dist[:, 0]
    positive = nn[nn > 0]
    median_nn = float(np.median(positive)) if positive.size else 0.0
    threshold = tau * median_nn

    src = np.repeat(np.arange(n), kk)
    dst = idx.ravel()
    linked = (dist.ravel() < threshold) | (dist.ravel() == 0.0)
    src, dst = src[linked], dst[linked]
    # rows whose whole neighbour list is under the threshold: search all rows exhaustively
    full = np.flatnonzero((dist[:, -1] < threshold) | (dist[:, -1] == 0.0))
    if full.size:
        Xc = X - X.mean(axis=0)
        extra_src, extra_dst = [], []
        for i in full:
            d = np.sqrt(np.einsum("ij,ij->i", Xc - Xc[i], Xc - Xc[i]))
            j = np.flatnonzero((d < threshold) | (d == 0.0))
            j = j[j != i]
            extra_src.append(np.full(j.size, i))
            extra_dst.append(j)
        src = np.concatenate([src, *extra_src])
        dst = np.concatenate([dst, *extra_dst])
    if groups is not None:
        same = labels[src] == labels[dst]
        src, dst = src[same], dst[same]

    graph = sp.coo_matrix((np.ones(src.size), (src, dst)), shape=(n, n))
    _, comp = connected_components(graph, directed=True, connection="weak")
    order = np.argsort(comp, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(comp[order]) != 0])
    members = np.split(order, starts[1:])
    clusters = sorted((m for m in members if m.size > 1), key=lambda m: m[0])
    drop = np.zeros(n, dtype=bool)
    for m in clusters:
        drop[m[1:]] = True
    return NearDuplicates(drop, clusters, float(threshold), median_nn, float(tau))
