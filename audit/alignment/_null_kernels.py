"""numba kernels of the permutation nulls of :mod:`.calibration` (imported only when a null is computed).

Every kernel loops over permutations of the rows of Y and releases the GIL, so pairs of models run on
threads.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(inline="always")
def _find(row, b):
    """Position of ``b`` in the ascending int array ``row``, or -1."""
    lo, hi = 0, row.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if row[mid] < b:
            lo = mid + 1
        else:
            hi = mid
    if lo < row.shape[0] and row[lo] == b:
        return lo
    return -1


@numba.njit(nogil=True, cache=True)
def graph_null(ix, kx, dx, iy, ly, dy, perms, self_pairs, unbiased, want_hsic):
    """Mutual-pair counts and CKNNA numerators of ``(X, Y[pi])`` for every row ``pi`` of ``perms``.

    ``ix``, ``iy`` (n, m): neighbour lists of X and Y, each row ascending; ``kx``, ``ly``: kernel values in
    the same order; ``dx``, ``dy`` (n,): kernel diagonals. Under ``pi`` the pair (i, j) is mutual when
    ``j in N^X(i)`` and ``pi(j) in N^Y(pi(i))``; its kernel values are ``K_ij`` and ``L_{pi(i) pi(j)}``.
    The numerator is the HSIC of the two masked kernels (biased ``tr(A H B H)`` or the unbiased estimator
    divided by ``n (n - 3)``, as :func:`~.metrics._sparse_hsic`), accumulated over the mutual pairs alone.
    """
    n, m = ix.shape
    P = perms.shape[0]
    counts = np.zeros(P, np.int64)
    num = np.zeros(P)
    cap = n * m + n
    hi_ = np.empty(cap, np.int64)
    hj_ = np.empty(cap, np.int64)
    ha = np.empty(cap)
    hb = np.empty(cap)
    ra = np.zeros(n)
    ca = np.zeros(n)
    rb = np.zeros(n)
    cb = np.zeros(n)
    mark = np.full(n, -1, np.int64)
    stamp = np.full(n, -1, np.int64)  # stamp[b] == p n + i: b is a Y-neighbour of pi(i); pos[b]: its place
    pos = np.zeros(n, np.int64)
    for p in range(P):
        pi = perms[p]
        h = 0
        for i in range(n):
            a = pi[i]
            key = p * n + i
            for s in range(m):
                stamp[iy[a, s]] = key
                pos[iy[a, s]] = s
            for t in range(m):
                j = ix[i, t]
                b = pi[j]
                if stamp[b] == key:
                    hi_[h] = i
                    hj_[h] = j
                    ha[h] = kx[i, t]
                    hb[h] = ly[a, pos[b]]
                    h += 1
        counts[p] = h
        if not want_hsic:
            continue
        if self_pairs:
            for i in range(n):
                hi_[h] = i
                hj_[h] = i
                ha[h] = dx[i]
                hb[h] = dy[pi[i]]
                h += 1
        tr = 0.0  # tr(AB) = sum over mutual (i, j) of A_ij B_ji
        sa = 0.0
        sb = 0.0
        for q in range(h):
            i = hi_[q]
            j = hj_[q]
            sa += ha[q]
            sb += hb[q]
            ra[i] += ha[q]
            ca[j] += ha[q]
            rb[i] += hb[q]
            cb[j] += hb[q]
            if i == j:
                tr += ha[q] * hb[q]
                continue
            if _find(ix[j], i) >= 0:  # (j, i) mutual too?
                s2 = _find(iy[pi[j]], pi[i])
                if s2 >= 0:
                    tr += ha[q] * ly[pi[j], s2]
        carb = 0.0
        cbra = 0.0
        for q in range(h):
            i = hi_[q]
            if mark[i] != p:
                mark[i] = p
                carb += ca[i] * rb[i]
                cbra += cb[i] * ra[i]
            j = hj_[q]
            if mark[j] != p:
                mark[j] = p
                carb += ca[j] * rb[j]
                cbra += cb[j] * ra[j]
        for q in range(h):
            ra[hi_[q]] = 0.0
            rb[hi_[q]] = 0.0
            ca[hj_[q]] = 0.0
            cb[hj_[q]] = 0.0
        if unbiased:
            val = tr + sa * sb / ((n - 1.0) * (n - 2.0)) - 2.0 / (n - 2.0) * carb
            num[p] = val / (n * (n - 3.0))
        else:
            num[p] = tr - (cbra + carb) / n + sa * sb / (float(n) * n)
    return counts, num


@numba.njit(nogil=True, cache=True)
def rank_sums(nn, R, perms):
    """``sum_i sum_t R[pi(i), pi(nn[i, t])]`` for every row ``pi`` of ``perms`` (information imbalance);
    ``R`` holds integers (doubled mid-ranks), summed exactly in int64."""
    n, k = nn.shape
    P = perms.shape[0]
    out = np.empty(P, np.int64)
    for p in range(P):
        pi = perms[p]
        tot = 0
        for i in range(n):
            row = R[pi[i]]
            for t in range(k):
                tot += row[pi[nn[i, t]]]
        out[p] = tot
    return out
