"""Indexed k-nearest-neighbour search (a base set, any queries) with faiss: exact up to a million indexed
points, approximate (IVF) beyond.

The indexed backend of :mod:`monoculture.audit.neighbours` (formerly ``monoculture.audit.coverage.knn``,
which re-exports it): coverage, comparison and the map layout use it.

Index choice (documented contract): an exact ``faiss.IndexFlatL2`` when the indexed set has at most
``exact_max`` (default 1,000,000) points; beyond that an ``IndexIVFFlat`` with ``nlist = round(4 sqrt(n))``
inverted lists, trained by k-means (faiss seed = ``seed``) on a seeded subsample of ``min(n, 64 nlist)``
points, searched with ``nprobe = 32`` lists. faiss works in float32 on squared distances; the distances
returned here are recomputed in float64 from the vectors of the neighbours it found and rows are re-sorted
by them, so near-zero distances (duplicates) are exact.
"""
from __future__ import annotations

import numpy as np

__all__ = ["knn", "knn_self", "build_index", "EXACT_MAX", "IVF_NPROBE"]

#: Largest indexed set searched exactly.
EXACT_MAX = 1_000_000
#: Inverted lists probed per query by the IVF index.
IVF_NPROBE = 32


def build_index(base: np.ndarray, *, exact: bool, nlist: int = 1, nprobe: int = IVF_NPROBE,
                n_train: int | None = None, seed: int = 0, niter: int | None = None,
                shift: np.ndarray | None = None, chunk: int = 1 << 18):
    """The faiss index every indexed search of the audit uses: exact or inverted lists.

    Parameters
    ----------
    base : numpy.ndarray, shape (n, d), float32
        Rows to index.
    exact : bool
        ``IndexFlatL2`` (exhaustive) if True, else ``IndexIVFFlat``.
    nlist, nprobe : int
        Inverted lists, and lists probed per query (IVF only).
    n_train : int, optional
        Rows of the k-means training subsample (IVF only; default all), drawn with
        ``numpy.random.default_rng(seed).choice(n, n_train, replace=False)`` and sorted.
    seed : int
        Seed of the training subsample and of faiss's k-means.
    niter : int, optional
        k-means iterations (default faiss's).
    shift : numpy.ndarray, shape (d,), optional
        Subtracted from every row before training and indexing (e.g. the mean, to limit float32
        cancellation); queries must be shifted the same way.
    chunk : int
        Rows added per call (bounds the memory of the shifted copies).

    Returns
    -------
    index : faiss.Index
    info : dict
        ``index``, ``exact`` and, for IVF, ``nlist``, ``nprobe``, ``n_train``.
    """
    import faiss

    n, d = base.shape

    def shifted(a):
        return np.ascontiguousarray(a if shift is None else a - shift)

    if exact:
        index = faiss.IndexFlatL2(d)
        info = {"index": "IndexFlatL2", "exact": True}
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, int(nlist))
        index.cp.seed = int(seed)
        if niter is not None:
            index.cp.niter = int(niter)
        n_train = n if n_train is None else int(min(n, n_train))
        rng = np.random.default_rng(seed)
        train = base[np.sort(rng.choice(n, n_train, replace=False))] if n_train < n else base
        index.train(shifted(train))
        index.nprobe = int(nprobe)
        info = {"index": "IndexIVFFlat", "exact": False, "nlist": int(nlist), "nprobe": int(nprobe),
                "n_train": int(n_train)}
    for s in range(0, n, chunk):
        index.add(shifted(base[s : s + chunk]))
    return index, info


def _index(base: np.ndarray, exact_max: int, seed: int):
    """Exact up to ``exact_max`` rows, else IVF with ``round(4 sqrt(n))`` lists trained on ``64 nlist`` rows."""
    n = base.shape[0]
    nlist = int(round(4 * np.sqrt(n)))
    return build_index(base, exact=n <= exact_max, nlist=nlist, nprobe=IVF_NPROBE, n_train=64 * nlist, seed=seed)


def _exact_distances(query: np.ndarray, base: np.ndarray, idx: np.ndarray, max_elements: int = 1 << 22) -> np.ndarray:
    """float64 distances of each query row to its listed neighbours, in row blocks of bounded size.

    A block holds at most ``max_elements`` differences (32 MiB in float64), so wide descriptors (a
    2,060-column fingerprint, 10 neighbours, 5,000 rows) never build the whole difference array at once.
    """
    out = np.full(idx.shape, np.inf)
    n, k = idx.shape
    step = max(1, max_elements // max(1, k * query.shape[1]))
    for s in range(0, n, step):
        block = idx[s : s + step]
        ok = block >= 0
        rows = np.nonzero(ok)[0] + s
        diff = query[rows].astype(np.float64) - base[block[ok]].astype(np.float64)
        sub = out[s : s + step]
        sub[ok] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def _sorted(dist: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((idx, dist), axis=-1)
    return np.take_along_axis(dist, order, -1), np.take_along_axis(idx, order, -1)


def knn(base: np.ndarray, query: np.ndarray, k: int, *, exact_max: int = EXACT_MAX, seed: int = 0,
        chunk: int = 65536) -> tuple[np.ndarray, np.ndarray, dict]:
    """k nearest points of ``base`` for every row of ``query``.

    Parameters
    ----------
    base : numpy.ndarray, shape (n_base, d)
    query : numpy.ndarray, shape (n_query, d)
    k : int
        Neighbours per query (capped at ``n_base``).
    exact_max, seed : int
        See the module docstring.
    chunk : int
        Queries per faiss call (bounds the memory of the result arrays).

    Returns
    -------
    dist : numpy.ndarray, shape (n_query, k), float64
        Euclidean distances (descriptor units), ascending per row (ties by index).
    idx : numpy.ndarray, shape (n_query, k), int64
        Row indices into ``base`` (-1 where the IVF search found fewer than ``k``).
    info : dict
        Index description (``index``, ``exact``, and the IVF parameters).
    """
    base = np.ascontiguousarray(base, dtype=np.float32)
    query = np.ascontiguousarray(query, dtype=np.float32)
    k = int(min(k, base.shape[0]))
    index, info = _index(base, exact_max, seed)
    dists, idxs = [], []
    for s in range(0, query.shape[0], chunk):
        q = query[s : s + chunk]
        _, ii = index.search(q, k)
        ii = ii.astype(np.int64)
        dd = _exact_distances(q, base, ii)
        dd, ii = _sorted(dd, ii)
        dists.append(dd)
        idxs.append(ii)
    if not dists:
        return np.zeros((0, k)), np.zeros((0, k), np.int64), info
    return np.concatenate(dists), np.concatenate(idxs), info


def knn_self(X: np.ndarray, k: int, *, exact_max: int = EXACT_MAX,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """k nearest *other* points of every row of ``X`` (leave-one-out).

    Searches ``k + 1`` neighbours and removes the query itself (or, when exact duplicates hide it, the
    farthest of the ``k + 1``).

    Returns
    -------
    dist : numpy.ndarray, shape (n, k), float64
    idx : numpy.ndarray, shape (n, k), int64
    info : dict
    """
    n = X.shape[0]
    k = int(min(k, n - 1))
    dist, idx, info = knn(X, X, k + 1, exact_max=exact_max, seed=seed)
    is_self = idx == np.arange(n)[:, None]
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    keep = ~is_self  # exactly one column dropped per row
    return dist[keep].reshape(n, k), idx[keep].reshape(n, k), info
