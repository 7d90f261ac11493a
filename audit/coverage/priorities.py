"""One ranked table of coverage gaps, each with evidence and a suggestion: what to collect next.

Input: the result dicts of the other analyzers (this dataset, optionally a reference dataset and the
compare result against it). Every row is ``{"rank", "kind", "item", "score", "evidence", "suggestion"}``;
rows are sorted by score (descending), then kind, then item.

Scoring (every score is in [0, 1]; larger = more urgent)
--------------------------------------------------------
Weights: ``w_el`` = 1.0 for a technologically relevant element (see ``_common.TECH_RELEVANT``), 0.4
otherwise. ``w_ref`` = 1.0 when a reference is given and has the element, 0.5 when a reference is given
and lacks it too, 0.7 without a reference.

* ``element_absent`` (Z = 1..94 with no structure): ``w_el * w_ref``.
* ``element_rare`` (1 to ``rare_min`` - 1 = 99 structures): ``0.8 * w_el * w_ref * (1 - log10(1 + n) /
  log10(1 + rare_min))``.
* ``pair_absent`` (needs a reference; both elements present here, never together, the reference has the
  pair in ``n_ref`` structures): ``0.7 * log10(1 + n_ref) / log10(1 + max n_ref over the reference's pairs)``;
  the 50 best.
* ``lot_monoculture`` (dataset): ``0.9 * dominant_share`` when the dominant label is known and
  ``dominant_share >= 0.5``; ``lot_unknown``: ``0.5 * unknown share`` when some labels are unknown.
* ``lot_element`` (only when the dataset has 2+ known labels, for elements with >= 10 structures and
  a per-element dominant share >= 0.95): ``0.5 * w_el * dominant_share``.
* ``regime_equilibrium``: ``0.8 * (near_share - 0.5) / 0.5`` when more than half of the frames with
  forces are near equilibrium; ``regime_no_forces``: ``0.3 * share without forces``.
* ``regime_unknown_temperature``: ``0.6 * share with unknown temperature``.
* ``regime_cell_empty`` / ``regime_cell_thin`` (cells of the known temperature x known pressure grid): empty
  ``0.5 * f_known``; thin (fewer than 1 % of the known-known frames) ``0.4 * f_known * (1 - count /
  (0.01 n_known))``, with ``f_known`` the share of frames whose temperature and pressure are both known.
* ``regime_element`` (the 20 elements with most structures, when the dataset has stress / temperature
  data): no frame at >= 10 GPa, or none at >= 600 K: ``0.4 * w_el * (0.5 + 0.5 s_el / s_max)``.
* ``descriptor_region`` (needs the compare result): a region of reference points with no point of this
  dataset within the coverage radius: ``0.7 * min(1, share_of_reference / 0.05)``.
* ``redundancy``: near-duplicate share of the sample above 0.1: ``0.3 * share``.
"""
from __future__ import annotations

import numpy as np

from ._common import MAX_TABLE_Z, SYMBOLS, TECH_RELEVANT

__all__ = ["build_priorities", "RARE_MIN_STRUCTURES"]

#: Fewer structures than this makes an element "rare".
RARE_MIN_STRUCTURES = 100


def _w_el(el: str) -> float:
    return 1.0 if el in TECH_RELEVANT else 0.4


def _w_ref(el: str, reference: dict | None) -> float:
    if reference is None:
        return 0.7
    return 1.0 if reference["elements"]["structures_per_element"].get(el, 0) > 0 else 0.5


def _row(kind: str, item: str, score: float, evidence: dict, suggestion: str) -> dict:
    return {"kind": kind, "item": item, "score": round(float(score), 6), "evidence": evidence,
            "suggestion": suggestion}


def _element_rows(cov: dict, reference: dict | None, rare_min: int) -> list[dict]:
    rows = []
    spe = cov["elements"]["structures_per_element"]
    ref_spe = reference["elements"]["structures_per_element"] if reference else {}
    for z in range(1, MAX_TABLE_Z + 1):
        el = SYMBOLS[z]
        n = spe.get(el, 0)
        ev = {"structures": n}
        if reference is not None:
            ev["reference_structures"] = ref_spe.get(el, 0)
        w = _w_el(el) * _w_ref(el, reference)
        if n == 0:
            rows.append(_row("element_absent", el, w, ev, f"collect structures containing {el}"))
        elif n < rare_min:
            s = 0.8 * w * (1 - np.log10(1 + n) / np.log10(1 + rare_min))
            rows.append(_row("element_rare", el, s, ev,
                             f"collect more structures containing {el} (has {n}, fewer than {rare_min})"))
    return rows


def _pair_rows(cov: dict, reference: dict | None, top: int = 50) -> list[dict]:
    if reference is None:
        return []
    mine = cov["elements"]["pairs"]["counts"]
    present = set(cov["elements"]["structures_per_element"])
    ref = reference["elements"]["pairs"]["counts"]
    if not ref:
        return []
    max_ref = max(ref.values())
    rows = []
    for pair, n_ref in ref.items():
        a, b = pair.split("-")
        if pair in mine or a not in present or b not in present:
            continue
        s = 0.7 * np.log10(1 + n_ref) / np.log10(1 + max_ref) if max_ref > 0 else 0.0
        rows.append(_row("pair_absent", pair, s, {"structures": 0, "reference_structures": n_ref},
                         f"collect structures containing both {a} and {b} (the reference has {n_ref})"))
    rows.sort(key=lambda r: (-r["score"], r["item"]))
    return rows[:top]


def _lot_rows(cov: dict) -> list[dict]:
    lot = cov["level_of_theory"]
    n = lot["n_frames"]
    rows = []
    if n == 0:
        return rows
    dom, share = lot["dominant"], lot["dominant_share"]
    if dom != "unknown" and share >= 0.5:
        rows.append(_row("lot_monoculture", "dataset", 0.9 * share,
                         {"dominant": dom, "dominant_frames": lot["counts"][dom], "frames": n,
                          "n_labels": lot["n_labels"]},
                         f"{share:.1%} of frames are {dom}: add labels at another level of theory (r2SCAN "
                         f"meta-GGA, hybrid functionals, or beyond-DFT references) for a representative subset"))
    unknown = lot["counts"].get("unknown", 0)
    if unknown:
        rows.append(_row("lot_unknown", "dataset", 0.5 * unknown / n, {"unknown_frames": unknown, "frames": n},
                         "record the functional / +U / basis of every frame (dataset card or metadata)"))
    known = [k for k in lot["counts"] if k != "unknown"]
    if len(known) >= 2:
        for el, d in lot["per_element"].items():
            if d["structures"] >= 10 and d["dominant_share"] >= 0.95:
                others = [k for k in known if k != d["dominant"]]
                rows.append(_row("lot_element", el, 0.5 * _w_el(el) * d["dominant_share"],
                                 {"structures": d["structures"], "dominant": d["dominant"],
                                  "dominant_frames": d["counts"][d["dominant"]],
                                  "plus_u_frames": d["plus_u_frames"]},
                                 f"{el} is seen almost only with {d['dominant']}: add {el} frames labelled with "
                                 f"{' or '.join(others[:2])}"))
    return rows


def _regime_rows(cov: dict) -> list[dict]:
    reg = cov["regimes"]
    n = reg["n_frames"]
    rows = []
    if n == 0:
        return rows
    eq = reg["equilibrium"]
    near = eq["near_equilibrium_share"]
    if near is not None and near > 0.5:
        rows.append(_row("regime_equilibrium", "far-from-equilibrium frames", 0.8 * (near - 0.5) / 0.5,
                         {"near_equilibrium": eq["near_equilibrium"], "far_from_equilibrium":
                          eq["far_from_equilibrium"], "threshold_fmax_eV_A": eq["threshold_fmax_eV_A"]},
                         "collect off-equilibrium frames: rattled structures, AIMD snapshots, strained cells"))
    if reg["no_forces"]:
        rows.append(_row("regime_no_forces", "forces", 0.3 * reg["no_forces"] / n,
                         {"no_forces": reg["no_forces"], "frames": n}, "label frames with forces"))
    unk_t = reg["unknown_temperature"]
    if unk_t:
        rows.append(_row("regime_unknown_temperature", "temperature", 0.6 * unk_t / n,
                         {"unknown_temperature": unk_t, "frames": n},
                         "record the temperature of MD / rattled frames; add finite-temperature MD data"))
    g = reg["grid"]
    counts = np.asarray(g["counts"])
    known = counts[:-1, :-1]
    n_known = int(known.sum())
    f_known = n_known / n
    if n_known:
        for i, tn in enumerate(g["temperature_classes"][:-1]):
            for j, pn in enumerate(g["pressure_classes"][:-1]):
                c = int(known[i, j])
                item = f"{tn} x {pn}"
                if c == 0:
                    rows.append(_row("regime_cell_empty", item, 0.5 * f_known, {"frames": 0, "known_frames": n_known},
                                     f"collect frames at {tn} and {pn}"))
                elif c < 0.01 * n_known:
                    rows.append(_row("regime_cell_thin", item, 0.4 * f_known * (1 - c / (0.01 * n_known)),
                                     {"frames": c, "known_frames": n_known}, f"collect more frames at {tn} and {pn}"))
    per = reg["per_element"]
    spe = cov["elements"]["structures_per_element"]
    top = sorted(spe, key=lambda e: (-spe[e], e))[:20]
    s_max = max(spe.values()) if spe else 1
    has_p = reg["no_stress"] < n
    has_t = unk_t < n
    for el in top:
        w = 0.4 * _w_el(el) * (0.5 + 0.5 * spe[el] / s_max)
        p = per.get(el, {}).get("pressure", {})
        t = per.get(el, {}).get("temperature", {})
        if has_p and p.get("10-50 GPa", 0) + p.get(">=50 GPa", 0) == 0:
            rows.append(_row("regime_element", f"{el} high pressure", w, {"structures": spe[el], "pressure": p},
                             f"collect high-pressure (>= 10 GPa) frames containing {el}"))
        if has_t and sum(t.get(k, 0) for k in ("600-1000 K", "1000-2000 K", ">=2000 K")) == 0:
            rows.append(_row("regime_element", f"{el} high temperature", w, {"structures": spe[el], "temperature": t},
                             f"collect high-temperature (>= 600 K) MD frames containing {el}"))
    return rows


def _space_rows(cov: dict, compare: dict | None) -> list[dict]:
    rows = []
    cs = cov.get("chemical_space", {})
    ex = cov.get("duplicates") or {}
    if ex.get("n_frames") and ex["share"] > 0.01:
        rows.append(_row("redundancy", "exact duplicates", 0.3 * ex["share"],
                         {"duplicates": ex["n_duplicates"], "frames": ex["n_frames"], "groups": ex["n_groups"]},
                         "remove repeated structures (same molecule, or same species and geometry) before "
                         "training / release"))
    nd = cs.get("near_duplicates")
    if nd and nd["share"] > 0.1:
        rows.append(_row("redundancy", "near-duplicates", 0.3 * nd["share"], {"near_copies": nd["n"],
                         "sample": cs["sample"]["size"]},
                         "thin out near-copies (the same structure within a small tolerance) before training / "
                         "release"))
    if compare:
        for r in compare.get("uncovered_regions", []):
            formulas = ", ".join(r["top_formulas"])
            rows.append(_row("descriptor_region", f"{compare['b']} region {r['region']}",
                             0.7 * min(1.0, r["share_of_b"] / 0.05),
                             {"reference_points": r["n_b"], "share_of_reference": r["share_of_b"],
                              "top_formulas": r["top_formulas"], "example_ids": r["example_ids"]},
                             f"collect structures like {formulas} (the reference has them; this dataset has "
                             f"nothing within the coverage radius)"))
    return rows


def build_priorities(coverage: dict, reference: dict | None = None, compare: dict | None = None,
                     rare_min: int = RARE_MIN_STRUCTURES) -> list[dict]:
    """Ranked gap table of a dataset.

    Parameters
    ----------
    coverage : dict
        ``{"elements": ..., "level_of_theory": ..., "regimes": ..., "chemical_space": ...}`` result dicts
        of this dataset (``chemical_space`` optional).
    reference : dict, optional
        The same dict for a reference dataset (enables ``pair_absent`` and the reference weights).
    compare : dict, optional
        :func:`~monoculture.audit.coverage.compare.compare_samples` of this dataset (A) vs the reference
        (B) (enables ``descriptor_region``).
    rare_min : int
        Structures below which an element is rare.

    Returns
    -------
    list of dict
        Rows ``{"rank", "kind", "item", "score", "evidence", "suggestion"}``, rank 1 first; rows with score
        0 are left out.
    """
    rows = (_element_rows(coverage, reference, rare_min) + _pair_rows(coverage, reference)
            + _lot_rows(coverage) + _regime_rows(coverage) + _space_rows(coverage, compare))
    rows = [r for r in rows if r["score"] > 0]
    rows.sort(key=lambda r: (-r["score"], r["kind"], r["item"]))
    return [{"rank": i + 1, **r} for i, r in enumerate(rows)]
