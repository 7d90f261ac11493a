"""Alignment scores tested against chance: permutation nulls and null-calibrated scores.

A raw similarity score is not comparable across sets of different size, models of different width or
neighbourhood sizes: its value when the two representations are unrelated moves with ``d / n`` for
CKA-like metrics and with ``k / n`` for CKNNA and mutual k-NN (two independent Gaussian matrices of
100 x 2,000 have linear CKA 0.95). Gröger, Wen & Brbić (2026), "Revisiting the Platonic Representation
Hypothesis: An Aristotelian View" (arXiv 2602.14486, package ``calibrated-similarity``, Algorithm 1)
calibrate any score by a permutation null:

* shuffle the rows of one representation against the other ``P`` times and recompute the score: the
  null sample ``s_1 .. s_P``;
* ``tau`` is the ``q`` quantile (``q = 0.95``) of the null *with the observed score included*: the
  ``ceil(q (P + 1))``-th smallest of the ``P + 1`` values (the package's order statistic);
* ``p = (1 + #{s_p >= s}) / (1 + P)``;
* the calibrated score is ``max(0, (s - tau) / (s_max - tau))`` (clipped at 1; ``s_max = 1``): 0 when
  the score is within chance at level ``1 - q``, 1 for a perfect match.

Information imbalance is *lower* when more aligned, so it is calibrated in its own direction: ``tau`` is
the ``1 - q`` quantile, ``p = (1 + #{s_p <= s}) / (1 + P)`` and the calibrated score is
``max(0, (tau - s) / (tau - 0))`` (the calibration of ``1 - Delta``, whose best value is 1).

Fast nulls (every one reproduces the permutation null or states its approximation)
-----------------------------------------------------------------------------------
A permutation ``pi`` relabels the rows of Y (``Y' = Y[pi]``); it changes neither model's neighbour lists
nor its Gram or distance matrix, only how they are paired. So every per-model quantity is computed once:

* **mutual k-NN and CKNNA** (:func:`graph_nulls`): the k-NN graph of each model (exact sets,
  :func:`~.neighbours.neighbour_search`) and its kernel values. Under ``pi`` the neighbours of i in Y' are
  ``pi^-1(N^Y(pi(i)))``, so a mutual pair is ``j in N^X(i)`` with ``pi(j) in N^Y(pi(i))``: the Y list of
  ``pi(i)`` is stamped into an n-array and each X edge is one look-up, O(n k) per permutation (a numba
  kernel, :mod:`._null_kernels`; no n x n array).
  CKNNA's denominator (the two self-alignments) does not change under a relabelling; its numerator, the
  HSIC of the kernels restricted to the mutual pairs, is summed over those pairs alone (under the null
  about ``k^2`` of them). With the same permutations the null values equal those of calling
  :func:`~.metrics.cknna` / :func:`~.metrics.mutual_knn` on ``(X, Y[pi])`` (tests: 1e-9).
* **linear CKA** (biased HSIC; the RV coefficient of the centred Gram matrices; :func:`cka_null`):
  ``CKA(X, Y[pi]) = tr(K P L P^T) / sqrt(tr K^2 tr L^2)``, only the numerator moves. Exact permutations
  from the Gram matrices (``n^2`` per permutation) or the ``d_a x d_b`` cross products (``n d_a d_b``)
  when that is cheap (``method="permutation"``); otherwise (``method="moments"``, large n) the exact
  first three moments of the permutation distribution of ``tr(K P L P^T)`` (Kazi-Aoual, Hitier,
  Sabatier & Lebreton 1995, "Refined approximations to permutation tests for multivariate inference",
  CSDA 20: 643-656; in the formulation of Bilodeau & Guetsop Nangue 2017, as PALM and brian-lau/highdim
  code it) from per-model traces (``tr K``, ``tr K^2``, ``tr K^3`` from the ``d x d`` product, the
  diagonal, ``sum K_ij^3`` in one blocked sweep), and a Pearson type III distribution with those moments
  (Josse, Pagès & Husson 2008, CSDA 53: 82-91).
* **distance correlation** (V-statistic, the study's; :func:`dcor_null`): ``dCor^2`` is the same RV
  coefficient of the double-centred distance matrices A, B. Exact permutations from the n x n matrices
  for small n; for large n the exact mean and variance of ``tr(A P B P^T)`` (same references), whose
  inputs (``tr A``, ``tr A^2``, ``sum A_ii^2``) need only the row sums and the sum of squares of each
  model's distance matrix, and a gamma distribution with that mean and variance (``tr A^3`` would need
  O(n^3), so no third moment). One upper-triangle sweep over all models together
  (:func:`distance_sweep`) gives these and the raw dCor of every pair, each model's distances computed
  once.
* **information imbalance** (:func:`imbalance_null`): ranks need the full n x n rank matrix of Y, so the
  null (and the score it is compared with) is computed exactly on a stated seeded subsample of m rows
  (default 2,000) with ``k m / n`` source neighbours, the full set's ``k / n`` (the raw Delta depends on
  the neighbourhood's share of the set: so scaled, the subsample's raw value and calibrated score match
  the full set's, measured within 0.002 at m = n / 4): the rank matrix of each model there once, then
  ``m k`` look-ups per permutation. The calibration then refers to that subsample; its raw value is
  reported (``n_rows``).

From the fitted distributions the null sample is the ``P`` quantiles at probabilities ``(i - 1/2) / P``
(deterministic), so ``tau``, ``p`` and the calibrated score follow from the same formulas as for a
sampled null. ``benchmarks/calibration.py`` measures every approximation against a full permutation null
at n = 2,000 and times everything at n = 10,000.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import stats as sps

from ._pairwise import Scratch, augmented_rows, double_centred_inner, working_dtype
from ._validation import check_embeddings, check_k, check_pair
from .dependence import distance_correlation
from .neighbours import knn, neighbour_search

__all__ = [
    "Calibration",
    "calibrate_scores",
    "permutations",
    "permutation_null",
    "calibrate",
    "CosineGraph",
    "cosine_graph",
    "graph_nulls",
    "cka_null",
    "dcor_null",
    "imbalance_null",
    "permutation_moments",
    "calibrate_pairs",
    "PAIR_METRICS",
    "CALIBRATION_QUANTILE",
    "MAX_K_OVER_N",
    "distance_sweep",
    "calibration_matrices",
    "calibrated_replicates",
    "k_over_n_warning",
    "settle_verdict",
    "NOT_ESTABLISHED",
]

#: Metrics :func:`calibrate_pairs` calibrates, and whether a higher value means more aligned.
PAIR_METRICS = {"cknna": True, "mutual_knn": True, "cka": True, "dcor": True, "information_imbalance": False}
CALIBRATION_QUANTILE = 0.95
_EPS_DEN = 1e-12  # denominator floor of the calibrated score (as calibrated-similarity)


# -- Algorithm 1 on a given null sample -----------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """A score calibrated against its permutation null.

    Attributes
    ----------
    raw : float
        The observed score (for a subsampled null: on the subsample, see ``n_rows``).
    null_mean : float
        Mean of the null (the exact permutation mean where ``method`` uses moments).
    tau : float
        ``quantile`` of the null with the observed score included (``1 - quantile`` for metrics that are
        lower when more aligned).
    p_value : float
        ``(1 + #{null at least as aligned as raw}) / (1 + n_permutations)``.
    calibrated : float
        ``max(0, (raw - tau) / (s_max - tau))`` clipped at 1 (in the metric's direction).
    n_permutations : int
    quantile : float
    method : str
        How the null was obtained, in words.
    null : numpy.ndarray, shape (n_permutations,)
        The null scores (quantiles of the fitted distribution for moment methods).
    n_rows : int
        Rows the raw score and its null were computed on.
    higher_is_more_aligned : bool
    """

    raw: float
    null_mean: float
    tau: float
    p_value: float
    calibrated: float
    n_permutations: int
    quantile: float
    method: str
    null: np.ndarray = field(repr=False)
    n_rows: int = 0
    higher_is_more_aligned: bool = True

    def as_dict(self) -> dict:
        """JSON-ready scalars (the null sample left out)."""
        return {"raw": self.raw, "null_mean": self.null_mean, "tau": self.tau, "p_value": self.p_value,
                "calibrated": self.calibrated, "n_permutations": self.n_permutations,
                "quantile": self.quantile, "method": self.method, "n_rows": self.n_rows}


def _order_index(quantile: float, n_values: int) -> int:
    """0-based index of the ``ceil(q * n_values)``-th smallest value, clamped to [0, n_values - 1]."""
    return int(min(max(math.ceil(quantile * n_values) - 1, 0), n_values - 1))


def calibrate_scores(raw: float, null, *, quantile: float = CALIBRATION_QUANTILE, s_max: float = 1.0,
                     higher_is_more_aligned: bool = True, null_mean: float | None = None,
                     method: str = "permutation", n_rows: int = 0) -> Calibration:
    """Algorithm 1 of arXiv 2602.14486 on a given null sample.

    Parameters
    ----------
    raw : float
        Observed score.
    null : array-like, shape (P,)
        Scores under permutation.
    quantile : float
        ``q`` of ``tau`` (0.95).
    s_max : float
        Best attainable score: 1 for similarities; for metrics lower when more aligned, the best
        (smallest) value, 0 for information imbalance.
    higher_is_more_aligned : bool
        False for information imbalance: tau is the ``1 - q`` quantile, the p-value counts null scores
        ``<= raw`` and the calibrated score is ``max(0, (tau - raw) / (tau - s_max))``.
    null_mean : float, optional
        Exact null mean, if known (else the mean of ``null``).
    method : str
        Recorded in the result.
    n_rows : int
        Recorded in the result.

    Returns
    -------
    Calibration
        All fields NaN (p-value NaN) when ``raw`` or any null value is not finite.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1); got {quantile}")
    null = np.asarray(null, dtype=np.float64).ravel()
    P = null.size
    if P < 1:
        raise ValueError("the null needs at least one permutation")
    raw = float(raw)
    mean = float(np.mean(null)) if null_mean is None else float(null_mean)
    if not (np.isfinite(raw) and np.all(np.isfinite(null))):
        nan = float("nan")
        return Calibration(raw, mean, nan, nan, nan, P, quantile, method, null, n_rows, higher_is_more_aligned)
    sign = 1.0 if higher_is_more_aligned else -1.0
    s, nul, best = sign * raw, sign * null, sign * s_max
    combined = np.sort(np.append(nul, s))
    tau = float(combined[_order_index(quantile, P + 1)])
    p = float((1 + np.count_nonzero(nul >= s)) / (P + 1))
    cal = float(min(max((s - tau) / max(best - tau, _EPS_DEN), 0.0), 1.0))
    return Calibration(raw, mean, sign * tau, p, cal, P, quantile, method, null, n_rows, higher_is_more_aligned)


def permutations(n: int, n_permutations: int, seed) -> np.ndarray:
    """The permutations every null of this module uses: row p is ``pi_p``, Y is paired as ``Y[pi_p]``.

    ``numpy.random.default_rng(seed).permutation(n)`` drawn ``n_permutations`` times, shape (P, n), int64.
    """
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n) for _ in range(int(n_permutations))]).astype(np.int64)


def permutation_null(metric_fn: Callable, X, Y, n_permutations: int = 200, seed=0) -> np.ndarray:
    """The plain permutation null: ``metric_fn(X, Y[pi_p])`` for the permutations of :func:`permutations`.

    Parameters
    ----------
    metric_fn : callable
        ``metric_fn(X, Y) -> float`` (e.g. ``functools.partial(cknna, k=10)``).
    X : array-like, shape (n, d_a)
    Y : array-like, shape (n, d_b)
    n_permutations : int
    seed : int or numpy.random.SeedSequence

    Returns
    -------
    numpy.ndarray, shape (n_permutations,)
    """
    X, Y = check_pair(X, Y)
    return np.array([float(metric_fn(X, Y[pi])) for pi in permutations(X.shape[0], n_permutations, seed)])


def calibrate(metric_fn: Callable, X, Y, n_permutations: int = 200, seed=0, *,
              quantile: float = CALIBRATION_QUANTILE, s_max: float = 1.0,
              higher_is_more_aligned: bool = True) -> Calibration:
    """Calibrate any metric by the plain permutation loop (P + 1 evaluations; the reference for the fast
    nulls). Same result as ``calibrated_similarity.calibrate(X, Y, metric_fn, K=P, alpha=1 - quantile)``
    given the same permutations (that package computes in float32)."""
    X, Y = check_pair(X, Y)
    raw = float(metric_fn(X, Y))
    null = permutation_null(metric_fn, X, Y, n_permutations, seed)
    return calibrate_scores(raw, null, quantile=quantile, s_max=s_max,
                            higher_is_more_aligned=higher_is_more_aligned, n_rows=X.shape[0],
                            method="permutation (plain loop)")


# -- neighbourhood metrics: k-NN graphs reused across permutations ----------------------------------------
@dataclass(frozen=True)
class CosineGraph:
    """One model's neighbour lists and kernel values, as :func:`~.metrics.cknna` / :func:`~.metrics.mutual_knn`
    compute them.

    Attributes
    ----------
    indices : numpy.ndarray, shape (n, m), int64
        Neighbours of every row (self excluded), each row sorted by index.
    values : numpy.ndarray, shape (n, m), float64
        Kernel values ``x_i . x_j`` of the (L2-normalised, for cosine) rows, in the order of ``indices``.
    diagonal : numpy.ndarray, shape (n,)
        ``|x_i|^2`` of the searched rows (1, or 0 for a zero row, for cosine).
    metric : str
    """

    indices: np.ndarray
    values: np.ndarray
    diagonal: np.ndarray
    metric: str


def cosine_graph(X, m: int, *, metric: str = "cosine", backend: str = "auto") -> CosineGraph:
    """Exact m nearest neighbours of every row of X and their kernel values (one search; see
    :func:`~.neighbours.neighbour_search`). Kernel values as :func:`~.metrics.cknna` forms them:
    ``x.y = (|x|^2 + |y|^2 - |x - y|^2) / 2`` on the searched rows."""
    X = check_embeddings(X)
    n = X.shape[0]
    if m == 0:
        pts = neighbour_search(X, 1, metric=metric, backend=backend, exact_values=False).points
        return CosineGraph(np.zeros((n, 0), np.int64), np.zeros((n, 0)), np.einsum("ij,ij->i", pts, pts), metric)
    res = neighbour_search(X, m, metric=metric, backend=backend, exact_values=False)
    nrm = np.einsum("ij,ij->i", res.points, res.points)
    vals = 0.5 * (nrm[:, None] + nrm[res.indices] - res.d2)
    order = np.argsort(res.indices, axis=1, kind="stable")
    return CosineGraph(np.ascontiguousarray(np.take_along_axis(res.indices, order, axis=1)),
                       np.ascontiguousarray(np.take_along_axis(vals, order, axis=1)), nrm, metric)


def _graph_pass(gx: CosineGraph, gy: CosineGraph, perms: np.ndarray, *, self_pairs: bool = False,
                unbiased: bool = True, hsic: bool = True):
    """Mutual-pair counts (self excluded) and CKNNA numerators for every permutation (rows of ``perms``)."""
    from ._null_kernels import graph_null

    return graph_null(gx.indices, gx.values, gx.diagonal, gy.indices, gy.values, gy.diagonal,
                  np.ascontiguousarray(perms, dtype=np.int64), bool(self_pairs), bool(unbiased), bool(hsic))


def _self_alignment(g: CosineGraph, *, self_pairs: bool, unbiased: bool) -> float:
    """HSIC of a model's masked kernel with itself (CKNNA's denominator factor; invariant to relabelling)."""
    ident = np.arange(g.indices.shape[0], dtype=np.int64)[None, :]
    return float(_graph_pass(g, g, ident, self_pairs=self_pairs, unbiased=unbiased)[1][0])


def graph_nulls(gx: CosineGraph, gy: CosineGraph, perms: np.ndarray, *, cknna: bool = True,
                unbiased: bool = True, self_pairs: bool = False, eps: float = 1e-6,
                den: tuple[float, float] | None = None) -> dict:
    """Raw score and permutation null of mutual k-NN and CKNNA from two models' graphs.

    Parameters
    ----------
    gx, gy : CosineGraph
        Graphs of X and Y with the same number of neighbours m (mutual k-NN: m = k; CKNNA: m = k, or
        k - 1 with ``self_pairs``).
    perms : numpy.ndarray, shape (P, n)
        Permutations (:func:`permutations`); Y is paired as ``Y[pi]``.
    cknna : bool
        Also the CKNNA numerators (else only the overlap counts).
    unbiased, self_pairs, eps
        CKNNA variant (:func:`~.metrics.cknna`).
    den : (float, float), optional
        Precomputed self-alignments of X and Y for this variant.

    Returns
    -------
    dict
        ``{"mutual_knn": (raw, null), "cknna": (raw, null)}`` (CKNNA only if asked), ``null`` of shape (P,).
    """
    n, m = gx.indices.shape
    allp = np.vstack([np.arange(n, dtype=np.int64)[None, :], perms])
    counts, num = _graph_pass(gx, gy, allp, self_pairs=self_pairs, unbiased=unbiased, hsic=cknna)
    out = {"mutual_knn": (float(counts[0]) / (n * max(m, 1)), counts[1:] / (n * max(m, 1)))}
    if cknna:
        if den is None:
            den = (_self_alignment(gx, self_pairs=self_pairs, unbiased=unbiased),
                   _self_alignment(gy, self_pairs=self_pairs, unbiased=unbiased))
        kk, ll = den
        if not (kk > 0 and ll > 0):
            vals = np.full(num.shape, np.nan)
        else:
            vals = num / (np.sqrt(kk * ll) + eps)
        out["cknna"] = (float(vals[0]), vals[1:])
    return out


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


def _choose(method: str, n: int, n_permutations: int, cost_per_perm: float, budget: float = 1e9) -> str:
    if method not in ("auto", "permutation", "moments"):
        raise ValueError(f"method must be 'auto', 'permutation' or 'moments'; got {method!r}")
    if method != "auto":
        return method
    return "permutation" if cost_per_perm * n_permutations <= budget else "moments"


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
        n = X.shape[0]
        how = _choose(method, n, perms.shape[0], min(n * n, n * X.shape[1] * Y.shape[1]))
        stats = (_gram_stats(X, third=how == "moments"), _gram_stats(Y, third=how == "moments"))
    a, b = stats
    n, da = a.Xc.shape
    db = b.Xc.shape[1]
    how = _choose(method, n, perms.shape[0], min(n * n, n * da * db))
    raw = _cka_raw(a, b)
    den = math.sqrt(a.stats["T2"] * b.stats["T2"])
    mu, var, skew = permutation_moments(a.stats, b.stats, n, third=how == "moments")
    if how == "permutation":
        null = _exact_rv_null(a.gram, b.gram, a.Xc, b.Xc, perms) / den
        return raw, null, mu / den, "permutation (exact, from Gram matrices / cross products)"
    null = _quantile_sample(_pearson3(mu / den, var / den**2, skew), perms.shape[0])
    return raw, null, mu / den, "moments (exact permutation mean, variance, skewness; Pearson type III)"


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
        n = X.shape[0]
        how = _choose(method, n, perms.shape[0], n * n)
        if how == "permutation":
            stats = (_exact_distance_stats(X), _exact_distance_stats(Y))
            a, b = stats
            r2 = float(np.einsum("ij,ij->", a.A, b.A)) / math.sqrt(a.stats["T2"] * b.stats["T2"])
        else:
            d2, st = distance_sweep([X, Y])
            stats, r2 = (st[0], st[1]), float(d2[0, 1])
        r2 = min(max(r2, 0.0), 1.0)
        raw = r2 if squared else math.sqrt(r2)
    a, b = stats
    n = perms.shape[1]
    den = math.sqrt(a.stats["T2"] * b.stats["T2"])
    mu, var, _ = permutation_moments(a.stats, b.stats, n, third=False)
    if a.A is not None and b.A is not None and method != "moments":
        r2 = np.clip(_exact_rv_null(a.A, b.A, None, None, perms) / den, 0.0, 1.0)
        null = r2 if squared else np.sqrt(r2)
        return float(raw), null, float(np.mean(null)), "permutation (exact, from double-centred distance matrices)"
    r2 = np.clip(_quantile_sample(_gamma(mu / den, var / den**2), perms.shape[0]), 0.0, 1.0)
    null = r2 if squared else np.sqrt(r2)
    mean = mu / den if squared else float(np.mean(null))
    return float(raw), null, float(mean), "moments (exact permutation mean and variance of dCor^2; gamma)"


# -- information imbalance -----------------------------------------------------------------------------
def _rank_matrix(X: np.ndarray) -> np.ndarray:
    """Doubled mid-ranks ``2 r`` of every row's Euclidean distances to the other rows (``r = 1`` nearest;
    ``r = 1 + #closer + #others tied / 2``, as :func:`~.imbalance.information_imbalance`), self last.

    Distances in float64 from the centred rows; rows with exactly equal distances get their mid-ranks from
    ``scipy.stats.rankdata``. Integers (uint16 below 32,768 rows, else int32): shape (n, n).
    """
    n = X.shape[0]
    Xc = X - X.mean(axis=0)
    sq = np.einsum("ij,ij->i", Xc, Xc)
    D = sq[:, None] + sq[None, :] - 2.0 * (Xc @ Xc.T)
    np.fill_diagonal(D, np.inf)
    order = np.argsort(D, axis=1)
    R = np.empty((n, n), dtype=np.uint16 if 2 * n < 2**16 else np.int32)
    np.put_along_axis(R, order, (2 * np.arange(1, n + 1)).astype(R.dtype)[None, :], axis=1)
    Ds = np.take_along_axis(D, order, axis=1)
    tied = np.flatnonzero((Ds[:, 1:] == Ds[:, :-1]).any(axis=1))
    if tied.size:
        R[tied] = (2.0 * sps.rankdata(D[tied], method="average", axis=1)).astype(R.dtype)
    return R


def imbalance_null(X, Y, perms: np.ndarray, k: int = 1, *, ranks=None, neighbours=None) -> dict:
    """Information imbalance in both directions and their permutation nulls, exactly, from rank matrices.

    ``Delta(X -> Y[pi]) = (2 / n) mean_i mean_{j in N_k^X(i)} r^Y(pi(i), pi(j))`` and
    ``Delta(Y[pi] -> X) = (2 / n) mean_i mean_{j in N_k^Y(i)} r^X(pi^-1(i), pi^-1(j))``: one rank matrix
    per model (n x n doubled mid-ranks, :func:`_rank_matrix`) and one neighbour list per model serve
    every permutation (n k look-ups).
    Memory O(n^2): meant for the subsample of :func:`calibrate_pairs` (default 2,000 rows).

    Returns
    -------
    dict
        ``{"x_to_y": (raw, null), "y_to_x": (raw, null)}``.
    """
    X, Y = check_pair(X, Y)
    n = X.shape[0]
    k = check_k(k, n)
    Rx, Ry = ranks if ranks is not None else (_rank_matrix(X), _rank_matrix(Y))
    nx, ny = neighbours if neighbours is not None else (knn(X, k)[1], knn(Y, k)[1])
    from ._null_kernels import rank_sums as kernel

    ident = np.arange(n, dtype=np.int64)[None, :]
    allp = np.vstack([ident, perms]).astype(np.int64)
    inv = np.empty_like(allp)
    np.put_along_axis(inv, allp, np.broadcast_to(np.arange(n), allp.shape), axis=1)
    # Delta = (2 / n) * mean rank = (doubled-rank sum) / (n * n k)
    xy = kernel(np.ascontiguousarray(nx[:, :k]), Ry, allp) / (n * n * k)
    yx = kernel(np.ascontiguousarray(ny[:, :k]), Rx, inv) / (n * n * k)
    return {"x_to_y": (float(xy[0]), xy[1:]), "y_to_x": (float(yx[0]), yx[1:])}


# -- every pair of several models ------------------------------------------------------------------------
def _pair_seed(seed: int, i: int, j: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), 7919, int(i), int(j)])


def calibrate_pairs(
    embeddings: Sequence,
    *,
    metrics: Sequence[str] = tuple(PAIR_METRICS),
    k: int = 25,
    ii_k: int = 50,
    n_permutations: int = 200,
    quantile: float = CALIBRATION_QUANTILE,
    seed: int = 0,
    options: Mapping[str, Mapping] | None = None,
    cka_method: str = "auto",
    dcor_method: str = "auto",
    ii_subsample: int | None = 2000,
    workers: int = 2,
) -> dict:
    """Calibrate every pair metric of every pair of models (one set).

    Parameters
    ----------
    embeddings : sequence of array-like
        One (n, d_model) array per model, rows paired.
    metrics : sequence of str
        Among ``cknna``, ``mutual_knn``, ``cka``, ``dcor``, ``information_imbalance``.
    k : int
        Neighbours of CKNNA and mutual k-NN (capped at n - 1).
    ii_k : int
        Source neighbours of the information imbalance (capped below the subsample).
    n_permutations : int
        P.
    quantile : float
        q of tau.
    seed : int
        Pair (i, j) uses the permutations of :func:`permutations` with
        ``SeedSequence([seed, 7919, i, j])``; every metric of a pair shares them.
    options : mapping, optional
        Variant keyword arguments per metric, as :mod:`.variants` gives them: ``cknna`` (``unbiased``,
        ``self_pairs``, ``eps``; default the reference's unbiased CKNNA), ``mutual_knn`` (``metric``,
        default ``"cosine"``), ``cka`` (``kernel``, ``unbiased``), ``dcor`` (``estimator``, ``squared``).
        Variants without a fast null (RBF or unbiased CKA, unbiased dCor) fall back to the plain
        permutation loop of :func:`permutation_null`.
    cka_method, dcor_method : {"auto", "permutation", "moments"}
        See :func:`cka_null`, :func:`dcor_null`.
    ii_subsample : int or None
        Rows m of the seeded subsample the information imbalance is calibrated on, with
        ``k_sub = round(ii_k m / n)`` source neighbours so that ``k / n`` is the full set's (None: all rows;
        memory O(n^2)). The raw value of the calibration is the subsample's (``n_rows``).
    workers : int
        Threads over pairs for the graph and rank nulls (the numba kernels release the GIL).

    Returns
    -------
    dict
        ``{metric: {(i, j): Calibration}}``; information imbalance has both ``(i, j)`` (``Delta(i -> j)``)
        and ``(j, i)``.
    """
    arrays = [check_embeddings(A) for A in embeddings]
    n = arrays[0].shape[0]
    if any(A.shape[0] != n for A in arrays):
        raise ValueError("every model needs the same rows")
    unknown = [m for m in metrics if m not in PAIR_METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(PAIR_METRICS)}")
    opts = {m: dict((options or {}).get(m, {})) for m in PAIR_METRICS}
    pairs = list(combinations(range(len(arrays)), 2))
    perms = {p: permutations(n, n_permutations, _pair_seed(seed, *p)) for p in pairs}
    out: dict = {m: {} for m in metrics}

    def summarise(metric, value, null, mean=None, how="permutation (exact, reusing each model's k-NN graph)",
                  rows=n):
        hi = PAIR_METRICS[metric]
        return calibrate_scores(value, null, quantile=quantile, s_max=1.0 if hi else 0.0,
                                higher_is_more_aligned=hi, null_mean=mean, method=how, n_rows=rows)

    def plain_loop(metric, fn):
        """Every pair by a plain permutation loop of ``fn`` (variants without a fast null)."""
        for p in pairs:
            X, Y = arrays[p[0]], arrays[p[1]]
            out[metric][p] = summarise(metric, fn(X, Y), np.array([fn(X, Y[pi]) for pi in perms[p]]),
                                       how="permutation (plain loop)")

    # neighbourhood metrics
    kk = check_k(min(int(k), n - 1), n)
    ck = {"unbiased": True, "self_pairs": None, "eps": 1e-6, **opts["cknna"]}
    ck["self_pairs"] = (not ck["unbiased"]) if ck["self_pairs"] is None else ck["self_pairs"]
    mk_metric = opts["mutual_knn"].get("metric", "cosine")
    graphs: dict = {}

    def graph(i, m_, metric):
        key = (i, m_, metric)
        if key not in graphs:
            graphs[key] = cosine_graph(arrays[i], m_, metric=metric)
        return graphs[key]

    jobs = []
    if "cknna" in metrics:
        jobs.append(("cknna", kk - 1 if ck["self_pairs"] else kk, "cosine"))
    if "mutual_knn" in metrics:
        jobs.append(("mutual_knn", kk, mk_metric))
    shared = len(jobs) == 2 and jobs[0][1:] == jobs[1][1:] and not ck["self_pairs"]
    if jobs:
        for i in range(len(arrays)):
            for _, m_, metric in jobs:
                graph(i, m_, metric)
        dens = {}
        if "cknna" in metrics:
            m_c = jobs[0][1]
            dens = {i: _self_alignment(graph(i, m_c, "cosine"), self_pairs=ck["self_pairs"], unbiased=ck["unbiased"])
                    for i in range(len(arrays))}

        def run_pair(p):
            i, j = p
            res = {}
            for name, m_, metric in jobs:
                if name == "mutual_knn" and shared:
                    continue
                r = graph_nulls(graph(i, m_, metric), graph(j, m_, metric), perms[p], cknna=name == "cknna",
                                unbiased=ck["unbiased"], self_pairs=ck["self_pairs"], eps=ck["eps"],
                                den=(dens[i], dens[j]) if name == "cknna" else None)
                if name == "cknna":
                    res["cknna"] = r["cknna"]
                    if shared:
                        res["mutual_knn"] = r["mutual_knn"]
                else:
                    res["mutual_knn"] = r["mutual_knn"]
            return p, res

        with ThreadPoolExecutor(max(1, int(workers))) as pool:
            for p, res in pool.map(run_pair, pairs):
                for name, (value, null) in res.items():
                    out[name][p] = summarise(name, value, null)

    # linear CKA
    if "cka" in metrics:
        co = {"kernel": "linear", "unbiased": False, **opts["cka"]}
        if co["kernel"] == "linear" and not co["unbiased"]:
            dmax = max(A.shape[1] for A in arrays)
            how = _choose(cka_method, n, n_permutations, min(n * n, n * dmax * dmax))
            st = [_gram_stats(A, third=how == "moments") for A in arrays]
            for p in pairs:
                value, null, mean, desc = cka_null(None, None, perms[p], method=how, stats=(st[p[0]], st[p[1]]))
                out["cka"][p] = summarise("cka", value, null, mean, desc)
        else:
            from .metrics import cka as cka_fn

            plain_loop("cka", lambda X, Y: cka_fn(X, Y, **co))

    # distance correlation
    if "dcor" in metrics:
        do = {"estimator": "biased", "squared": False, **opts["dcor"]}
        if do["estimator"] == "biased":
            how = _choose(dcor_method, n, n_permutations, n * n)
            if how == "permutation":
                st = [_exact_distance_stats(A) for A in arrays]
                d2 = np.array([[float(np.einsum("ij,ij->", a.A, b.A)) / math.sqrt(a.stats["T2"] * b.stats["T2"])
                                for b in st] for a in st])
            else:
                d2, st = distance_sweep(arrays)
            for p in pairs:
                r2 = min(max(float(d2[p]), 0.0), 1.0)
                value = r2 if do["squared"] else math.sqrt(r2)
                value, null, mean, desc = dcor_null(None, None, perms[p], method=how, squared=do["squared"],
                                                    stats=(st[p[0]], st[p[1]]), raw=value)
                out["dcor"][p] = summarise("dcor", value, null, mean, desc)
        else:
            plain_loop("dcor", lambda X, Y: distance_correlation(X, Y, **do))

    # information imbalance, on a seeded subsample
    if "information_imbalance" in metrics:
        if ii_subsample is not None and ii_subsample < n:
            rows = np.sort(np.random.default_rng(np.random.SeedSequence([int(seed), 104729]))
                           .choice(n, int(ii_subsample), replace=False))
        else:
            rows = np.arange(n)
        m_rows = rows.size
        sub = [A[rows] for A in arrays]
        k_full = min(int(ii_k), n - 1)
        # the subsample keeps k / n (k_sub = k m / n): Delta depends on the neighbourhood's share of the set,
        # and so reproduces the full set's raw value (measured: calibrated within 0.002 at m = n / 4)
        kk_ii = check_k(max(1, min(round(k_full * m_rows / n), m_rows - 1)), m_rows)
        R = [_rank_matrix(A) for A in sub]
        NN = [knn(A, kk_ii)[1] for A in sub]
        how = (f"permutation (exact, rank matrices) on a seeded subsample of {m_rows} of {n} rows with "
               f"k = {kk_ii} (k / n = {k_full} / {n} kept)" if m_rows < n
               else f"permutation (exact, rank matrices), k = {kk_ii}")

        def run_ii(p):
            i, j = p
            sp = permutations(m_rows, n_permutations, _pair_seed(seed, i, j)) if m_rows < n else perms[p]
            return p, imbalance_null(sub[i], sub[j], sp, kk_ii, ranks=(R[i], R[j]), neighbours=(NN[i], NN[j]))

        with ThreadPoolExecutor(max(1, int(workers))) as pool:
            for (i, j), r in pool.map(run_ii, pairs):
                out["information_imbalance"][(i, j)] = summarise("information_imbalance", *r["x_to_y"], how=how,
                                                                 rows=m_rows)
                out["information_imbalance"][(j, i)] = summarise("information_imbalance", *r["y_to_x"], how=how,
                                                                 rows=m_rows)
    return out


# -- helpers for the audit document -----------------------------------------------------------------------
#: Neighbourhood share above which a k-NN metric is no longer local (issue 26; arXiv 2602.14486).
MAX_K_OVER_N = 0.1


def calibration_matrices(results: Mapping[tuple, Calibration], n_models: int, directed: bool = False) -> dict:
    """``{"raw", "null_mean", "tau", "p_value", "calibrated"}`` as n_models x n_models lists (None where
    not computed, e.g. the diagonal), mirrored for symmetric metrics; JSON-ready."""
    fields = ("raw", "null_mean", "tau", "p_value", "calibrated")
    mats = {f: [[None] * n_models for _ in range(n_models)] for f in fields}
    for (i, j), c in results.items():
        for f in fields:
            v = float(getattr(c, f))
            v = v if np.isfinite(v) else None
            mats[f][i][j] = v
            if not directed:
                mats[f][j][i] = v
    return mats


def calibrated_replicates(replicates: np.ndarray, cal: Calibration) -> np.ndarray:
    """Raw resampling replicates mapped through a calibration's fixed ``tau``:
    ``clip((s - tau) / (s_max - tau), 0, 1)`` in the metric's direction (s_max = 1, or 0 for metrics lower
    when more aligned). Gives calibrated scores intervals from the same replicates as the raw ones."""
    sign = 1.0 if cal.higher_is_more_aligned else -1.0
    best = 1.0 if cal.higher_is_more_aligned else 0.0
    den = max(sign * (best - cal.tau), _EPS_DEN)
    return np.clip(sign * (np.asarray(replicates, dtype=np.float64) - cal.tau) / den, 0.0, 1.0)


def k_over_n_warning(labels: Sequence[str], k: int, n_by_set: Mapping[str, int], *,
                     limit: float = MAX_K_OVER_N, local_verdict: bool = True) -> str | None:
    """The sentence ``align`` adds to its warnings when ``k / n`` exceeds ``limit`` in a set, else None.

    ``local_verdict``: add that the local verdict is taken from the k-sweep at ``k/n <= limit`` (for the
    metrics behind it, CKNNA and mutual k-NN).
    """
    over = {key: n for key, n in n_by_set.items() if n > 0 and k / n > limit}
    if not over:
        return None
    where = ", ".join(f"{k}/{n} = {k / n:.2f} on the {key.upper()} set" for key, n in over.items())
    text = (f"k/n is above {limit:g} for {' and '.join(labels)} ({where}): each neighbourhood covers a large "
            f"share of the set, so these scores are no longer local and their chance level is high")
    return text + (f"; the local verdict is taken from the k-sweep at k/n <= {limit:g}." if local_verdict else ".")


NOT_ESTABLISHED = "not established"
_DIRECTIONAL = ("higher in distribution", "higher out of distribution")


def settle_verdict(raw_word: str, calibrated_word: str, sweep_differences: Sequence[float] = ()) -> tuple[str, list]:
    """The verdict to report, stated on calibrated scores, and why it is not established if it is not.

    Parameters
    ----------
    raw_word, calibrated_word : str
        Direction words of the raw and the calibrated ID - OOD interval ("higher in distribution", "higher
        out of distribution", "no detectable difference", "not determined").
    sweep_differences : sequence of float
        Calibrated ID - OOD differences (mean over pairs) at every k of the k-sweep with k/n <= 0.1.

    Returns
    -------
    (verdict, reasons)
        ``calibrated_word`` when it agrees with ``raw_word`` and, if directional, keeps its sign over the
        sweep; else ``"not established"`` with the reasons in words.
    """
    if calibrated_word == "not determined":
        return calibrated_word, []
    reasons = []
    if calibrated_word != raw_word:
        reasons.append(f"raw scores give '{raw_word}' but scores calibrated against chance give '{calibrated_word}'")
    signs = {float(np.sign(d)) for d in sweep_differences if d is not None and np.isfinite(d) and d != 0}
    if calibrated_word in _DIRECTIONAL and len(signs) > 1:
        reasons.append("the calibrated ID − OOD difference changes sign across the k-sweep at k/n <= "
                       f"{MAX_K_OVER_N:g}")
    return (NOT_ESTABLISHED, reasons) if reasons else (calibrated_word, [])
