"""Small helpers shared by the steps: seeds, JSON numbers, subsampling intervals."""
from __future__ import annotations

import zlib

import numpy as np

from ..metric_registry import get_metric, metrics as registered
from ..stats import _scaled_deviations

__all__ = ["child_seed", "num", "iv", "matrix", "interval", "diff_interval", "cap_k", "ordered_keys", "is_directed",
           "verdict_metrics", "LOCAL_METRICS", "GLOBAL_METRICS"]


def verdict_metrics(scope: str) -> tuple:
    """Names of the metrics of a verdict scope (``"local"``, ``"global"``), the deciding one first (from the
    registry's ``verdict_rank``)."""
    ranked = [m for m in registered(scope=scope) if m.verdict_rank is not None]
    return tuple(m.name for m in sorted(ranked, key=lambda m: m.verdict_rank))


#: The local and global verdicts' metrics, the deciding one first.
LOCAL_METRICS = verdict_metrics("local")
GLOBAL_METRICS = verdict_metrics("global")


def child_seed(seed: int, *tags) -> int:
    """A child seed of ``seed`` for a named task (stable across runs and platforms)."""
    words = [int(seed)] + [zlib.crc32(str(t).encode()) for t in tags]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def num(x):
    """float for JSON; NaN / inf -> None."""
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def iv(pair):
    """[low, high] for JSON, or None when not finite."""
    if pair is None:
        return None
    lo, hi = float(pair[0]), float(pair[1])
    return [lo, hi] if np.isfinite(lo) and np.isfinite(hi) else None


def matrix(M: np.ndarray) -> list:
    """A matrix as nested lists for JSON (NaN -> None)."""
    return [[num(v) for v in row] for row in np.asarray(M, dtype=float)]


def interval(est: float, reps: np.ndarray, n: int, m: int, level: float):
    """Subsampling interval of :func:`~..stats.bootstrap_ci` (``scheme="subsample"``) from replicates."""
    if not np.isfinite(est) or not np.all(np.isfinite(reps)):
        return None
    a = (1.0 - level) / 2.0
    q_lo, q_hi = np.quantile(_scaled_deviations(reps, n, m), [a, 1.0 - a])
    return float(est - q_hi), float(est - q_lo)


def diff_interval(est_a, reps_a, n_a, m_a, est_b, reps_b, n_b, m_b, level: float):
    """Interval of ``est_a - est_b`` from independent subsample replicates of each set, as
    :func:`~..stats.bootstrap_diff_ci` (``scheme="subsample"``)."""
    if not (np.isfinite(est_a) and np.isfinite(est_b)) or not (np.all(np.isfinite(reps_a))
                                                             and np.all(np.isfinite(reps_b))):
        return None
    a = (1.0 - level) / 2.0
    dev = _scaled_deviations(reps_a, n_a, m_a) - _scaled_deviations(reps_b, n_b, m_b)
    q_lo, q_hi = np.quantile(dev, [a, 1.0 - a])
    est = est_a - est_b
    return float(est - q_hi), float(est - q_lo)


def cap_k(k: int, n: int) -> int:
    """``k`` capped to [1, n - 1]."""
    return int(max(1, min(int(k), n - 1)))


def is_directed(metric: str) -> bool:
    """Entry (i, j) of the metric's matrix is ``metric(model_i -> model_j)`` (from the registry)."""
    return get_metric(metric).directed


def ordered_keys(metric: str, pairs):
    """The (i, j) keys of a metric's values over model pairs (both directions for directed metrics)."""
    return [q for p in pairs for q in ((p, p[::-1]) if is_directed(metric) else (p,))]
