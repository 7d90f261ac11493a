"""Pairwise metric values on one set of aligned embeddings, and their m-out-of-n subsample replicates.

:func:`pair_values` evaluates every requested metric on every model pair of one set, sharing each model's
neighbour search between pairs and metrics (:class:`~.metrics.NeighbourCache`); :func:`resample` repeats
it on ``n_boot`` subsamples of ``m = n // 2`` rows drawn exactly as :func:`~.stats.bootstrap_ci` draws
them, so the interval of any mean over pairs and of any difference between sets comes from the same
replicates.

Neighbour searches are not repeated per subsample: each model's full array is searched once for K > k
exact neighbours per row (K = 81 for k = 25 at m = n / 2), and every subsample's k-NN (CKNNA, mutual
k-NN) is read from those lists (:class:`~.neighbour_cache.SubsampleLists`; the same neighbour sets as a
search of the subsample, up to ties within float64 rounding, which are searched directly). The
permutation nulls of :mod:`.calibration` reuse each model's unpermuted k-NN graph in the same way (a
permutation only relabels it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .neighbour_cache import NeighbourCache, SearchStats, SubsampleLists
from .stats import _draw, _subsample_size
from . import metric_registry
from .variants import resolve_variants

__all__ = ["Resampled", "pair_values", "resample", "mean_over"]

_DEFAULT_FNS = None


def pair_values(arrays: Sequence[np.ndarray], pairs, metrics, k: int, ii_k: int, fns=None,
                cache: NeighbourCache | None = None) -> dict:
    """``{metric: {(i, j): value}}`` for the given index pairs (directed metrics, ``AlignmentMetric.directed`` of
    the registry, add ``(j, i)``; row = source model, column = target model).

    ``fns``: ``{metric: f(X, Y, k, ii_k, cache=None)}`` (default: :func:`.metric_registry.pair_functions` of
    the default variants).

    ``cache``: the :class:`~.neighbour_cache.NeighbourCache` the neighbour metrics share (default: a new
    one, so each array's k-NN search runs once for all its pairs and for CKNNA and mutual k-NN)."""
    global _DEFAULT_FNS
    if fns is None:
        _DEFAULT_FNS = _DEFAULT_FNS or metric_registry.pair_functions(resolve_variants())
        fns = _DEFAULT_FNS
    out = {m: {} for m in metrics}
    if cache is None:  # each array's k-NN search once, shared by its pairs and by CKNNA / mutual k-NN
        cache = NeighbourCache()
    for i, j in pairs:
        X, Y = arrays[i], arrays[j]
        for mt in out:
            if mt == "information_imbalance":
                r = fns[mt](X, Y, k, ii_k)
                out[mt][(i, j)] = r.x_to_y
                out[mt][(j, i)] = r.y_to_x
            elif metric_registry.get_metric(mt).directed:
                out[mt][(i, j)] = fns[mt](X, Y, k, ii_k)
                out[mt][(j, i)] = fns[mt](Y, X, k, ii_k)
            else:
                out[mt][(i, j)] = fns[mt](X, Y, k, ii_k, cache)
    return out


@dataclass
class Resampled:
    """Full-data values and subsample replicates of pairwise metrics on one set.

    ``estimate[metric][(i, j)]`` float; ``reps[metric][(i, j)]`` array of shape (n_boot,); every
    replicate b used the same rows for every pair and metric. ``searches``: what the neighbour searches
    cost (:class:`~.neighbour_cache.SearchStats`).
    """

    estimate: dict
    reps: dict
    n: int
    m: int
    searches: SearchStats | None = None


def resample(arrays, pairs, metrics, k, ii_k, n_boot, seed, fns=None, *,
             reuse_neighbours: bool = True, lists: SubsampleLists | None = None) -> Resampled:
    """Pairwise metrics with ``n_boot`` subsamples of ``m = n // 2`` rows (rows drawn exactly as
    :func:`~.stats.bootstrap_ci` draws them for the same seed).

    ``reuse_neighbours``: read every subsample's k-NN from one search of each full array (see the module
    docstring); False searches every subsample from scratch (same neighbour sets; the reference the tests
    and ``benchmarks/bootstrap.py`` compare with). ``lists``: full-set lists to share between calls on the
    same arrays (e.g. the k-sweep: lists searched for the largest k serve every smaller k); default: new ones.
    """
    n = arrays[0].shape[0]
    m = _subsample_size(n, None)
    stats = SearchStats()
    est = pair_values(arrays, pairs, metrics, k, ii_k, fns, cache=NeighbourCache(stats=stats))
    reps = {mt: {p: np.empty(n_boot) for p in est[mt]} for mt in metrics}
    if not reuse_neighbours:
        lists = None
    elif lists is None:
        lists = SubsampleLists(m / n, stats)
    else:
        lists.stats = stats
    rng = np.random.default_rng(seed)
    for b in range(n_boot):
        rows = _draw(rng, n, "subsample", m)
        subs = [A[rows] for A in arrays]
        cache = NeighbourCache(lists, stats)
        if lists is not None:
            for A, S in zip(arrays, subs):
                cache.register(S, A, rows)
        vals = pair_values(subs, pairs, metrics, k, ii_k, fns, cache=cache)
        for mt in metrics:
            for p, v in vals[mt].items():
                reps[mt][p][b] = v
    return Resampled(est, reps, n, m, stats)


def mean_over(res: Resampled, metric: str, keys) -> tuple[float, np.ndarray]:
    keys = [p for p in keys if p in res.estimate[metric]]
    est = float(np.mean([res.estimate[metric][p] for p in keys]))
    reps = np.mean([res.reps[metric][p] for p in keys], axis=0)
    return est, reps


