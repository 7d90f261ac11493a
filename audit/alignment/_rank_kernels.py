"""numba kernels of the information imbalance's rank counts (:mod:`.imbalance`).

All release the GIL: the sweep's worker threads (:func:`~._pairwise.sweep`) run them side by side, each on
its own blocks and its own output arrays.

Why the window counts are vectorised rather than searched (issue 20, second pass): filing each listed value
by a binary search among the k window starts cost about 46 ns per value (unpredictable branches over a
chain of dependent loads); counting a row's listed values below each window start in a loop the compiler
vectorises costs ``k p / 16`` comparisons for p listed values, 3-4 times less on the benchmark's rows
(p of 100-1,000 at k = 50); rows with fewer than ``k / 2`` listed values keep the binary search.

Row stores (issue 20, third pass): :func:`store_rows` appends every value at most a row's threshold to
that row's store in the first sweep over Y, :func:`store_candidates` takes the rows' candidates from
them, :func:`count_stored` files a row's stored values with the same counting code as a sweep
(:func:`_count_listed`), and :func:`count_row_ids` counts the rows the stores do not cover from their
full rows.
"""

from __future__ import annotations

import numba
import numpy as np


_CHUNK = 128  # columns per first pass: a row's candidate threshold, lowered by the second pass, is re-read
_SCAN = 64  # listed values per vectorised test for window entries
_SEARCH = 2  # binary searches below k / _SEARCH listed values of a row (cheaper than k vectorised counts)


@numba.njit(nogil=True, cache=True)
def keep_smallest(hv, hid, i, size, m):
    """Reorder ``hv[i, :size]`` (with ``hid[i, :size]``) so that its first m entries are the m smallest
    (quickselect, Hoare partition around the median of three; deterministic) and return the largest of
    those m."""
    lo, hi = 0, size - 1
    target = m - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        a, b, c = hv[i, lo], hv[i, mid], hv[i, hi]
        pivot = max(min(a, b), min(max(a, b), c))
        p, q = lo, hi
        while p <= q:
            while hv[i, p] < pivot:
                p += 1
            while hv[i, q] > pivot:
                q -= 1
            if p <= q:
                tv = hv[i, p]
                hv[i, p] = hv[i, q]
                hv[i, q] = tv
                ti = hid[i, p]
                hid[i, p] = hid[i, q]
                hid[i, q] = ti
                p += 1
                q -= 1
        if target <= q:
            hi = q
        elif target >= p:
            lo = p
        else:
            break
    top = hv[i, 0]
    for t in range(1, m):
        if hv[i, t] > top:
            top = hv[i, t]
    return top


@numba.njit(nogil=True, cache=True)
def window_counts(vals, p, lo, hi):
    """``(#{q < p : vals[q] < lo}, #{q < p : vals[q] <= hi})`` (a loop the compiler vectorises)."""
    a = 0
    b = 0
    for q in range(p):
        v = vals[q]
        a += v < lo
        b += v <= hi
    return a, b


@numba.njit(nogil=True, cache=True)
def _file_row(Dr, nc, i, col0, win, himax, tj, less, wi, wj, wt, nw, count, hv, hid, cnt, top, m, heap,
              buf, vals, cols, store, sv, sid, soff, scap, scnt):
    """One row of :func:`count_rows`: ``Dr[c]`` is the searched value of row i and column ``col0 + c``,
    ``c < nc``; ``buf``, ``vals``, ``cols`` are scratch arrays of at least ``nc`` entries.
    With ``store`` (:func:`store_rows`), the values at most ``himax[i]`` (there the row's store threshold)
    are appended to the row's store ``sv[soff[i]:soff[i] + scap[i]]`` instead of being counted.
    Returns the updated ``nw``."""
    cap = wi.shape[0]
    hmi = himax[i]
    p = 0
    if heap:
        ci = cnt[i]
        ti = top[i]
        size = hv.shape[1]
        for c0 in range(0, nc, _CHUNK):  # the listing threshold is refreshed between chunks
            nb = 0
            tl = ti
            for c in range(c0, min(c0 + _CHUNK, nc)):
                v = Dr[c]
                buf[nb] = c
                nb += (v <= hmi) | (v < tl)
            for q in range(nb):
                c = buf[q]
                v = Dr[c]
                if v < ti:  # a candidate: append it; a full buffer keeps its m smallest
                    if ci == size:
                        ti = keep_smallest(hv, hid, i, ci, m)
                        ci = m
                    if v < ti:
                        hv[i, ci] = v
                        hid[i, ci] = col0 + c
                        ci += 1
                if v <= hmi:
                    vals[p] = v
                    cols[p] = c
                    p += 1
        cnt[i] = ci
        top[i] = ti
    else:
        for c in range(nc):  # branch-free listing
            cols[p] = c
            p += Dr[c] <= hmi
        for q in range(p):
            vals[q] = Dr[cols[q]]
    if p == 0:
        return nw
    if store:  # append to the row's store; a count above its capacity marks it overflowed
        c0 = scnt[i]
        o = soff[i] + c0
        for q in range(min(p, max(scap[i] - c0, 0))):
            sv[o + q] = vals[q]
            sid[o + q] = col0 + cols[q]
        scnt[i] = c0 + p
        return nw
    return _count_listed(Dr, nc, vals, cols, p, i, col0, win, tj, less, wi, wj, wt, nw, count, cap, False,
                         cols)


@numba.njit(nogil=True, cache=True, inline="always")
def _record(wi, wj, wt, nw, cap, i, j, t):
    """Record the window entry (row i, column j, target t) at position ``nw`` if there is room; the count
    goes on past ``cap`` so that the caller can tell how many there were."""
    if nw < cap:
        wi[nw] = i
        wj[nw] = j
        wt[nw] = t
    return nw + 1


@numba.njit(nogil=True, cache=True)
def _count_listed(Dr, nc, vals, cols, p, i, col0, win, tj, less, wi, wj, wt, nw, count, cap, stored, pos):
    """Counts of row i's ``p`` listed values ``vals[q]`` (columns ``col0 + cols[q]``) against its k windows
    and its window entries, as described in :func:`count_rows`. The target's own entry is looked up as
    ``Dr[tj - col0]`` (a block row), or with ``stored`` as ``vals[pos[tj]]`` where ``cols[pos[tj]] == tj``
    (a row's stored list, columns absolute, ``col0 = 0``). Returns the updated ``nw``."""
    k = win.shape[1]
    closer = 0
    if p * _SEARCH < k:  # few listed values: place each by a binary search among the window starts
        for q in range(p):
            v = vals[q]
            a = 0
            z = k
            while a < z:  # a = #{t : window start <= v}
                mid = (a + z) >> 1
                if win[i, mid, 0] <= v:
                    a = mid + 1
                else:
                    z = mid
            closer += k - a  # certainly closer than the k - a targets whose window starts above v
            j = col0 + cols[q]
            t = a - 1
            while t >= 0 and win[i, t, 1] >= v:  # the windows containing v
                if tj[i, t] != j:
                    nw = _record(wi, wj, wt, nw, cap, i, j, t)
                t -= 1
        if count:
            less[i] += closer
        return nw
    for t in range(k):
        lo = win[i, t, 0]
        hi = win[i, t, 1]
        a, b = window_counts(vals, p, lo, hi)
        closer += a
        inside = b - a
        if inside:
            own = tj[i, t] - col0  # the target's own entry, tied with itself: never recorded
            expected = 0
            if stored:
                q = pos[own]
                if 0 <= q < p and cols[q] == own:
                    vo = vals[q]
                    if vo >= lo and vo <= hi:
                        expected = 1
            elif 0 <= own < nc:
                vo = Dr[own]
                if vo >= lo and vo <= hi:
                    expected = 1
            if inside != expected:  # other entries inside the window: find the chunks holding them
                for q0 in range(0, p, _SCAN):
                    q1 = min(q0 + _SCAN, p)
                    a = 0
                    b = 0
                    for q in range(q0, q1):  # vectorised, as in window_counts
                        v = vals[q]
                        a += v < lo
                        b += v <= hi
                    if a == b:
                        continue
                    for q in range(q0, q1):
                        v = vals[q]
                        if v >= lo and v <= hi:
                            j = col0 + cols[q]
                            if tj[i, t] != j:
                                nw = _record(wi, wj, wt, nw, cap, i, j, t)
    if count:
        less[i] += closer
    return nw


@numba.njit(nogil=True, cache=True)
def count_rows(D, row0, col0, win, himax, tj, less, wi, wj, wt, nw, count, hv, hid, cnt, top, m, heap):
    """Searched squared distances of rows ``row0 + r`` to columns ``col0 + c`` (``D[r, c]``): counts against
    each row's k target windows and, with ``heap``, each row's m smallest values (a candidate buffer), in
    one pass per row.

    Parameters
    ----------
    D : numpy.ndarray, shape (nr, nc), float32 or float64
        Values; a row's self-distance, if present, is +inf.
    row0, col0 : int
        Row and column of ``D[0, 0]``.
    win : numpy.ndarray, shape (n, k, 2), dtype of D
        Per row and target, the lower and upper end of its rounding window, both ascending along k
        (interleaved: both ends of a window share a cache line).
    himax : numpy.ndarray, shape (n,)
        ``win[:, k - 1, 1]``: a value above it concerns no window and no count of the row; ``-inf``
        everywhere to count nothing.
    tj : numpy.ndarray, shape (n, k), int64
        Column of each target (its own entry is not recorded as a window entry).
    less : numpy.ndarray, shape (n,), int64
        ``less[i] += #{t : v < win[i, t, 0]}`` for every value v of row i, so that in the end
        ``less[i] = sum_t #{l : D_il < win[i, t, 0]}``.
    wi, wj, wt : numpy.ndarray, shape (cap,), int64
        Window entries ``(row, column, target)`` from position ``nw`` on, as far as ``cap`` allows.
    nw : int
        Entries already recorded.
    count : bool
        Update ``less`` and the buffers (False: record the window entries only, for values redone after an
        overflow).
    hv, hid : numpy.ndarray, shape (n, 2 m), dtype of D and int64
        Per row a buffer of candidate values and their columns: every value below ``top`` is appended, and a
        full buffer is cut to its m smallest (:func:`keep_smallest`), which lowers ``top`` to the largest of
        them. The m smallest values of a row are always in its buffer (cheaper than a heap: an append per
        candidate and a selection per m of them, instead of a sift-down per candidate).
    cnt : numpy.ndarray, shape (n,), int64
        Entries in each buffer.
    top : numpy.ndarray, shape (n,)
        Candidate threshold per row (``+inf`` until the first cut; ``-inf`` without buffers).
    m : int
        Values kept per row.
    heap : bool
        Update the candidate buffers.

    Returns
    -------
    int
        ``nw`` plus the window entries found (more than ``cap`` when some did not fit).

    Per row (:func:`_file_row`), a branch-free first pass lists the values at most the row's largest window
    end or below its candidate threshold (a few per cent of them). The listed values at most the largest
    window end are then counted against each of the k windows by a loop the compiler vectorises
    (:func:`window_counts`: below the start, up to the end); a window holding more values than the
    target's own entry is scanned for them, by chunks of :data:`_SCAN` values tested with the same
    vectorised counts. A row's windows and buffer stay in
    cache while its values pass (a caller feeding a block's column side transposed,
    :class:`~.imbalance._SweepCounter`, measured 1.7 times faster than reaching every column's row from the
    block's rows).
    """
    nr, nc = D.shape
    heap = heap and count
    buf = np.empty(min(nc, _CHUNK), np.int64)
    vals = np.empty(nc, D.dtype)
    cols = np.empty(nc, np.int64)
    sv = np.empty(1, D.dtype)
    sid = np.empty(1, np.int32)
    scnt = np.empty(1, np.int64)
    for r in range(nr):
        nw = _file_row(D[r], nc, row0 + r, col0, win, himax, tj, less, wi, wj, wt, nw, count, hv, hid, cnt,
                       top, m, heap, buf, vals, cols, False, sv, sid, scnt, scnt, scnt)
    return nw


@numba.njit(nogil=True, cache=True)
def store_rows(D, row0, col0, tau, sv, sid, soff, scap, scnt):
    """Every value of ``D`` (as in :func:`count_rows`) at most its row's threshold ``tau[i]`` appended to the
    row's store: ``sv[soff[i]:soff[i] + scnt[i]]`` (values, dtype of D) and the same slice of ``sid``
    (columns, int32), in no particular order, after a branch-free listing. ``scnt[i]`` keeps counting past
    the capacity ``scap[i]``: a row with ``scnt[i] > scap[i]`` overflowed (its store is incomplete).
    Nothing is counted."""
    nr, nc = D.shape
    buf = np.empty(1, np.int64)
    vals = np.empty(nc, D.dtype)
    cols = np.empty(nc, np.int64)
    win = np.empty((1, 1, 2), D.dtype)
    tj = np.zeros((1, 1), np.int64)
    less = np.zeros(1, np.int64)
    wi = np.empty(1, np.int64)
    hv = np.empty((1, 1), D.dtype)
    for r in range(nr):
        _file_row(D[r], nc, row0 + r, col0, win, tau, tj, less, wi, wi, wi, 0, True, hv, wi.reshape(1, 1), wi,
                  vals[:1], 0, False, buf, vals, cols, True, sv, sid, soff, scap, scnt)


@numba.njit(nogil=True, cache=True)
def _largest_store(rows, scnt):
    """Largest number of stored values of one of ``rows`` over all workers' stores (``scnt`` (W, n))."""
    total = 0
    for r in range(rows.shape[0]):
        row = 0
        for w in range(scnt.shape[0]):
            row += scnt[w, rows[r]]
        total = max(total, row)
    return total


@numba.njit(nogil=True, cache=True)
def store_candidates(rows, sv, sid, soff, scap, scnt, m, hv, hid):
    """``hv[i], hid[i]``: the m smallest values of row i's stores (all workers) and their columns, in no
    particular order, for the given rows; ``+inf`` and -1 where the stores overflowed or hold fewer than m
    values (the row's m smallest values are not all at most its threshold: searched again by the caller).

    Parameters
    ----------
    rows : numpy.ndarray, shape (r,), int64
    sv, sid : numpy.ndarray, shape (total,)
        Stores of :func:`store_rows`.
    soff, scap, scnt : numpy.ndarray, shape (W, n), int64
        Offsets, capacities and counts per worker and row.
    m : int
    hv, hid : numpy.ndarray, shape (n, m), dtype of sv and int64
        Output.
    """
    n_w = scnt.shape[0]
    total = _largest_store(rows, scnt)
    tv = np.empty((1, max(total, 1)), sv.dtype)
    ti = np.empty((1, max(total, 1)), np.int64)
    for r in range(rows.shape[0]):
        i = rows[r]
        p = 0
        full = True
        for w in range(n_w):
            c = scnt[w, i]
            if c > scap[w, i]:
                full = False
                break
            o = soff[w, i]
            for q in range(c):
                tv[0, p + q] = sv[o + q]
                ti[0, p + q] = sid[o + q]
            p += c
        if not full or p < m:
            for t in range(m):
                hv[i, t] = np.inf
                hid[i, t] = -1
            continue
        keep_smallest(tv, ti, 0, p, m)
        for t in range(m):
            hv[i, t] = tv[0, t]
            hid[i, t] = ti[0, t]


@numba.njit(nogil=True, cache=True)
def count_row_ids(D, ids, win, himax, tj, less, wi, wj, wt, nw, count):
    """:func:`count_rows` (without candidate buffers) for rows ``ids[r]`` against every column: ``D[r, c]``
    is the searched value of row ``ids[r]`` and column c (its self-distance +inf)."""
    nr, nc = D.shape
    buf = np.empty(1, np.int64)
    vals = np.empty(nc, D.dtype)
    cols = np.empty(nc, np.int64)
    hv = np.empty((1, 1), D.dtype)
    hid = np.empty((1, 1), np.int64)
    cnt = np.zeros(1, np.int64)
    top = np.empty(1, D.dtype)
    sv = np.empty(1, D.dtype)
    sid = np.empty(1, np.int32)
    for r in range(nr):
        nw = _file_row(D[r], nc, ids[r], 0, win, himax, tj, less, wi, wj, wt, nw, count, hv, hid, cnt, top, 0,
                       False, buf, vals, cols, False, sv, sid, cnt, cnt, cnt)
    return nw


@numba.njit(nogil=True, cache=True)
def count_stored(rows, sv, sid, soff, scnt, win, himax, tj, less, wi, wj, wt, nw, count, pos):
    """Counts of :func:`count_rows` for the given rows from their stores instead of a sweep.

    Parameters
    ----------
    rows : numpy.ndarray, shape (r,), int64
        Rows to count; each row's stores (``sv[soff[w, i]:soff[w, i] + scnt[w, i]]`` over the workers w,
        none overflowed) must hold every searched value of the row at most ``himax[i]``.
    sv, sid : numpy.ndarray, shape (total,), float32 and int32
        Values and columns of :func:`store_rows`, every worker's stores.
    soff, scnt : numpy.ndarray, shape (W, n), int64
        Per worker and row, the store's offset and its count.
    win, himax, tj, less, wi, wj, wt, nw, count
        As in :func:`count_rows`.
    pos : numpy.ndarray, shape (n,), int64
        Scratch (a column's position in the row's list, to find the target's own entry).

    Returns
    -------
    int
        ``nw`` plus the window entries found.

    The values of a row at most its largest window end are gathered from the stores (in worker order)
    and filed exactly as a sweep files them (:func:`_count_listed`): the counts and the set of window
    entries are those of a sweep over the same values.
    """
    cap = wi.shape[0]
    n_w = scnt.shape[0]
    total = _largest_store(rows, scnt)
    vals = np.empty(max(total, 1), sv.dtype)
    cols = np.empty(max(total, 1), np.int64)
    for r in range(rows.shape[0]):
        i = rows[r]
        hmi = himax[i]
        p = 0
        for w in range(n_w):
            o = soff[w, i]
            for q in range(o, o + scnt[w, i]):  # branch-free: keep the values at most the largest window end
                v = sv[q]
                vals[p] = v
                cols[p] = sid[q]
                p += v <= hmi
        if p == 0:
            continue
        for q in range(p):
            pos[cols[q]] = q
        nw = _count_listed(vals, 0, vals, cols, p, i, 0, win, tj, less, wi, wj, wt, nw, count, cap, True, pos)
    return nw


@numba.njit(nogil=True, cache=True)
def pair_sqdist(Xc, i, j, out):
    """``out[p] = sum_q (Xc[i[p], q] - Xc[j[p], q])^2`` in float64 from explicit differences.

    Eight running partial sums in a fixed order (no fast-math), so the value is the same on every CPU and
    in every call; it may differ from numpy's ``einsum`` in the last bits (summation order).
    """
    d = Xc.shape[1]
    d8 = d - d % 8
    for p in range(i.shape[0]):
        a = Xc[i[p]]
        c = Xc[j[p]]
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        for q in range(0, d8, 8):
            t0 = a[q] - c[q]
            t1 = a[q + 1] - c[q + 1]
            t2 = a[q + 2] - c[q + 2]
            t3 = a[q + 3] - c[q + 3]
            t4 = a[q + 4] - c[q + 4]
            t5 = a[q + 5] - c[q + 5]
            t6 = a[q + 6] - c[q + 6]
            t7 = a[q + 7] - c[q + 7]
            s0 += t0 * t0
            s1 += t1 * t1
            s2 += t2 * t2
            s3 += t3 * t3
            s4 += t4 * t4
            s5 += t5 * t5
            s6 += t6 * t6
            s7 += t7 * t7
        for q in range(d8, d):
            t0 = a[q] - c[q]
            s0 += t0 * t0
        out[p] = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    return out
