"""Step 13 of :func:`~..analysis.align`: the verdicts, in words that follow the intervals.

Local (CKNNA decides, mutual k-NN supports) and global (distance correlation decides, CKA and information
imbalance support): the mean over model pairs of ID - OOD with its interval; with calibration the verdict
is restated on calibrated scores (raw beside it) and may become "not established". Which metric decides
and which support comes from the registry (``scope`` and ``verdict_rank`` of each record); the labels in
the sentences too. The intrinsic-dimension verdict compares TwoNN between the sets.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..calibration import settle_verdict
from ..metric_registry import get_metric, labels
from .calibration_step import calibrated_mean as _calibrated_mean
from ._common import GLOBAL_METRICS, LOCAL_METRICS, diff_interval as _diff_interval, iv as _iv, num as _num

__all__ = ["Verdicts", "verdicts_step", "direction", "LOCAL_METRICS", "GLOBAL_METRICS", "LABELS"]


LABELS = labels()


def _higher(metric: str) -> bool:
    return get_metric(metric).higher_is_more_aligned


def direction(diff_interval, higher_is_more: bool) -> str:
    """Words for an ID - OOD interval of an alignment metric."""
    if diff_interval is None:
        return "not determined"
    lo, hi = diff_interval
    if not higher_is_more:
        lo, hi = -hi, -lo
    if lo > 0:
        return "higher in distribution"
    if hi < 0:
        return "higher out of distribution"
    return "no detectable difference"


_direction = direction


def _fmt(x, signed=False):
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _verdict(kind: str, primary: str, summary: dict, supporting: Sequence[str], params: dict,
             warnings: Sequence[str]) -> dict:
    s = summary[primary]
    level = params["ci_level"]
    word = _direction(s["difference_interval"], _higher(primary))
    kname = f" (k = {s['k']})" if s.get("k") is not None else ""
    scope = "local (k-NN)" if kind == "local" else "global"
    lines = []
    iv = s["difference_interval"]
    lines.append(
        f"Mean over {s['n_pairs']} model pair(s) of {LABELS[primary]}{kname}: ID {_fmt(s['id'])}, OOD "
        f"{_fmt(s['ood'])}; ID − OOD = {_fmt(s['difference'], True)}"
        + (f", {round(100 * level)}% interval [{_fmt(iv[0], True)}, {_fmt(iv[1], True)}] "
           f"({params['n_boot']} subsamples of n/2 rows per set)" if iv else ", no interval (not computable)")
        + ".")
    if not _higher(primary):
        lines.append(f"{LABELS[primary]} is lower when more aligned, so a negative difference means higher "
                     "alignment in distribution.")
    if word == "no detectable difference":
        lines.append(f"The interval contains 0: no detectable difference in {scope} alignment.")
    elif word != "not determined":
        lines.append(f"The interval excludes 0: {scope} alignment is {word}.")
    eq = s.get("equal_size")
    if eq:
        lines.append(f"Equal-size subsets ({eq['repeats']} × {eq['size']} rows per set): ID − OOD = "
                     f"{_fmt(eq['difference_mean'], True)} ± {_fmt(eq['difference_std'])} (mean ± s.d.)"
                     + (", the opposite sign: the set sizes matter." if np.sign(eq["difference_mean"] or 0)
                        != np.sign(s["difference"] or 0) else "."))
    pm = s.get("permutation")
    if pm:
        lines.append(f"Permutation test of the ID/OOD labels: p = {pm['p_value']:.3g} ({pm['n_perm']} shuffles).")
    agree = 0
    for other in supporting:
        o = summary[other]
        w = _direction(o["difference_interval"], _higher(other))
        agree += w == word
        oiv = o["difference_interval"]
        lines.append(f"{LABELS[other]}: ID − OOD = {_fmt(o['difference'], True)}"
                     + (f" [{_fmt(oiv[0], True)}, {_fmt(oiv[1], True)}]" if oiv else "") + f", {w}.")
    if supporting:
        lines.append(f"{agree} of {len(supporting)} supporting metric(s) agree with {LABELS[primary]}.")
    for w in warnings:
        lines.append(f"Warning: the sets differ — {w}; the difference may reflect the sets, not the models.")
    out = {
        "question": f"Is {scope} alignment between models higher in distribution or out of distribution?",
        "statistic": f"mean over model pairs of {LABELS[primary]}{kname} (ID) − {LABELS[primary]} (OOD)",
        "estimate": _num(s["difference"]),
        "level": level,
        "verdict": word,
        "explanation": " ".join(lines),
        "metric": primary,
        "higher_is_more_aligned": _higher(primary),
        "relative_effect": (_num(s["difference"] / abs(s["ood"])) if s["ood"] and s["difference"] is not None
                            else None),
        "supporting": {o: {"estimate": summary[o]["difference"], "interval": summary[o]["difference_interval"],
                           "verdict": _direction(summary[o]["difference_interval"], _higher(o))}
                       for o in supporting},
        "supporting_agree": agree,
        "warnings": list(warnings),
    }
    if iv:
        out["interval"] = list(iv)
    return out


def _calibrated_comparison(metric, by_set, pairs, level) -> dict:
    """ID and OOD means over model pairs of the calibrated scores, their difference and its interval."""
    (ca, ra), (cb, rb) = by_set["id"], by_set["ood"]
    ea, reps_a = _calibrated_mean(ca[metric], ra, metric, pairs)
    eb, reps_b = _calibrated_mean(cb[metric], rb, metric, pairs)
    div = _iv(_diff_interval(ea, reps_a, ra.n, ra.m, eb, reps_b, rb.n, rb.m, level))
    return {"id": _num(ea), "ood": _num(eb), "difference": _num(ea - eb), "difference_interval": div,
            "verdict": _direction(div, True)}


def _calibrate_verdict(v: dict, metrics: Sequence[str], by_set: dict, pairs, k_local, n_by_set, sweep_ks,
                       sweep_diffs, params) -> None:
    """Restate a raw ID-vs-OOD verdict on calibrated scores (in place), raw beside them."""
    level = params["ci_level"]
    primary = metrics[0]
    cs = {m: _calibrated_comparison(m, by_set, pairs, level) for m in metrics}
    c = cs[primary]
    word, reasons = settle_verdict(v["verdict"], c["verdict"], sweep_diffs)
    kname = f" (k = {k_local}, k/n = {k_local / min(n_by_set.values()):.2f} at most)" if k_local else ""
    iv = c["difference_interval"]
    lines = [
        f"Calibrated against chance ({params['calibration']['n_permutations']} row permutations per pair): mean "
        f"over model pairs of calibrated {LABELS[primary]}{kname}: ID {_fmt(c['id'])}, OOD {_fmt(c['ood'])}; "
        f"ID − OOD = {_fmt(c['difference'], True)}"
        + (f", {round(100 * level)}% interval [{_fmt(iv[0], True)}, {_fmt(iv[1], True)}]" if iv else "")
        + f": {c['verdict']}."]
    for other in metrics[1:]:
        o = cs[other]
        lines.append(f"Calibrated {LABELS[other]}: ID − OOD = {_fmt(o['difference'], True)}, {o['verdict']}.")
    if sweep_ks:
        lines.append("Calibrated ID − OOD over the k-sweep at k/n <= 0.1: " + ", ".join(
            f"k = {kk}: {_fmt(d, True)}" for kk, d in zip(sweep_ks, sweep_diffs)) + ".")
    if reasons:
        lines.append("Not established: " + "; ".join(reasons) + ".")
    raw = {key: v.get(key) for key in ("statistic", "estimate", "interval", "verdict")}
    v["raw"] = raw
    v["calibrated"] = {"metric": primary, "k": k_local, **c,
                       "supporting": {m: cs[m] for m in metrics[1:]},
                       "k_sweep": ({"k": list(sweep_ks), "difference": [_num(d) for d in sweep_diffs]}
                                   if sweep_ks else None),
                       "not_established_because": reasons}
    v["verdict"] = word
    v["statistic"] = (f"mean over model pairs of calibrated {LABELS[primary]}{' (k = %d)' % k_local if k_local else ''}"
                      f" (ID) − calibrated {LABELS[primary]} (OOD)")
    v["estimate"] = c["difference"]
    if iv:
        v["interval"] = list(iv)
    else:
        v.pop("interval", None)
    v["explanation"] = " ".join(lines) + f" Raw scores: {v['explanation']}"


def _id_verdict(id_reps, models, res_by_set, params) -> dict:
    """Mean over models of TwoNN(ID) - TwoNN(OOD): does the representation lose dimensions out of distribution?"""
    level = params["ci_level"]
    a = [id_reps[(m, "id")] for m in models]
    b = [id_reps[(m, "ood")] for m in models]
    ea, eb = float(np.mean([c.estimate for c in a])), float(np.mean([c.estimate for c in b]))
    ra, rb = np.mean([c.replicates for c in a], axis=0), np.mean([c.replicates for c in b], axis=0)
    na, nb = res_by_set["id"].n, res_by_set["ood"].n
    iv = _iv(_diff_interval(ea, ra, na, a[0].m, eb, rb, nb, b[0].m, level))
    word = direction(iv, True)
    out = {
        "question": "Is the intrinsic dimension of the embeddings higher in distribution or out of distribution?",
        "statistic": "mean over models of TwoNN dimension (ID) − TwoNN dimension (OOD), near-duplicate-free rows",
        "estimate": _num(ea - eb), "level": level, "verdict": word,
        "explanation": (f"TwoNN, mean over {len(models)} model(s): ID {ea:.2f}, OOD {eb:.2f}; ID − OOD = {ea - eb:+.2f}"
                        + (f", {round(100 * level)}% interval [{iv[0]:+.2f}, {iv[1]:+.2f}]" if iv else "")
                        + f". Intrinsic dimension: {word}"
                        + (" (a lower OOD dimension is what a collapse onto a low-information representation "
                           "predicts)." if word == "higher in distribution" else ".")),
        "metric": "twonn",
    }
    if iv:
        out["interval"] = iv
    return out


@dataclass
class Verdicts:
    """The ``verdicts`` block: ``local``, ``global`` and ``intrinsic_dimension``, each a dict with the
    question, the statistic, its estimate and interval, the verdict in words and the explanation."""

    local: dict
    global_: dict
    intrinsic_dimension: dict

    def to_json(self) -> dict:
        return {"local": self.local, "global": self.global_, "intrinsic_dimension": self.intrinsic_dimension}


def verdicts_step(pm, cmp, idim, cal, confounders, outliers, plan) -> Verdicts | None:
    """Local, global and intrinsic-dimension verdicts (None unless the sets are ID and OOD)."""
    if not plan.two_sets:
        return None
    params, summary = plan.params, cmp.summary
    warnings = (confounders.warnings if confounders else []) + outliers.warnings
    out = Verdicts(_verdict("local", LOCAL_METRICS[0], summary, LOCAL_METRICS[1:], params, warnings),
                   _verdict("global", GLOBAL_METRICS[0], summary, GLOBAL_METRICS[1:], params, warnings),
                   _id_verdict(idim.replicates, plan.models, pm.resampled, params))
    if cal is not None:
        k_list = plan.k_list
        sweep_ks = [kk for kk in k_list if plan.local_enough(kk)]
        sweep_diffs = [cal.sweep["id"][LOCAL_METRICS[0]][k_list.index(kk)]
                       - cal.sweep["ood"][LOCAL_METRICS[0]][k_list.index(kk)] for kk in sweep_ks]
        _calibrate_verdict(out.local, LOCAL_METRICS, cal.local_by_set, plan.model_pairs, plan.k_local,
                           plan.n_by_set, sweep_ks, sweep_diffs, params)
        _calibrate_verdict(out.global_, GLOBAL_METRICS, {key: (cal.by_set[key], pm.resampled[key]) for key in plan.keys},
                           plan.model_pairs, None, plan.n_by_set, [], [], params)
    return out
