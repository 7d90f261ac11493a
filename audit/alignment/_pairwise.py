"""Blocked pairwise squared distances (float32 GEMMs on the upper triangle) and the centred-kernel sums
built from them, without n x n matrices.

Squared distances by one GEMM
-----------------------------
Rows are mean-centred (distances do not change; cancellation shrinks) and augmented,
``P_i = [x_i, |x_i|^2, 1]`` and ``Q_j = [-2 x_j, 1, |x_j|^2]``, so that one matrix product gives
``(P Q^T)_ij = |x_i|^2 + |x_j|^2 - 2 x_i.x_j = ||x_i - x_j||^2`` with no element-wise pass. Only the upper
triangle is computed: row block ``[s, e)`` against columns ``[s, n)`` (:func:`upper_blocks`), so every
unordered pair is seen once and the GEMM work is halved; a block serves its rows (row sums) and, through
column sums, the rows of its columns.

Rounding (why the float32 path is safe where it is used)
--------------------------------------------------------
For float32 inputs, with ``u = 2^-24``, every entry obeys
``|D_ij - ||x_i - x_j||^2| <= rel * (|x_i|^2 + |x_j|^2)``, ``rel = (2 d + 16) u``: the GEMM bound
``gamma_{d+2} sum_k |P_ik Q_jk| <= 2 gamma_{d+2} (|x_i|^2 + |x_j|^2)`` (any summation order, FMA or not)
plus the rounding of the inputs to float32 (``4 u``) and of the norms (``u``) (Higham 2002, "Accuracy and
Stability of Numerical Algorithms", Sec. 3.1). The same bound with ``u = 2^-53`` holds for float64 inputs.
Neighbour searches use it as a certificate (:mod:`.neighbours`, :mod:`.imbalance`); typical errors are
about 30 times smaller (measured: 1e-6 relative to ``|x_i|^2 + |x_j|^2`` at d = 256).

Centred-kernel sums
-------------------
For two symmetric n x n matrices A = f(D_X) and B = g(D_Y) built element-wise from squared Euclidean
distances, every statistic used here (biased HSIC, U-centred HSIC, distance covariance V- and U-statistics)
is a function of three numbers and two vectors:

    S_ab = sum_ij A_ij B_ij,  S_aa = sum_ij A_ij^2,  S_bb = sum_ij B_ij^2,
    r_a = A 1,  r_b = B 1   (row sums).

Double centring (``H A H``, ``H = I - 11^T/n``) is unchanged when a constant is added to every entry, and
U-centring (zero diagonal) when a constant is added to every off-diagonal entry, so :func:`pairwise_sums`
subtracts a constant close to the mean of A (of B) before accumulating: the sums then hold the
*fluctuations* and the centring identities below lose far less to cancellation. Row sums and products are
formed per row in the working precision and accumulated over rows and blocks in float64.

dcor 0.7 and the usual CKA code build the full n x n float64 matrices (measured: dcor takes 1.7 s at
n = 1,000 and would need several GB at n = 10,000), which is why this helper exists. Peak memory of
:func:`pairwise_sums`: four ``block_size x n`` arrays of the working precision (n = 10,000, block 512,
float32: 80 MB) per worker thread plus the augmented copies of X and Y (``n (d + 2)`` values each,
twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

__all__ = [
    "PairwiseSums",
    "pairwise_sums",
    "double_centred_inner",
    "u_centred_inner",
    "AugmentedRows",
    "augmented_rows",
    "upper_blocks",
    "sqdist_block",
    "exact_sqdist",
    "where2d",
    "Scratch",
    "sweep_workers",
    "assign_blocks",
    "run_workers",
    "run_upper_blocks",
    "sweep",
    "working_dtype",
    "PRECISIONS",
    "FLOAT32_MIN_N",
]

PRECISIONS = ("auto", "float32", "float64")
FLOAT32_MIN_N = 1500  # below this float64 is cheap, exact to ~1e-13 and used by "auto"


def working_dtype(precision: str, n: int) -> type:
    """numpy dtype of the blocked distances: float32 for ``"auto"`` when ``n >= 1500``, else float64."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    if precision == "float32" or (precision == "auto" and n >= FLOAT32_MIN_N):
        return np.float32
    return np.float64


@dataclass(frozen=True)
class AugmentedRows:
    """Centred rows prepared for :func:`sqdist_block`.

    Attributes
    ----------
    P : numpy.ndarray, shape (n, d + 2)
        ``[x_i, |x_i|^2, 1]`` in the working dtype.
    Q : numpy.ndarray, shape (n, d + 2)
        ``[-2 x_j, 1, |x_j|^2]`` in the working dtype.
    Xc : numpy.ndarray, shape (n, d), float64
        Column-centred rows (for exact recomputation of single pairs).
    sq : numpy.ndarray, shape (n,), float64
        ``|x_i|^2`` of the centred rows.
    rel : float
        Rounding factor: ``|D_ij - ||x_i - x_j||^2| <= rel * (sq_i + sq_j)`` (module docstring).
    """

    P: np.ndarray
    Q: np.ndarray
    Xc: np.ndarray
    sq: np.ndarray
    rel: float

    def row_bound(self) -> np.ndarray:
        """Per-row bound ``rel (sq_i + max_j sq_j)`` on ``|D_ij - ||x_i - x_j||^2|`` for every j, shape (n,)."""
        return self.rel * (self.sq + self.sq.max())


def augmented_rows(X: np.ndarray, dtype=np.float32) -> AugmentedRows:
    """Centre ``X`` (shape (n, d), float64) and build the augmented rows of the module docstring."""
    n, d = X.shape
    Xc = X - X.mean(axis=0)
    sq = np.einsum("ij,ij->i", Xc, Xc)
    P = np.empty((n, d + 2), dtype=dtype)
    P[:, :d] = Xc
    # norms of the rounded rows, so that P Q^T is the squared distance of the rows it actually holds
    xr = P[:, :d].astype(np.float64) if dtype != np.float64 else Xc
    P[:, d] = np.einsum("ij,ij->i", xr, xr)
    P[:, d + 1] = 1.0
    Q = np.empty_like(P)
    np.multiply(P[:, :d], -2.0, out=Q[:, :d])
    Q[:, d] = 1.0
    Q[:, d + 1] = P[:, d]
    u = 2.0**-24 if dtype == np.float32 else 2.0**-53
    return AugmentedRows(P, Q, Xc, sq, (2 * d + 16) * u)


def where2d(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.nonzero`` of a C-contiguous 2-d mask (flat search: 15 times faster on sparse masks here)."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def upper_blocks(n: int, block_size: int) -> Iterator[tuple[int, int]]:
    """Row blocks ``(s, e)`` of the upper-triangle sweep; the block holds rows [s, e) x columns [s, n)."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1; got {block_size}")
    for s in range(0, n, block_size):
        yield s, min(s + block_size, n)


def exact_sqdist(Xc: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``||x_i - x_j||^2`` in float64 from explicit differences for index pairs ``(i[t], j[t])``, shape (t,)."""
    out = np.empty(i.size)
    for s in range(0, i.size, chunk):
        diff = Xc[i[s : s + chunk]] - Xc[j[s : s + chunk]]
        out[s : s + chunk] = np.einsum("ij,ij->i", diff, diff)
    return out


class Scratch:
    """Reusable flat buffers handing out C-contiguous views, one allocation per name for a whole sweep.

    The first block of a sweep is the largest, so each buffer is allocated (and its pages touched) once
    instead of once per block (fresh large arrays cost page faults: measured 2x slower first sweeps).
    """

    def __init__(self):
        self._buffers: dict = {}

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        size = int(np.prod(shape))
        buf = self._buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != np.dtype(dtype):
            buf = self._buffers[name] = np.empty(size, dtype=dtype)
        return buf[:size].reshape(shape)


def sqdist_block(rows: AugmentedRows, s: int, e: int, exact_small: bool = False,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Squared distances of rows [s, e) to rows [s, n), shape (e - s, n - s), working dtype.

    Negative rounding results are clipped to 0 and the self-distances (``D[r, r]``) are exactly 0. With
    ``exact_small`` every entry within the rounding bound of 0 (``D_ij <= rel (sq_i + max sq)``) is
    recomputed in float64 from explicit differences, so exact duplicates get exactly 0 (the square root of
    a rounding residue would otherwise be of order ``sqrt(rel) |x|``). ``out``: a C-contiguous array of
    that shape and dtype to write into.
    """
    D = np.matmul(rows.P[s:e], rows.Q[s:].T, out=out)
    np.maximum(D, 0.0, out=D)
    D.reshape(-1)[:: D.shape[1] + 1] = 0.0
    if exact_small:
        thr = (rows.rel * (rows.sq[s:e] + rows.sq.max())).astype(D.dtype)
        small = D <= thr[:, None]
        small.reshape(-1)[:: D.shape[1] + 1] = False
        if small.any():
            r, c = np.nonzero(small)
            D[r, c] = exact_sqdist(rows.Xc, r + s, c + s)
    return D


@dataclass(frozen=True)
class PairwiseSums:
    """Sums of ``A' = A - shift_a`` and ``B' = B - shift_b`` (see module docstring).

    With ``zero_diagonal`` the shift is applied off the diagonal only (the diagonal stays 0). The centring
    identities :func:`double_centred_inner` / :func:`u_centred_inner` give the same value for A' as for A.

    Attributes
    ----------
    n : int
    s_ab, s_aa, s_bb : float
        ``sum_ij A'_ij B'_ij``, ``sum_ij A'^2_ij``, ``sum_ij B'^2_ij``.
    r_a, r_b : numpy.ndarray, shape (n,), float64
        Row sums of A' and B'.
    shift_a, shift_b : float
        The constants subtracted.
    """

    n: int
    s_ab: float
    s_aa: float
    s_bb: float
    r_a: np.ndarray
    r_b: np.ndarray
    shift_a: float = 0.0
    shift_b: float = 0.0


def sweep_workers(max_workers: int = 4) -> int:
    """Python worker threads for a sweep: the BLAS thread count (at most ``max_workers``)."""
    from threadpoolctl import threadpool_info

    counts = [i.get("num_threads", 1) for i in threadpool_info() if i.get("user_api") == "blas"]
    return int(max(1, min(max(counts, default=1), max_workers)))


def assign_blocks(blocks: list, n: int, workers: int) -> list[list]:
    """Split upper-triangle blocks ``(s, e)`` between workers by work ``(e - s) (n - s)``, largest first
    to the least loaded worker (ties to the lower worker): a fixed, timing-independent assignment."""
    loads = [0] * workers
    out: list[list] = [[] for _ in range(workers)]
    for s, e in sorted(blocks, key=lambda b: (-(b[1] - b[0]) * (n - b[0]), b[0])):
        w = min(range(workers), key=lambda i: (loads[i], i))
        out[w].append((s, e))
        loads[w] += (e - s) * (n - s)
    return [sorted(o) for o in out if o]


def run_upper_blocks(fn: Callable, n: int, block_size: int, workers: int | None = None) -> list:
    """``fn`` over every upper-triangle block of ``n`` rows: the first block on this thread, the rest split
    between workers (:func:`assign_blocks`, :func:`run_workers`); returns each call's result, in order.

    ``fn`` takes a list of ``(s, e)`` blocks. ``workers`` defaults to :func:`sweep_workers` from
    :data:`FLOAT32_MIN_N` rows on, else 1.
    """
    blocks = list(upper_blocks(n, block_size))
    parts = [fn(blocks[:1])]
    if len(blocks) > 1:
        if workers is None:
            workers = sweep_workers() if n >= FLOAT32_MIN_N else 1
        parts += run_workers(fn, assign_blocks(blocks[1:], n, workers))
    return parts


def run_workers(fn: Callable, assignments: list[list]) -> list:
    """``[fn(blocks) for blocks in assignments]``, each on its own thread with single-threaded BLAS.

    numpy's element-wise passes run on one core; with one BLAS thread per worker the GEMM of one block
    overlaps the element-wise work of another (measured 15-25% faster sweeps on 2 cores). The BLAS limit
    (threadpoolctl) is process-wide while a sweep runs. Results come back in assignment order, so sums
    merged in that order do not depend on thread timing.
    """
    if len(assignments) == 1:
        return [fn(assignments[0])]
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(len(assignments)) as pool:
        return list(pool.map(fn, assignments))


def sweep(rows: AugmentedRows, factory: Callable[[], list], block_size: int, workers: int | None = None) -> list:
    """Feed every upper-triangle block of squared distances, self-distances set to +inf, to accumulators.

    ``factory()`` returns a fresh list of accumulators, objects with ``add_block(s, e, D, scratch)`` and a
    classmethod ``merge(parts)``; each worker thread (:func:`run_workers`, default :func:`sweep_workers`
    from 1,500 rows, else 1) fills its own over a fixed subset of the blocks, and the lists are merged
    position by position, in worker order.
    """
    n = rows.sq.size

    def run(blocks):
        consumers = factory()
        scratch = Scratch()
        for s, e in blocks:
            D = sqdist_block(rows, s, e, out=scratch.get("d2", (e - s, n - s), rows.P.dtype))
            D.reshape(-1)[:: D.shape[1] + 1] = np.inf
            for c in consumers:
                c.add_block(s, e, D, scratch)
        return consumers

    if workers is None:
        workers = sweep_workers() if n >= FLOAT32_MIN_N else 1
    parts = run_workers(run, assign_blocks(list(upper_blocks(n, block_size)), n, workers))
    return [type(group[0]).merge(list(group)) for group in zip(*parts)]


def pairwise_sums(
    X: np.ndarray,
    Y: np.ndarray,
    f: Callable[[np.ndarray], np.ndarray],
    g: Callable[[np.ndarray], np.ndarray],
    block_size: int = 512,
    zero_diagonal: bool = False,
    precision: str = "auto",
    exact_small: bool = False,
    workers: int | None = None,
) -> PairwiseSums:
    """Accumulate :class:`PairwiseSums` for ``A = f(D_X)``, ``B = g(D_Y)`` with D the squared distances.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d_a), float64
    Y : numpy.ndarray, shape (n, d_b), float64
    f, g : callable
        Element-wise maps, applied in place to a (block, n - s) array of squared distances in the working
        dtype; must return that array (or one of the same shape).
    block_size : int
        Rows per block.
    zero_diagonal : bool
        U-statistics: ``A_ii = B_ii = 0`` after applying ``f``, ``g``, and the mean shift is applied off the
        diagonal only. Otherwise (V-statistics, double centring) the shift is applied to every entry.
    precision : {"auto", "float32", "float64"}
        Working dtype of the distances (:func:`working_dtype`); accumulation is always float64.
    exact_small : bool
        Recompute distances within rounding of 0 exactly (:func:`sqdist_block`); for maps that amplify
        small errors near 0, such as the square root.
    workers : int, optional
        Worker threads (default :func:`sweep_workers` from 1,500 rows, else 1); the result does not depend
        on it by more than float64 summation order, and is reproducible for a given value.

    Notes
    -----
    Time O(n^2 (d_a + d_b) / 2), memory O(workers * block_size * n). The first block (all n columns) is
    done first: the means of its A and B entries are the shifts.
    """
    n = X.shape[0]
    dtype = working_dtype(precision, n)
    rx, ry = augmented_rows(X, dtype), augmented_rows(Y, dtype)
    shifts: list = []

    def run(blocks):
        acc = np.zeros(3)  # s_ab, s_aa, s_bb
        r_a, r_b = np.zeros(n), np.zeros(n)
        scratch = Scratch()
        for s, e in blocks:
            b = e - s
            diag = np.arange(b)
            A = f(sqdist_block(rx, s, e, exact_small, scratch.get("a", (b, n - s), dtype)))
            B = g(sqdist_block(ry, s, e, exact_small, scratch.get("b", (b, n - s), dtype)))
            if zero_diagonal:
                A[diag, diag] = 0.0
                B[diag, diag] = 0.0
            if not shifts:  # the first block: its mean is the shift
                n_off = b * n - b if zero_diagonal else b * n
                shifts.extend([float(A.sum(dtype=np.float64)) / max(n_off, 1),
                               float(B.sum(dtype=np.float64)) / max(n_off, 1)])
            A -= A.dtype.type(shifts[0])
            B -= B.dtype.type(shifts[1])
            if zero_diagonal:
                A[diag, diag] = 0.0
                B[diag, diag] = 0.0
            r_a[s:e] += A.sum(axis=1)
            r_b[s:e] += B.sum(axis=1)
            if b < n - s:  # strictly upper part: also the rows [e, n) by symmetry
                r_a[e:] += A[:, b:].sum(axis=0)
                r_b[e:] += B[:, b:].sum(axis=0)
            # diagonal tile counted once (it holds both (i, j) and (j, i)), the rest twice
            for t, (M1, M2) in enumerate(((A, B), (A, A), (B, B))):
                acc[t] += np.einsum("ij,ij->i", M1[:, :b], M2[:, :b]).sum(dtype=np.float64)
                if b < n - s:
                    acc[t] += 2.0 * np.einsum("ij,ij->i", M1[:, b:], M2[:, b:]).sum(dtype=np.float64)
        return acc, r_a, r_b

    parts = run_upper_blocks(run, n, block_size, workers)
    acc = sum(p[0] for p in parts)
    r_a = sum(p[1] for p in parts)
    r_b = sum(p[2] for p in parts)
    return PairwiseSums(n, float(acc[0]), float(acc[1]), float(acc[2]), r_a, r_b, shifts[0], shifts[1])


def double_centred_inner(n: int, s_ab: float, r_a: np.ndarray, r_b: np.ndarray) -> float:
    """``tr(A H B H) = sum_ij (HAH)_ij (HBH)_ij`` for symmetric A, B; H = I - 11^T/n.

    Expansion: ``S_ab - (2/n) r_a.r_b + (1^T A 1)(1^T B 1)/n^2``.
    """
    return s_ab - 2.0 / n * float(r_a @ r_b) + float(r_a.sum()) * float(r_b.sum()) / n**2


def u_centred_inner(n: int, s_ab: float, r_a: np.ndarray, r_b: np.ndarray) -> float:
    """U-centred inner product of zero-diagonal symmetric A, B (Szekely & Rizzo 2014), n >= 4.

    ``[S_ab - 2/(n-2) r_a.r_b + (1^T A 1)(1^T B 1)/((n-1)(n-2))] / (n(n-3))``; this is also the unbiased
    HSIC estimator of Song et al. (2012).
    """
    val = s_ab - 2.0 / (n - 2) * float(r_a @ r_b) + float(r_a.sum()) * float(r_b.sum()) / ((n - 1) * (n - 2))
    return val / (n * (n - 3))
