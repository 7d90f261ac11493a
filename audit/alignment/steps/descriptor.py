"""Step 10 of :func:`~..analysis.align`: every model against the model-free descriptor (CKNNA, mutual k-NN and
information imbalance both ways, with intervals) and against the reference model (information imbalance)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..options import AlignOptions
from ..resampling import resample
from ._common import child_seed, interval, iv, num
from .plan import Plan

__all__ = ["DescriptorComparison", "descriptor_step", "reference_step", "DESCRIPTOR_METRICS"]

DESCRIPTOR_METRICS = ("cknna", "mutual_knn", "information_imbalance")


@dataclass
class DescriptorComparison:
    """Models against the descriptor.

    Attributes
    ----------
    descriptor : str
    variants : dict
    per_set : dict
        ``{set: {model: {quantity: {"estimate", "interval"}}}}``.
    resampled : dict
        ``{set: Resampled}`` (pairs (model i, descriptor) with the descriptor last).
    gap_inputs : dict
        Per set what gap vs collapse needs (ids, arrays, the normalised and raw descriptor).
    difference : dict
        ID - OOD per model and quantity (added by :func:`~.comparison.comparison_step`).
    """

    descriptor: str
    variants: dict
    per_set: dict = field(default_factory=dict)
    resampled: dict = field(default_factory=dict)
    gap_inputs: dict = field(default_factory=dict)
    difference: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The ``descriptor_comparison`` block."""
        out = {"descriptor": self.descriptor, "variants": self.variants, **self.per_set}
        if self.difference:
            out["difference"] = self.difference
        return out


def descriptor_step(joined, normed: dict, sets, pm, plan: Plan, fns: dict, opts: AlignOptions):
    """Each model against the descriptor, per set (None without ``descriptor_name``)."""
    name = opts.descriptor_name
    if name is None:
        return None
    models, d = plan.models, len(plan.models)
    out = DescriptorComparison(name, {m: plan.resolved[m].name for m in DESCRIPTOR_METRICS})
    for key in plan.keys:
        rows, arrays, n = sets.clean_rows[key], pm.arrays[key], plan.n_by_set[key]
        D = normed[name][rows]
        dres = resample(arrays + [D], [(i, d) for i in range(d)], DESCRIPTOR_METRICS, plan.k_used, plan.ii_k_used,
                        opts.n_boot, child_seed(opts.seed, "boot", key), fns)
        out.resampled[key] = dres
        entry = {}
        for i, m in enumerate(models):
            entry[m] = {
                label: {"estimate": num(dres.estimate[mt][p]),
                        "interval": iv(interval(dres.estimate[mt][p], dres.reps[mt][p], n, dres.m, opts.ci_level))}
                for label, mt, p in (("cknna", "cknna", (i, d)), ("mutual_knn", "mutual_knn", (i, d)),
                                     ("information_imbalance_model_to_descriptor", "information_imbalance", (i, d)),
                                     ("information_imbalance_descriptor_to_model", "information_imbalance", (d, i)))}
        out.per_set[key] = entry
        out.gap_inputs[key] = {"n": n, "ids": joined.ids[rows], "arrays": dict(zip(models, arrays)),
                               "descriptor": D, "raw_descriptor": joined.arrays[name][rows]}
    return out


def reference_step(pm, plan: Plan, opts: AlignOptions) -> dict | None:
    """The ``reference_comparison`` block: information imbalance between the reference model and every other
    model, both directions, with intervals (None without ``reference_model``)."""
    if opts.reference_model is None:
        return None
    ref_idx = plan.models.index(opts.reference_model)
    refc = {"model": opts.reference_model, "information_imbalance": {}}
    for key in plan.keys:
        res, n = pm.resampled[key], plan.n_by_set[key]
        refc["information_imbalance"][key] = {}
        for i, m in enumerate(plan.models):
            if i == ref_idx:
                continue
            ent = {}
            for name, p in (("model_to_reference", (i, ref_idx)), ("reference_to_model", (ref_idx, i))):
                v = res.estimate["information_imbalance"][p]
                ent[name] = {"estimate": num(v), "interval": iv(interval(
                    v, res.reps["information_imbalance"][p], n, res.m, opts.ci_level))}
            refc["information_imbalance"][key][m] = ent
    return refc
