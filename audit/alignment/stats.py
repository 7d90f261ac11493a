"""Uncertainty for alignment metrics: resampling intervals, equal-size and permutation comparisons of an
in-distribution (ID) and an out-of-distribution (OOD) set, k sweeps, Spearman with an interval.

A *metric function* is any callable ``metric_fn(X, Y) -> float`` on paired embeddings, e.g.
``functools.partial(cknna, k=25)``.

Resampling k-NN metrics
-----------------------
The ordinary bootstrap draws rows with replacement; a drawn-twice row then sits at distance 0 from its
copy, becomes its copy's nearest neighbour in *both* spaces and inflates every neighbour-based metric
(mutual k-NN, CKNNA, TwoNN, information imbalance). The default scheme here is therefore **m-out-of-n
subsampling without replacement** (``scheme="subsample"``, ``m = n // 2``): no row appears twice. The
interval is centred on the full-sample estimate and its width comes from the spread of the subsample
replicates rescaled to sample size n: for a smooth statistic ``Var(theta*_m | data) ~ sigma^2 (1/m - 1/n)``
(sampling without replacement), so deviations are multiplied by ``sqrt(m / (n - m))`` (delete-d jackknife
logic; Shao & Wu 1989; Politis & Romano 1994). Deviations are taken from the replicates' own mean, so a
metric that drifts with sample size (k-NN metrics do: neighbours get farther when there are fewer points)
does not shift the interval. ``scheme="bootstrap"`` (rows with replacement, percentile interval) is
offered for metrics without neighbour structure (linear CKA, dCor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats as sps

from ._validation import check_pair

__all__ = [
    "ConfidenceInterval",
    "EqualSizeComparison",
    "PermutationResult",
    "SpearmanResult",
    "bootstrap_ci",
    "bootstrap_diff_ci",
    "equal_size_comparison",
    "permutation_test",
    "k_sweep",
    "spearman_with_ci",
]

SCHEMES = ("subsample", "bootstrap")
MetricFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate with a resampling interval.

    Attributes
    ----------
    estimate : float
        Metric on the full data (for a difference: ID minus OOD).
    low, high : float
        Interval bounds.
    ci : float
        Nominal coverage (e.g. 0.95).
    replicates : numpy.ndarray, shape (n_boot,)
        Replicate values (for a difference: replicate ID minus replicate OOD).
    scheme : str
        ``"subsample"`` or ``"bootstrap"``.
    m : int or tuple of int
        Rows per replicate (per set for a difference).
    """

    estimate: float
    low: float
    high: float
    ci: float
    replicates: np.ndarray
    scheme: str
    m: object


def _check_common(n_boot: int, ci: float, scheme: str) -> None:
    if n_boot < 2:
        raise ValueError(f"n_boot must be >= 2; got {n_boot}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1); got {ci}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}; got {scheme!r}")


def _subsample_size(n: int, m: int | None) -> int:
    m = n // 2 if m is None else int(m)
    if not 2 <= m < n:
        raise ValueError(f"subsample size m must satisfy 2 <= m < n = {n}; got {m}")
    return m


def _draw(rng: np.random.Generator, n: int, scheme: str, m: int) -> np.ndarray:
    if scheme == "bootstrap":
        return rng.integers(0, n, size=n)
    return np.sort(rng.choice(n, size=m, replace=False))


def _replicates(metric_fn, X, Y, n_boot, rng, scheme, m) -> np.ndarray:
    n = X.shape[0]
    out = np.empty(n_boot)
    for b in range(n_boot):
        rows = _draw(rng, n, scheme, m)
        out[b] = metric_fn(X[rows], Y[rows])
    return out


def _scaled_deviations(reps: np.ndarray, n: int, m: int) -> np.ndarray:
    return np.sqrt(m / (n - m)) * (reps - reps.mean())


def bootstrap_ci(
    metric_fn: MetricFn,
    X,
    Y,
    n_boot: int = 200,
    ci: float = 0.95,
    seed: int = 0,
    *,
    scheme: str = "subsample",
    m: int | None = None,
    estimate: float | None = None,
) -> ConfidenceInterval:
    """Resampling confidence interval of ``metric_fn(X, Y)`` over rows (see module docstring).

    * ``scheme="subsample"`` (default): ``n_boot`` subsamples of ``m`` rows without replacement
      (default ``m = n // 2``); interval ``[t - c q_hi, t - c q_lo]`` with ``t`` the full-data value,
      ``q`` the quantiles of the replicates minus their mean and ``c = sqrt(m / (n - m))``.
    * ``scheme="bootstrap"``: ``n_boot`` draws of n rows with replacement; percentile interval. Not for
      k-NN metrics (duplicated rows become each other's neighbours).

    Parameters
    ----------
    metric_fn : callable
        ``metric_fn(X, Y) -> float``.
    X : array-like, shape (n, d_a)
    Y : array-like, shape (n, d_b)
    n_boot : int
        Replicates.
    ci : float
        Nominal coverage.
    seed : int
        Seed of ``numpy.random.default_rng``.
    scheme : {"subsample", "bootstrap"}
    m : int, optional
        Subsample size, ``2 <= m < n``.
    estimate : float, optional
        ``metric_fn(X, Y)`` on all rows when the caller has it already (not recomputed; the replicates are
        the same either way).

    Returns
    -------
    ConfidenceInterval
    """
    _check_common(n_boot, ci, scheme)
    X, Y = check_pair(X, Y)
    n = X.shape[0]
    m_ = _subsample_size(n, m) if scheme == "subsample" else n
    rng = np.random.default_rng(seed)
    est = float(metric_fn(X, Y) if estimate is None else estimate)
    reps = _replicates(metric_fn, X, Y, n_boot, rng, scheme, m_)
    a = (1.0 - ci) / 2.0
    if scheme == "bootstrap":
        low, high = np.quantile(reps, [a, 1.0 - a])
    else:
        q_lo, q_hi = np.quantile(_scaled_deviations(reps, n, m_), [a, 1.0 - a])
        low, high = est - q_hi, est - q_lo
    return ConfidenceInterval(est, float(low), float(high), ci, reps, scheme, m_)


def bootstrap_diff_ci(
    metric_fn: MetricFn,
    id_pair,
    ood_pair,
    n_boot: int = 200,
    ci: float = 0.95,
    seed: int = 0,
    *,
    scheme: str = "subsample",
    m: tuple[int, int] | None = None,
) -> ConfidenceInterval:
    """Interval for ``metric(ID) - metric(OOD)``, resampling each set independently.

    Parameters
    ----------
    metric_fn : callable
        ``metric_fn(X, Y) -> float``.
    id_pair : tuple of array-like
        ``(X_id, Y_id)``, shapes (n_id, d_a), (n_id, d_b).
    ood_pair : tuple of array-like
        ``(X_ood, Y_ood)``, shapes (n_ood, d_a), (n_ood, d_b).
    n_boot, ci, seed, scheme
        As :func:`bootstrap_ci`.
    m : (int, int), optional
        Subsample sizes of the two sets (default half of each).

    Returns
    -------
    ConfidenceInterval
        ``estimate`` is the full-data difference, ``replicates`` the replicate differences.
    """
    _check_common(n_boot, ci, scheme)
    Xa, Ya = check_pair(*id_pair)
    Xb, Yb = check_pair(*ood_pair)
    na, nb = Xa.shape[0], Xb.shape[0]
    if scheme == "subsample":
        ma = _subsample_size(na, None if m is None else m[0])
        mb = _subsample_size(nb, None if m is None else m[1])
    else:
        ma, mb = na, nb
    rng = np.random.default_rng(seed)
    est = float(metric_fn(Xa, Ya)) - float(metric_fn(Xb, Yb))
    ra = _replicates(metric_fn, Xa, Ya, n_boot, rng, scheme, ma)
    rb = _replicates(metric_fn, Xb, Yb, n_boot, rng, scheme, mb)
    a = (1.0 - ci) / 2.0
    if scheme == "bootstrap":
        low, high = np.quantile(ra - rb, [a, 1.0 - a])
    else:
        dev = _scaled_deviations(ra, na, ma) - _scaled_deviations(rb, nb, mb)
        q_lo, q_hi = np.quantile(dev, [a, 1.0 - a])
        low, high = est - q_hi, est - q_lo
    return ConfidenceInterval(est, float(low), float(high), ci, ra - rb, scheme, (ma, mb))


@dataclass(frozen=True)
class EqualSizeComparison:
    """Metric on repeated equal-size subsamples of two sets.

    Attributes
    ----------
    size : int
        Rows per subsample, the same for both sets.
    id_values, ood_values : numpy.ndarray, shape (repeats,)
        Metric on each subsample (repeat r of ID and of OOD share nothing but the size).
    """

    size: int
    id_values: np.ndarray
    ood_values: np.ndarray

    @property
    def id_mean(self) -> float:
        return float(self.id_values.mean())

    @property
    def id_std(self) -> float:
        return float(self.id_values.std(ddof=1)) if self.id_values.size > 1 else 0.0

    @property
    def ood_mean(self) -> float:
        return float(self.ood_values.mean())

    @property
    def ood_std(self) -> float:
        return float(self.ood_values.std(ddof=1)) if self.ood_values.size > 1 else 0.0

    @property
    def diff_mean(self) -> float:
        """Mean of ID minus OOD over repeats."""
        return float((self.id_values - self.ood_values).mean())

    @property
    def diff_std(self) -> float:
        d = self.id_values - self.ood_values
        return float(d.std(ddof=1)) if d.size > 1 else 0.0


def equal_size_comparison(
    metric_fn: MetricFn, id_pair, ood_pair, size: int, repeats: int = 20, seed: int = 0
) -> EqualSizeComparison:
    """Compare a metric between two sets at one common sample size.

    Each of ``repeats`` rounds draws ``size`` rows without replacement from each set and evaluates the
    metric on both. Metrics that depend on n (k-NN metrics, biased estimators) then differ only through
    the data, not through the set sizes.

    Parameters
    ----------
    metric_fn : callable
        ``metric_fn(X, Y) -> float``.
    id_pair, ood_pair : tuple of array-like
        ``(X, Y)`` of each set.
    size : int
        Rows per subsample, ``2 <= size <= min(n_id, n_ood)``.
    repeats : int
        Rounds R.
    seed : int

    Returns
    -------
    EqualSizeComparison
    """
    Xa, Ya = check_pair(*id_pair)
    Xb, Yb = check_pair(*ood_pair)
    if not 2 <= size <= min(Xa.shape[0], Xb.shape[0]):
        raise ValueError(f"size must be in [2, {min(Xa.shape[0], Xb.shape[0])}]; got {size}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    rng = np.random.default_rng(seed)
    ida, oodv = np.empty(repeats), np.empty(repeats)
    for r in range(repeats):
        ra = np.sort(rng.choice(Xa.shape[0], size, replace=False))
        rb = np.sort(rng.choice(Xb.shape[0], size, replace=False))
        ida[r] = metric_fn(Xa[ra], Ya[ra])
        oodv[r] = metric_fn(Xb[rb], Yb[rb])
    return EqualSizeComparison(int(size), ida, oodv)


@dataclass(frozen=True)
class PermutationResult:
    """Permutation test of ``metric(ID) - metric(OOD)``.

    Attributes
    ----------
    statistic : float
        Observed difference.
    p_value : float
        ``(1 + #{null as or more extreme}) / (1 + n_perm)``.
    null : numpy.ndarray, shape (n_perm,)
        Differences under shuffled ID/OOD labels.
    alternative : str
    """

    statistic: float
    p_value: float
    null: np.ndarray
    alternative: str


def permutation_test(
    metric_fn: MetricFn,
    id_pair,
    ood_pair,
    n_perm: int = 200,
    seed: int = 0,
    *,
    size: int | None = None,
    alternative: str = "two-sided",
) -> PermutationResult:
    """Test whether a metric differs between ID and OOD rows by shuffling the ID/OOD labels.

    Rows stay paired (row i of X with row i of Y); the pooled rows are relabelled at random keeping the
    two set sizes, and ``metric(first) - metric(second)`` is recomputed. Null hypothesis: the two sets of
    paired rows come from one distribution. If ``size`` is given, each set is first reduced to ``size``
    seeded random rows (equal sizes, cheaper).

    Parameters
    ----------
    metric_fn : callable
    id_pair, ood_pair : tuple of array-like
    n_perm : int
        Label shuffles.
    seed : int
    size : int, optional
    alternative : {"two-sided", "greater", "less"}
        ``"greater"``: ID larger than OOD.

    Returns
    -------
    PermutationResult
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less'; got {alternative!r}")
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1; got {n_perm}")
    Xa, Ya = check_pair(*id_pair)
    Xb, Yb = check_pair(*ood_pair)
    if Xa.shape[1] != Xb.shape[1] or Ya.shape[1] != Yb.shape[1]:
        raise ValueError("ID and OOD embeddings must come from the same two models (equal widths)")
    rng = np.random.default_rng(seed)
    if size is not None:
        ra = np.sort(rng.choice(Xa.shape[0], size, replace=False))
        rb = np.sort(rng.choice(Xb.shape[0], size, replace=False))
        Xa, Ya, Xb, Yb = Xa[ra], Ya[ra], Xb[rb], Yb[rb]
    na = Xa.shape[0]
    X = np.concatenate([Xa, Xb])
    Y = np.concatenate([Ya, Yb])
    stat = float(metric_fn(Xa, Ya)) - float(metric_fn(Xb, Yb))
    null = np.empty(n_perm)
    for p in range(n_perm):
        perm = rng.permutation(X.shape[0])
        a, b = np.sort(perm[:na]), np.sort(perm[na:])
        null[p] = metric_fn(X[a], Y[a]) - metric_fn(X[b], Y[b])
    if alternative == "two-sided":
        extreme = np.abs(null) >= abs(stat)
    elif alternative == "greater":
        extreme = null >= stat
    else:
        extreme = null <= stat
    return PermutationResult(stat, float((1 + extreme.sum()) / (1 + n_perm)), null, alternative)


def k_sweep(X, Y, ks=(5, 10, 25, 50, 100), metric: Callable | None = None, **kwargs) -> pd.DataFrame:
    """Evaluate a k-dependent metric over several k.

    Each requested k is capped at ``n - 1``; capped values that repeat are evaluated once.

    Parameters
    ----------
    X : array-like, shape (n, d_a)
    Y : array-like, shape (n, d_b)
    ks : sequence of int
        Requested k values (the study's CKNNA sweep was 2, 25, 50, 100, 1000, 2500).
    metric : callable, optional
        ``metric(X, Y, k=k, **kwargs) -> float``; default :func:`~monoculture.audit.alignment.cknna`.
    **kwargs
        Passed to ``metric``.

    Returns
    -------
    pandas.DataFrame
        Columns ``k_requested``, ``k`` (used), ``value``; one row per distinct used k, in request order.
    """
    if metric is None:
        from .metrics import cknna as metric
    X, Y = check_pair(X, Y)
    n = X.shape[0]
    rows, seen = [], set()
    for k in ks:
        used = min(int(k), n - 1)
        if used in seen:
            continue
        seen.add(used)
        rows.append({"k_requested": int(k), "k": used, "value": float(metric(X, Y, k=used, **kwargs))})
    return pd.DataFrame.from_records(rows, columns=["k_requested", "k", "value"])


@dataclass(frozen=True)
class SpearmanResult:
    """Spearman rank correlation with a bootstrap interval and a permutation p-value.

    Attributes
    ----------
    rho : float
    low, high : float
        Percentile bootstrap interval (pairs resampled with replacement; resamples where either variable
        is constant are skipped and counted in ``n_boot_used``).
    p_value : float
        Two-sided permutation p-value (exact over all pairings when ``n! <= n_perm``).
    n : int
    n_boot_used : int
    """

    rho: float
    low: float
    high: float
    p_value: float
    n: int
    n_boot_used: int


def spearman_with_ci(
    x, y, n_boot: int = 1000, seed: int = 0, *, ci: float = 0.95, n_perm: int = 9999
) -> SpearmanResult:
    """Spearman's rho (``scipy.stats.spearmanr``) with a bootstrap interval and a permutation p-value
    (``scipy.stats.permutation_test`` with ``permutation_type="pairings"``).

    Parameters
    ----------
    x, y : array-like, shape (n,)
        Paired values (e.g. per-model energy error and alignment), n >= 3.
    n_boot : int
        Bootstrap resamples for the interval.
    seed : int
    ci : float
        Interval coverage.
    n_perm : int
        Permutations for the p-value.

    Returns
    -------
    SpearmanResult
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or x.size < 3:
        raise ValueError(f"x and y must be 1-d with equal length >= 3; got {x.shape} and {y.shape}")
    n = x.size
    rho = float(sps.spearmanr(x, y).statistic)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        rows = rng.integers(0, n, size=n)
        xs, ys = x[rows], y[rows]
        if np.ptp(xs) == 0 or np.ptp(ys) == 0:
            continue
        reps.append(sps.spearmanr(xs, ys).statistic)
    reps = np.asarray(reps, dtype=float)
    a = (1.0 - ci) / 2.0
    low, high = np.quantile(reps, [a, 1.0 - a]) if reps.size else (np.nan, np.nan)
    ry = sps.rankdata(y)

    def rho_of(u, axis=-1):  # vectorised Spearman of each permutation of x against the fixed y
        ru = sps.rankdata(u, axis=axis)
        ru = ru - ru.mean(axis=axis, keepdims=True)
        rc = ry - ry.mean()
        return (ru * rc).sum(axis=axis) / np.sqrt((ru**2).sum(axis=axis) * (rc**2).sum())

    perm = sps.permutation_test(
        (x,),
        rho_of,
        permutation_type="pairings",
        vectorized=True,
        n_resamples=n_perm,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return SpearmanResult(rho, float(low), float(high), float(perm.pvalue), n, int(reps.size))
