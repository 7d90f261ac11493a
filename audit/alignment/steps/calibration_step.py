"""Step 7 of :func:`~..analysis.align`: every pair metric against chance (arXiv 2602.14486).

Per set, every pair of models gets a permutation null (P row shuffles of one model against the other):
the metrics :func:`~..calibration.calibrate_pairs` knows by their fast nulls, any other registered pair
metric (e.g. one asked for by name) by the plain permutation loop (:func:`~..calibration.calibrate`).
CKNNA and mutual k-NN are also calibrated over the k sweep and at the local verdict's k.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..calibration import PAIR_METRICS, calibrate, calibrate_pairs, calibrated_replicates, calibration_matrices
from ..metric_registry import get_metric
from ..options import AlignOptions
from ..resampling import Resampled, resample
from ._common import LOCAL_METRICS, child_seed, interval, iv, num, ordered_keys
from .plan import Plan

__all__ = ["Calibrated", "calibration_step", "calibrated_mean", "CALIBRATION_FIELDS", "CALIBRATION_EXPLANATION",
           "LOCAL_METRICS"]

CALIBRATION_FIELDS = (
    "per set, matrices shaped like the raw one: null_mean (mean score under row permutations), tau (the "
    "quantile of the null with the observed score included), p_value ((1 + #null at least as aligned) / (1 + P)) "
    "and calibrated (max(0, (raw - tau) / (1 - tau)); for information imbalance the calibration of 1 - Delta, "
    "higher = more aligned); arXiv 2602.14486, Algorithm 1")
CALIBRATION_EXPLANATION = (
    "Every alignment score is compared with what the same score gives when the structures of one model are "
    "shuffled against the other's, so that the two models share nothing: the calibrated score is 0 when the "
    "observed score is within what shuffling produces 95% of the time, and 1 for a perfect match. Raw scores "
    "rise with the number of features per structure and with the neighbourhood size, calibrated ones do not, so "
    "the verdicts below are stated on calibrated scores, with the raw ones beside them.")


def calibrated_mean(cal: dict, res: Resampled, metric: str, pairs) -> tuple[float, np.ndarray]:
    """Mean over model pairs of the calibrated scores, and its replicates: each pair's raw subsample
    replicates mapped through that pair's tau (:func:`~..calibration.calibrated_replicates`)."""
    keys = [p for p in ordered_keys(metric, pairs) if p in cal]
    est = float(np.mean([cal[p].calibrated for p in keys]))
    reps = np.mean([calibrated_replicates(res.reps[metric][p], cal[p]) for p in keys], axis=0)
    return est, reps


@dataclass
class Calibrated:
    """Calibration of every pair metric of every set.

    Attributes
    ----------
    by_set : dict
        ``{set: {metric: {(i, j): Calibration}}}``.
    local_by_set : dict
        ``{set: (calibrations, Resampled)}`` of the local metrics at the local verdict's k.
    sweep : dict
        ``{set: {metric: [mean calibrated score per sweep k]}}`` of the local metrics.
    entries : dict
        ``{metric: calibration entry}`` added to ``metrics.<name>.calibration``.
    block : dict
        The top-level ``calibration`` block.
    """

    by_set: dict = field(default_factory=dict)
    local_by_set: dict = field(default_factory=dict)
    sweep: dict = field(default_factory=dict)
    entries: dict = field(default_factory=dict)
    block: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The top-level ``calibration`` block."""
        return self.block


def _plain(arrays, plan: Plan, metric: str, fn, opts: AlignOptions, seed: int) -> dict:
    """``{(i, j): Calibration}`` of a metric the fast nulls do not know, by the plain permutation loop."""
    rec = get_metric(metric)
    out = {}
    for i, j in plan.model_pairs:
        for a, b in (((i, j), (j, i)) if rec.directed else ((i, j),)):
            out[(a, b)] = calibrate(lambda X, Y: fn(X, Y, plan.k_used, plan.ii_k_used), arrays[a], arrays[b],
                                    opts.n_calibration, child_seed(seed, metric, a, b),
                                    quantile=opts.calibration_quantile,
                                    s_max=1.0 if rec.higher_is_more_aligned else 0.0,
                                    higher_is_more_aligned=rec.higher_is_more_aligned)
    return out


def _local_calibration(arrays, plan: Plan, opts: AlignOptions, options: dict, key: str, kk: int) -> dict:
    """``{metric: {(i, j): Calibration}}`` of the local metrics at ``k = kk`` (seeded by set and k)."""
    return calibrate_pairs(arrays, metrics=LOCAL_METRICS, k=kk, n_permutations=opts.n_calibration,
                           quantile=opts.calibration_quantile, seed=child_seed(opts.seed, "calibration", key, kk),
                           options=options)


def calibration_step(pm, plan: Plan, fns: dict, opts: AlignOptions) -> Calibrated | None:
    """Calibrate every pair metric per set against its permutation null (None when ``calibration`` is off)."""
    if not opts.calibration:
        return None
    models, pairs, level = plan.models, plan.model_pairs, opts.ci_level
    fast = [m for m in plan.pair_metrics if m in PAIR_METRICS]
    options = {mt: dict(plan.resolved[mt].kwargs) for mt in fast}
    out = Calibrated()
    for key in plan.keys:
        arrays, res, n = pm.arrays[key], pm.resampled[key], plan.n_by_set[key]
        seed = child_seed(opts.seed, "calibration", key)
        cal = calibrate_pairs(arrays, metrics=tuple(fast), k=plan.k_used, ii_k=plan.ii_k_used,
                              n_permutations=opts.n_calibration, quantile=opts.calibration_quantile, seed=seed,
                              options=options, ii_subsample=opts.calibration_subsample)
        for mt in plan.pair_metrics:
            if mt not in cal:
                cal[mt] = _plain(arrays, plan, mt, fns[mt], opts, seed)
        out.by_set[key] = cal
        for mt in plan.pair_metrics:
            entry = out.entries.setdefault(mt, {"n_permutations": int(opts.n_calibration),
                                                "quantile": float(opts.calibration_quantile),
                                                "description": CALIBRATION_FIELDS})
            mats = calibration_matrices(cal[mt], len(models), directed=get_metric(mt).directed)
            first = next(iter(cal[mt].values()))
            entry[key] = {f: mats[f] for f in ("null_mean", "tau", "p_value", "calibrated")}
            entry[key].update(method=first.method, n_rows=int(first.n_rows))
            if first.n_rows != n:
                entry[key]["raw_on_subsample"] = mats["raw"]
            est, reps = calibrated_mean(cal[mt], res, mt, pairs)
            entry.setdefault("mean_over_pairs", {})[key] = {
                "estimate": num(est), "interval": iv(interval(est, reps, n, res.m, level))}
        # the local metrics over the k-sweep, and at the local verdict's k: one calibration per k, the main
        # one at k_used (same arrays, metrics and permutations would be recomputed otherwise)
        by_k = {kk: (cal if kk == plan.k_used and all(mt in cal for mt in LOCAL_METRICS) else
                     _local_calibration(arrays, plan, opts, options, key, kk)) for kk in plan.k_list}
        out.sweep[key] = {mt: [float(np.mean([c.calibrated for c in by_k[kk][mt].values()])) for kk in plan.k_list]
                          for mt in LOCAL_METRICS}
        if plan.k_local == plan.k_used:
            out.local_by_set[key] = (cal, res)
        else:
            local = by_k.get(plan.k_local)
            if local is None:
                local = _local_calibration(arrays, plan, opts, options, key, plan.k_local)
            out.local_by_set[key] = (local, resample(arrays, pairs, LOCAL_METRICS, plan.k_local, plan.ii_k_used,
                                                     opts.n_boot, child_seed(opts.seed, "boot", key), fns))
    k_list = plan.k_list
    out.block = {"explanation": CALIBRATION_EXPLANATION, **plan.params["calibration"],
                 "reference": "Gröger, Wen & Brbić (2026), arXiv 2602.14486, Algorithm 1 (package calibrated-similarity)",
                 "k_sweep": {"k": k_list, "k_over_n": {key: [kk / nn for kk in k_list]
                                                       for key, nn in plan.n_by_set.items()},
                             **{f"calibrated_{mt}": {key: [num(x) for x in out.sweep[key][mt]] for key in out.sweep}
                                for mt in LOCAL_METRICS}}}
    return out
