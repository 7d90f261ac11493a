"""Algorithm 1 of arXiv 2602.14486 on a given null sample, the permutations every null uses, and the plain
permutation loop (the reference of the fast nulls). Overview: :mod:`.calibration`."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ._validation import check_pair
from .metric_registry import get_metric

__all__ = ["Calibration", "calibrate_scores", "permutations", "permutation_null", "calibrate", "PAIR_METRICS",
           "CALIBRATION_QUANTILE"]



class _FastNullMetrics(Mapping):
    """``{metric: higher_is_more_aligned}`` of the metrics with a fast null; the direction is read from the
    metric's registry record (:attr:`~.metric_registry.AlignmentMetric.higher_is_more_aligned`), not kept here."""

    def __init__(self, names: tuple):
        self._names = names

    def __getitem__(self, name: str) -> bool:
        if name not in self._names:
            raise KeyError(name)
        return get_metric(name).higher_is_more_aligned

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._names})"


#: Metrics :func:`calibrate_pairs` calibrates by a fast null, and whether a higher value means more aligned
#: (from the registry).
PAIR_METRICS = _FastNullMetrics(("cknna", "mutual_knn", "cka", "dcor", "information_imbalance"))
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
