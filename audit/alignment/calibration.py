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

Where the code lives (one purpose per module; every name is re-exported here):
:mod:`.calibration_scores` (Algorithm 1, the permutations, the plain loop), :mod:`.null_neighbours`
(k-NN graph and rank-matrix nulls), :mod:`.null_moments` (CKA and dCor: exact permutations and moments),
:mod:`.calibration_report` (matrices, calibrated replicates, k/n warning, verdict); this module runs them
on every pair of models (:func:`calibrate_pairs`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import combinations
from typing import Mapping, Sequence

import numpy as np

from ._validation import check_embeddings, check_k
from .calibration_report import (MAX_K_OVER_N, NOT_ESTABLISHED, calibrated_replicates, calibration_matrices,
                                 k_over_n_warning, settle_verdict)
from .calibration_scores import (CALIBRATION_QUANTILE, PAIR_METRICS, Calibration, calibrate, calibrate_scores,
                                 permutation_null, permutations)
from .dependence import distance_correlation
from .null_moments import (_choose, _dcor_value, _distance_stats_all, _gram_stats_all, cka_null, dcor_null,
                           distance_sweep, permutation_moments)
from .null_neighbours import (CosineGraph, _ranks_and_neighbours, _self_alignment, cosine_graph, graph_nulls,
                              imbalance_null)

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
    graphs: dict | None = None,
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
    graphs : dict, optional
        The k-NN graphs of CKNNA and mutual k-NN, ``{(model index, neighbours, metric): CosineGraph}``
        (:func:`cosine_graph` of ``embeddings[model index]``): graphs already there are used, the ones built
        are added, so a caller can reuse them (CKNNA's graph has ``k - 1`` neighbours when its variant counts
        self pairs; mutual k-NN's uses its ``metric``). Only for these same embeddings.

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
        """Every pair by the plain permutation loop of :func:`calibrate` (variants without a fast null), with
        the pair's permutations (those of ``perms``)."""
        hi = PAIR_METRICS[metric]
        for p in pairs:
            out[metric][p] = calibrate(fn, arrays[p[0]], arrays[p[1]], n_permutations, _pair_seed(seed, *p),
                                       quantile=quantile, s_max=1.0 if hi else 0.0, higher_is_more_aligned=hi)

    # neighbourhood metrics
    kk = check_k(min(int(k), n - 1), n)
    ck = {"unbiased": True, "self_pairs": None, "eps": 1e-6, **opts["cknna"]}
    ck["self_pairs"] = (not ck["unbiased"]) if ck["self_pairs"] is None else ck["self_pairs"]
    mk_metric = opts["mutual_knn"].get("metric", "cosine")
    graphs = {} if graphs is None else graphs

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
            how = _choose(cka_method, n_permutations, min(n * n, n * dmax * dmax))
            st = _gram_stats_all(arrays, how)
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
            how = _choose(dcor_method, n_permutations, n * n)
            d2, st = _distance_stats_all(arrays, how)
            for p in pairs:
                value, null, mean, desc = dcor_null(None, None, perms[p], method=how, squared=do["squared"],
                                                    stats=(st[p[0]], st[p[1]]), raw=_dcor_value(d2[p], do["squared"]))
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
        R, NN = zip(*(_ranks_and_neighbours(A, kk_ii) for A in sub))  # one sort per model: ranks and k-NN sets
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
