"""Step 6 of :func:`~..analysis.align`: every pair metric on every set, with m-out-of-n subsampling intervals
(:func:`~..resampling.resample`), the joint TwoNN dimension of each pair, and GFRE / LFRE (point estimates).

What a metric's entry holds (``k``, direction, variant, description) comes from its registry record
(:mod:`..metric_registry`), so a metric registered there, and asked for, appears here with no edit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..metric_registry import get_metric, metrics as registered
from ..options import AlignOptions
from ..resampling import mean_over, pair_values, resample
from ._common import child_seed, interval, iv, matrix, num, ordered_keys
from .plan import Plan

__all__ = ["PairMetrics", "pair_metrics_step", "RECONSTRUCTION_METRICS"]

#: Feature reconstruction errors: point estimates per set, both directions (no intervals).
RECONSTRUCTION_METRICS = tuple(m.name for m in registered(scope="reconstruction", default=True))


@dataclass
class PairMetrics:
    """The ``metrics`` block before calibration and comparison are added.

    Attributes
    ----------
    entries : dict
        ``{metric: entry}``: per set the model x model matrix (``entry[set]``, row = source model for
        directed metrics), ``intervals`` and ``mean_over_pairs`` (pair metrics with intervals), ``k``,
        ``k_over_n``, ``variant`` and the rest of the metric's description.
    resampled : dict
        ``{set: Resampled}`` full-data values and replicates (:class:`~..resampling.Resampled`).
    arrays : dict
        ``{set: [array of shape (n_set, d_model) per model]}``, the normalised near-duplicate-free rows.
    twonn : dict
        ``{set: [TwoNN dimension of each model's array]}`` (the diagonal of the joint TwoNN matrix; the
        intrinsic-dimension step reuses it as its full-data estimate).
    """

    entries: dict
    resampled: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    twonn: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The ``metrics`` block (without calibration and ID - OOD comparison; see :func:`merge_metrics`)."""
        return self.entries


def _entry(name: str, plan: Plan, opts: AlignOptions) -> dict:
    rec, v = get_metric(name), plan.resolved.get(name)
    if rec.kind == "per model":
        return {"k": None, "higher_is_more_aligned": rec.higher_is_more_aligned, "description": rec.description}
    out = {"k": plan.k_of(name), "higher_is_more_aligned": rec.higher_is_more_aligned}
    if rec.intervals:
        out["description"] = rec.description
    out.update({"variant": v.name, "variant_description": v.description, "reference": v.reference,
                "normalisation": opts.normalisation})
    if not rec.intervals:
        out["description"] = rec.description
    if rec.needs_k is not None:
        out["k_over_n"] = {key: out["k"] / nn for key, nn in plan.n_by_set.items()}
    return out


def pair_metrics_step(normed: dict, sets, plan: Plan, fns: dict, opts: AlignOptions) -> PairMetrics:
    """Every pair metric per set with intervals, the joint TwoNN matrix, and GFRE / LFRE if asked."""
    models, pairs, level = plan.models, plan.model_pairs, opts.ci_level
    rec_metrics = RECONSTRUCTION_METRICS if opts.reconstruction else ()
    twonn = get_metric("twonn").function
    entries = {mt: _entry(mt, plan, opts) for mt in (*plan.pair_metrics, "twonn", *rec_metrics)}
    out = PairMetrics(entries)
    for key in plan.keys:
        rows = sets.clean_rows[key]
        arrays = [normed[m][rows] for m in models]
        out.arrays[key] = arrays
        n = rows.size
        res = resample(arrays, pairs, plan.pair_metrics, plan.k_used, plan.ii_k_used, opts.n_boot,
                       child_seed(opts.seed, "boot", key), fns)
        out.resampled[key] = res
        for mt in plan.pair_metrics:
            directed = get_metric(mt).directed
            M = np.full((len(models), len(models)), np.nan)
            IV = [[None] * len(models) for _ in models]
            for (i, j), v in res.estimate[mt].items():
                M[i, j] = v
                IV[i][j] = iv(interval(v, res.reps[mt][(i, j)], n, res.m, level))
                if not directed:
                    M[j, i], IV[j][i] = v, IV[i][j]
            if not directed:
                np.fill_diagonal(M, 1.0)
            entries[mt][key] = matrix(M)
            entries[mt].setdefault("intervals", {})[key] = IV
            est, reps = mean_over(res, mt, ordered_keys(mt, pairs))
            entries[mt].setdefault("mean_over_pairs", {})[key] = {
                "estimate": num(est), "interval": iv(interval(est, reps, n, res.m, level))}
        J = np.full((len(models), len(models)), np.nan)
        out.twonn[key] = [float(twonn(A)) for A in arrays]
        np.fill_diagonal(J, out.twonn[key])
        for i, j in pairs:
            J[i, j] = J[j, i] = twonn(np.hstack([arrays[i], arrays[j]]))
        entries["twonn"][key] = matrix(J)
        if rec_metrics:  # GFRE / LFRE: both directions, point estimates
            rec = pair_values(arrays, pairs, rec_metrics, plan.k_used, plan.ii_k_used, fns)
            for mt in rec_metrics:
                M = np.full((len(models), len(models)), np.nan)
                for (i, j), v in rec[mt].items():
                    M[i, j] = v
                entries[mt][key] = matrix(M)
    return out
