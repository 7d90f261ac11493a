"""Step 9 of :func:`~..analysis.align`: the local metrics (CKNNA, mutual k-NN) over k in the sweep, per pair
(only the pairs with the reference model when one is given) and as the mean over model pairs."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..metric_registry import get_metric
from ..neighbour_cache import NeighbourCache
from ..options import AlignOptions
from ..stats import k_sweep
from ._common import num
from .plan import Plan

__all__ = ["KSweep", "k_sweep_step"]


@dataclass
class KSweep:
    """Curves of CKNNA and mutual k-NN against k (count), per set.

    Attributes
    ----------
    k : list of int
    variants : dict
        ``{metric: variant name}``.
    curves : dict
        ``{metric: [{"label", "set", "values"}]}``.
    """

    k: list
    variants: dict
    curves: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The ``k_sweep`` block (CKNNA at the top, mutual k-NN nested, as the report reads it)."""
        return {"metric": "cknna", "variant": self.variants["cknna"], "k": self.k, "curves": self.curves["cknna"],
                "mutual_knn": {"metric": "mutual_knn", "variant": self.variants["mutual_knn"], "k": self.k,
                               "curves": self.curves["mutual_knn"]}}


def k_sweep_step(pm, plan: Plan, opts: AlignOptions) -> KSweep:
    """CKNNA and mutual k-NN (their resolved variants) over :attr:`Plan.k_list` on every set."""
    models, pairs = plan.models, plan.model_pairs
    ref_idx = models.index(opts.reference_model) if opts.reference_model is not None else None
    sweep_pairs = [p for p in pairs if ref_idx in p] if ref_idx is not None else pairs
    names = ("cknna", "mutual_knn")
    out = KSweep(plan.k_list, {m: plan.resolved[m].name for m in names}, {m: [] for m in names})
    for key in plan.keys:
        arrays = pm.arrays[key]
        cache = NeighbourCache()  # each model's search at each k once, for all its pairs and both metrics
        for name in names:
            rec, store = get_metric(name), out.curves[name]
            fn, kw = rec.bind(plan.resolved[name]), ({"cache": cache} if rec.uses_cache else {})
            vals = {p: k_sweep(arrays[p[0]], arrays[p[1]], ks=plan.k_list, metric=fn, **kw)["value"].to_numpy()
                    for p in pairs}
            for p in sweep_pairs:
                store.append({"label": f"{models[p[0]]} vs {models[p[1]]}", "set": key,
                              "values": [num(v) for v in vals[p]]})
            if len(pairs) > 1:
                store.append({"label": "mean over model pairs", "set": key,
                              "values": [num(v) for v in np.mean(list(vals.values()), axis=0)]})
    return out
