"""numba kernels of the information imbalance's rank counts (:mod:`.imbalance`).

Both release the GIL: the sweep's worker threads (:func:`~._pairwise.sweep`) run them side by side, each on
its own blocks and its own output arrays.
"""

from __future__ import annotations

import numba
import numpy as np


_CHUNK = 128  # columns per first pass: a row's candidate threshold, lowered by the second pass, is re-read


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
        (interleaved, so the end read after the binary search shares its cache line: 1.5 times faster
        than two arrays).
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

    Per row, a branch-free first pass lists the columns whose value is at most the row's largest window
    end or below its candidate threshold (a few per cent of them); only those are placed, by a binary
    search among the row's k window starts, and the windows that contain the value are walked down from
    there. A row's windows and buffer stay in cache while its values pass (a caller feeding a block's
    column side transposed, :class:`~.imbalance._SweepCounter`, measured 1.7 times faster than reaching
    every column's row from the block's rows).
    """
    nr, nc = D.shape
    k = win.shape[1]
    cap = wi.shape[0]
    heap = heap and count
    buf = np.empty(min(nc, _CHUNK), np.int64)
    for r in range(nr):
        i = row0 + r
        Dr = D[r]
        hmi = himax[i]
        for c0 in range(0, nc, _CHUNK):  # the candidate threshold is refreshed between chunks
            ti = top[i]
            nb = 0
            for c in range(c0, min(c0 + _CHUNK, nc)):
                v = Dr[c]
                buf[nb] = c
                nb += (v <= hmi) | (v < ti)
            for q in range(nb):
                c = buf[q]
                v = Dr[c]
                j = col0 + c
                if heap and v < top[i]:  # a candidate: append it; a full buffer keeps its m smallest
                    if cnt[i] == hv.shape[1]:
                        top[i] = keep_smallest(hv, hid, i, cnt[i], m)
                        cnt[i] = m
                    if v < top[i]:
                        hv[i, cnt[i]] = v
                        hid[i, cnt[i]] = j
                        cnt[i] += 1
                if not v <= hmi:
                    continue
                a, z = 0, k
                while a < z:  # a = #{t : window start <= v}
                    mid = (a + z) >> 1
                    if win[i, mid, 0] <= v:
                        a = mid + 1
                    else:
                        z = mid
                if count:
                    less[i] += k - a  # certainly closer than the k - a targets whose window starts above v
                t = a - 1
                while t >= 0 and win[i, t, 1] >= v:  # windows containing v
                    if tj[i, t] != j:  # the target itself is tied with itself: never recomputed
                        if nw < cap:
                            wi[nw] = i
                            wj[nw] = j
                            wt[nw] = t
                        nw += 1
                    t -= 1
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
