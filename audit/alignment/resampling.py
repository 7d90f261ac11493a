"""Pairwise metric values on one set of aligned embeddings, and their m-out-of-n subsample replicates.

:func:`pair_values` evaluates every requested metric on every model pair of one set, sharing each model's
neighbour search between pairs and metrics (:class:`~.metrics.NeighbourCache`); :func:`resample` repeats
it on ``n_boot`` subsamples of ``m = n // 2`` rows drawn exactly as :func:`~.stats.bootstrap_ci` draws
them, so the interval of any mean over pairs and of any difference between sets comes from the same
replicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .metrics import NeighbourCache
from .stats import _draw, _subsample_size
from .variants import Variant, metric_function, resolve_variants

__all__ = ["DIRECTED_METRICS", "Resampled", "metric_functions", "pair_values", "resample", "mean_over"]

#: Matrices whose entry (i, j) is not (j, i): row = source model, column = target model.
DIRECTED_METRICS = ("information_imbalance", "gfre", "lfre")


def metric_functions(variants: Mapping[str, Variant]) -> dict:
    """``{metric: f(X, Y, k, ii_k)}`` for the resolved variants (k: CKNNA / mutual k-NN; ii_k: imbalance)."""
    f = {m: metric_function(m, v) for m, v in variants.items()}
    return {"cknna": lambda X, Y, k, ii_k, cache=None: f["cknna"](X, Y, k=k, cache=cache),
            "mutual_knn": lambda X, Y, k, ii_k, cache=None: f["mutual_knn"](X, Y, k=k, cache=cache),
            "cka": lambda X, Y, k, ii_k, cache=None: f["cka"](X, Y),
            "dcor": lambda X, Y, k, ii_k, cache=None: f["dcor"](X, Y),
            "information_imbalance": lambda X, Y, k, ii_k, cache=None: f["information_imbalance"](X, Y, k=ii_k),
            "gfre": lambda X, Y, k, ii_k, cache=None: f["gfre"](X, Y),
            "lfre": lambda X, Y, k, ii_k, cache=None: f["lfre"](X, Y)}


_DEFAULT_FNS = None


def pair_values(arrays: Sequence[np.ndarray], pairs, metrics, k: int, ii_k: int, fns=None) -> dict:
    """``{metric: {(i, j): value}}`` for the given index pairs (directed metrics add ``(j, i)``)."""
    global _DEFAULT_FNS
    if fns is None:
        _DEFAULT_FNS = _DEFAULT_FNS or metric_functions(resolve_variants())
        fns = _DEFAULT_FNS
    out = {m: {} for m in metrics}
    cache = NeighbourCache()  # each array's k-NN search once, shared by its pairs and by CKNNA / mutual k-NN
    for i, j in pairs:
        X, Y = arrays[i], arrays[j]
        for mt in out:
            if mt == "information_imbalance":
                r = fns[mt](X, Y, k, ii_k)
                out[mt][(i, j)] = r.x_to_y
                out[mt][(j, i)] = r.y_to_x
            elif mt in DIRECTED_METRICS:
                out[mt][(i, j)] = fns[mt](X, Y, k, ii_k)
                out[mt][(j, i)] = fns[mt](Y, X, k, ii_k)
            else:
                out[mt][(i, j)] = fns[mt](X, Y, k, ii_k, cache)
    return out


@dataclass
class Resampled:
    """Full-data values and subsample replicates of pairwise metrics on one set.

    ``estimate[metric][(i, j)]`` float; ``reps[metric][(i, j)]`` array of shape (n_boot,); every
    replicate b used the same rows for every pair and metric.
    """

    estimate: dict
    reps: dict
    n: int
    m: int


def resample(arrays, pairs, metrics, k, ii_k, n_boot, seed, fns=None) -> Resampled:
    """Pairwise metrics with ``n_boot`` subsamples of ``m = n // 2`` rows (rows drawn exactly as
    :func:`~.stats.bootstrap_ci` draws them for the same seed)."""
    n = arrays[0].shape[0]
    m = _subsample_size(n, None)
    est = pair_values(arrays, pairs, metrics, k, ii_k, fns)
    reps = {mt: {p: np.empty(n_boot) for p in est[mt]} for mt in metrics}
    rng = np.random.default_rng(seed)
    for b in range(n_boot):
        rows = _draw(rng, n, "subsample", m)
        vals = pair_values([A[rows] for A in arrays], pairs, metrics, k, ii_k, fns)
        for mt in metrics:
            for p, v in vals[mt].items():
                reps[mt][p][b] = v
    return Resampled(est, reps, n, m)


def mean_over(res: Resampled, metric: str, keys) -> tuple[float, np.ndarray]:
    keys = [p for p in keys if p in res.estimate[metric]]
    est = float(np.mean([res.estimate[metric][p] for p in keys]))
    reps = np.mean([res.reps[metric][p] for p in keys], axis=0)
    return est, reps


