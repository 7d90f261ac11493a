"""Exact k nearest neighbours of every row among the other rows, with deterministic ties (certified).

The exact backend of :mod:`monoculture.audit.neighbours`: every neighbour-based metric of
:mod:`monoculture.audit.alignment` goes through :func:`knn` or its internal form :func:`neighbour_search`
(``monoculture.audit.alignment.neighbours`` re-exports both). The blocked GEMM sweep primitives it builds on
(:mod:`monoculture.audit.alignment._pairwise`, shared with CKA and distance correlation) are imported when a
search runs, so that importing this module does not import the alignment package.

How it works (and why it is exact)
----------------------------------
1. Candidates: the ``m = k + 1 + margin`` nearest rows of each row by a fast exhaustive search (nothing is
   approximate except rounding): with ``backend="auto"``, from 4,096 rows an upper-triangle float32 GEMM
   sweep (:mod:`~monoculture.audit.alignment._pairwise`) that computes each pair's distance once and keeps
   the m smallest per row in
   faiss's C++ heaps; below that faiss ``IndexFlatL2`` (float32) from 600 rows (1,500 when unrefined values
   are returned), else a blocked float64 numpy GEMM (``|x|^2 + |y|^2 - 2 x.y``). Columns are mean-centred
   first (distances do not change) to limit cancellation. The row itself is removed by index, so an exact
   duplicate of row ``i`` is a valid neighbour of ``i`` but ``i`` never is.
2. Rounding bound: every searched squared distance is within ``eps_i = rel (|x_i|^2 + max_j |x_j|^2)`` of
   the exact one, ``rel = (2 d + 16) u`` with ``u = 2^-24`` (faiss, float32) or ``2^-53`` (numpy); see
   :mod:`~monoculture.audit.alignment._pairwise` for the derivation.
3. Refinement, only where it can matter: a row whose k-th and (k+1)-th candidates are more than
   ``2 eps_i`` apart has a certain neighbour *set*. Rows without that gap have all their candidates
   recomputed in float64 from explicit differences ``sum((x_i - x_j)^2)`` and ordered by
   ``(distance, index)``: **ties are broken by the lower row index**. When distances are wanted
   (:func:`knn`), the k neighbours of the other rows are recomputed the same way (their set is already
   certain, only their values and order are refined).
4. Certificate: a row is accepted only if every row outside its candidate list is provably farther than
   its k-th neighbour, ``D_search[m-th] - eps_i > d_k^2``. Rows that fail (many exact ties, e.g. more than
   ``margin`` identical copies) are recomputed exactly against all rows. The neighbour sets (and, for
   :func:`knn`, distances and order) therefore do not depend on the backend.

Why hand-written around faiss: ``IndexFlatL2.search`` is the fastest exact search in the dependencies
(0.36 s at n = 10,000, d = 256, k = 25 on 2 cores, the speed of its float32 GEMM), but it computes every
distance twice, works only in float32 and does not document its tie order. The sweep halves the GEMM work
(0.27 s for the same search, its heaps are faiss's), and the float64 refinement gives exact values and ties.
For k <= 2 the sweep keeps a running minimum (or two) per row instead of heaps (:class:`SweepNearest`,
0.27 s for TwoNN's k = 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ..alignment._pairwise import Scratch


__all__ = ["knn", "l2_normalise_rows", "neighbour_search", "candidate_count", "NeighbourSearch", "SweepNearest",
           "METRICS", "BACKENDS"]

METRICS = ("euclidean", "cosine")
BACKENDS = ("auto", "faiss", "numpy")

# "auto" backend choices, from timings on 2 cores at d = 256 (the results do not depend on them):
_SMALL_N = 1500  # numpy below this when unrefined search values are returned (they stay float64 there)
_SMALL_N_REFINED = 600  # numpy below this when every returned value is refined (faiss faster above)
_SWEEP_MIN_N = 4096  # upper-triangle sweeps from here (faster than faiss above ~5,000 rows)


def l2_normalise_rows(X: np.ndarray) -> np.ndarray:
    """Divide every row by its Euclidean norm; rows of zeros stay zero.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d)

    Returns
    -------
    numpy.ndarray, shape (n, d), float64
    """
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X, dtype=np.float64), where=norms > 0)


class NeighbourSearch(NamedTuple):
    """Result of :func:`neighbour_search`.

    Attributes
    ----------
    d2 : numpy.ndarray, shape (n, k), float64
        Squared distances to the neighbours: exact (float64, explicit differences) where ``refined``, else
        the search's values (within ``eps`` of exact).
    indices : numpy.ndarray, shape (n, k), int64
        Neighbour rows. The *set* in every row is exact; the *order* (ascending distance, ties to the lower
        index) is guaranteed only where ``refined``.
    refined : numpy.ndarray, shape (n,), bool
        Rows whose values and order were recomputed exactly.
    eps : numpy.ndarray, shape (n,), float64
        Rounding bound of the searched squared distances of each row.
    points : numpy.ndarray, shape (n, d), float64
        The rows searched (L2-normalised for ``metric="cosine"``, not centred).
    """

    d2: np.ndarray
    indices: np.ndarray
    refined: np.ndarray
    eps: np.ndarray
    points: np.ndarray


def _exact_rows(Xc: np.ndarray, rows: np.ndarray, k: int):
    """Exact, tie-ordered k neighbours of ``rows`` against all rows (explicit differences, float64).

    Returns squared distances (len(rows), k) and indices (len(rows), k).
    """
    n = Xc.shape[0]
    d2_out = np.empty((rows.size, k))
    idx = np.empty((rows.size, k), dtype=np.int64)
    allidx = np.arange(n)
    for out_row, i in enumerate(rows):
        diff = Xc - Xc[i]
        d2 = np.einsum("ij,ij->i", diff, diff)
        d2[i] = np.inf
        order = np.lexsort((allidx, d2))[:k]
        d2_out[out_row] = d2[order]
        idx[out_row] = order
    return d2_out, idx


def _refine(Xc: np.ndarray, rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Exact squared distances ``||x_rows[r] - x_cand[r, c]||^2``, shape cand.shape, float64.

    Gathers a few rows at a time into a buffer of about 1 MB, so the explicit differences stay in cache.
    """
    out = np.empty(cand.shape)
    if cand.size == 0:
        return out
    c, d = cand.shape[1], Xc.shape[1]
    step = max(1, 2**17 // (c * d))
    buf = np.empty((min(step, rows.size), c, d))
    for start in range(0, rows.size, step):
        stop = min(start + step, rows.size)
        b = buf[: stop - start]
        np.take(Xc, cand[start:stop], axis=0, out=b, mode="clip")  # "clip" writes in place: 2x faster
        np.subtract(b, Xc[rows[start:stop], None, :], out=b)
        out[start:stop] = np.einsum("ijk,ijk->ij", b, b)
    return out


def _sorted_exact(Xc: np.ndarray, rows: np.ndarray, cand: np.ndarray, k: int):
    """Refine ``cand`` (shape (len(rows), c)) exactly and keep the first k by (distance, index)."""
    e2 = _refine(Xc, rows, cand)
    order = np.lexsort((cand, e2), axis=1)[:, :k]
    return np.take_along_axis(e2, order, axis=1), np.take_along_axis(cand, order, axis=1)


def _candidates_numpy(Xc: np.ndarray, m: int, sq: np.ndarray, block_size: int):
    """The m smallest ``|x_i|^2 + |x_j|^2 - 2 x_i.x_j`` (float64) of every row, ascending, with their indices.

    Selection by m rounds of a row-wise ``argmin`` (each found entry then set to +inf): for the small m
    used here that is 2-7 times faster than ``argpartition`` (measured on 1024 x 1250 blocks).
    """
    n = Xc.shape[0]
    cand = np.empty((n, m), dtype=np.int64)
    dsearch = np.empty((n, m))
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (Xc[start:stop] @ Xc.T)
        rows = np.arange(stop - start)
        for c in range(m):
            j = d2.argmin(axis=1)
            cand[start:stop, c] = j
            dsearch[start:stop, c] = d2[rows, j]
            d2[rows, j] = np.inf
    return dsearch, cand, 2.0**-53


class _SweepHeap:
    """The m smallest searched squared distances of every row (self excluded) from an upper-triangle sweep,
    kept in faiss's C++ max-heaps (``float_maxheap_array_t.addn_with_ids``; single-threaded per worker).

    Rows of a block feed their own heaps directly; the block's transpose (one copy) feeds the heaps of the
    rows of its columns. Per-worker heaps are merged at the end. 25-30% faster than ``IndexFlatL2.search``
    at n = 10,000, d = 256, m = 15-32 on 2 cores (each pair's distance is computed once, not twice).
    """

    def __init__(self, n: int, m: int):
        import faiss

        self.faiss, self.n, self.m = faiss, n, m
        self.D = np.empty((n, m), dtype=np.float32)
        self.I = np.empty((n, m), dtype=np.int64)
        self.heap = faiss.float_maxheap_array_t()
        self.heap.k, self.heap.nh = m, n
        self.heap.val, self.heap.ids = faiss.swig_ptr(self.D), faiss.swig_ptr(self.I)
        self.heap.heapify()
        self.ids = np.arange(n, dtype=np.int64)

    def add_block(self, s: int, e: int, D: np.ndarray, scratch: Scratch) -> None:
        ptr, n, b = self.faiss.swig_ptr, self.n, e - s
        threads = self.faiss.omp_get_max_threads()
        self.faiss.omp_set_num_threads(1)  # the sweep's worker threads are the parallelism
        try:
            self.heap.addn_with_ids(n - s, ptr(D), ptr(self.ids[s:]), 0, s, b)
            if e < n:
                T = scratch.get("heap_t", (n - e, b), np.float32)
                np.copyto(T, D[:, b:].T)
                self.heap.addn_with_ids(b, ptr(T), ptr(self.ids[s:e]), 0, e, n - e)
        finally:
            self.faiss.omp_set_num_threads(threads)

    @classmethod
    def merge(cls, parts: list) -> "_SweepHeap":
        out = parts[0]
        for p in parts[1:]:
            out.heap.addn_with_ids(out.m, out.faiss.swig_ptr(p.D), out.faiss.swig_ptr(p.I), out.m, 0, out.n)
        return out

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Ascending squared distances (n, m), float64, and their row indices (n, m)."""
        self.heap.reorder()
        return self.D.astype(np.float64), self.I


def _candidates_sweep(X: np.ndarray, m: int, block_size: int = 512):
    """The m nearest other rows of every row, float32 upper-triangle sweep (self never a candidate)."""
    from ..alignment._pairwise import augmented_rows, sweep

    rows = augmented_rows(X, np.float32)
    (heaps,) = sweep(rows, lambda: [_SweepHeap(X.shape[0], m)], block_size)
    dsearch, cand = heaps.result()
    return dsearch, cand, 2.0**-24


def _candidates_faiss(Xc: np.ndarray, m: int):
    import faiss

    x32 = np.ascontiguousarray(Xc, dtype=np.float32)
    index = faiss.IndexFlatL2(x32.shape[1])
    index.add(x32)
    dsearch, cand = index.search(x32, m)
    return dsearch.astype(np.float64), cand.astype(np.int64), 2.0**-24


def _smallest(M: np.ndarray, axis: int, k: int) -> np.ndarray:
    """The k (1 or 2) smallest values along ``axis`` (repeats count), ascending, shape (len, k), float64."""
    if k == 1:
        return M.min(axis=axis).astype(np.float64)[:, None]
    a = M.argmin(axis=axis)
    pos = (np.arange(M.shape[0]), a) if axis == 1 else (a, np.arange(M.shape[1]))
    first = M[pos]  # a copy (fancy indexing)
    M[pos] = np.inf
    second = M.min(axis=axis)
    M[pos] = first
    return np.stack([first, second], axis=1).astype(np.float64)


class SweepNearest:
    """The k <= 2 nearest neighbours of every row from an upper-triangle sweep
    (:func:`~monoculture.audit.alignment._pairwise.sweep`).

    Each block updates the running k smallest searched values of its rows (row part) and of the rows of
    its columns (column part), and every entry within ``2.5 eps_i`` of the running k-th smallest is kept:
    the exact k nearest (whose searched values are within ``2 eps_i`` of the final k-th smallest searched
    value) are always among them. :meth:`result` recomputes the kept entries in float64 from explicit
    differences and orders them by (distance, index). Half the GEMM work of a full search, and no
    per-row selection structure: this is what makes TwoNN (k = 2) and the information imbalance
    (k = 1) cheap.

    Parameters
    ----------
    rows : AugmentedRows
    k : {1, 2}
    """

    def __init__(self, rows, k: int):
        if k not in (1, 2):
            raise ValueError(f"SweepNearest handles k = 1 or 2; got {k}")
        n = rows.sq.size
        self.rows, self.k = rows, k
        self.best = np.full((n, k), np.inf)
        self.slack = 2.5 * rows.row_bound()
        self.i, self.j, self.v = [], [], []

    def _update(self, best: np.ndarray, new: np.ndarray) -> None:
        """Merge ascending k-smallest lists row by row, in place: best <- k smallest of best and new."""
        if self.k == 1:
            np.minimum(best, new, out=best)
            return
        lo = np.minimum(best[:, 0], new[:, 0])
        mid = np.maximum(best[:, 0], new[:, 0])
        best[:, 1] = np.minimum(mid, np.minimum(best[:, 1], new[:, 1]))
        best[:, 0] = lo

    def add_block(self, s: int, e: int, D: np.ndarray, scratch: Scratch) -> None:
        from ..alignment._pairwise import where2d

        b = e - s
        self._update(self.best[s:e], _smallest(D, 1, self.k))
        thr = (self.best[s:e, -1] + self.slack[s:e]).astype(D.dtype)
        r, c = where2d(np.less_equal(D, thr[:, None], out=scratch.get("near", D.shape, bool)))
        self.i.append(r + s)
        self.j.append(c + s)
        self.v.append(D[r, c].astype(np.float64))
        if D.shape[1] > b:  # the column part: rows [e, n) against rows [s, e)
            Do = D[:, b:]
            self._update(self.best[e:], _smallest(Do, 0, self.k))
            thr = (self.best[e:, -1] + self.slack[e:]).astype(D.dtype)
            r, c = where2d(np.less_equal(Do, thr[None, :], out=scratch.get("near", Do.shape, bool)))
            self.i.append(c + e)
            self.j.append(r + s)
            self.v.append(Do[r, c].astype(np.float64))

    @classmethod
    def merge(cls, parts: list) -> "SweepNearest":
        """One accumulator from the per-worker ones (each saw a subset of the blocks)."""
        out = parts[0]
        for p in parts[1:]:
            out._update(out.best, p.best)
            out.i += p.i
            out.j += p.j
            out.v += p.v
        return out

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact squared distances (n, k), float64, and indices (n, k), ties to the lower index."""
        from ..alignment._pairwise import exact_sqdist

        i, j, v = np.concatenate(self.i), np.concatenate(self.j), np.concatenate(self.v)
        keep = v <= self.best[i, -1] + self.slack[i]
        i, j = i[keep], j[keep]
        d2 = exact_sqdist(self.rows.Xc, i, j)
        order = np.lexsort((j, d2, i))
        i, j, d2 = i[order], j[order], d2[order]
        starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
        rank = np.arange(i.size) - np.repeat(starts, np.diff(np.r_[starts, i.size]))
        sel = rank < self.k
        n = self.best.shape[0]
        if starts.size != n or np.any(np.bincount(i[sel], minlength=n) < self.k):
            raise RuntimeError("sweep kept fewer than k candidates for a row (rounding bound violated)")
        out_d2 = np.empty((n, self.k))
        out_idx = np.empty((n, self.k), dtype=np.int64)
        out_d2[i[sel], rank[sel]] = d2[sel]
        out_idx[i[sel], rank[sel]] = j[sel]
        return out_d2, out_idx


def candidate_count(n: int, k: int) -> int:
    """Candidates searched per row for k exact neighbours among n rows: ``min(n, k + 1 + max(4, k // 4))``."""
    return min(n, k + 1 + max(4, k // 4))


def neighbour_search(
    X: np.ndarray,
    k: int,
    *,
    metric: str = "euclidean",
    backend: str = "auto",
    exact_values: bool = True,
    block_size: int = 1024,
    candidates: tuple | None = None,
) -> NeighbourSearch:
    """Exact k-NN sets of every row (the engine behind :func:`knn`); inputs are not validated.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d), float64, finite
    k : int
        ``1 <= k <= n - 1``.
    metric : {"euclidean", "cosine"}
    backend : {"auto", "faiss", "numpy"}
    exact_values : bool
        Refine the distances and order of every row (what :func:`knn` returns). With False only rows whose
        set is uncertain are refined, which is all that set-based metrics (mutual k-NN, CKNNA, information
        imbalance) need.
    block_size : int
        Rows per block of the numpy search.
    candidates : tuple, optional
        ``(dsearch, cand, u)``: the ``candidate_count(n, k)`` smallest searched squared distances of every
        row, ascending (n, m), their rows (n, m) and the unit roundoff of the search, as a caller's own
        upper-triangle sweep collected them (:class:`_SweepHeap` on float32 :func:`augmented_rows` of X,
        Euclidean); replaces the candidate search. The result is the same exact sets.

    Returns
    -------
    NeighbourSearch
    """
    if metric == "cosine":
        X = l2_normalise_rows(X)
    n, d = X.shape
    Xc = X - X.mean(axis=0)
    sq = np.einsum("ij,ij->i", Xc, Xc)
    m = candidate_count(n, k)
    if m == n:  # every row is a candidate: exact for every row
        cand = np.broadcast_to(np.arange(n), (n, n)).copy()
        e2 = _refine(Xc, np.arange(n), cand)
        e2[np.arange(n), np.arange(n)] = np.inf  # drop self by index
        order = np.lexsort((cand, e2), axis=1)[:, :k]
        return NeighbourSearch(np.take_along_axis(e2, order, axis=1), order.astype(np.int64),
                               np.ones(n, dtype=bool), np.zeros(n), X)
    if backend == "auto" and k <= 2 and n >= _SWEEP_MIN_N:  # half the GEMM of a full search, exact values
        from ..alignment._pairwise import augmented_rows, sweep, working_dtype

        rows = augmented_rows(X, working_dtype("auto", n))
        (near,) = sweep(rows, lambda: [SweepNearest(rows, k)], block_size=512)
        d2, idx = near.result()
        return NeighbourSearch(d2, idx, np.ones(n, dtype=bool), rows.row_bound(), X)

    small_n = _SMALL_N_REFINED if exact_values else _SMALL_N
    use_faiss = backend == "faiss" or (backend == "auto" and n >= small_n)
    if candidates is not None:
        dsearch, cand, u = candidates
    elif backend == "auto" and n >= _SWEEP_MIN_N:
        dsearch, cand, u = _candidates_sweep(X, m)
    elif use_faiss:
        dsearch, cand, u = _candidates_faiss(Xc, m)
    else:
        dsearch, cand, u = _candidates_numpy(Xc, m, sq, block_size)
    eps = (2 * d + 16) * u * (sq + sq.max())
    # drop self by index; if it was not returned (more than m - 1 exact copies), drop the last candidate
    is_self = cand == np.arange(n)[:, None]
    is_self[~is_self.any(axis=1), m - 1] = True
    keep = ~is_self
    C = cand[keep].reshape(n, m - 1)
    D = dsearch[keep].reshape(n, m - 1)
    outside = dsearch[:, m - 1] - eps  # lower bound for every row not among the candidates

    sure = D[:, k] - D[:, k - 1] > 2.0 * eps  # the set of the first k cannot change
    d2 = np.empty((n, k))
    idx = np.empty((n, k), dtype=np.int64)
    refined = ~sure
    rows = np.flatnonzero(~sure)
    d2[rows], idx[rows] = _sorted_exact(Xc, rows, C[rows], k)
    rows = np.flatnonzero(sure)
    if exact_values:
        d2[rows], idx[rows] = _sorted_exact(Xc, rows, C[rows, :k], k)
        refined[:] = True
    else:
        d2[rows], idx[rows] = D[rows, :k], C[rows, :k]
    kth_upper = np.where(refined, d2[:, k - 1], D[:, k - 1] + eps)
    bad = ~(outside > kth_upper)
    if bad.any():
        rows = np.flatnonzero(bad)
        d2[rows], idx[rows] = _exact_rows(Xc, rows, k)
        refined[rows] = True
    return NeighbourSearch(d2, idx, refined, eps, X)


def knn(X, k: int, *, metric: str = "euclidean", backend: str = "auto", block_size: int = 1024):
    """Exact k nearest neighbours of every row of ``X`` among the other rows.

    Parameters
    ----------
    X : array-like, shape (n, d)
        Points (embeddings), one per row.
    k : int
        Number of neighbours, ``1 <= k <= n - 1``. The row itself is never its own neighbour; an exact
        duplicate of it is (at distance 0).
    metric : {"euclidean", "cosine"}
        ``"cosine"`` ranks by cosine similarity: rows are L2-normalised and the returned distances are the
        Euclidean (chord) distances between unit vectors, ``sqrt(2 - 2 cos)``. Zero rows stay at the origin.
    backend : {"auto", "faiss", "numpy"}
        Candidate search. ``"auto"``: upper-triangle float32 sweeps from 4,096 rows, faiss from 600 rows,
        numpy below. The result is the same for every backend (see the module docstring).
    block_size : int
        Rows per block of the numpy search (memory ~ ``block_size * n * 8`` bytes).

    Returns
    -------
    distances : numpy.ndarray, shape (n, k), float64
        Distances to the neighbours, ascending along each row (units of ``X``), from explicit float64
        differences.
    indices : numpy.ndarray, shape (n, k), int64
        Row indices of the neighbours; equal distances are ordered by ascending index.
    """
    from ..alignment._validation import check_embeddings, check_k

    X = check_embeddings(X)
    n = X.shape[0]
    k = check_k(k, n)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    res = neighbour_search(X, k, metric=metric, backend=backend, exact_values=True, block_size=block_size)
    return np.sqrt(res.d2), res.indices
