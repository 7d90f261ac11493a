"""One ranked table of coverage gaps, each with its evidence, one sentence why, and a suggestion.

Input: the result dicts of the other analyzers (this dataset, optionally a reference dataset and the
compare result against it). Every row is ``{"rank", "kind", "item", "items", "score", "evidence", "why",
"suggestion"}``. ``docs/findings_and_priorities.md`` explains the formula with worked examples.

Kind of data
------------
:func:`data_kind` reads it from the coverage results: ``molecules`` when no frame has a cell volume (no
periodic frame), ``crystals`` when every frame has one, ``mixed`` otherwise; ``geometry`` is False for a
SMILES library (every frame's identity comes from its SMILES); ``trajectories`` is True when frames are MD or
rattled snapshots or record a temperature. Suggestions follow the kind: a molecule set is never told to add
high-pressure crystals, a SMILES library never to add MD data (it first needs 3-D geometries and labels).

Scoring (every score is in [0, 1]; larger = more urgent)
--------------------------------------------------------
Relevance ``w_el`` of an element: 1.0 when it is technologically relevant (``_common.TECH_RELEVANT``) or, for
a molecule set, when it belongs to molecular chemistry (:data:`MOLECULAR_ELEMENTS`); 0.4 otherwise.
With a reference, ``E(el) = log10(1 + n_ref(el)) / log10(1 + max n_ref)`` measures how much of the reference
holds the element and ``R(el) = pairs_ref(el) / max pairs_ref`` how far the gap reaches into element pairs
(pairs of the reference that contain it).

* ``element_absent`` (Z = 1..94 with no structure). With a reference holding it: ``w_el * (0.4 + 0.3 E + 0.3
  R)``; with a reference lacking it too: ``0.3 * w_el`` for crystals and no row at all for molecules (a molecule
  set is not asked for metals the reference lacks as well); without a reference: ``0.7 * w_el`` (for a
  molecule set only the :data:`MOLECULAR_ELEMENTS` get a row).
* ``element_rare`` (1 to ``rare_min`` - 1 structures): ``0.8 * w_el * (1 - log10(1 + n) / log10(1 +
  rare_min)) * f_ref`` with ``f_ref = 0.5 + 0.5 E`` with a reference, 0.7 without.
* ``pair_absent`` (needs a reference; both elements present here, never together, the reference has the
  pair in ``n_ref`` structures): ``0.7 * log10(1 + n_ref) / log10(1 + max n_ref over the reference's pairs)``;
  the 50 best.
* ``lot_monoculture`` (dataset): ``0.9 * dominant_share`` when the dominant label is known and
  ``dominant_share >= 0.5``; ``lot_unknown``: ``0.5 * unknown share`` when some labels are unknown.
* ``lot_element`` (only when the dataset has 2+ known labels, for elements with >= 10 structures and
  a per-element dominant share >= 0.95): ``0.5 * w_el * dominant_share``.
* ``regime_equilibrium``: ``0.8 * (near_share - 0.5) / 0.5`` when more than half of the frames with
  forces are near equilibrium; ``regime_no_forces``: ``0.3 * share without forces`` (for a SMILES library the
  row is ``geometry``: no 3-D structure, ``0.6 * share``).
* ``regime_unknown_temperature`` (crystals and trajectories only): ``0.6 * share with unknown temperature``.
* ``regime_cell_empty`` / ``regime_cell_thin`` (cells of the known temperature x known pressure grid): empty
  ``0.5 * f_known``; thin (fewer than 1 % of the known-known frames) ``0.4 * f_known * (1 - count /
  (0.01 n_known))``, with ``f_known`` the share of frames whose temperature and pressure are both known.
* ``regime_element`` (crystals only; the 20 elements with most structures, when the dataset has stress /
  temperature data): no frame at >= 10 GPa, or none at >= 600 K: ``0.4 * w_el * (0.5 + 0.5 s_el / s_max)``.
* ``descriptor_region`` (needs the compare result): a region of reference points with no point of this
  dataset within the coverage radius: ``0.7 * f_kind * min(1, share_of_reference / 0.05)``, ``f_kind`` = 0.5
  when the reference is of another kind (crystals against a molecule set), else 1.
* ``redundancy``: exact-duplicate share above 0.01, or near-duplicate share of the sample above 0.1:
  ``0.3 * share``.

Order and ties
--------------
Rows are sorted by score, then by evidence (:func:`evidence_key`: more reference structures first, then
fewer structures here, then more frames concerned), then by kind. Rows of one kind with the same score and the
same evidence cannot be told apart by any number, so they are merged into one row whose ``items`` lists them
(in order of Z); the order of a table therefore never depends on a name.
"""
from __future__ import annotations

import numpy as np

from ._common import MAX_TABLE_Z, SYMBOLS, TECH_RELEVANT

__all__ = ["build_priorities", "data_kind", "evidence_key", "RARE_MIN_STRUCTURES", "MOLECULAR_ELEMENTS"]

#: Fewer structures than this makes an element "rare".
RARE_MIN_STRUCTURES = 100

#: Elements of molecular chemistry (organic, main-group and the common counter-ions), the relevant set of a
#: molecule set without a reference: those of the organic / drug-like molecular datasets (SPICE, ANI-2x,
#: OMol25's organic part).
MOLECULAR_ELEMENTS: tuple[str, ...] = ("H", "Li", "B", "C", "N", "O", "F", "Na", "Mg", "Si", "P", "S", "Cl",
                                       "K", "Ca", "Se", "Br", "I")


def data_kind(cov: dict) -> dict:
    """What kind of data the coverage results describe.

    Parameters
    ----------
    cov : dict
        Coverage results with ``elements``, ``regimes`` and (optionally) ``duplicates``.

    Returns
    -------
    dict
        ``kind`` (``"molecules"``, ``"crystals"``, ``"mixed"`` or ``"empty"``), ``periodic_frames``,
        ``frames``, ``geometry`` (False when every frame is known only by its SMILES), ``trajectories``
        (MD / rattled frames or a recorded temperature).
    """
    n = int(cov["elements"].get("n_frames", 0) or 0)
    reg = cov.get("regimes") or {}
    vol = (reg.get("histograms") or {}).get("volume_per_atom_A3") or {}
    periodic = n - int(vol.get("missing", n) or 0) if vol else 0
    rules = (cov.get("duplicates") or {}).get("rules") or {}
    smiles_only = n > 0 and int(rules.get("molecule", 0)) >= n
    methods = reg.get("methods") or {}
    traj = bool(methods.get("md", 0) or methods.get("rattled", 0)) or (n > 0 and reg.get("unknown_temperature", n) < n)
    if n == 0:
        kind = "empty"
    elif periodic == 0:
        kind = "molecules"
    elif periodic >= n:
        kind = "crystals"
    else:
        kind = "mixed"
    return {"kind": kind, "frames": n, "periodic_frames": periodic, "geometry": not smiles_only,
            "trajectories": traj}


def _w_el(el: str, kind: str) -> float:
    if kind == "molecules":
        return 1.0 if el in MOLECULAR_ELEMENTS else 0.4
    return 1.0 if el in TECH_RELEVANT else 0.4


def _row(kind: str, item: str, score: float, evidence: dict, why: str, suggestion: str) -> dict:
    return {"kind": kind, "item": item, "items": [item], "score": round(float(score), 6), "evidence": evidence,
            "why": why, "suggestion": suggestion}


def _n(x: int) -> str:
    return f"{int(x):,}"


def _ref_pair_counts(reference: dict | None) -> dict[str, int]:
    """Pairs of the reference containing each element."""
    out: dict[str, int] = {}
    if reference is None:
        return out
    for pair in (reference["elements"].get("pairs") or {}).get("counts") or {}:
        for el in str(pair).split("-"):
            out[el] = out.get(el, 0) + 1
    return out


def _element_rows(cov: dict, reference: dict | None, rare_min: int, kind: str) -> list[dict]:
    rows = []
    spe = cov["elements"]["structures_per_element"]
    n_frames = int(cov["elements"].get("n_frames", 0) or 0)
    ref_spe = reference["elements"]["structures_per_element"] if reference else {}
    ref_frames = int(reference["elements"].get("n_frames", 0) or 0) if reference else 0
    ref_pairs = _ref_pair_counts(reference)
    max_ref = max(ref_spe.values(), default=0)
    max_pairs = max(ref_pairs.values(), default=0)
    for z in range(1, MAX_TABLE_Z + 1):
        el = SYMBOLS[z]
        n = spe.get(el, 0)
        w = _w_el(el, kind)
        ev = {"structures": n, "frames": n_frames}
        n_ref = ref_spe.get(el, 0)
        if reference is not None:
            ev.update(reference_structures=n_ref, reference_frames=ref_frames, reference_pairs=ref_pairs.get(el, 0))
        e = np.log10(1 + n_ref) / np.log10(1 + max_ref) if max_ref > 0 else 0.0
        r = ref_pairs.get(el, 0) / max_pairs if max_pairs > 0 else 0.0
        if n == 0:
            if reference is not None and n_ref > 0:
                s = w * (0.4 + 0.3 * e + 0.3 * r)
                why = (f"{el} is in {_n(n_ref)} of the {_n(ref_frames)} reference structures and in "
                       f"{ref_pairs.get(el, 0)} of its element pairs, but in none of the {_n(n_frames)} here.")
            elif reference is not None:
                if kind == "molecules":
                    continue  # the reference lacks it too: no evidence that a molecule set needs it
                s = 0.3 * w
                why = f"{el} is in none of the {_n(n_frames)} structures here nor in the reference."
            else:
                if kind == "molecules" and el not in MOLECULAR_ELEMENTS:
                    continue
                s = 0.7 * w
                why = (f"{el} is in none of the {_n(n_frames)} structures"
                       + (" and belongs to molecular chemistry." if kind == "molecules" else
                          (" and is technologically relevant." if w == 1.0 else ".")))
            rows.append(_row("element_absent", el, s, ev, why, _absent_suggestion(el, kind)))
        elif n < rare_min:
            f_ref = 0.5 + 0.5 * e if reference is not None else 0.7
            s = 0.8 * w * (1 - np.log10(1 + n) / np.log10(1 + rare_min)) * f_ref
            why = (f"{el} is in only {_n(n)} of the {_n(n_frames)} structures (fewer than {rare_min})"
                   + (f"; the reference has {_n(n_ref)}." if reference is not None else "."))
            rows.append(_row("element_rare", el, s, ev, why,
                             f"collect more {'molecules' if kind == 'molecules' else 'structures'} containing {el}"))
    return rows


def _absent_suggestion(el: str, kind: str) -> str:
    if kind == "molecules":
        return f"add molecules containing {el}"
    return f"collect structures containing {el}"


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
                         f"{a} and {b} are both present here but never in one structure; the reference has "
                         f"{_n(n_ref)} structures with both.",
                         f"collect structures containing both {a} and {b}"))
    rows.sort(key=lambda r: (-r["score"], evidence_key(r)))
    return rows[:top]


def _lot_rows(cov: dict, kind: str) -> list[dict]:
    lot = cov["level_of_theory"]
    n = lot["n_frames"]
    rows = []
    if n == 0:
        return rows
    dom, share = lot["dominant"], lot["dominant_share"]
    if dom != "unknown" and share >= 0.5:
        other = ("coupled-cluster (CCSD(T)) or hybrid-functional references" if kind == "molecules" else
                 "r2SCAN meta-GGA, hybrid functionals, or beyond-DFT references")
        rows.append(_row("lot_monoculture", "dataset", 0.9 * share,
                         {"dominant": dom, "dominant_frames": lot["counts"][dom], "frames": n,
                          "n_labels": lot["n_labels"]},
                         f"{share:.1%} of the {_n(n)} frames ({_n(lot['counts'][dom])}) are {dom}, so a model "
                         f"trained on them inherits that level of theory's errors.",
                         f"add labels at another level of theory ({other}) for a representative subset"))
    unknown = lot["counts"].get("unknown", 0)
    if unknown:
        rows.append(_row("lot_unknown", "dataset", 0.5 * unknown / n, {"unknown_frames": unknown, "frames": n},
                         f"{_n(unknown)} of the {_n(n)} frames ({unknown / n:.1%}) record no level of theory.",
                         "record the functional / +U / basis of every frame (dataset card or metadata)"))
    known = [k for k in lot["counts"] if k != "unknown"]
    if len(known) >= 2:
        for el, d in lot["per_element"].items():
            if d["structures"] >= 10 and d["dominant_share"] >= 0.95:
                others = [k for k in known if k != d["dominant"]]
                rows.append(_row("lot_element", el, 0.5 * _w_el(el, kind) * d["dominant_share"],
                                 {"structures": d["structures"], "dominant": d["dominant"],
                                  "dominant_frames": d["counts"][d["dominant"]],
                                  "plus_u_frames": d["plus_u_frames"]},
                                 f"{d['dominant_share']:.1%} of the {_n(d['structures'])} structures with {el} are "
                                 f"{d['dominant']}.",
                                 f"add {el} frames labelled with {' or '.join(others[:2])}"))
    return rows


def _regime_rows(cov: dict, kd: dict) -> list[dict]:
    reg = cov["regimes"]
    n = reg["n_frames"]
    rows = []
    if n == 0:
        return rows
    kind = kd["kind"]
    eq = reg["equilibrium"]
    near = eq["near_equilibrium_share"]
    if near is not None and near > 0.5:
        with_f = eq["near_equilibrium"] + eq["far_from_equilibrium"]
        sugg = ("add off-equilibrium conformers: normal-mode sampling, MD snapshots, distorted geometries"
                if kind == "molecules" else
                "collect off-equilibrium frames: rattled structures, AIMD snapshots, strained cells")
        rows.append(_row("regime_equilibrium", "far-from-equilibrium frames", 0.8 * (near - 0.5) / 0.5,
                         {"near_equilibrium": eq["near_equilibrium"], "far_from_equilibrium":
                          eq["far_from_equilibrium"], "threshold_fmax_eV_A": eq["threshold_fmax_eV_A"]},
                         f"{near:.1%} of the {_n(with_f)} frames with forces are near equilibrium (fmax < "
                         f"{eq['threshold_fmax_eV_A']} eV/Å): a model sees few distorted structures.", sugg))
    if reg["no_forces"]:
        share = reg["no_forces"] / n
        if not kd["geometry"]:
            rows.append(_row("regime_no_forces", "geometry", 0.6 * share, {"no_forces": reg["no_forces"], "frames": n},
                             f"{_n(reg['no_forces'])} of the {_n(n)} entries have no 3-D geometry (a SMILES or a "
                             f"2-D drawing only): no 3-D structure, energy or forces to train on.",
                             "generate 3-D conformers (e.g. RDKit ETKDG) and label them with energies and forces"))
        else:
            rows.append(_row("regime_no_forces", "forces", 0.3 * share, {"no_forces": reg["no_forces"], "frames": n},
                             f"{_n(reg['no_forces'])} of the {_n(n)} frames ({share:.1%}) carry no forces.",
                             "label frames with forces"))
    unk_t = reg["unknown_temperature"]
    if unk_t and (kind in ("crystals", "mixed") or kd["trajectories"]):
        rows.append(_row("regime_unknown_temperature", "temperature", 0.6 * unk_t / n,
                         {"unknown_temperature": unk_t, "frames": n},
                         f"{_n(unk_t)} of the {_n(n)} frames ({unk_t / n:.1%}) record no temperature.",
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
                                     f"No frame at {tn} and {pn}, among {_n(n_known)} frames with both known.",
                                     f"collect frames at {tn} and {pn}"))
                elif c < 0.01 * n_known:
                    rows.append(_row("regime_cell_thin", item, 0.4 * f_known * (1 - c / (0.01 * n_known)),
                                     {"frames": c, "known_frames": n_known},
                                     f"Only {_n(c)} of {_n(n_known)} frames with both known lie at {tn} and {pn}.",
                                     f"collect more frames at {tn} and {pn}"))
    if kind == "molecules":
        return rows
    per = reg["per_element"]
    spe = cov["elements"]["structures_per_element"]
    top = sorted(spe, key=lambda e: (-spe[e], SYMBOLS.index(e) if e in SYMBOLS else 999))[:20]
    s_max = max(spe.values()) if spe else 1
    has_p = reg["no_stress"] < n
    has_t = unk_t < n
    for el in top:
        w = 0.4 * _w_el(el, kind) * (0.5 + 0.5 * spe[el] / s_max)
        p = per.get(el, {}).get("pressure", {})
        t = per.get(el, {}).get("temperature", {})
        if has_p and p.get("10-50 GPa", 0) + p.get(">=50 GPa", 0) == 0:
            rows.append(_row("regime_element", f"{el} high pressure", w, {"structures": spe[el], "pressure": p},
                             f"Not one of the {_n(spe[el])} structures with {el} is at 10 GPa or more.",
                             f"collect high-pressure (>= 10 GPa) frames containing {el}"))
        if has_t and sum(t.get(k, 0) for k in ("600-1000 K", "1000-2000 K", ">=2000 K")) == 0:
            rows.append(_row("regime_element", f"{el} high temperature", w, {"structures": spe[el], "temperature": t},
                             f"Not one of the {_n(spe[el])} structures with {el} is at 600 K or more.",
                             f"collect high-temperature (>= 600 K) MD frames containing {el}"))
    return rows


def _space_rows(cov: dict, compare: dict | None, kind: str = "crystals", ref_kind: str | None = None) -> list[dict]:
    rows = []
    # a region of a reference of another kind (crystals for a molecule set) is weaker evidence of a need
    f_kind = 0.5 if ref_kind not in (None, kind, "mixed", "empty") and kind != "mixed" else 1.0
    cs = cov.get("chemical_space", {})
    ex = cov.get("duplicates") or {}
    if ex.get("n_frames") and ex["share"] > 0.01:
        rows.append(_row("redundancy", "exact duplicates", 0.3 * ex["share"],
                         {"duplicates": ex["n_duplicates"], "frames": ex["n_frames"], "groups": ex["n_groups"]},
                         f"{_n(ex['n_duplicates'])} of the {_n(ex['n_frames'])} frames ({ex['share']:.1%}) repeat "
                         f"another one.",
                         "remove repeated structures (same molecule, or same species and geometry) before "
                         "training / release"))
    nd = cs.get("near_duplicates")
    if nd and nd["share"] > 0.1:
        rows.append(_row("redundancy", "near-duplicates", 0.3 * nd["share"], {"near_copies": nd["n"],
                         "sample": cs["sample"]["size"]},
                         f"{nd['share']:.1%} of the {_n(cs['sample']['size'])} sampled frames are near-copies of "
                         f"another.",
                         "thin out near-copies (the same structure within a small tolerance) before training / "
                         "release"))
    if compare:
        for r in compare.get("uncovered_regions", []):
            formulas = ", ".join(r["top_formulas"])
            rows.append(_row("descriptor_region", f"{compare['b']} region {r['region']}",
                             0.7 * f_kind * min(1.0, r["share_of_b"] / 0.05),
                             {"reference_points": r["n_b"], "share_of_reference": r["share_of_b"],
                              "top_formulas": r["top_formulas"], "example_ids": r["example_ids"]},
                             f"{_n(r['n_b'])} sampled reference structures ({r['share_of_b']:.1%}; mostly "
                             f"{formulas}) have nothing here within the coverage radius"
                             + (f" (the reference holds {ref_kind}, this dataset {kind}: weighted by half)."
                                if f_kind < 1 else "."),
                             f"collect structures like {formulas}"))
    return rows


def evidence_key(row: dict) -> tuple:
    """Sort key of a row's evidence, used after the score: more reference structures first, then fewer
    structures here, then more frames concerned (numbers only; never a name)."""
    ev = row.get("evidence") or {}

    def num(*keys, default=0.0):
        for k in keys:
            v = ev.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
        return default

    return (-num("reference_structures", "reference_points"), -num("reference_pairs"),
            num("structures", "frames_here", default=0.0),
            -num("dominant_frames", "unknown_frames", "no_forces", "unknown_temperature", "duplicates",
                 "near_copies", "near_equilibrium"))


def _group_ties(rows: list[dict]) -> list[dict]:
    """Merge rows of one kind whose score and evidence are equal (they cannot be ranked by any number)."""
    out: list[dict] = []
    index: dict[tuple, int] = {}
    for r in rows:
        if r["kind"] not in ("element_absent", "element_rare", "pair_absent", "regime_cell_empty",
                             "regime_cell_thin"):
            out.append(r)
            continue
        key = (r["kind"], r["score"], repr(sorted(r["evidence"].items())))
        if key in index:
            g = out[index[key]]
            g["items"].append(r["item"])
        else:
            index[key] = len(out)
            out.append({**r, "items": [r["item"]]})
    for g in out:
        if len(g["items"]) > 1:
            _describe_group(g)
    return out


def _describe_group(g: dict) -> None:
    items = g["items"]
    k = len(items)
    shown = ", ".join(items[:12]) + (f" and {k - 12} more" if k > 12 else "")
    g["item"] = ", ".join(items) if k <= 6 else f"{k} {'elements' if g['kind'].startswith('element') else 'items'}: {shown}"
    first = g["why"]
    if g["kind"] in ("element_absent", "element_rare"):
        el = items[0]
        g["why"] = first.replace(el + " is", f"Each of these {k} elements is", 1)
        g["suggestion"] = g["suggestion"].replace(f"containing {el}", f"containing {shown}")
    else:
        g["why"] = f"{k} items with the same evidence ({shown}); e.g. " + _sentence_inside(first)
        if g["kind"] == "pair_absent":
            g["suggestion"] = f"collect structures containing both elements of each pair: {shown}"


def _sentence_inside(sentence: str) -> str:
    """Lower-case the first letter of *sentence* for use after "e.g.", unless its first word is a chemical
    symbol or a name ("O and Ni are both present ..." keeps its "O")."""
    word = sentence.split(" ", 1)[0].rstrip(",.;:")
    if not word or not word[0].isupper() or word[1:] != word[1:].lower() or word in SYMBOLS:
        return sentence
    return sentence[0].lower() + sentence[1:]


def _kind_or_none(reference: dict | None) -> str | None:
    if reference is None:
        return None
    try:
        return data_kind(reference)["kind"]
    except (KeyError, TypeError):
        return None


def build_priorities(coverage: dict, reference: dict | None = None, compare: dict | None = None,
                     rare_min: int = RARE_MIN_STRUCTURES) -> list[dict]:
    """Ranked gap table of a dataset.

    Parameters
    ----------
    coverage : dict
        ``{"elements": ..., "level_of_theory": ..., "regimes": ..., "chemical_space": ...}`` result dicts
        of this dataset (``chemical_space`` and ``duplicates`` optional).
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
        Rows ``{"rank", "kind", "item", "items", "score", "evidence", "why", "suggestion"}``, rank 1 first;
        rows with score 0 are left out; tied rows of one kind merged (see the module docstring).
    """
    kd = data_kind(coverage)
    rows = (_element_rows(coverage, reference, rare_min, kd["kind"]) + _pair_rows(coverage, reference)
            + _lot_rows(coverage, kd["kind"]) + _regime_rows(coverage, kd)
            + _space_rows(coverage, compare, kd["kind"], _kind_or_none(reference)))
    rows = [r for r in rows if r["score"] > 0]
    rows.sort(key=lambda r: (-r["score"], evidence_key(r), r["kind"]))
    rows = _group_ties(rows)
    return [{"rank": i + 1, **r} for i, r in enumerate(rows)]
