"""Permutation nulls of the RV-type statistics, linear CKA and distance correlation: exact permutations or
the exact permutation moments with a fitted distribution. Overview: :mod:`.calibration`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as sps

from ._pairwise import Scratch, augmented_rows, double_centred_inner, working_dtype
from ._validation import check_pair

__all__ = ["permutation_moments", "cka_null", "dcor_null", "distance_sweep"]


# -- RV-type statistics: exact permutation moments ------------------------------------------------------
def permutation_moments(stats_a: Mapping[str, float], stats_b: Mapping[str, float], n: int,
                        third: bool = True) -> tuple[float, float, float]:
    """Mean, variance and skewness of ``T(pi) = tr(A P B P^T)`` over uniform permutations ``P``.

    For symmetric n x n matrices with zero row sums (double-centred), Kazi-Aoual et al. (1995); variance in
    the form of Winkler et al. (2016, PALM ``palm_moments``), third moment in the form of Bilodeau & Guetsop
    Nangue (2017) (brian-lau/highdim ``permMoments``), both checked against brute-force permutations in
    the tests.

    Parameters
    ----------
    stats_a, stats_b : mapping
        Per matrix ``T = tr A``, ``T2 = tr A^2``, ``S2 = sum_i A_ii^2`` and, for the third moment,
        ``T3 = tr A^3``, ``S3 = sum_i A_ii^3``, ``U = sum_ij A_ij^3``, ``R = sum_i A_ii (A^2)_ii``,
        ``B = diag(A)^T A diag(A)``.
    n : int
        Rows (n >= 6 for the third moment).
    third : bool
        Compute the skewness (else NaN).

    Returns
    -------
    (mean, variance, skewness)
    """
    a, b = stats_a, stats_b
    T, Ts, T2, Ts2, S2, Ss2 = a["T"], b["T"], a["T2"], b["T2"], a["S2"], b["S2"]
    mu = T * Ts / (n - 1)
    var = (2.0 * ((n - 1) * T2 - T**2) * ((n - 1) * Ts2 - Ts**2) / ((n - 1) ** 2 * (n + 1) * (n - 2))
           + (n * (n + 1) * S2 - (n - 1) * (T**2 + 2 * T2)) * (n * (n + 1) * Ss2 - (n - 1) * (Ts**2 + 2 * Ts2))
           / ((n + 1) * n * (n - 1) * (n - 2) * (n - 3)))
    if not third or n < 6:
        return float(mu), float(var), float("nan")

    def prod(f):
        return f(a) * f(b)

    n1, n2, n3, n4, n5 = n - 1.0, n - 2.0, n - 3.0, n - 4.0, n - 5.0
    sp1 = prod(lambda s: s["S3"]) / n
    sp2 = (4 * prod(lambda s: -s["S3"] + s["U"]) + 3 * prod(lambda s: s["T"] * s["S2"] - s["S3"])
           + 6 * prod(lambda s: -s["S3"]) + 12 * prod(lambda s: -s["S3"] + s["R"])
           + 6 * prod(lambda s: -s["S3"] + s["B"])) / (n * n1)
    sp3 = (3 * prod(lambda s: -s["T"] * s["S2"] + 2 * s["S3"])
           + prod(lambda s: s["T"] ** 3 - 3 * s["T"] * s["S2"] + 2 * s["S3"])
           + 12 * prod(lambda s: -s["T"] * s["S2"] + 2 * s["S3"] - s["B"])
           + 12 * prod(lambda s: 2 * s["S3"] - s["R"]) + 24 * prod(lambda s: 2 * s["S3"] - s["R"] - s["B"])
           + 6 * prod(lambda s: s["T"] * (s["T2"] - s["S2"]) + 2 * s["S3"] - 2 * s["R"])
           + 24 * prod(lambda s: 2 * s["S3"] - s["U"] - s["R"])
           + 8 * prod(lambda s: s["T3"] + 2 * s["S3"] - 3 * s["R"])) / (n * n1 * n2)
    sp4 = (12 * prod(lambda s: s["T"] * s["S2"] - 6 * s["S3"] + 2 * s["R"] + 2 * s["B"])
           + 6 * prod(lambda s: s["T"] * (-s["T2"] + s["S2"]) - 6 * s["S3"] + 2 * s["U"] + 4 * s["R"])
           + 3 * prod(lambda s: -s["T"] ** 3 + 5 * s["T"] * s["S2"] - 6 * s["S3"] + 2 * s["B"])
           + 12 * prod(lambda s: s["T"] * (-s["T2"] + 2 * s["S2"]) - 6 * s["S3"] + 3 * s["R"] + 2 * s["B"])
           + 8 * prod(lambda s: -6 * s["S3"] + 2 * s["U"] + 3 * s["R"])
           + 24 * prod(lambda s: -s["T3"] - 6 * s["S3"] + s["U"] + 5 * s["R"] + s["B"])) / (n * n1 * n2 * n3)
    sp5 = (3 * prod(lambda s: s["T"] ** 3 + 2 * s["T"] * (s["T2"] - 5 * s["S2"]) + 24 * s["S3"] - 8 * s["R"]
                    - 8 * s["B"])
           + 12 * prod(lambda s: s["T"] * (s["T2"] - 2 * s["S2"]) + 2 * s["T3"] + 24 * s["S3"] - 4 * s["U"]
                       - 16 * s["R"] - 4 * s["B"])) / (n * n1 * n2 * n3 * n4)
    sp6 = prod(lambda s: -s["T"] ** 3 - 6 * s["T"] * (s["T2"] - 3 * s["S2"]) - 8 * s["T3"] - 120 * s["S3"]
               + 16 * s["U"] + 72 * s["R"] + 24 * s["B"]) / (n * n1 * n2 * n3 * n4 * n5)
    m3 = sp1 + sp2 + sp3 + sp4 + sp5 + sp6
    skew = (m3 - 3 * var * mu - mu**3) / var**1.5 if var > 0 else float("nan")
    return float(mu), float(var), float(skew)


def _quantile_sample(dist, n_permutations: int) -> np.ndarray:
    """The P quantiles of a fitted null at probabilities (i - 1/2) / P."""
    return dist.ppf((np.arange(n_permutations) + 0.5) / n_permutations)


def _pearson3(mu: float, var: float, skew: float):
    sd = math.sqrt(max(var, 0.0))
    if not np.isfinite(skew):
        return sps.norm(loc=mu, scale=sd)
    return sps.pearson3(skew, loc=mu, scale=sd)


def _gamma(mu: float, var: float):
    if not (mu > 0 and var > 0):
        return sps.norm(loc=mu, scale=math.sqrt(max(var, 0.0)))
    return sps.gamma(mu * mu / var, scale=var / mu)


@dataclass(frozen=True)
class _GramStats:
    """A model's centred features and the traces of its centred linear Gram matrix ``K = Xc Xc^T``."""

    Xc: np.ndarray
    stats: dict
    gram: np.ndarray | None  # K itself when n is small enough to hold it


def _cube_sum(Xc: np.ndarray, block: int = 512, workers: int | None = None) -> float:
    """``sum_ij K_ij^3`` for ``K = Xc Xc^T`` over the upper triangle: float32 GEMM blocks, float64 sums,
    blocks shared between threads with single-threaded BLAS (:func:`~._pairwise.run_workers`)."""
    from ._pairwise import assign_blocks, run_workers, sweep_workers, upper_blocks

    n = Xc.shape[0]
    x32 = np.ascontiguousarray(Xc, dtype=np.float32)

    def run(blocks):
        total = 0.0
        scratch = Scratch()
        for s, e in blocks:
            K = np.matmul(x32[s:e], x32[s:].T, out=scratch.get("k", (e - s, n - s), np.float32))
            K3 = np.multiply(K, K, out=scratch.get("k3", K.shape, np.float32))
            np.multiply(K3, K, out=K3)
            total += float(K3[:, : e - s].sum(dtype=np.float64)) + 2.0 * float(K3[:, e - s:].sum(dtype=np.float64))
        return total

    workers = sweep_workers() if workers is None else workers
    return float(sum(run_workers(run, assign_blocks(list(upper_blocks(n, block)), n, workers))))


def _gram_stats(X: np.ndarray, *, third: bool, keep_gram: bool | None = None) -> _GramStats:
    """Centred features and the permutation-moment traces of ``K = Xc Xc^T`` (from the ``d x d`` product
    ``G = Xc^T Xc`` when d <= n; ``sum K_ij^3`` by :func:`_cube_sum`). ``keep_gram``: also hold K
    (default: when ``n <= max(d, 1000)``, where the Gram form of a permutation is the cheaper one)."""
    n, d = X.shape
    Xc = X - X.mean(axis=0)
    kd = np.einsum("ij,ij->i", Xc, Xc)  # diag K
    if keep_gram is None:
        keep_gram = n <= max(d, 1000)
    K = Xc @ Xc.T if keep_gram or d > n else None
    if d <= n:
        G = Xc.T @ Xc
    else:
        G = K
    st = {"T": float(kd.sum()), "T2": float(np.einsum("ij,ij->", G, G)), "S2": float(kd @ kd)}
    if third:
        GG = G @ G
        st["T3"] = float(np.einsum("ij,ji->", GG, G))
        st["S3"] = float(np.sum(kd * kd * kd))
        st["U"] = float(np.einsum("ij,ij->", K * K, K)) if K is not None else _cube_sum(Xc)
        if d <= n:
            st["R"] = float(kd @ np.einsum("ij,ij->i", Xc @ G, Xc))  # (K^2)_ii = x_i^T G x_i
        else:
            st["R"] = float(kd @ np.einsum("ij,ij->i", K, K))
        v = Xc.T @ kd
        st["B"] = float(v @ v)
    return _GramStats(Xc, st, K)


def _cka_raw(a: _GramStats, b: _GramStats) -> float:
    n, da = a.Xc.shape
    db = b.Xc.shape[1]
    if a.gram is not None and b.gram is not None and n * n <= da * db:
        num = float(np.einsum("ij,ij->", a.gram, b.gram))
    else:
        M = a.Xc.T @ b.Xc
        num = float(np.einsum("ij,ij->", M, M))
    den = math.sqrt(a.stats["T2"] * b.stats["T2"])
    return num / den if den > 0 else float("nan")


def _exact_rv_null(A: np.ndarray | None, B: np.ndarray | None, Xc, Yc, perms: np.ndarray) -> np.ndarray:
    """``tr(A P B P^T)`` for every permutation: from the n x n matrices (``sum A * B[pi][:, pi]``) or, for
    linear kernels with ``n d_a d_b < n^2``, from ``||Xc^T Yc[pi]||_F^2``."""
    out = np.empty(perms.shape[0])
    use_gram = A is not None and B is not None and (Xc is None or A.shape[0] ** 2 <= Xc.shape[1] * Yc.shape[1])
    for p, pi in enumerate(perms):
        if use_gram:
            out[p] = float(np.einsum("ij,ij->", A, B[np.ix_(pi, pi)]))
        else:
            M = Xc.T @ Yc[pi]
            out[p] = float(np.einsum("ij,ij->", M, M))
    return out


def _choose(method: str, n_permutations: int, cost_per_perm: float, budget: float = 1e9) -> str:
    """``method``, or for ``"auto"``: ``"permutation"`` while ``n_permutations * cost_per_perm <= budget``,
    else ``"moments"``."""
    if method not in ("auto", "permutation", "moments"):
        raise ValueError(f"method must be 'auto', 'permutation' or 'moments'; got {method!r}")
    if method != "auto":
        return method
    return "permutation" if cost_per_perm * n_permutations <= budget else "moments"


def _rv_null(sa: Mapping[str, float], sb: Mapping[str, float], perms: np.ndarray, *, exact: tuple | None,
             fit, third: bool = False) -> tuple[np.ndarray, float]:
    """Null sample of an RV coefficient ``tr(A P B P^T) / sqrt(tr A^2 tr B^2)`` and its exact permutation mean.

    Parameters
    ----------
    sa, sb : mapping
        Per-model traces (:func:`permutation_moments`).
    perms : numpy.ndarray, shape (P, n)
    exact : tuple or None
        ``(A, B, Xc, Yc)`` of :func:`_exact_rv_null`: every permutation evaluated; None: the P quantiles of
        ``fit(mean, variance, skewness)`` (a frozen scipy distribution) of the exact permutation moments.
    third : bool
        Compute the skewness (for ``fit``).

    Returns
    -------
    null : numpy.ndarray, shape (P,)
    mean : float
        Exact permutation mean.
    """
    den = math.sqrt(sa["T2"] * sb["T2"])
    mu, var, skew = permutation_moments(sa, sb, perms.shape[1], third=third)
    if exact is not None:
        return _exact_rv_null(*exact, perms) / den, mu / den
    return _quantile_sample(fit(mu / den, var / den**2, skew), perms.shape[0]), mu / den


def _gram_stats_all(arrays: Sequence[np.ndarray], how: str) -> list:
    """:func:`_gram_stats` of every model, with the third-moment inputs when ``how == "moments"``."""
    return [_gram_stats(A, third=how == "moments") for A in arrays]


def cka_null(X, Y, perms: np.ndarray, *, method: str = "auto", stats=None) -> tuple[float, np.ndarray, float, str]:
    """Raw linear CKA (biased HSIC, :func:`~.metrics.cka` with ``kernel="linear"``) and its permutation null.

    Parameters
    ----------
    X : array-like, shape (n, d_a)
    Y : array-like, shape (n, d_b)
    perms : numpy.ndarray, shape (P, n)
    method : {"auto", "permutation", "moments"}
        ``"permutation"``: exact, every permutation evaluated (n^2 or ``n d_a d_b`` per permutation);
        ``"moments"``: Pearson type III with the exact permutation mean, variance and skewness, null sample
        = its P quantiles; ``"auto"``: permutation while ``P min(n^2, n d_a d_b) <= 1e9``.
    stats : (_GramStats, _GramStats), optional
        Precomputed per-model statistics (internal, :func:`calibrate_pairs`).

    Returns
    -------
    raw : float
    null : numpy.ndarray, shape (P,)
    null_mean : float
        Exact permutation mean.
    method : str
        What was done, in words.
    """
    if stats is None:
        X, Y = check_pair(X, Y)
        (n, da), db = X.shape, Y.shape[1]
    else:
        (n, da), db = stats[0].Xc.shape, stats[1].Xc.shape[1]
    how = _choose(method, perms.shape[0], min(n * n, n * da * db))
    if stats is None:
        stats = tuple(_gram_stats_all([X, Y], how))
    a, b = stats
    exact = how == "permutation"
    null, mean = _rv_null(a.stats, b.stats, perms, exact=(a.gram, b.gram, a.Xc, b.Xc) if exact else None,
                          fit=_pearson3, third=not exact)
    if exact:
        return _cka_raw(a, b), null, mean, "permutation (exact, from Gram matrices / cross products)"
    return _cka_raw(a, b), null, mean, "moments (exact permutation mean, variance, skewness; Pearson type III)"


# -- distance correlation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _DistanceStats:
    """Traces of a model's double-centred distance matrix ``A = H a H`` (``a_ij = ||x_i - x_j||``), and A
    itself when n is small."""

    stats: dict
    A: np.ndarray | None


def _exact_distance_stats(X: np.ndarray) -> _DistanceStats:
    from scipy.spatial.distance import pdist, squareform

    n = X.shape[0]
    a = squareform(pdist(X))
    r = a.sum(axis=1)
    A = a - r[:, None] / n - r[None, :] / n + r.sum() / n**2
    diag = np.diag(A).copy()
    return _DistanceStats({"T": float(diag.sum()), "T2": float(np.einsum("ij,ij->", A, A)),
                           "S2": float(diag @ diag)}, A)


def _distance_stats_all(arrays: Sequence[np.ndarray], how: str) -> tuple[np.ndarray, list]:
    """Raw ``dCor^2`` of every pair of models (M, M) (not clipped) and every model's :class:`_DistanceStats`:
    from the n x n double-centred matrices for ``how == "permutation"`` (kept for the exact null), else from
    one :func:`distance_sweep`."""
    if how != "permutation":
        return distance_sweep(arrays)
    st = [_exact_distance_stats(A) for A in arrays]
    d2 = np.eye(len(st))
    for i, j in zip(*np.triu_indices(len(st), 1)):
        a, b = st[i], st[j]
        d2[i, j] = d2[j, i] = float(np.einsum("ij,ij->", a.A, b.A)) / math.sqrt(a.stats["T2"] * b.stats["T2"])
    return d2, st


def _dcor_value(r2: float, squared: bool) -> float:
    """The calibrated distance-correlation statistic from a raw ``dCor^2``: clipped to [0, 1], its square root
    unless ``squared``."""
    r2 = min(max(float(r2), 0.0), 1.0)
    return r2 if squared else math.sqrt(r2)


def distance_sweep(arrays: Sequence[np.ndarray], *, precision: str = "auto", block_size: int = 256,
                   workers: int | None = None) -> tuple[np.ndarray, list]:
    """Distance correlation (V-statistic) of every pair of models and each model's permutation-moment
    traces, from one upper-triangle sweep over all models together.

    Each block of rows is turned into every model's distances once (one float32 GEMM per model,
    :func:`~._pairwise.sqdist_block` with exact near-zero distances, as
    :func:`~.dependence.distance_correlation`), shifted by the mean of the model's first block (centring
    is unchanged by a constant; the sums then hold fluctuations), and feeds the row sums of every model and
    the sums ``sum_ij a_ij b_ij`` of every pair (:func:`~._pairwise.double_centred_inner` turns them into
    centred inner products). Compared with one :func:`~.dependence.distance_correlation` call per pair this
    computes each model's distances once instead of ``n_models - 1`` times.

    Parameters
    ----------
    arrays : sequence of numpy.ndarray, shapes (n, d_m), float64
    precision : {"auto", "float32", "float64"}
    block_size : int
    workers : int, optional
        Threads (default: :func:`~._pairwise.sweep_workers` from 1,500 rows).

    Returns
    -------
    dcor2 : numpy.ndarray, shape (M, M)
        Squared distance correlations (V-statistic, clipped to [0, 1]); diagonal 1 (0 for a constant model).
    stats : list of _DistanceStats
        Per model ``T = tr A``, ``T2 = sum A_ij^2``, ``S2 = sum A_ii^2``.
    """
    from ._pairwise import run_upper_blocks, sqdist_block

    n = arrays[0].shape[0]
    M = len(arrays)
    dtype = working_dtype(precision, n)
    rows = [augmented_rows(A, dtype) for A in arrays]
    shifts: list = []

    def run(blocks):
        S = np.zeros((M, M))
        r = np.zeros((M, n))
        scratch = Scratch()
        for s, e in blocks:
            b = e - s
            Ds = []
            for m, rw in enumerate(rows):
                D = sqdist_block(rw, s, e, True, scratch.get(f"d{m}", (b, n - s), dtype))
                np.sqrt(D, out=D)
                if len(shifts) < M:  # the first block (run alone): its mean is the shift
                    shifts.append(float(D.sum(dtype=np.float64)) / D.size)
                D -= D.dtype.type(shifts[m])
                r[m, s:e] += D.sum(axis=1, dtype=np.float64)
                if b < n - s:
                    r[m, e:] += D[:, b:].sum(axis=0, dtype=np.float64)
                Ds.append(D)
            for i in range(M):
                for j in range(i, M):
                    # diagonal tile once (it holds (i, j) and (j, i)), the rest twice
                    S[i, j] += np.einsum("ij,ij->i", Ds[i][:, :b], Ds[j][:, :b]).sum(dtype=np.float64)
                    if b < n - s:
                        S[i, j] += 2.0 * np.einsum("ij,ij->i", Ds[i][:, b:], Ds[j][:, b:]).sum(dtype=np.float64)
        return S, r

    parts = run_upper_blocks(run, n, block_size, workers)
    S = sum(p[0] for p in parts)
    r = sum(p[1] for p in parts)
    inner = np.zeros((M, M))
    for i in range(M):
        for j in range(i, M):
            inner[i, j] = inner[j, i] = double_centred_inner(n, S[i, j], r[i], r[j])
    self_ = np.diag(inner).copy()
    den = np.sqrt(np.outer(self_, self_))
    dcor2 = np.clip(np.divide(inner, den, out=np.zeros((M, M)), where=den > 0), 0.0, 1.0)
    stats = []
    for m in range(M):
        tot = float(r[m].sum())
        diag = -shifts[m] - 2.0 * r[m] / n + tot / n**2  # A_ii of the shifted matrix (a_ii = 0 - shift)
        stats.append(_DistanceStats({"T": float(diag.sum()), "T2": float(self_[m]), "S2": float(diag @ diag)},
                                    None))
    return dcor2, stats


def dcor_null(X, Y, perms: np.ndarray, *, method: str = "auto", squared: bool = False, stats=None,
              raw: float | None = None) -> tuple[float, np.ndarray, float, str]:
    """Raw distance correlation (V-statistic, :func:`~.dependence.distance_correlation`) and its null.

    Parameters
    ----------
    X : array-like, shape (n, d_a)
    Y : array-like, shape (n, d_b)
    perms : numpy.ndarray, shape (P, n)
    method : {"auto", "permutation", "moments"}
        ``"permutation"``: exact, from the n x n double-centred matrices (n^2 memory and work per
        permutation); ``"moments"``: a gamma distribution with the exact permutation mean and variance of
        ``dCor^2`` (inputs from one distance sweep, :func:`distance_sweep`), null sample = its P quantiles
        (square roots taken unless ``squared``); ``"auto"``: permutation while ``P n^2 <= 1e9``.
    squared : bool
        Calibrate ``dCor^2`` instead of ``dCor``.
    stats : (_DistanceStats, _DistanceStats), optional
        Precomputed per-model statistics (internal); then ``raw`` (of the calibrated statistic) is required.
    raw : float, optional
        Precomputed raw value.

    Returns
    -------
    raw, null, null_mean, method
    """
    if stats is None:
        X, Y = check_pair(X, Y)
        d2, stats = _distance_stats_all([X, Y], _choose(method, perms.shape[0], X.shape[0] ** 2))
        raw = _dcor_value(d2[0, 1], squared)
    a, b = stats
    exact = a.A is not None and b.A is not None and method != "moments"
    r2, mu = _rv_null(a.stats, b.stats, perms, exact=(a.A, b.A, None, None) if exact else None,
                      fit=lambda m, v, _: _gamma(m, v))
    r2 = np.clip(r2, 0.0, 1.0)
    null = r2 if squared else np.sqrt(r2)
    if exact:
        return float(raw), null, float(np.mean(null)), "permutation (exact, from double-centred distance matrices)"
    mean = mu if squared else float(np.mean(null))
    return float(raw), null, float(mean), "moments (exact permutation mean and variance of dCor^2; gamma)"
