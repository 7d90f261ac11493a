"""Information imbalance between two paired embeddings (Glielmo et al. 2022).

How the ranks are computed (exactly, without sorting or storing distance rows)
------------------------------------------------------------------------------
The rank of j among the neighbours of i in B is ``1 + #{l != i : d_B(i, l) < d_B(i, j)}`` (plus half the
other ties). That is a count, so it is accumulated over row blocks of squared distances computed by GEMMs
(float32 above 1,500 rows, :mod:`._pairwise`; only the upper triangle, each block counting for its rows
and, by symmetry, for its columns). Each searched value is within ``eps_i`` of the exact squared distance
(bound in :mod:`._pairwise`), so with the exact target ``t = d_B(i, j)^2`` (float64, explicit differences):

* entries below ``t - 2 eps_i - tol_i`` are certainly closer and are only counted;
* entries above ``t + 2 eps_i + tol_i`` are certainly not;
* the few entries in between (the target itself, exact ties, rounding near-ties) are recomputed in float64
  from explicit differences and classified as closer (``< t - tol_i``) or tied (``<= t + tol_i``), with
  ``tol_i = 1e-10 (|b_i|^2 + max |b|^2)`` as before this rewrite.

The ranks therefore equal those of a float64 computation with explicit differences, whatever the backend.
For k = 1 the nearest neighbours come from the same sweeps (the row minimum, collected with the same
rounding window and resolved by ``(distance, index)``), so the two directions cost three half-GEMM sweeps:
nearest neighbours in X; nearest neighbours in Y together with the X -> Y counts; the Y -> X counts.

For k > 1 (the study's k = 50) every row has k targets. They are sorted per row with their windows
(:class:`_Targets`), and numba kernels (:mod:`._rank_kernels`) file the searched values of each row: a
branch-free pass lists the values at most the row's largest window end (2.5-10% of them on the
benchmark's data); a vectorised count of the listed values below each of the k window starts gives the
row's certainly-closer entries, and a window holding more listed values than the target's own entry (tied
with itself) has them recorded (rows listing fewer than k / 2 values place each by a binary search among
the window starts instead). Only the sum of the ranks is needed, so no per-target count is kept. Each
block's column side is fed transposed, so a row's windows stay in cache.
Nothing is sorted but the k targets of a row. From 4,096 rows (``backend="auto"``, float32) the neighbour
searches are fused into the same sweeps: the kernel also keeps every row's ``m = k + 1 + max(4, k // 4)``
smallest searched values (the candidates of :func:`~.neighbours.neighbour_search`, which then certifies
and refines them as with its own search), in buffers that start from sampled thresholds
(:func:`_sampled_top`; a row the guess misses is searched again in full), so both directions cost three
half sweeps: Y's candidates; X's candidates together with the Y -> X counts; the X -> Y counts. Target
distances and window entries are computed by :func:`~._rank_kernels.pair_sqdist` (explicit differences,
float64, a fixed summation order), on two threads.

The third sweep is mostly skipped (issue 20, third pass) where the stores fit in 256 MB (up to about
17,900 rows): the first sweep over Y keeps, instead of candidate buffers, every searched value of row i at
most a threshold ``tau_i`` (the 32nd smallest of its distances to 512 sampled rows, about the 6% quantile)
with its column (:class:`_RowStore`, per worker, fixed capacities, overflow detected). The counts of row i
need exactly its searched values at most its largest window end ``himax_i`` (the others are above every
window: they add nothing), so where ``himax_i <= tau_i`` and the store is complete, filing the stored
values (:func:`~._rank_kernels.count_stored`, the kernel's own counting code) gives the counts and
window entries of the sweep; the candidates are the m smallest stored values (a complete store with at
least m values holds the row's m smallest; other rows are searched again in full). Rows the stores do
not cover are counted from their full rows (one GEMM row each, within the same rounding bound), or, when
more than a quarter of the rows, by the third sweep with the stored rows listing nothing. Each searched
value is within the rounding bound whichever GEMM produced it, so the exactness argument above holds
unchanged: the mean ranks are bit-equal to those of the three sweeps. Measured at n = 10,000, d = 256,
k = 50 (benchmark data): 97% of the rows are counted from their stores (620 values a row on average),
0.05 s of CPU instead of 0.38 s for the third sweep; the stores take about 80 MB
(``1.6 * 32 / 512 * n^2 * 8`` bytes) and 0.05 s of CPU in the first sweep.

This module is longer than the project's 500 lines: the stores subclass the sweep accumulator and share
its private state and the sampled thresholds, and a separate module would import this one back (an
import cycle).
The mean rank is the sum of integers and halves divided by ``n k``, so it is exactly that of the sorted
computation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._pairwise import (AugmentedRows, Scratch, augmented_rows, exact_sqdist, run_workers, sweep, where2d,
                        working_dtype)
from ._validation import check_k, check_pair
from .neighbours import _SWEEP_MIN_N, SweepNearest, candidate_count, neighbour_search

__all__ = ["information_imbalance", "InformationImbalance"]


class InformationImbalance(NamedTuple):
    """Both directions of the information imbalance.

    Attributes
    ----------
    x_to_y : float
        ``Delta(X -> Y)``: small when X's neighbourhoods predict Y's (X carries Y's information).
    y_to_x : float
        ``Delta(Y -> X)``.
    k : int
        Neighbours used.
    """

    x_to_y: float
    y_to_x: float
    k: int


def _count(mask: np.ndarray, axis: int) -> np.ndarray:
    """True entries of a boolean mask along ``axis`` (byte sums: 2-4 times faster than count_nonzero)."""
    return mask.view(np.uint8).sum(axis=axis, dtype=np.int32)


class _RankCounter:
    """``#{l != i : d(i, l) < t}`` and ties for up to a few exact targets per row, from an upper-triangle sweep.

    Parameters
    ----------
    rows : AugmentedRows
        The space B whose distances are swept.
    T : numpy.ndarray, shape (n, n_targets), float64
        Exact squared target distances ``d_B(i, j_t)^2``.
    """

    def __init__(self, rows: AugmentedRows, T: np.ndarray):
        self.rows, self.T = rows, T
        self.tol = 1e-10 * (rows.sq + rows.sq.max())
        w = (2.0 * rows.row_bound() + self.tol)[:, None]
        dtype = rows.P.dtype
        self.lo, self.hi = (T - w).astype(dtype), (T + w).astype(dtype)
        self.less = np.zeros(T.shape, dtype=np.int64)
        self.i, self.j, self.t = [], [], []

    def add_block(self, s: int, e: int, D: np.ndarray, scratch: Scratch) -> None:
        b = e - s
        Do = D[:, b:]
        below, window = scratch.get("below", D.shape, bool), scratch.get("window", D.shape, bool)
        below_o, window_o = scratch.get("below", Do.shape, bool), scratch.get("window", Do.shape, bool)
        for t in range(self.T.shape[1]):
            np.less(D, self.lo[s:e, t, None], out=below)
            self.less[s:e, t] += _count(below, 1)
            np.less_equal(D, self.hi[s:e, t, None], out=window)
            r, c = where2d(np.logical_xor(window, below, out=window))
            self.i.append(r + s)
            self.j.append(c + s)
            self.t.append(np.full(r.size, t))
            if Do.shape[1]:
                np.less(Do, self.lo[None, e:, t], out=below_o)
                self.less[e:, t] += _count(below_o, 0)
                np.less_equal(Do, self.hi[None, e:, t], out=window_o)
                r, c = where2d(np.logical_xor(window_o, below_o, out=window_o))
                self.i.append(c + e)
                self.j.append(r + s)
                self.t.append(np.full(r.size, t))

    @classmethod
    def merge(cls, parts: list) -> "_RankCounter":
        """One accumulator from the per-worker ones (each saw a subset of the blocks)."""
        out = parts[0]
        for p in parts[1:]:
            out.less += p.less
            out.i += p.i
            out.j += p.j
            out.t += p.t
        return out

    def ranks(self) -> np.ndarray:
        """Mid-ranks ``1 + #closer + (#tied - 1) / 2``, shape (n, n_targets), float64."""
        return _resolve(self.rows, self.T, self.tol, self.less,
                        np.concatenate(self.i), np.concatenate(self.j), np.concatenate(self.t))


def _resolve(rows, T, tol, less, i, j, t) -> np.ndarray:
    """Classify the window entries (i, j) of target t exactly and turn the counts into mid-ranks."""
    d2 = exact_sqdist(rows.Xc, i, j)
    target = T[i, t]
    closer = d2 < target - tol[i]
    tied = ~closer & (d2 <= target + tol[i])
    less = less.astype(np.float64)
    ties = np.zeros(T.shape)
    np.add.at(less, (i, t), closer)
    np.add.at(ties, (i, t), tied)
    return 1.0 + less + 0.5 * np.maximum(ties - 1.0, 0.0)


def _target_d2(Bc: np.ndarray, nn: np.ndarray) -> np.ndarray:
    """Exact ``d_B(i, nn[i, t])^2`` in float64, shape nn.shape."""
    n, k = nn.shape
    return exact_sqdist(Bc, np.repeat(np.arange(n), k), nn.ravel()).reshape(n, k)


class _Targets(NamedTuple):
    """Every row's k exact target distances in space B and their rounding windows, targets ascending.

    Attributes
    ----------
    T : numpy.ndarray, shape (n, k), float64
        Exact squared distances ``d_B(i, j_t)^2`` (:func:`~._rank_kernels.pair_sqdist`), ascending per row.
    tj : numpy.ndarray, shape (n, k), int64
        The target rows ``j_t`` in the same order.
    win : numpy.ndarray, shape (n, k, 2), working dtype
        ``T -/+ (2 eps_i + tol_i)``: searched values below the lower end are certainly closer than the
        target, values above the upper end certainly farther; both ends ascending per row.
    himax : numpy.ndarray, shape (n,)
        ``win[:, -1, 1]``.
    tol : numpy.ndarray, shape (n,), float64
        Tie tolerance ``1e-10 (|b_i|^2 + max |b|^2)``.
    """

    T: np.ndarray
    tj: np.ndarray
    win: np.ndarray
    himax: np.ndarray
    tol: np.ndarray


def _pair_sqdist(Xc: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Exact ``||x_i - x_j||^2`` (float64, explicit differences) for index pairs, on the sweep's worker threads."""
    from ._rank_kernels import pair_sqdist

    out = np.empty(i.size)
    if i.size < 65536:
        return pair_sqdist(Xc, i, j, out)
    half = i.size // 2
    run_workers(lambda sl: pair_sqdist(Xc, i[sl], j[sl], out[sl]), [slice(0, half), slice(half, i.size)])
    return out


def _row_halves(fn, n: int) -> None:
    """``fn(rows)`` for the two halves ``slice(0, n // 2)``, ``slice(n // 2, n)`` of the rows, on the sweep's two
    worker threads (numba kernels and numpy's sorts release the GIL); one call on this thread below 4,096 rows.
    Row-wise work only: the result does not depend on the split."""
    if n < 4096:
        fn(slice(0, n))
        return
    run_workers(fn, [slice(0, n // 2), slice(n // 2, n)])


def _targets(rows: AugmentedRows, nn: np.ndarray) -> _Targets:
    """:class:`_Targets` in space ``rows`` of the source neighbours ``nn`` (n, k); rows split between two
    threads (:func:`_row_halves`)."""
    from ._rank_kernels import pair_sqdist

    n, k = nn.shape
    tol = 1e-10 * (rows.sq + rows.sq.max())
    w = 2.0 * rows.row_bound() + tol
    T = np.empty((n, k))
    tj = np.empty((n, k), dtype=np.int64)
    win = np.empty((n, k, 2), dtype=rows.P.dtype)

    def part(sl):
        r = np.arange(n)[sl]
        d2 = pair_sqdist(rows.Xc, np.repeat(r, k), nn[sl].ravel(), np.empty(r.size * k)).reshape(r.size, k)
        order = np.argsort(d2, axis=1, kind="stable")
        T[sl] = np.take_along_axis(d2, order, axis=1)
        tj[sl] = np.take_along_axis(nn[sl], order, axis=1)
        win[sl, :, 0] = T[sl] - w[sl, None]
        win[sl, :, 1] = T[sl] + w[sl, None]

    _row_halves(part, n)
    return _Targets(T, tj, win, np.ascontiguousarray(win[:, -1, 1]), tol)


class _SweepCounter:
    """Counts below every row's k target windows, the entries inside them and (optionally) every row's m
    smallest searched values, from an upper-triangle sweep (:func:`~._pairwise.sweep`).

    Each worker's blocks go through :func:`~._rank_kernels.count_rows` (numba, GIL released), the rows of
    the block directly and the rows of its columns from the transposed strictly upper part, so that each
    row's windows and candidates stay in cache:
    per value a comparison with the row's largest window end and candidate threshold, then vectorised
    counts of the few listed values against the row's k window starts. Nothing is sorted and no row is
    held whole.

    Parameters
    ----------
    n : int
        Rows.
    dtype : numpy dtype
        Working dtype of the swept distances.
    targets : _Targets, optional
        Shared, read-only; None to count nothing.
    m : int
        Candidates kept per row (0: none).
    top : numpy.ndarray, shape (n,), optional
        Initial candidate thresholds (:func:`_sampled_top`, a guess): only values below them enter the
        buffers. A row left with fewer than m values is searched again in full by :meth:`candidates`.
    """

    def __init__(self, n: int, dtype, targets: _Targets | None = None, m: int = 0, top: np.ndarray | None = None):
        self.tg = targets
        if targets is None:
            self.args = (np.empty((1, 1, 2), dtype), np.full(n, -np.inf, dtype), np.zeros((1, 1), np.int64))
        else:
            self.args = (targets.win, targets.himax, targets.tj)
        self.less = np.zeros(n, dtype=np.int64)
        self.wi, self.wj, self.wt = (np.empty(2 * n + 1024, dtype=np.int64) for _ in range(3))
        self.nw = 0
        self.m = m
        self.hv = np.full((n, 2 * m) if m else (1, 1), np.inf, dtype=dtype)
        self.hid = np.full(self.hv.shape, -1, dtype=np.int64)
        self.cnt = np.zeros(n if m else 1, dtype=np.int64)
        self.top = np.full(n, np.inf if m else -np.inf, dtype=dtype)
        if m and top is not None:
            self.top[:] = top

    def _grow(self, size: int) -> None:
        for name in ("wi", "wj", "wt"):
            old = getattr(self, name)
            new = np.empty(size, dtype=np.int64)
            new[: self.nw] = old[: self.nw]
            setattr(self, name, new)

    def _record(self, run) -> None:
        """``run(count)`` files values into this accumulator and returns the new ``nw``; window entries that
        did not fit are recorded again into larger arrays (``count=False``: counts already done)."""
        nw = run(True)
        if nw > self.wi.size:
            self._grow(2 * nw)
            nw = run(False)
        self.nw = nw

    def _file(self, kernel, D: np.ndarray, *where) -> None:
        self._record(lambda count: kernel(D, *where, *self.args, self.less, self.wi, self.wj, self.wt, self.nw,
                                          count, self.hv, self.hid, self.cnt, self.top, self.m, self.m > 0))

    def add_stored(self, ids: np.ndarray, store: "_RowStore") -> None:
        """Counts of rows ``ids`` from their complete stores (:class:`_RowStore`,
        :func:`~._rank_kernels.count_stored`), equal to
        those a sweep gives: each store holds every searched value of its row up to ``tau_i >= himax_i``."""
        from ._rank_kernels import count_stored

        pos = np.zeros(self.less.size, dtype=np.int64)
        self._grow(max(self.wi.size, self.nw + 16 * ids.size))  # about 5 window entries a row on aligned data
        self._record(lambda count: count_stored(ids, store.sv, store.sid, store.soff, store.scnt, *self.args,
                                                self.less, self.wi, self.wj, self.wt, self.nw, count, pos))

    def add_rows(self, ids: np.ndarray, rows: AugmentedRows, chunk: int = 256) -> None:
        """Counts of rows ``ids`` from their full rows of searched values (one float32 GEMM row each, within the
        sweep's rounding bound), by chunks of ``chunk`` rows."""
        from ._rank_kernels import count_row_ids

        for s in range(0, ids.size, chunk):
            r = ids[s : s + chunk]
            D = np.matmul(rows.P[r], rows.Q.T)
            np.maximum(D, 0.0, out=D)
            D[np.arange(r.size), r] = np.inf
            self._record(lambda count: count_row_ids(D, r, *self.args, self.less, self.wi, self.wj, self.wt,
                                                     self.nw, count))

    def add_block(self, s: int, e: int, D: np.ndarray, scratch: Scratch) -> None:
        from ._rank_kernels import count_rows

        b = e - s
        self._file(count_rows, D, s, s)  # rows [s, e): the diagonal tile holds both (i, j) and (j, i)
        if D.shape[1] > b:  # rows [e, n) against [s, e), from the transposed strictly upper part
            T = scratch.get("transposed", (D.shape[1] - b, b), D.dtype)
            np.copyto(T, D[:, b:].T)
            self._file(count_rows, T, e, s)

    @classmethod
    def merge(cls, parts: list) -> "_SweepCounter":
        """One accumulator from the per-worker ones (each saw a subset of the blocks), in worker order."""
        out = parts[0]
        for p in parts[1:]:
            out.less += p.less
            out._grow(out.nw + p.nw)
            for name in ("wi", "wj", "wt"):
                getattr(out, name)[out.nw:out.nw + p.nw] = getattr(p, name)[: p.nw]
            out.nw += p.nw
            if out.m:
                out.hv, out.hid = np.hstack([out.hv, p.hv]), np.hstack([out.hid, p.hid])
        return out

    def candidates(self, rows: AugmentedRows) -> tuple[np.ndarray, np.ndarray]:
        """The m smallest searched values of every row, ascending, as float64 (n, m), and their rows (n, m).

        Unfilled buffer slots hold ``+inf`` and sort last. A row with fewer than m buffered values (its
        initial threshold was below its m-th smallest value) is searched again against every row of
        ``rows`` (the swept space): one float32 GEMM row, within the same rounding bound."""
        n, m = self.hv.shape[0], self.m
        values, ids = np.empty((n, m)), np.empty((n, m), dtype=np.int64)

        def part(sl):
            hv, hid = self.hv[sl], self.hid[sl]
            keep = np.argpartition(hv, m - 1, axis=1)[:, :m]
            hv, hid = np.take_along_axis(hv, keep, axis=1), np.take_along_axis(hid, keep, axis=1)
            order = np.lexsort((hid, hv), axis=1)  # ascending values, ties by row: independent of buffer order
            values[sl], ids[sl] = np.take_along_axis(hv, order, axis=1), np.take_along_axis(hid, order, axis=1)

        _row_halves(part, n)
        short = np.flatnonzero(~np.isfinite(values[:, m - 1]))
        for s in range(0, short.size, 512):  # by 512 rows: memory 512 n values at most
            r = short[s : s + 512]
            D = np.matmul(rows.P[r], rows.Q.T)
            np.maximum(D, 0.0, out=D)
            D[np.arange(r.size), r] = np.inf
            keep = np.argpartition(D, m - 1, axis=1)[:, :m]
            hv = np.take_along_axis(D, keep, axis=1)
            order = np.lexsort((keep, hv), axis=1)
            values[r], ids[r] = np.take_along_axis(hv, order, axis=1), np.take_along_axis(keep, order, axis=1)
        return values, ids

    def rank_sum(self, rows: AugmentedRows) -> float:
        """Sum over rows and targets of the mid-ranks ``1 + #closer + #tied_others / 2`` (exact: the sum
        of multiples of 1/2 below 2^52 is exact in float64 in any order)."""
        tg = self.tg
        n, k = tg.T.shape
        i, j, t = self.wi[: self.nw], self.wj[: self.nw], self.wt[: self.nw]
        d2 = _pair_sqdist(rows.Xc, i, j)
        target = tg.T[i, t]
        closer = d2 < target - tg.tol[i]
        tied = ~closer & (d2 <= target + tg.tol[i])
        less = int(self.less.sum())
        return float(n * k + less + int(closer.sum())) + 0.5 * float(tied.sum())


def _mean_rank(A: np.ndarray, B: np.ndarray, k: int, backend: str, block_size: int,
               precision: str = "auto") -> float:
    """Mean over i and over the k A-neighbours j of i of rank_B(i, j) (mid-rank for ties)."""
    n = A.shape[0]
    nn = neighbour_search(A, k, backend=backend, exact_values=False).indices
    rb = augmented_rows(B, working_dtype(precision, n))
    tg = _targets(rb, nn)
    (counter,) = sweep(rb, lambda: [_SweepCounter(n, rb.P.dtype, tg)], block_size)
    return counter.rank_sum(rb) / (n * k)


_STORE = True  # keep the first sweep's small Y values to skip the third sweep (tests switch it off)
_STORE_RANK = 32  # the store threshold tau_i: a row's 32nd smallest of its 512 sampled distances (~6%)
_STORE_SLACK = 1.6  # capacity per row and worker: 1.6 times its expected values below tau_i, plus 16
_STORE_MAX_BYTES = 256 * 2**20  # stores of all workers together (values and columns, 8 bytes an entry)
_STORE_MAX_FAIL = 0.25  # above this fraction of rows left to count, a full (masked) third sweep
_STORE_TAU_SCALE = 1.0  # tests: 0 gives a zero guess (every row searched again)


class _RowStore:
    """Per worker of the first sweep, every row's searched values at most ``tau_i`` and their columns.

    Each worker w of :func:`~._pairwise.sweep` sees a known number of each row's values (its blocks, fixed
    by :func:`~._pairwise.assign_blocks`), so the store of row i in worker w gets a capacity of
    ``1.6 rank / sample`` times that many values plus 16, at its own offset in flat arrays: the workers
    never write the same memory, and memory is about ``1.6 rank / sample n^2 8`` bytes in all.

    Attributes
    ----------
    tau : numpy.ndarray, shape (n,), float32
        Store thresholds (a guess from sampled distances, :func:`_sampled_thresholds`).
    sv, sid : numpy.ndarray, shape (total,), float32 and int32
        Values and columns.
    soff, scap, scnt : numpy.ndarray, shape (workers, n), int64
        Per worker and row: offset, capacity, values at most ``tau_i`` seen (above ``scap``: overflowed).
    worker_of : dict
        The worker of each block, by its first row (:func:`~._pairwise.assign_blocks` for ``workers``).
    workers : int
        Workers the first sweep must be run with.
    """

    def __init__(self, tau: np.ndarray, block_size: int, workers: int, capacity_factor: float):
        from ._pairwise import assign_blocks, upper_blocks

        n = tau.size
        self.workers = workers  # the sweep must be run with this many workers (the same block assignment)
        assignments = assign_blocks(list(upper_blocks(n, block_size)), n, workers)
        w_n = len(assignments)
        seen = np.zeros((w_n, n), dtype=np.int64)
        self.worker_of = {}
        for w, blocks in enumerate(assignments):
            for s, e in blocks:
                self.worker_of[s] = w
                seen[w, s:e] += n - s  # the block's rows: columns [s, n)
                seen[w, e:] += e - s  # the later rows, on its column side: columns [s, e)
        self.tau = tau
        self.scap = np.ceil(capacity_factor * seen).astype(np.int64) + 16
        self.soff = (np.cumsum(self.scap) - self.scap.ravel()).reshape(self.scap.shape)
        total = int(self.scap.sum())
        self.sv = np.empty(total, dtype=np.float32)
        self.sid = np.empty(total, dtype=np.int32)
        self.scnt = np.zeros((w_n, n), dtype=np.int64)

    def complete(self) -> np.ndarray:
        """Rows whose stores did not overflow, shape (n,), bool."""
        return (self.scnt <= self.scap).all(axis=0)


def _row_store(rows: AugmentedRows, block_size: int, sample: int = 512) -> _RowStore | None:
    """A :class:`_RowStore` for a sweep of ``rows`` by blocks of ``block_size``, its thresholds the
    :data:`_STORE_RANK`-th smallest of each row's ``sample`` sampled distances (times
    :data:`_STORE_TAU_SCALE`), or None: the switch :data:`_STORE` off, too few rows to sample, or stores
    over :data:`_STORE_MAX_BYTES` (about ``1.6 rank / sample n^2 8`` bytes: up to about 17,900 rows)."""
    from ._pairwise import sweep_workers

    n = rows.sq.size
    factor = _STORE_SLACK * _STORE_RANK / sample
    if not _STORE or factor * n * n * 8 > _STORE_MAX_BYTES:
        return None
    tau = _sampled_thresholds(rows, 0, _STORE_RANK, sample)[1]
    if tau is None:
        return None
    tau *= np.float32(_STORE_TAU_SCALE)
    return _RowStore(tau, block_size, sweep_workers(), factor)


class _StoringCounter(_SweepCounter):
    """:class:`_SweepCounter` without windows and buffers that fills its worker's stores of a
    :class:`_RowStore` (:func:`~._rank_kernels.store_rows`), the m candidates of each row taken from them
    after the sweep (:meth:`merge`)."""

    def __init__(self, n: int, m: int, store: _RowStore):
        super().__init__(n, np.float32)
        self.store, self.m = store, m

    def add_block(self, s: int, e: int, D: np.ndarray, scratch: Scratch) -> None:
        from ._rank_kernels import store_rows

        st, b = self.store, e - s
        w = st.worker_of[s]
        args = (st.tau, st.sv, st.sid, st.soff[w], st.scap[w], st.scnt[w])
        store_rows(D, s, s, *args)
        if D.shape[1] > b:
            T = scratch.get("transposed", (D.shape[1] - b, b), D.dtype)
            np.copyto(T, D[:, b:].T)
            store_rows(T, e, s, *args)

    @classmethod
    def merge(cls, parts: list) -> "_StoringCounter":
        """The first worker's accumulator, with every row's m candidates from the stores
        (:func:`~._rank_kernels.store_candidates`): the m smallest values of a complete store holding at least
        m values are the row's m smallest (all are at most ``tau_i``); other rows get ``+inf`` and are
        searched again by :meth:`_SweepCounter.candidates`. Two threads."""
        from ._rank_kernels import store_candidates

        out, st, m = parts[0], parts[0].store, parts[0].m
        n = st.tau.size
        out.hv, out.hid = np.empty((n, m), dtype=np.float32), np.empty((n, m), dtype=np.int64)
        _row_halves(lambda sl: store_candidates(np.arange(n)[sl], st.sv, st.sid, st.soff, st.scap, st.scnt, m,
                                                out.hv, out.hid), n)
        return out


def _counts_from_store(rows: AugmentedRows, tg: _Targets, store: _RowStore, block_size: int) -> _SweepCounter:
    """The counts of a sweep of ``rows`` against the targets ``tg``, rows with a complete store whose largest
    window end is at most their threshold (``himax_i <= tau_i``) counted from the store, the others from
    their full rows (one GEMM row each), or, above :data:`_STORE_MAX_FAIL` of the rows, by a sweep that
    lists nothing for the stored rows (their ``himax`` set to ``-inf``). Two threads."""
    n = tg.T.shape[0]
    ok = store.complete() & (tg.himax <= store.tau)
    good, bad = np.flatnonzero(ok), np.flatnonzero(~ok)
    parts = []
    if bad.size > _STORE_MAX_FAIL * n:
        masked = tg._replace(himax=np.where(ok, -np.inf, tg.himax).astype(tg.himax.dtype))
        (full,) = sweep(rows, lambda: [_SweepCounter(n, np.float32, masked)], block_size)
        full.tg = tg
        parts.append(full)
        bad = bad[:0]

    def part(half):
        c = _SweepCounter(n, np.float32, tg)
        c.add_stored(np.array_split(good, 2)[half], store)
        c.add_rows(np.array_split(bad, 2)[half], rows)
        return c

    parts += run_workers(part, [0, 1])
    return _SweepCounter.merge(parts)


def _sampled_thresholds(rows: AugmentedRows, m: int, store_rank: int = 0,
                        sample: int = 512) -> tuple[np.ndarray | None, np.ndarray | None]:
    """:func:`_sampled_top`'s candidate thresholds (None for ``m = 0``) and, from the same sampled
    distances, the store thresholds ``tau`` (each row's ``store_rank``-th smallest sampled value; None
    for ``store_rank = 0`` or below ``4 sample`` rows), both shape (n,), float32."""
    n = rows.sq.size
    r = int(np.ceil(2.0 * sample * m / n + 4.0))
    want_top = m > 0 and r <= sample // 4
    if n < 4 * sample or not (want_top or store_rank):
        return None, None
    S = np.linspace(0, n - 1, sample).round().astype(np.int64)
    QS = np.ascontiguousarray(rows.Q[S].T)
    top = np.empty(n, dtype=rows.P.dtype) if want_top else None
    tau = np.empty(n, dtype=rows.P.dtype) if store_rank else None
    kth = sorted(({r - 1} if want_top else set()) | ({store_rank - 1} if store_rank else set()))

    def part(sl):
        D = rows.P[sl] @ QS
        own = (S >= sl.start) & (S < sl.stop)
        D[S[own] - sl.start, np.flatnonzero(own)] = np.inf
        D.partition(kth, axis=1)
        if want_top:
            top[sl] = D[:, r - 1]
        if store_rank:
            tau[sl] = D[:, store_rank - 1]

    _row_halves(part, n)
    return top, tau


def _sampled_top(rows: AugmentedRows, m: int, sample: int = 512) -> np.ndarray | None:
    """Guessed candidate thresholds for a sweep keeping every row's m smallest values, shape (n,), float32.

    Each row's distances to ``sample`` evenly spaced rows (one float32 GEMM, a twentieth of a half sweep at
    n = 10,000) are computed; about ``sample m / n`` of them fall below the row's m-th smallest distance, and
    the threshold is the ``r``-th smallest with ``r = ceil(2 sample m / n + 4)`` (for n = 10,000 and k = 50,
    the 11th of 512, about the 215th of 10,000 rows). A buffer that starts from it takes in about a third of
    the values one that starts from +inf does. A guess: a row with fewer than m values below it (a
    probability of about 1e-3 per row for random row order) is searched again in full
    (:meth:`_SweepCounter.candidates`), so the candidates do not depend on it. None where the sample is too
    small to help (``r > sample / 4``).
    """
    return _sampled_thresholds(rows, m, 0, sample)[0]


def _imbalance_fused(X: np.ndarray, Y: np.ndarray, k: int, block_size: int) -> tuple[float, float]:
    """Mean ranks of both directions from float32 upper-triangle sweeps: Y's neighbour candidates (with the
    stores of :class:`_RowStore` where they fit in memory, else candidate buffers starting from sampled
    thresholds, :func:`_sampled_top`); X's candidates together with the Y -> X counts; the X -> Y counts,
    from the stores for the rows they cover and the other rows searched again, or a third sweep (module
    docstring)."""
    n = X.shape[0]
    rx, ry = augmented_rows(X, np.float32), augmented_rows(Y, np.float32)
    m = candidate_count(n, k)
    store = _row_store(ry, block_size)
    if store is None:
        top_y = _sampled_top(ry, m)
        (cand_y,) = sweep(ry, lambda: [_SweepCounter(n, np.float32, None, m, top_y)], block_size)
    else:
        (cand_y,) = sweep(ry, lambda: [_StoringCounter(n, m, store)], block_size, store.workers)
    nn_y = neighbour_search(Y, k, exact_values=False, candidates=(*cand_y.candidates(ry), 2.0**-24)).indices
    t_yx = _targets(rx, nn_y)
    top_x = _sampled_top(rx, m)
    (count_yx,) = sweep(rx, lambda: [_SweepCounter(n, np.float32, t_yx, m, top_x)], block_size)
    nn_x = neighbour_search(X, k, exact_values=False, candidates=(*count_yx.candidates(rx), 2.0**-24)).indices
    t_xy = _targets(ry, nn_x)
    if store is None:
        (count_xy,) = sweep(ry, lambda: [_SweepCounter(n, np.float32, t_xy)], block_size)
    else:
        count_xy = _counts_from_store(ry, t_xy, store, block_size)
    return count_xy.rank_sum(ry) / (n * k), count_yx.rank_sum(rx) / (n * k)


def _imbalance_k1(X: np.ndarray, Y: np.ndarray, block_size: int, precision: str) -> tuple[float, float]:
    """Mean ranks of both directions for k = 1 in three upper-triangle sweeps (module docstring)."""
    n = X.shape[0]
    dtype = working_dtype(precision, n)
    rx, ry = augmented_rows(X, dtype), augmented_rows(Y, dtype)
    (near_x,) = sweep(rx, lambda: [SweepNearest(rx, 1)], block_size)
    t_xy = _target_d2(ry.Xc, near_x.result()[1])
    near_y, count_xy = sweep(ry, lambda: [SweepNearest(ry, 1), _RankCounter(ry, t_xy)], block_size)
    t_yx = _target_d2(rx.Xc, near_y.result()[1])
    (count_yx,) = sweep(rx, lambda: [_RankCounter(rx, t_yx)], block_size)
    return float(count_xy.ranks().mean()), float(count_yx.ranks().mean())


def information_imbalance(X, Y, k: int = 1, *, backend: str = "auto", block_size: int = 512,
                          precision: str = "auto"):
    """Information imbalance in both directions, Glielmo, Zeni, Cheng, Csanyi & Laio (2022),
    "Ranking the information content of distance measures", PNAS Nexus 1, pgac039.

    ``Delta(X -> Y) = (2 / n) * mean_i mean_{j in N_k^X(i)} r^Y_ij``, where ``N_k^X(i)`` are the k nearest
    neighbours of i in X (Euclidean, self excluded, ties to the lower index, :func:`knn`) and ``r^Y_ij`` is
    the rank of j among the neighbours of i in Y (1 = nearest). With k = 1 this is the paper's
    ``2/N <r^Y | r^X = 1>``; for k > 1 the rank is averaged over the k X-neighbours (the generalisation
    used by arXiv 2512.03750 with k = 50, 200, 500). Ties in Y get the mid-rank
    ``1 + #{closer} + #{others at the same distance}/2`` (equal within ``1e-10 (|y_i|^2 + max |y|^2)`` on
    centred rows).

    Values: ``(k + 1) / n`` (about 0) when Y's neighbourhoods reproduce X's exactly, about 1 when X says
    nothing about Y (random ranks average n/2).

    Parameters
    ----------
    X : array-like, shape (n, d_a)
    Y : array-like, shape (n, d_b)
    k : int
        Neighbours in the source space, ``1 <= k <= n - 1``.
    backend : {"auto", "faiss", "numpy"}
        k-NN backend for the source-space neighbours when k > 1 (k = 1 uses the sweeps).
    block_size : int
        Rows per block of the sweeps (memory ~ ``3 * block_size * n`` values of the working precision).
    precision : {"auto", "float32", "float64"}
        Working precision of the swept distances (float64 below 1,500 rows for ``"auto"``). The ranks do
        not depend on it: every comparison the rounding could decide is redone in float64 (module
        docstring).

    Returns
    -------
    InformationImbalance
        ``(x_to_y, y_to_x, k)``.

    Notes
    -----
    Cost O(n^2 (d_a + d_b)) for the ranks (three half sweeps for k = 1 and, from 4,096 rows, for any k),
    plus O(n^2) comparisons and O(n^2 p log k) for the fraction p of distances below a row's largest
    target. Hand-written rather than taken from a library: only counts below k distances per row are
    needed, which the blocked sweeps give without n x n distance or rank matrices.
    """
    X, Y = check_pair(X, Y)
    n = X.shape[0]
    k = check_k(k, n)
    if k == 1:
        mx, my = _imbalance_k1(X, Y, block_size, precision)
    elif (backend == "auto" and k >= 3 and n >= _SWEEP_MIN_N and candidate_count(n, k) < n
          and working_dtype(precision, n) == np.float32):
        mx, my = _imbalance_fused(X, Y, k, block_size)
    else:
        mx = _mean_rank(X, Y, k, backend, block_size, precision)
        my = _mean_rank(Y, X, k, backend, block_size, precision)
    return InformationImbalance(float(2.0 / n * mx), float(2.0 / n * my), k)
