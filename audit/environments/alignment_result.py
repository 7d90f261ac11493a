"""Result of :func:`~.alignment.align_environments`: typed records, JSON, a table, the coverage link and the
sentences a report quotes.

Every sentence comes from a fixed rule on the numbers (:func:`sentences`), so a reader can check it:

* a group **agrees** when the mean calibrated CKNNA over model pairs is at least :data:`AGREE` (0.5) and every
  pair is above chance (p < 0.05); it is **at chance** when every pair's calibrated CKNNA is 0 (raw score
  within the 95 % permutation null); the others agree **weakly**;
* a model's representation **collapses** in a group when its effective dimension there is below
  :data:`COLLAPSE_DIM` (2: the features of that group's atoms lie nearly on a line) and at most half that of
  another model on the same atoms (so a group that is simply uniform for every model is not flagged);
* the agreement **beyond element identity** is CKNNA calibrated against permutations within elements, over
  all environments; "most of the agreement is the element" when it is below half the ordinary calibrated
  score for every pair;
* the **coverage link** is Spearman's rho across clusters (and, apart, across elements) between the share of
  a group's atoms inside the training support and its mean calibrated CKNNA: "weak evidence" below
  :data:`MIN_GROUPS_FOR_EVIDENCE` (8) groups or when the bootstrap interval contains 0.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

__all__ = ["PairScores", "GroupAlignment", "EnvironmentAlignment", "coverage_link", "sentences", "AGREE",
           "COLLAPSE_DIM", "MIN_GROUPS_FOR_EVIDENCE", "agrees", "at_chance"]

#: Mean calibrated CKNNA from which a group is said to agree.
AGREE = 0.5
#: Effective dimension below which a model's features of a group are called collapsed.
COLLAPSE_DIM = 2.0
#: Groups below which a correlation across groups is weak evidence whatever its interval.
MIN_GROUPS_FOR_EVIDENCE = 8
_ALPHA = 0.05
_LIST = 5  # groups named per sentence


@dataclass
class PairScores:
    """Scores of one model pair in one group.

    Attributes
    ----------
    model_a, model_b : str
    cknna, mutual_knn : dict
        :meth:`monoculture.audit.alignment.Calibration.as_dict`: ``raw``, ``null_mean``, ``tau``, ``p_value``,
        ``calibrated``, ``n_permutations``, ``quantile``, ``method``, ``n_rows``.
    gfre_a_to_b, gfre_b_to_a : float
        GFRE of reconstructing b's features from a's and the reverse (unitless, ~0 linear map, ~1 nothing).
    cknna_within_element : dict or None
        The same CKNNA calibrated against permutations within elements (agreement beyond element identity);
        None for single-element groups.
    mutual_knn_interval : list of float or None
        95 % bootstrap interval ``[low, high]`` of the calibrated mutual k-NN over the group's atoms (graphs
        fixed, tau fixed): how much the score depends on which atoms the group holds.
    """

    model_a: str
    model_b: str
    cknna: dict
    mutual_knn: dict
    gfre_a_to_b: float
    gfre_b_to_a: float
    cknna_within_element: dict | None = None
    mutual_knn_interval: list | None = None


@dataclass
class GroupAlignment:
    """One group of environments: all, one element, or one k-means cluster.

    Attributes
    ----------
    kind : {"all", "element", "cluster"}
    label : str
        ``"all"``, an element symbol, or ``"cluster N"``.
    description : str
        For clusters, the dominant elements by atom share.
    n_atoms : int
        Atoms in the group (with multiplicity).
    n_environments : int
        Distinct environments.
    n_used : int
        Environments the metrics ran on (seeded subsample when above the cap).
    k : int
        Neighbours of CKNNA and mutual k-NN (``k / n_used`` is the neighbourhood share).
    effective_dimension : dict
        {model: participation ratio of its features over the environments used}.
    pairs : list of PairScores
    coverage : dict or None
        ``overlap`` (share of the group's atoms inside the training support), ``mean_delta_entropy_nats``.
    """

    kind: str
    label: str
    description: str
    n_atoms: int
    n_environments: int
    n_used: int
    k: int
    effective_dimension: dict
    pairs: list
    coverage: dict | None = None

    @property
    def k_over_n(self) -> float:
        return self.k / self.n_used if self.n_used else float("nan")

    def mean_calibrated(self, metric: str = "cknna") -> float:
        """Mean calibrated score over the model pairs (NaN where none is finite)."""
        vals = [p.__dict__[metric]["calibrated"] for p in self.pairs]
        vals = [v for v in vals if v is not None and np.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")


@dataclass
class EnvironmentAlignment:
    """Environment-level alignment of several models' per-atom features.

    Attributes
    ----------
    models : list of str
    atoms : dict
        Join accounting: ``n_union``, ``n_joined``, ``missing`` ({input: atoms it lacks}),
        ``n_atomic_number_mismatch``, ``n_duplicate_keys``, ``n_distinct_environments``, ``n_merged``.
    settings : dict
        k and its rule, CKNNA variant, permutations, caps, clustering space, merge rule, seed.
    groups : list of GroupAlignment
        ``all`` first, then elements, then clusters.
    skipped_elements, skipped_clusters : dict
        {label: distinct environments} of groups below the minimum size.
    coverage : dict or None
        Reference name and size, bandwidth, definition, ``overlap_all``, measured kernel-sum error.
    coverage_link : dict
        {"cluster": ..., "element": ...}: ``rho``, ``low``, ``high``, ``p_value``, ``n_groups``, ``evidence``
        (or ``reason`` when not computed).
    sentences : list of str
    """

    models: list
    atoms: dict
    settings: dict
    groups: list
    skipped_elements: dict
    skipped_clusters: dict
    coverage: dict | None
    coverage_link: dict
    sentences: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN as None); the layout of :meth:`to_json`."""
        return _clean(asdict(self))

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per group x model pair."""
        rows = []
        for g in self.groups:
            for p in g.pairs:
                rows.append({
                    "kind": g.kind, "group": g.label, "description": g.description, "n_atoms": g.n_atoms,
                    "n_environments": g.n_environments, "n_used": g.n_used, "k": g.k, "k_over_n": g.k_over_n,
                    "model_a": p.model_a, "model_b": p.model_b,
                    "cknna_raw": p.cknna["raw"], "cknna_tau": p.cknna["tau"], "cknna_p": p.cknna["p_value"],
                    "cknna_calibrated": p.cknna["calibrated"],
                    "mutual_knn_raw": p.mutual_knn["raw"], "mutual_knn_tau": p.mutual_knn["tau"],
                    "mutual_knn_p": p.mutual_knn["p_value"], "mutual_knn_calibrated": p.mutual_knn["calibrated"],
                    "mutual_knn_calibrated_low": (p.mutual_knn_interval or [np.nan, np.nan])[0],
                    "mutual_knn_calibrated_high": (p.mutual_knn_interval or [np.nan, np.nan])[1],
                    "cknna_within_element_tau": (p.cknna_within_element or {}).get("tau", np.nan),
                    "cknna_within_element_calibrated": (p.cknna_within_element or {}).get("calibrated", np.nan),
                    "gfre_a_to_b": p.gfre_a_to_b, "gfre_b_to_a": p.gfre_b_to_a,
                    "effective_dim_a": g.effective_dimension.get(p.model_a),
                    "effective_dim_b": g.effective_dimension.get(p.model_b),
                    "coverage_overlap": (g.coverage or {}).get("overlap", np.nan),
                    "mean_delta_entropy_nats": (g.coverage or {}).get("mean_delta_entropy_nats", np.nan),
                })
        return pd.DataFrame(rows)


def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    return obj


def _evidence(rho, low, high, n) -> str:
    if n < MIN_GROUPS_FOR_EVIDENCE:
        return f"weak evidence (only {n} groups; {MIN_GROUPS_FOR_EVIDENCE} or more are needed)"
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0 <= high:
        return "no clear link (the bootstrap interval contains 0)"
    return "clear positive link" if rho > 0 else "clear negative link"


def coverage_link(groups, *, seed: int = 0, n_boot: int = 1000) -> dict:
    """Spearman correlation of coverage (overlap share) with the mean calibrated CKNNA across groups.

    Computed separately across clusters and across elements (an atom is in one of each, so pooling both
    would count it twice). Positive rho: the better covered a group, the more the models agree there.

    Returns
    -------
    dict
        ``{"cluster": {measure: ...}, "element": {measure: ...}}`` for the two coverage measures ``"overlap"``
        (share inside the training support; ties when many groups lie wholly outside) and ``"-mean
        differential entropy"`` (continuous; larger = better covered). Each: ``rho``, ``low``, ``high`` (95 %
        bootstrap interval), ``p_value`` (permutation), ``n_groups``, ``n_tied_at_lowest_coverage``,
        ``evidence``; or ``n_groups`` and ``reason`` when it cannot be computed.
    """
    from ..alignment import spearman_with_ci

    out = {}
    for kind in ("cluster", "element"):
        gs = [g for g in groups if g.kind == kind and g.coverage is not None and np.isfinite(g.mean_calibrated())]
        n = len(gs)
        agree = np.array([g.mean_calibrated() for g in gs])
        measures = {"overlap": np.array([g.coverage["overlap"] for g in gs]),
                    "-mean differential entropy": -np.array([g.coverage["mean_delta_entropy_nats"] for g in gs])}
        entry = {}
        for what, cov in measures.items():
            if n < 3 or np.ptp(cov) == 0 or np.ptp(agree) == 0:
                entry[what] = {"n_groups": n, "reason": (
                    f"{n} group{'' if n == 1 else 's'}; 3 or more are needed" if n < 3 else
                    "coverage is the same in every group" if np.ptp(cov) == 0 else
                    "agreement is the same in every group")}
                continue
            r = spearman_with_ci(cov, agree, n_boot=n_boot, seed=seed)
            entry[what] = {"rho": r.rho, "low": r.low, "high": r.high, "p_value": r.p_value, "n_groups": n,
                           "coverage": what, "n_tied_at_lowest_coverage": int(np.sum(cov == cov.min())),
                           "evidence": _evidence(r.rho, r.low, r.high, n)}
        out[kind] = entry
    return out


def _collapsed(d, others) -> bool:
    others = [o for o in others if o is not None and np.isfinite(o)]
    return d is not None and np.isfinite(d) and d < COLLAPSE_DIM and bool(others) and d <= 0.5 * max(others)


def _name(g: GroupAlignment) -> str:
    return g.label if g.kind != "cluster" else f"{g.label} ({g.description})"


def at_chance(g: GroupAlignment) -> bool:
    vals = [p.cknna["calibrated"] for p in g.pairs]
    return all(v is not None and np.isfinite(v) and v == 0 for v in vals)


def agrees(g: GroupAlignment) -> bool:
    ps = [p.cknna["p_value"] for p in g.pairs]
    return g.mean_calibrated() >= AGREE and all(p is not None and p < _ALPHA for p in ps)


def sentences(res: EnvironmentAlignment) -> list[str]:
    """Plain-language findings, each from one rule of the module docstring."""
    out = []
    overall = next(g for g in res.groups if g.kind == "all")
    pair_text = "; ".join(f"{p.model_a} vs {p.model_b}: calibrated CKNNA {p.cknna['calibrated']:.2f} "
                          f"(raw {p.cknna['raw']:.2f}, chance level {p.cknna['tau']:.2f})" for p in overall.pairs)
    out.append(f"Over all {overall.n_environments} distinct environments ({overall.n_atoms} atoms; k = "
               f"{overall.k}, k/n = {overall.k_over_n:.3f}): {pair_text}.")
    parts = [g for g in res.groups if g.kind != "all" and np.isfinite(g.mean_calibrated())]
    if parts:
        ranked = sorted(parts, key=lambda g: -g.mean_calibrated())
        agree = [g for g in ranked if agrees(g)]
        chance = [g for g in ranked if at_chance(g)]
        if agree:
            more = f" and {len(agree) - _LIST} more" if len(agree) > _LIST else ""
            out.append(f"The models agree (mean calibrated CKNNA >= {AGREE:g}, every pair above chance) in "
                       f"{len(agree)} of {len(ranked)} groups, most in "
                       + ", ".join(f"{_name(g)} [{g.mean_calibrated():.2f}]" for g in agree[:_LIST]) + more + ".")
        else:
            best = ranked[0]
            out.append(f"No group reaches a mean calibrated CKNNA of 0.5; the highest is {_name(best)} "
                       f"[{best.mean_calibrated():.2f}].")
        if chance:
            out.append("Agreement collapses to chance (every pair's CKNNA within its permutation null) in "
                       + ", ".join(_name(g) for g in chance) + ".")
        else:
            out.append("No group is at chance.")
        weak = [g for g in ranked[::-1] if g not in chance and not agrees(g)]
        if weak:
            more = f" and {len(weak) - _LIST} more" if len(weak) > _LIST else ""
            out.append(f"Weak agreement (above chance for some pair, mean calibrated CKNNA below {AGREE:g}) in "
                       f"{len(weak)} groups, least in "
                       + ", ".join(f"{_name(g)} [{g.mean_calibrated():.2f}]" for g in weak[:_LIST]) + more + ".")
    widths = [p.mutual_knn_interval[1] - p.mutual_knn_interval[0] for g in parts for p in g.pairs
              if p.mutual_knn_interval is not None]
    if widths:
        out.append(f"Uncertainty from which atoms a group holds (95 % bootstrap over atoms of the calibrated mutual "
                   f"k-NN, neighbour graphs fixed): median interval width {np.median(widths):.2f}, largest "
                   f"{np.max(widths):.2f}; differences between groups smaller than that are not findings.")
    collapsed = [(g, m, d) for g in res.groups for m, d in g.effective_dimension.items()
                 if _collapsed(d, [v for o, v in g.effective_dimension.items() if o != m])]
    if collapsed:
        out.append(f"Collapsed representations (effective dimension below {COLLAPSE_DIM:g} and at most half "
                   "another model's on the same atoms): "
                   + ", ".join(f"{m} on {_name(g)} ({d:.2f} vs {max(g.effective_dimension.values()):.2f})"
                               for g, m, d in collapsed) + ".")
    within = [(p, p.cknna_within_element) for p in overall.pairs if p.cknna_within_element]
    if within:
        out.append("Beyond element identity (chance level from permutations that keep each atom's element): "
                   + "; ".join(f"{p.model_a} vs {p.model_b} calibrated CKNNA {w['calibrated']:.2f} "
                               f"(chance level {w['tau']:.2f})" for p, w in within)
                   + (". Most of the agreement is the element." if all(
                       w["calibrated"] < 0.5 * p.cknna["calibrated"] for p, w in within) else "."))
    if res.skipped_elements:
        out.append(f"{len(res.skipped_elements)} elements had fewer than {res.settings['min_environments']} "
                   f"distinct environments and were not analysed on their own.")
    if res.skipped_clusters:
        out.append(f"{len(res.skipped_clusters)} of {res.settings['n_clusters']} clusters had fewer than "
                   f"{res.settings['min_environments']} distinct environments and were not analysed.")
    if res.coverage is None:
        out.append("No training set was given, so coverage was not linked to agreement.")
        return out
    for kind, word in (("cluster", "clusters"), ("element", "elements")):
        links = res.coverage_link.get(kind, {})
        done = {m: v for m, v in links.items() if "rho" in v}
        if not done:
            if links:
                reason = next(iter(links.values())).get("reason")
                out.append(f"Coverage vs agreement across {word}: not computed ({reason}).")
            continue
        gs = [g for g in parts if g.kind == kind and g.coverage is not None]
        text = "; ".join(f"{m}: rho {v['rho']:.2f} (95 % bootstrap {v['low']:.2f} to {v['high']:.2f}), "
                         f"{v['evidence']}" for m, v in done.items())
        least = min(gs, key=lambda g: (g.coverage["overlap"], -g.coverage["mean_delta_entropy_nats"]))
        a_least = least.mean_calibrated()
        rank = 1 + sum(g.mean_calibrated() < a_least - 1e-12 for g in gs)
        where = ("the lowest agreement of all" if rank == 1 else
                 f"rank {rank} of {len(gs)} counted from the lowest agreement")
        n_out = sum(g.coverage["overlap"] == 0 for g in gs)
        out.append(f"Across {len(gs)} {word}, Spearman correlation of coverage by {res.coverage['reference']} "
                   f"with mean calibrated CKNNA: {text}. The least covered, {_name(least)} (overlap "
                   f"{least.coverage['overlap']:.0%}, mean differential entropy "
                   f"{least.coverage['mean_delta_entropy_nats']:.2f} nats), has mean calibrated CKNNA "
                   f"{a_least:.2f}, {where}"
                   + (f"; {n_out} of the {len(gs)} lie wholly outside the training support." if n_out > 1 else "."))
    return out
