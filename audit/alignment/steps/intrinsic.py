"""Step 8 of :func:`~..analysis.align`: intrinsic dimension per model and set (TwoNN, used by the verdict, and
MLE as a cross-check) with subsampling intervals, the raw estimate before the near-duplicate guard, and
TwoNN against scale by decimation (:func:`~..intrinsic_dim.id_vs_scale`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..intrinsic_dim import id_vs_scale
from ..metric_registry import get_metric
from ..options import AlignOptions
from ..stats import bootstrap_ci
from ._common import child_seed, iv, num
from .plan import Plan

__all__ = ["IntrinsicDimension", "intrinsic_dimension_step"]


@dataclass
class IntrinsicDimension:
    """The ``intrinsic_dimension`` and ``id_vs_scale`` blocks, and the TwoNN replicates the verdict uses.

    Attributes
    ----------
    block : dict
        ``intrinsic_dimension``: ``values`` / ``intervals`` ({model: {set: dimension}}, count), ``mle``, ``raw``
        (before the guard); ``difference`` is added by :func:`~.comparison.comparison_step`.
    replicates : dict
        ``{(model, set): ConfidenceInterval}`` of TwoNN (:func:`~..stats.bootstrap_ci`).
    scale_curves : list of dict
        TwoNN against the mean second-neighbour distance, per model and set.
    """

    block: dict
    replicates: dict = field(default_factory=dict)
    scale_curves: list = field(default_factory=list)

    def to_json(self) -> dict:
        """The ``intrinsic_dimension`` block."""
        return self.block

    def scale_json(self) -> dict:
        """The ``id_vs_scale`` block."""
        return {"estimator": "TwoNN by decimation (Facco et al. 2017), near-duplicate-free rows",
                "scale_label": "mean second-neighbour distance (normalised embedding units)",
                "curves": self.scale_curves}


def intrinsic_dimension_step(normed: dict, sets, pm, plan: Plan, opts: AlignOptions) -> IntrinsicDimension:
    """TwoNN and MLE per model and set with intervals, raw estimates, and TwoNN against scale."""
    models = plan.models
    twonn, mle = get_metric("twonn").function, get_metric("mle").function
    idim = {"estimator": "TwoNN (Facco et al. 2017; 10% largest ratios discarded), near-duplicate-free rows",
            "values": {m: {} for m in models}, "intervals": {m: {} for m in models},
            "mle": {"k": None, "values": {m: {} for m in models}, "intervals": {m: {} for m in models}},
            "raw": {"description": "before the near-duplicate guard", "twonn": {m: {} for m in models},
                    "mle": {m: {} for m in models}},
            "used_by_verdict": "twonn"}
    out = IntrinsicDimension(idim)
    for key in plan.keys:
        arrays, res = pm.arrays[key], pm.resampled[key]
        s_id = child_seed(opts.seed, "id", key)
        mle_k_used = max(2, min(opts.mle_k, res.m - 1))
        idim["mle"]["k"] = mle_k_used if idim["mle"]["k"] is None else min(idim["mle"]["k"], mle_k_used)
        for m, A, t_full in zip(models, arrays, pm.twonn[key]):
            ci_t = bootstrap_ci(lambda X, _: twonn(X), A, A[:, :1], opts.n_boot, opts.ci_level, s_id,
                                estimate=t_full)  # the full array's TwoNN, computed by the pair-metrics step
            ci_m = bootstrap_ci(lambda X, _, kk=mle_k_used: mle(X, kk), A, A[:, :1], opts.n_boot, opts.ci_level, s_id)
            idim["values"][m][key] = num(ci_t.estimate)
            idim["mle"]["values"][m][key] = num(ci_m.estimate)
            for target, c in ((idim["intervals"][m], ci_t), (idim["mle"]["intervals"][m], ci_m)):
                if iv((c.low, c.high)):
                    target[key] = [c.low, c.high]
            out.replicates[(m, key)] = ci_t
            raw = normed[m][sets.rows[key]]
            idim["raw"]["twonn"][m][key] = num(twonn(raw))
            idim["raw"]["mle"][m][key] = num(mle(raw, mle_k_used))
            scale = id_vs_scale(A, seed=child_seed(opts.seed, "scale", key, m))
            out.scale_curves.append({"label": m, "set": key, "scale": scale["nn_distance"].tolist(),
                                     "id": [num(v) for v in scale["id"]], "n_points": scale["n_points"].tolist(),
                                     "id_std": scale["id_std"].tolist()})
    return out
