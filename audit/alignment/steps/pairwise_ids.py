"""Optional step of :func:`~..analysis.align` (``pairwise_ids=True``): every pair metric on the structures of
each set that *both* models of the pair embedded (no near-duplicate guard, point estimates)."""
from __future__ import annotations

from itertools import combinations

import numpy as np

from ..metric_registry import get_metric
from ..normalise import EmbeddingNormaliser
from ..resampling import pair_values
from ._common import cap_k, matrix

__all__ = ["pairwise_ids_step"]


def pairwise_ids_step(embeddings, models, requested, metrics, normalisation, k, ii_k, fns, fns_names) -> dict:
    """The ``metrics_pairwise_ids`` block: per set and metric a model x model matrix, and the pair sizes ``n``."""
    rows = {}
    for m in models:
        ids, X = embeddings[m]
        ids, X = np.asarray(ids).astype(str), np.asarray(X, dtype=np.float64)
        ok = ~np.isnan(X).all(axis=1)
        rows[m] = (dict(zip(ids[ok].tolist(), np.flatnonzero(ok).tolist())), X)
    out = {"description": "each pair on the structures of the set that both of its models embedded (no "
                          "near-duplicate guard, point estimates); k capped below each pair's n",
           "variants": {mt: fns_names[mt] for mt in metrics}, "n": {}, **{mt: {} for mt in metrics}}
    for key, wanted in requested.items():
        N = np.zeros((len(models), len(models)), dtype=np.int64)
        mats = {mt: np.full((len(models), len(models)), np.nan) for mt in metrics}
        for i, j in combinations(range(len(models)), 2):
            pos_i, Xi = rows[models[i]]
            pos_j, Xj = rows[models[j]]
            both = [s for s in wanted if s in pos_i and s in pos_j]
            N[i, j] = N[j, i] = len(both)
            if len(both) < 8:
                continue
            A = EmbeddingNormaliser(normalisation).fit_transform(Xi[[pos_i[s] for s in both]])
            B = EmbeddingNormaliser(normalisation).fit_transform(Xj[[pos_j[s] for s in both]])
            vals = pair_values([A, B], [(0, 1)], metrics, cap_k(k, len(both)), cap_k(ii_k, len(both)), fns)
            for mt in metrics:
                for (a, b), v in vals[mt].items():
                    mats[mt][(i, j)[a], (i, j)[b]] = v
                    if not get_metric(mt).directed:
                        mats[mt][j, i] = v
        out["n"][key] = N.tolist()
        for mt in metrics:
            out[mt][key] = matrix(mats[mt])
    return out
