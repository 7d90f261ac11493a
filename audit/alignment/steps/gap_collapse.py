"""Step 14 of :func:`~..analysis.align`: gap vs collapse - each structure's coverage gap (distance to the
reference descriptors) against how well the models keep its descriptor neighbourhood (see :mod:`..gap`)."""
from __future__ import annotations

import numpy as np

from ..gap import _overlap, coverage_gap, element_rarity, parse_elements
from ..neighbours import knn
from ..options import AlignOptions
from ..stats import spearman_with_ci
from ._common import cap_k as _cap_k, child_seed as _seed, iv as _iv, num as _num

__all__ = ["gap_vs_collapse_step", "gap_vs_collapse"]


def gap_vs_collapse_step(joined, desc, md, plan, opts: AlignOptions) -> dict:
    """``{"gap_vs_collapse": ...}`` with a descriptor and a reference descriptor array, else the reason it
    was not computed (``{"gap_vs_collapse_not_computed": ...}``).

    Raises
    ------
    ValueError
        ``reference_descriptor`` does not have shape (n_ref, d_descriptor).
    """
    name = opts.descriptor_name
    if name is None or opts.reference_descriptor is None:
        return {"gap_vs_collapse_not_computed": "needs descriptor_name and reference_descriptor"}
    R = np.asarray(opts.reference_descriptor, dtype=float)
    d = joined.arrays[name].shape[1]
    if R.ndim != 2 or R.shape[1] != d:
        raise ValueError(f"reference_descriptor must have shape (n_ref, {d}); got {R.shape}")
    return {"gap_vs_collapse": gap_vs_collapse(
        desc.gap_inputs, plan.models, name, R, md, opts.reference_element_counts, opts.gap_k, plan.k_used,
        opts.n_boot, opts.spearman_n_perm, opts.ci_level, opts.seed, opts.max_points)}


def gap_vs_collapse(per_set, models, descriptor_name, reference_descriptor, md, reference_element_counts,
                     gap_k, k, n_boot, n_perm, level, seed, max_points) -> dict:
    """Per-structure coverage gap against per-structure collapse measures (see :mod:`.gap`)."""
    gaps, md_agree, mm_agree, set_lab, ids_all = [], {m: [] for m in models}, {m: [] for m in models}, [], []
    for key, sd in per_set.items():
        raw_desc = sd["raw_descriptor"]
        gaps.append(coverage_gap(raw_desc, reference_descriptor, k=min(gap_k, reference_descriptor.shape[0])))
        kk = _cap_k(k, sd["n"])
        nbrs = {m: knn(sd["arrays"][m], kk)[1] for m in models}
        nd = knn(sd["descriptor"], kk)[1]
        for m in models:
            md_agree[m].append(_overlap(nbrs[m], nd))
            others = [_overlap(nbrs[m], nbrs[o]) for o in models if o != m]
            mm_agree[m].append(np.mean(others, axis=0))
        set_lab += [key] * sd["n"]
        ids_all += list(sd["ids"])
    x = np.concatenate(gaps)
    measures = {
        "model_descriptor_agreement": {m: np.concatenate(v) for m, v in md_agree.items()},
        "model_model_agreement": {m: np.concatenate(v) for m, v in mm_agree.items()},
    }
    pooled = {name: np.mean(list(v.values()), axis=0) for name, v in measures.items()}

    def sp(xv, yv, tag):
        ok = np.isfinite(xv) & np.isfinite(yv)
        if ok.sum() < 3 or np.ptp(xv[ok]) == 0 or np.ptp(yv[ok]) == 0:
            return None
        r = spearman_with_ci(xv[ok], yv[ok], n_boot=n_boot, seed=_seed(seed, "spearman", tag), ci=level,
                             n_perm=n_perm)
        return {"rho": _num(r.rho), "ci": _iv((r.low, r.high)), "p_value": _num(r.p_value), "n": r.n}

    results = {}
    for name in measures:
        results[name] = {"pooled": sp(x, pooled[name], name),
                         "per_model": {m: sp(x, measures[name][m], f"{name}/{m}") for m in models}}
    rarity = None
    if md is not None and "elements" in md.columns:
        els = md["elements"].reindex(ids_all).tolist()
        by_el: dict[str, list[int]] = {}
        for i, v in enumerate(els):
            for e in parse_elements(v) if isinstance(v, (str, list, tuple, np.ndarray)) else ():
                by_el.setdefault(e, []).append(i)
        results["by_element"] = {}
        for e, rows in sorted(by_el.items()):
            if len(rows) >= 30:
                rows = np.asarray(rows)
                results["by_element"][e] = sp(x[rows], pooled["model_descriptor_agreement"][rows], f"el/{e}")
        if "regime" in md.columns:  # e.g. "md 1000 K", "relax", "molecule": the regime bin of each structure
            regimes = md["regime"].reindex(ids_all).astype(str).tolist()
            by_regime: dict[str, list[int]] = {}
            for i, r in enumerate(regimes):
                by_regime.setdefault(r, []).append(i)
            results["by_regime"] = {
                r: sp(x[np.asarray(rows)], pooled["model_descriptor_agreement"][np.asarray(rows)], f"regime/{r}")
                for r, rows in sorted(by_regime.items()) if len(rows) >= 30}
        if reference_element_counts is not None:
            rarity = element_rarity(els, reference_element_counts, reference_descriptor.shape[0])
            results["element_rarity"] = {name: sp(rarity, pooled[name], f"rarity/{name}") for name in pooled}

    main = results["model_descriptor_agreement"]["pooled"]
    y = pooled["model_descriptor_agreement"]
    order = np.arange(x.size)
    if x.size > max_points:
        order = np.sort(np.random.default_rng(_seed(seed, "points")).choice(x.size, max_points, replace=False))
    out = {
        "x_label": f"coverage gap: mean distance to the {gap_k} nearest reference descriptors ({descriptor_name} units)",
        "y_label": f"model–descriptor k-NN agreement (share of k = {_cap_k(k, min(sd['n'] for sd in per_set.values()))} "
                   "neighbours kept, mean over models)",
        "points": [{"label": set_lab[i], "x": float(x[i]), "y": float(y[i])} for i in order],
        "points_are": f"one point per structure (label = set); {order.size} of {x.size} shown",
        "spearman_rho": main["rho"] if main else None,
        "ci_level": level,
        "n_boot": int(n_boot),
        "p_value": main["p_value"] if main else None,
        "n": int(x.size),
        "descriptor": descriptor_name,
        "expected_if_collapse": "negative rho for model–descriptor agreement (models keep less of the "
                                "descriptor neighbourhood far from the reference data), positive for model–model",
        "measures": results,
    }
    if main and main["ci"]:
        out["ci"] = main["ci"]
    return out

