"""Truncated Gaussian kernel sums over atomic environments, with faiss, in bounded memory.

Every QUESTS quantity (Schwalbe-Koda et al., *Nat. Commun.* 2025; the ``quests`` package) is a function of
kernel sums ``p(y | X) = sum_j w_j exp(-|y - x_j|^2 / (2 h^2))`` of a query environment ``y`` over a reference
set ``X`` (``w_j`` = multiplicity of ``x_j``). ``quests.entropy.kernel_sum`` computes them over all pairs,
which costs ``n_query * n_ref`` distances. The kernel is short-ranged: a reference point farther than
``c h`` contributes less than ``exp(-c^2 / 2)`` (``c = 5``: 3.7e-6), so :class:`KernelIndex` sums, per
query, its ``k = 32`` nearest reference points exactly and, only where the 32nd is still within ``c h``
(a dense region), estimates the rest within ``c h`` from a seeded reference subsample.

Why our own code: ``quests.entropy.approx_delta_entropy`` sums a fixed number (3) of nearest neighbours
found by pynndescent, which undercounts dense regions (a crystal's symmetry-equivalent atoms and a
trajectory's near-copies give hundreds to thousands of neighbours within ``h``) and so biases the entropy;
and a range search of every neighbour within ``c h`` costs thousands of pairs per query on such data
(measured: 4,750 on average in 200,000 noisy copies of the environments of synthetic MPTrj-size frames),
too many at 10^7 environments.

Four approximations, each bounded or measured:

1. **Merging** (:func:`merge_duplicates`): environments whose descriptors fall in the same cell of a grid of
   side ``merge_tolerance * h / sqrt(d)`` are one point with a weight (their count). Each point moves by at
   most ``delta = merge_tolerance * h``, so each kernel term changes by a factor within
   ``exp(+-(2 delta r + 4 delta^2) / (2 h^2))`` (``r`` = the distance): with the default tolerance
   ``1e-3`` and ``r <= 5 h``, at most 1 %, and at most 0.2 % for the terms at ``r <= h`` that carry the sum.
   Symmetry-equivalent atoms (identical descriptors to about 1e-15) merge; thermal near-copies do not.
2. **Truncation** at ``radius_sigmas * h`` (default 5) of the dense remainder: each missed term is below
   ``exp(-c^2 / 2)``. The 32 nearest points are always summed, so an outlier's differential entropy is
   finite and accurate (quests' approximate differential entropy sums 3; measured on clustered
   environments, 3 left up to 3 % relative error in the differential entropy of outliers, 8 left 1 %,
   32 left 0.07 %).
3. **Subsampled remainder** of dense queries (more than ``k`` points within ``c h``): unbiased (up to the
   recall of the subsample's IVF search, item 4), with a relative error of about
   ``1 / sqrt(points of the subsample within c h)``, on sums that are large. It moves ``log p`` of dense
   environments by about 0.04-0.1 on average (measured, ``docs/environments.md``), errors that average out
   in the entropy (signed mean below 0.005), and it never decides a differential entropy near zero or an
   overlap.
4. **Approximate search**: beyond ``exact_max`` reference points the index is an ``IndexIVFFlat``
   (``nlist = min(4 sqrt(n), n / 39)`` lists trained by k-means on a seeded subsample of at most
   ``40 nlist`` points; ``nprobe`` lists searched per query, default 8), which can miss neighbours that lie
   in lists not probed. Each subsample of the dense remainder has its own ``IndexIVFFlat`` of large lists
   (256 points each, 8 probed).

The combined error of 2, 3 and 4 is measured by :func:`measured_error`: exact float64 sums over all points for
a seeded sample of queries, compared with the approximate ones.

faiss works in float32 on squared distances; the data are centred on their mean before indexing, which
keeps the float32 cancellation in ``|a|^2 + |b|^2 - 2 a.b`` (exhaustive search) far below ``h^2``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..neighbours.indexed import build_index

__all__ = [
    "DEFAULT_RADIUS_SIGMAS",
    "DEFAULT_MERGE_TOLERANCE",
    "DEFAULT_K",
    "SAMPLE_MAX",
    "MIN_HITS",
    "DEFAULT_NPROBE",
    "EXACT_MAX",
    "MergedEnvironments",
    "KernelIndex",
    "merge_duplicates",
    "exact_kernel_sums",
    "measured_error",
]

#: Truncation radius of the kernel, in bandwidths.
DEFAULT_RADIUS_SIGMAS = 5.0
#: Merge tolerance, in bandwidths (grid cell diagonal).
DEFAULT_MERGE_TOLERANCE = 1e-3
#: Nearest reference points summed exactly per query.
DEFAULT_K = 32
#: Largest reference subsample of the dense remainder.
SAMPLE_MAX = 16_384
#: IVF lists searched per query.
DEFAULT_NPROBE = 8
#: Largest reference set searched exhaustively (``IndexFlatL2``); IVF beyond.
EXACT_MAX = 20_000
#: Subsample hits within the radius that a level of the dense remainder needs before a larger level is tried.
MIN_HITS = 64
#: Queries per faiss call (bounds the memory of range-search results).
QUERY_BATCH = 16_384


@dataclass
class MergedEnvironments:
    """Environments after merging near-identical descriptors.

    Attributes
    ----------
    X : numpy.ndarray, shape (n_unique, d), float32
        One representative per merged group (its first member).
    weights : numpy.ndarray, shape (n_unique,), float64
        Members per group.
    inverse : numpy.ndarray, shape (n,), int64
        Group of every input row.
    tolerance : float
        Largest distance of a member to its representative (descriptor units).
    """

    X: np.ndarray
    weights: np.ndarray
    inverse: np.ndarray
    tolerance: float

    @property
    def n(self) -> int:
        return int(self.inverse.shape[0])


def _row_hashes(q: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """64-bit polynomial hash of integer rows (wrap-around arithmetic)."""
    with np.errstate(over="ignore"):
        return (q.astype(np.uint64) * mult).sum(axis=1, dtype=np.uint64)


def merge_duplicates(X: np.ndarray, bandwidth: float, tolerance: float = DEFAULT_MERGE_TOLERANCE,
                     chunk: int = 1 << 18) -> MergedEnvironments:
    """Merge environments whose descriptors share a grid cell of diagonal ``tolerance * bandwidth``.

    Rows are quantised to ``floor(x / cell)`` with ``cell = tolerance * bandwidth / sqrt(d)`` and grouped by a
    64-bit hash of the quantised row; a row whose quantised values differ from its group's representative
    (a hash collision) stays on its own. Works in chunks of ``chunk`` rows, so ``X`` may be a memory map.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d)
        Descriptors (any float dtype; a ``numpy.memmap`` is read chunk by chunk).
    bandwidth : float
        Kernel bandwidth ``h`` (descriptor units).
    tolerance : float
        Cell diagonal in bandwidths; 0 disables merging.

    Returns
    -------
    MergedEnvironments
    """
    n, d = X.shape
    if tolerance <= 0 or n == 0:
        Xf = np.ascontiguousarray(X, dtype=np.float32)
        return MergedEnvironments(Xf, np.ones(n), np.arange(n, dtype=np.int64), 0.0)
    cell = tolerance * bandwidth / np.sqrt(d)
    mult = np.random.default_rng(12345).integers(1, 2**63 - 1, size=d, dtype=np.uint64) | np.uint64(1)
    hashes = np.empty(n, dtype=np.uint64)
    for s in range(0, n, chunk):
        q = np.floor(np.asarray(X[s : s + chunk], dtype=np.float64) / cell).astype(np.int64)
        hashes[s : s + chunk] = _row_hashes(q, mult)
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    inverse = inverse.astype(np.int64)
    # collision check: every row's quantised values must equal its representative's
    rep_rows = first[inverse]
    extra = []
    for s in range(0, n, chunk):
        q = np.floor(np.asarray(X[s : s + chunk], dtype=np.float64) / cell).astype(np.int64)
        rq = np.floor(np.asarray(X[rep_rows[s : s + chunk]], dtype=np.float64) / cell).astype(np.int64)
        extra.append(s + np.flatnonzero(~(rq == q).all(axis=1)))
    extra = np.concatenate(extra) if extra else np.zeros(0, np.int64)
    rows = first.astype(np.int64)
    if extra.size:
        inverse[extra] = len(first) + np.arange(len(extra))
        rows = np.concatenate([rows, extra])
    weights = np.bincount(inverse, minlength=len(rows)).astype(np.float64)
    U = np.ascontiguousarray(np.asarray(X[rows], dtype=np.float32))
    return MergedEnvironments(U, weights, inverse, float(tolerance * bandwidth))


def exact_kernel_sums(Q: np.ndarray, X: np.ndarray, bandwidth: float, weights: np.ndarray | None = None,
                      chunk: int = 4096) -> np.ndarray:
    """Exact ``sum_j w_j exp(-|q - x_j|^2 / 2h^2)`` for every row of ``Q``, in float64, by blocks.

    Parameters
    ----------
    Q : numpy.ndarray, shape (m, d)
    X : numpy.ndarray, shape (n, d)
        May be a memory map (read in blocks of ``chunk`` rows).
    bandwidth : float
    weights : numpy.ndarray, shape (n,), optional

    Returns
    -------
    numpy.ndarray, shape (m,), float64
    """
    Q = np.asarray(Q, dtype=np.float64)
    out = np.zeros(Q.shape[0])
    qn = np.einsum("ij,ij->i", Q, Q)
    for s in range(0, X.shape[0], chunk):
        B = np.asarray(X[s : s + chunk], dtype=np.float64)
        d2 = np.maximum(qn[:, None] + np.einsum("ij,ij->i", B, B)[None, :] - 2.0 * Q @ B.T, 0.0)
        k = np.exp(-0.5 * d2 / bandwidth**2)
        if weights is not None:
            k *= weights[s : s + chunk][None, :]
        out += k.sum(axis=1)
    return out


@dataclass
class KernelIndex:
    """faiss index of weighted reference environments answering truncated Gaussian kernel sums.

    The sum of a query is split in two: its ``k`` nearest reference points, summed exactly, and (only when
    the ``k``-th of them is still within the truncation radius: a dense region) the other points within the
    radius, estimated without bias from seeded uniform subsamples of the reference (each point found counts
    ``n / subsample size`` times). The subsamples are nested, of ``sample_max``, ``sample_max / 8``, ... (at
    least 1,024) points; a dense query is answered by the smallest one in which it finds at least
    :data:`MIN_HITS` (64) points within the radius (relative error about 1/8), else by the largest, so the
    work per query stays bounded however dense the region. Where the reference holds at most ``exact_max``
    points, the only "subsample" is the whole reference, searched exhaustively: the sum is then the exact
    truncated sum. Sparse queries (those that decide differential entropies and overlaps) are summed
    exactly.

    Parameters
    ----------
    bandwidth : float
        Gaussian bandwidth ``h`` (descriptor units).
    radius_sigmas : float, default 5
        Truncation radius in bandwidths.
    k : int, default 32
        Nearest reference points summed exactly.
    exact_max : int, default 20,000
        Largest reference set searched exhaustively (``IndexFlatL2``); an ``IndexIVFFlat`` beyond.
    nprobe : int, default 8
        IVF lists searched per query (main index).
    sample_max : int, default 16,384
        Largest subsample of the reference used for the dense remainder.
    sample_nprobe : int, default 8
        IVF lists searched per dense query in the subsample (``nlist = sample size / 256``: few, large lists,
        so that a range search finds most points within the radius; exhaustive when the reference has at
        most ``exact_max`` points).
    seed : int, default 0
        Seed of the IVF training subsamples, of faiss' k-means and of the reference subsample.
    nlist : int, optional
        IVF lists of the main index (default ``4 sqrt(n)``, capped at ``n / 39``). Fewer lists build faster
        (k-means and assignment cost ``n nlist`` distances) and search slower (``nprobe n / nlist`` per query):
        :func:`~.entropy.environment_entropy` uses ``sqrt(n) / 4`` when it queries a sample.

    Attributes
    ----------
    info_ : dict
        Index description (``index``, ``exact``, ``nlist``, ``nprobe``, ``n_train``, ``sample``, ``build_s``).
    """

    bandwidth: float
    radius_sigmas: float = DEFAULT_RADIUS_SIGMAS
    k: int = DEFAULT_K
    exact_max: int = EXACT_MAX
    nprobe: int = DEFAULT_NPROBE
    sample_max: int = SAMPLE_MAX
    sample_nprobe: int = 8
    nlist: int | None = None
    seed: int = 0
    info_: dict = field(default_factory=dict)

    def _build(self, X: np.ndarray, nlist: int | None, nprobe: int):
        n = X.shape[0]
        exact = nlist is None or n <= self.exact_max
        nlist = 1 if exact else int(max(1, min(nlist, n // 39)))
        # centred rows, added by chunks: no second full copy in memory
        return build_index(X, exact=exact, nlist=nlist, nprobe=nprobe, n_train=40 * nlist, seed=self.seed,
                           niter=10, shift=self.mean_)

    def fit(self, X: np.ndarray, weights: np.ndarray | None = None) -> "KernelIndex":
        """Index the reference rows ``X`` (n, d) with multiplicities ``weights`` (n,) (default 1)."""
        t0 = time.perf_counter()
        X = np.asarray(X, dtype=np.float32)
        n, d = X.shape
        self.n_ = n
        self.weights_ = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        self.mean_ = X.mean(axis=0, dtype=np.float64).astype(np.float32) if n else np.zeros(d, np.float32)
        nlist = self.nlist if self.nlist is not None else int(round(4 * np.sqrt(max(n, 1))))
        self.index_, info = self._build(X, nlist, self.nprobe)
        if n <= self.exact_max:
            self.levels_ = [(np.arange(n), self.index_, 1.0)]
            sinfo = {"sizes": [n], "index": "IndexFlatL2", "exact": True}
        else:
            m = int(min(n, self.sample_max))
            perm = np.random.default_rng(self.seed + 1).permutation(n)[:m]
            sizes = [m]
            while sizes[0] // 8 >= 1024:
                sizes.insert(0, sizes[0] // 8)
            self.levels_ = []
            exact_max, self.exact_max = self.exact_max, 0  # always IVF: few, large lists
            try:
                for size in sizes:  # nested subsamples, smallest first
                    rows = np.sort(perm[:size])
                    index, sinfo = self._build(X[rows], max(1, size // 256), self.sample_nprobe)
                    self.levels_.append((rows, index, n / size))
            finally:
                self.exact_max = exact_max
            sinfo = {"sizes": sizes, **sinfo, "min_hits": MIN_HITS}
        info["k"] = int(self.k)
        info["sample"] = sinfo
        info["build_s"] = time.perf_counter() - t0
        self.info_ = info
        return self

    @property
    def radius(self) -> float:
        """Truncation radius (descriptor units)."""
        return float(self.radius_sigmas * self.bandwidth)

    def neighbours(self, Q: np.ndarray):
        """Reference points within the truncation radius of each query row (range search on the main index).

        Yields
        ------
        (start, lims, d2, idx)
            For the queries ``start : start + len(lims) - 1``: faiss ``lims`` (offsets, shape (m + 1,)),
            squared distances ``d2`` (float32) and reference rows ``idx`` (int64) of every pair.
        """
        r2 = float(self.radius**2)
        for s in range(0, Q.shape[0], QUERY_BATCH):
            q = np.ascontiguousarray(np.asarray(Q[s : s + QUERY_BATCH], dtype=np.float32) - self.mean_)
            lims, d2, idx = self.index_.range_search(q, r2)
            yield s, lims, d2, idx.astype(np.int64)

    def sums(self, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kernel sums of every query row (see the class docstring).

        Parameters
        ----------
        Q : numpy.ndarray, shape (m, d)
            Queries (a memory map is read in batches).

        Returns
        -------
        sums : numpy.ndarray, shape (m,), float64
            ``sum_j w_j K(q, x_j)``: the ``k`` nearest reference points plus the estimated remainder within
            the radius.
        dense : numpy.ndarray, shape (m,), bool
            Queries whose ``k``-th neighbour lies within the radius (remainder estimated).
        """
        m = Q.shape[0]
        out = np.zeros(m)
        dense_all = np.zeros(m, dtype=bool)
        if self.n_ == 0:
            return out, dense_all
        inv2h2 = 0.5 / self.bandwidth**2
        r2 = float(self.radius**2)
        kk = int(min(self.k, self.n_))
        for s in range(0, m, QUERY_BATCH):
            q = np.ascontiguousarray(np.asarray(Q[s : s + QUERY_BATCH], dtype=np.float32) - self.mean_)
            d2, idx = self.index_.search(q, kk)
            ok = idx >= 0
            terms = np.where(ok, np.exp(-np.maximum(d2.astype(np.float64), 0.0) * inv2h2), 0.0)
            out[s : s + len(q)] = (terms * self.weights_[np.maximum(idx, 0)] * ok).sum(axis=1)
            dense = ok[:, -1] & (d2[:, -1] <= r2)
            if kk < self.n_ and dense.any():
                rows = np.flatnonzero(dense)
                dense_all[s + rows] = True
                for level, (srows, sindex, scale) in enumerate(self.levels_):
                    lims, sd2, sidx = sindex.range_search(np.ascontiguousarray(q[rows]), r2)
                    counts = np.diff(lims).astype(np.int64)
                    last = level == len(self.levels_) - 1
                    accept = np.ones(len(rows), dtype=bool) if last else counts >= MIN_HITS
                    qrow = np.repeat(np.arange(len(rows)), counts)
                    keep = accept[qrow]
                    qrow, sd2, ref = qrow[keep], sd2[keep], srows[sidx[keep].astype(np.int64)]
                    beyond = np.ones(len(ref), dtype=bool)  # not one of the query's k nearest (by identity)
                    for c in range(0, len(ref), 1 << 20):
                        sl = slice(c, c + (1 << 20))
                        beyond[sl] = ~(idx[rows[qrow[sl]]] == ref[sl, None]).any(axis=1)
                    t = np.exp(-np.maximum(sd2.astype(np.float64), 0.0) * inv2h2) * self.weights_[ref] * beyond
                    out[s + rows] += scale * np.bincount(qrow, weights=t, minlength=len(rows))
                    rows = rows[~accept]
                    if not len(rows):
                        break
        return out, dense_all


def measured_error(approx_sums: np.ndarray, Q: np.ndarray, X: np.ndarray, bandwidth: float, *,
                   weights: np.ndarray | None = None, n_check: int = 256,
                   seed: int = 0) -> dict:
    """Error of approximate kernel sums against exact float64 sums, on a seeded sample of queries.

    Parameters
    ----------
    approx_sums : numpy.ndarray, shape (m,)
        Approximate ``p(q)`` of every query (as returned for ``Q``).
    Q : numpy.ndarray, shape (m, d)
        The queries (memory maps allowed).
    X : numpy.ndarray, shape (n, d)
        The full reference (every environment, not merged; memory maps allowed).
    bandwidth : float
    weights : numpy.ndarray, shape (n,), optional
    n_check : int
        Queries checked (the cost is ``n_check * n`` distances).

    Returns
    -------
    dict
        ``n_checked``, ``max_abs_log_p_error``, ``mean_abs_log_p_error`` (nats; the error of ``log p``
        feeds the entropy and the differential entropy one to one), ``mean_signed_log_p_error``,
        ``rule``.
    """
    m = Q.shape[0]
    if m == 0:
        return {"n_checked": 0, "max_abs_log_p_error": 0.0, "mean_abs_log_p_error": 0.0,
                "mean_signed_log_p_error": 0.0, "rule": "no query"}
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(m, min(m, n_check), replace=False))
    exact = exact_kernel_sums(np.asarray(Q[rows]), X, bandwidth, weights)
    tiny = np.finfo(np.float64).tiny
    err = np.log(np.maximum(approx_sums[rows], tiny)) - np.log(np.maximum(exact, tiny))
    return {
        "n_checked": int(len(rows)),
        "max_abs_log_p_error": float(np.abs(err).max()),
        "mean_abs_log_p_error": float(np.abs(err).mean()),
        "mean_signed_log_p_error": float(err.mean()),
        "rule": f"exact float64 kernel sums over all {X.shape[0]} environments for {len(rows)} queries drawn "
                f"with seed {seed}",
    }
