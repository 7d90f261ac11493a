"""The findings a report opens with: 3-8 plain sentences generated from the audit document by fixed rules.

Each rule reads numbers the document holds (nothing is recomputed from data), states them with their
95 % interval where the number is a share of a counted or sampled set (Wilson score interval, from
:func:`scipy.stats.binomtest`), says what the number means for a model trained on the data, and marks its
evidence weak when it rests on few structures. ``docs/findings_and_priorities.md`` lists the rules.

Rules of an ``audit`` / ``compare`` report, in this order (one finding per rule; several datasets share a
sentence):

1. ``size``: structures, atoms, elements of Z 1-94 and the effective number of elements (Hill q = 1).
2. ``level_of_theory``: the dominant level of theory and its share, beside the reference's card (MPTrj's
   when there is no reference); or that no frame records one.
3. ``elements_vs_reference``: elements and element pairs of the reference that the data lacks (with a
   reference), else the technologically relevant (crystals) or molecular (molecules) elements it lacks.
4. ``equilibrium``: share of frames with forces below the near-equilibrium threshold; or that no frame
   has forces.
5. ``novelty``: share of the sampled structures outside the reference's coverage radius, and the share
   of the reference covered (with a reference and comparable descriptors).
6. ``duplicates``: share of exact duplicates, when above 1 %.
7. ``priorities``: the highest priorities (three for one dataset, two each for two, one each for more), each
   with its reason.

Rules of an ``align`` report: ``alignment_sets`` (models, evaluation sets and sizes), one finding per
verdict (local, global, intrinsic dimension) with its estimate and interval, and ``alignment_warnings``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import view

__all__ = ["build_findings", "wilson_interval", "WEAK_N", "MAX_FINDINGS"]

#: Fewer structures than this make a finding's evidence weak.
WEAK_N = 100
#: Most findings a report opens with, per part: the datasets' (the top priorities included) and the alignment's.
MAX_FINDINGS = 8


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of a share ``k / n`` (None when ``n`` is 0).

    Parameters
    ----------
    k, n : int
        Successes and trials (frames), ``0 <= k <= n``.
    level : float
        Confidence level.

    Returns
    -------
    (float, float) or None
        Lower and upper bound (shares in [0, 1]).
    """
    if n <= 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def _pct(x: float) -> str:
    p = 100 * x
    return f"{p:.0f} %" if p >= 99.95 or p < 0.05 or abs(p - round(p)) < 0.05 else f"{p:.1f} %"


def _ci(iv) -> str:
    return f" (95 % interval {_pct(iv[0])}–{_pct(iv[1])})" if iv else ""


def _n(x) -> str:
    return f"{int(x):,}"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _finding(rule: str, text: str, weak: bool = False) -> dict:
    if weak and "weak evidence" not in text:
        text = text.rstrip(".") + "; weak evidence."
    return {"rule": rule, "text": text, "weak": bool(weak)}


def _card_lot(card: Mapping | None) -> str | None:
    if not card:
        return None
    f = card.get("functional")
    if not f or f == "unknown":
        return None
    if card.get("hubbard_u") == "mp":
        return f"{f}/{f}+U, Materials Project rules"
    return f"{f}+U" if card.get("hubbard_u") == "all" else f




def _reference_card(ref_name: str | None) -> dict | None:
    from monoculture.datasets.cards import load_cards

    cards = load_cards()
    if ref_name and str(ref_name).lower() in cards:
        return cards[str(ref_name).lower()].to_dict()
    return None


def _size_rule(items) -> dict | None:
    parts = []
    for i, (name, ds) in enumerate(items):
        s = view.dataset_summary(ds)
        hill = view.dig(view.coverage_section(ds, "elements"), "diversity", "by_structures", "hill_q1")
        if i == 0:
            txt = (f"{name} holds {_n(s['structures'])} structures ({_n(s['atoms'])} atoms) built from "
                   f"{s['elements_covered']} of the 94 elements Z 1–94")
            if hill is not None:
                txt += f", effectively {hill:.1f} elements (Hill number q = 1, elements weighted by their structures)"
        else:  # the same numbers, said once: shorter clauses for the other datasets
            txt = (f"{name} {_n(s['structures'])} structures ({_n(s['atoms'])} atoms), {s['elements_covered']} "
                   f"elements" + (f", effectively {hill:.1f}" if hill is not None else ""))
        parts.append(txt)
    small = [name for name, ds in items if 0 < view.dataset_summary(ds)["structures"] < WEAK_N]
    if not parts:
        return None
    text = "; ".join(parts) + "."
    if small:
        text = (text.rstrip(".") + f"; {_join(small)} {'has' if len(small) == 1 else 'have'} under {WEAK_N} "
                f"structures, so {'its' if len(small) == 1 else 'their'} shares below are uncertain (weak evidence).")
    return _finding("size", text, bool(small))


def _lot_rule(items, ref_name: str | None) -> dict | None:
    card = _reference_card(ref_name) or _reference_card("mptrj")
    card_name = ref_name if _reference_card(ref_name) else "MPTrj"
    card_lot = _card_lot(card)
    unknown, known = [], []
    for name, ds in items:
        counts = view.level_of_theory_counts(ds)
        total = sum(counts.values())
        if not total:
            continue
        dom = next(iter(counts))
        if dom == "unknown" and counts[dom] == total:
            unknown.append(name)
        else:
            known.append((name, dom, counts[dom], total))
    if not unknown and not known:
        return None
    parts = []
    if unknown:
        one = len(unknown) == 1
        parts.append(f"No frame of {' or '.join(unknown) if len(unknown) < 3 else _join(unknown)} records a level "
                     f"of theory, so {'its' if one else 'their'} labels cannot be checked against {card_name}'s "
                     f"({card_lot or 'unknown'}, by its card) before they are mixed in training")
    by_label: dict[str, list] = {}
    for name, dom, k, n in known:
        by_label.setdefault(dom, []).append((name, k, n))
    card_f = (card or {}).get("functional")
    for dom, rows in by_label.items():
        shares = _join([f"{_pct(k / n)} of the {_n(n)} frames of {name}{_ci(wilson_interval(k, n))}"
                        for name, k, n in rows])
        same = bool(card_f) and dom.split("+")[0].split("/")[0].strip().lower() == str(card_f).lower()
        txt = f"{shares} {'is' if len(rows) == 1 else 'are'} {dom}"
        if card_lot:
            txt += (f", the functional of {card_name} ({card_lot}, by its card): a model trained on both inherits "
                    f"that functional's errors" if same else
                    f", not the functional of {card_name} ({card_lot}, by its card): mixing them in training mixes "
                    f"two potential-energy surfaces")
        parts.append(txt)
    weak = any(0 < n < WEAK_N for _, _, _, n in known)
    return _finding("level_of_theory", "; ".join(parts) + ".", weak)


def _absent_reference_counts(ds: Mapping) -> dict[str, int]:
    """Reference structures of each element absent here, read from the priority rows' evidence."""
    out = {}
    for r in view.raw_priorities(ds):
        ev = r.get("evidence") if isinstance(r.get("evidence"), Mapping) else {}
        if r.get("kind") == "element_absent" and "reference_structures" in ev:
            for el in r.get("items") or [r.get("item")]:
                out[str(el)] = int(ev["reference_structures"])
    return out


def _reference_frames(ds: Mapping) -> int | None:
    for r in view.raw_priorities(ds):
        ev = r.get("evidence") if isinstance(r.get("evidence"), Mapping) else {}
        if "reference_frames" in ev:
            return int(ev["reference_frames"])
    c = view.compare_section(ds)
    n = view.dig(c, "chemical_space", "n_seen_b")
    return int(n) if n is not None else None


def _elements_rule(items, ref_name: str | None) -> dict | None:
    from monoculture.audit.coverage.priorities import MOLECULAR_ELEMENTS, data_kind

    parts, weak, lacking = [], False, False
    for name, ds in items:
        cmp = view.compare_section(ds)
        el_cmp = view.dig(cmp, "elements") or {}
        if cmp is not None and "missing_vs_reference" in el_cmp:
            missing = list(el_cmp.get("missing_vs_reference") or [])
            pairs = dict(el_cmp.get("pairs_missing_vs_reference") or {})
            n_ref = _absent_reference_counts(ds)
            ref_frames = _reference_frames(ds)
            top = sorted(missing, key=lambda e: -n_ref.get(e, 0))[:5]
            shown = [f"{e} {n_ref[e]}" if e in n_ref else e for e in top]
            txt = (f"{len(missing)} elements of {ref_name or 'the reference'} are absent from {name}"
                   + (f" (structures holding them in the reference: {', '.join(shown)}"
                      f"{', ...' if len(missing) > len(top) else ''})" if shown else ""))
            if pairs:
                best = sorted(pairs.items(), key=lambda kv: -kv[1])[:3]
                txt += (f"; {len(pairs)} element pair{'s' if len(pairs) > 1 else ''} of the reference "
                        f"{'never occur' if len(pairs) > 1 else 'never occurs'} together here (e.g. "
                        f"{_join([f'{p} ({c})' for p, c in best])})")
            txt += ": a model trained on it has never seen that chemistry"
            parts.append(txt)
            weak |= ref_frames is not None and ref_frames < WEAK_N
            if ref_frames is not None and ref_frames < WEAK_N:
                parts[-1] += f" (the reference holds only {_n(ref_frames)} structures)"
            continue
        cov = ds.get("coverage") if isinstance(ds.get("coverage"), Mapping) else None
        el = view.coverage_section(ds, "elements")
        if el is None or cov is None or not el.get("n_frames"):
            continue
        try:
            kind = data_kind(cov)["kind"]
        except (KeyError, TypeError):
            kind = "crystals"
        present = set((el.get("structures_per_element") or {}).keys())
        if kind == "molecules":
            missing = [e for e in MOLECULAR_ELEMENTS if e not in present]
            what = "elements of molecular chemistry"
            universe = len(MOLECULAR_ELEMENTS)
        else:
            missing = list(view.dig(el, "tech_relevant", "missing") or [])
            what = "technologically relevant elements"
            universe = len(view.dig(el, "tech_relevant", "elements") or []) or None
        if not missing:
            parts.append(f"{name} has every one of the {what} ({universe})")
            continue
        shown = 8 if len(items) <= 2 else 4
        parts.append(f"{name} lacks {len(missing)}{f' of {universe}' if universe else ''} {what} "
                     f"({', '.join(missing[:shown]) + ', ...' if len(missing) > shown else _join(missing)})")
        lacking = True
    if not parts:
        return None
    text = "; ".join(parts)
    if lacking:
        text += ": a model trained on it has never seen them" if len(items) == 1 else \
            ": a model trained on any of these sets has never seen the elements it lacks"
    return _finding("elements_vs_reference", text + ".", weak)


def _equilibrium_rule(items) -> dict | None:
    parts, weak, no_forces, mostly_near = [], False, [], []
    for name, ds in items:
        eq = view.dig(view.coverage_section(ds, "regimes"), "equilibrium")
        if not isinstance(eq, Mapping):
            continue
        near, far = int(eq.get("near_equilibrium") or 0), int(eq.get("far_from_equilibrium") or 0)
        n = near + far
        if n == 0:
            no_forces.append(name)
            continue
        share = near / n
        if not parts:
            txt = (f"{_pct(share)} of the {_n(n)} frames of {name} with forces are near equilibrium (largest "
                   f"force below {eq.get('threshold_fmax_eV_A')} eV/Å){_ci(wilson_interval(near, n))}")
        else:  # the same statement, said once: shorter clauses for the other datasets
            txt = f"{name} {_pct(share)} of {_n(n)}{_ci(wilson_interval(near, n))}"
        parts.append(txt)
        if share > 0.5:
            mostly_near.append(name)
        weak |= n < WEAK_N
    text = "; ".join(parts)
    if parts:
        if len(parts) == 1:
            text += (": a model trained on it sees few distorted structures and may fail in MD or at high "
                     "temperature" if mostly_near else ": it samples distorted structures well")
        elif mostly_near:
            text += (f": a model trained on {_join(mostly_near)} sees few distorted structures and may fail in MD "
                     f"or at high temperature")
    if no_forces:
        one = len(no_forces) == 1
        text += ("; " if text else "") + (
            f"no frame of {' or '.join(no_forces) if len(no_forces) < 3 else _join(no_forces)} carries forces: "
            f"nothing says how far from equilibrium {'it reaches' if one else 'they reach'}, and a force field "
            f"cannot be trained on {'it' if one else 'them'} as {'it stands' if one else 'they stand'}")
    if not text:
        return None
    return _finding("equilibrium", text[0].upper() + text[1:] + ".", weak)


def _novelty_rule(items, ref_name: str | None) -> dict | None:
    parts, weak = [], False
    for name, ds in items:
        c = view.dig(view.compare_section(ds), "chemical_space")
        if not isinstance(c, Mapping) or view.not_applicable_reason(c) or c.get("novelty_of_a") is None:
            continue
        n_a, n_b = int(c.get("n_a") or 0), int(c.get("n_b") or 0)
        nov, cov = float(c["novelty_of_a"]), c.get("coverage_of_b_by_a")
        txt = (f"{_pct(nov)} of the {_n(n_a)} sampled structures of {name} lie outside the coverage radius of "
               f"{ref_name or 'the reference'}{_ci(wilson_interval(round(nov * n_a), n_a))}")
        if cov is not None:
            txt += (f", and they cover {_pct(float(cov))} of its {_n(n_b)} sampled structures"
                    f"{_ci(wilson_interval(round(float(cov) * n_b), n_b))}")
        txt += (f": a model trained on {ref_name or 'the reference'} extrapolates on most of {name}" if nov > 0.5
                else f": most of {name} lies where {ref_name or 'the reference'} already has data")
        parts.append(txt)
        if min(n_a, n_b) < WEAK_N:
            weak = True
            parts[-1] += f" (measured on {_n(min(n_a, n_b))} structures on one side)"
    if not parts:
        return None
    text = "; ".join(parts)
    return _finding("novelty", text[0].upper() + text[1:] + ".", weak)


def _duplicates_rule(items) -> dict | None:
    parts, weak = [], False
    for name, ds in items:
        d = view.dig(ds, "coverage", "duplicates")
        if not isinstance(d, Mapping) or not d.get("n_frames") or view.not_applicable_reason(d):
            continue
        k, n = int(d.get("n_duplicates") or 0), int(d["n_frames"])
        if k / n <= 0.01:
            continue
        parts.append(f"{_n(k)} of the {_n(n)} frames of {name} ({_pct(k / n)}) repeat another frame exactly"
                     f"{_ci(wilson_interval(k, n))}: they add weight in training, not information")
        weak |= n < WEAK_N
    if not parts:
        return None
    text = "; ".join(parts)
    return _finding("duplicates", text[0].upper() + text[1:] + ".", weak)


def _priorities_rule(items) -> dict | None:
    parts = []
    top = 3 if len(items) == 1 else (2 if len(items) == 2 else 1)
    for name, ds in items:
        rows = view.raw_priorities(ds)[:top]
        if not rows:
            continue
        bits = []
        for i, r in enumerate(rows, 1):
            why = r.get("why") or view.format_evidence(r.get("evidence")) or ""
            if why.split(" ", 1)[0] in ("Each", "No", "Not", "Only", "The"):
                why = why[0].lower() + why[1:]
            bits.append(f"({i}) {r.get('suggestion') or r.get('item')}" + (f" — {why.rstrip('.')}" if why else ""))
        parts.append(f"What to collect next for {name}: " + "; ".join(bits))
    if not parts:
        return None
    return _finding("priorities", ". ".join(parts) + ".")


def _alignment_rules(al: Mapping) -> list[dict]:
    out = []
    models = [str(m) for m in al.get("models") or []]
    sets = al.get("sets") if isinstance(al.get("sets"), Mapping) else {}
    desc = []
    small = []
    for key, label in (("id", "in distribution"), ("ood", "out of distribution")):
        s = sets.get(key)
        if isinstance(s, Mapping):
            n = s.get("n")
            name = s.get("name")
            head = f"{name} ({label}" if name and name != label else f"the {label} set ("
            desc.append(head + (f"{', ' if head.endswith(label) else ''}{_n(n)} structures)" if n is not None else ")"))
            if n is not None and n < WEAK_N:
                small.append(key.upper())
    if models:
        text = f"{len(models)} embeddings ({_join(models)}) were compared"
        text += f" on {_join(desc)}." if desc else "."
        if small:
            text = text.rstrip(".") + f"; the {_join(small)} set{'s have' if len(small) > 1 else ' has'} under 100 structures."
        out.append(_finding("alignment_sets", text, bool(small)))
    names = {"local": "Local (k-NN) alignment", "global": "Global alignment",
             "intrinsic_dimension": "Intrinsic dimension"}
    for key, v in (al.get("verdicts") or {}).items():
        if not isinstance(v, Mapping) or v.get("verdict") is None:
            continue
        est, iv = v.get("estimate"), v.get("interval")
        text = f"{names.get(key, str(key).replace('_', ' ').capitalize())}: {v['verdict']}"
        if est is not None:
            text += f" — {v.get('statistic') or 'estimate'} = {est:.3g}"
            if iv and len(iv) == 2 and iv[0] is not None and iv[1] is not None:
                text += f" ({round(100 * (v.get('level') or 0.95))} % interval {iv[0]:.3g} to {iv[1]:.3g})"
        weak = bool(iv and len(iv) == 2 and iv[0] is not None and iv[1] is not None and iv[0] <= 0 <= iv[1]) \
            or str(v["verdict"]).lower() in ("inconclusive", "not established", "undetermined")
        verdict = str(v["verdict"]).lower()
        if not weak and key == "local" and "higher in distribution" in verdict:
            text += ("; models agree more on which structures are neighbours for data like their training data, as "
                     "the study found")
        elif not weak and key == "global" and "higher out of distribution" in verdict:
            text += "; globally the models look more alike off their training data, as the study found"
        if weak:
            text += "; the interval includes no difference (weak evidence)"
        out.append(_finding(f"alignment_{key}", text + ".", weak))
    warnings = [str(w) for w in al.get("warnings") or []]
    conf = al.get("confounders") if isinstance(al.get("confounders"), Mapping) else {}
    confounders = [str(w) for w in conf.get("warnings") or []]
    n_warn = len(warnings) + len(confounders)
    if n_warn:
        text = f"{n_warn} warning{'s qualify' if n_warn > 1 else ' qualifies'} these numbers"
        if confounders:
            # the scientifically decisive caveat: the sets differ in more than being in or out of distribution
            text += (f"; the two sets differ in more than their distance from the training data ("
                     f"{'; '.join(w.rstrip('.') for w in confounders)}), so the verdicts cannot separate that "
                     f"distance from these differences")
        if warnings:
            text += f"; {'also: ' if confounders else 'the first: '}{warnings[0].rstrip('.')}"
            if len(warnings) > 1:
                text += f" (and {len(warnings) - 1} more in the alignment section)"
        out.append(_finding("alignment_warnings", text + ".", True))
    return out


def build_findings(doc: Mapping, names: Sequence[str] | None = None, reference_name: str | None = None,
                   max_findings: int = MAX_FINDINGS) -> list[dict]:
    """The findings of a document, most important first.

    Parameters
    ----------
    doc : dict
        Audit document.
    names : sequence of str, optional
        Display name of each ``doc["datasets"]`` entry (default: :func:`view.display_names`).
    reference_name : str, optional
        Display name of the reference (default: ``parameters.reference``).
    max_findings : int
        Most findings of the datasets (the top priorities included) and, separately, of the alignment.

    Returns
    -------
    list of dict
        ``{"rule", "text", "weak"}`` per finding (plain text, no markup; ``weak`` when the text says its
        evidence is weak).
    """
    datasets = [ds for ds in doc.get("datasets") or [] if isinstance(ds, Mapping)]
    names = list(names) if names is not None else view.display_names(doc)
    items = [(n, ds) for n, ds in zip(names, datasets) if int(ds.get("n_frames", 0) or 0) > 0]
    ref = reference_name if reference_name is not None else view.dig(doc, "parameters", "reference")
    out: list[dict] = []
    if items:
        for rule in (_size_rule(items), _lot_rule(items, ref), _elements_rule(items, ref),
                     _equilibrium_rule(items), _novelty_rule(items, ref), _duplicates_rule(items)):
            if rule is not None:
                out.append(rule)
        pr = _priorities_rule(items)
    else:
        pr = None
    # the datasets' findings and the alignment's are cut separately, so that a document with both never loses
    # the alignment verdicts or the warnings that qualify them; the top priorities always make the cut, last
    out = out[: max_findings - (pr is not None)]
    al = doc.get("alignment")
    if isinstance(al, Mapping) and view.not_applicable_reason(al) is None:
        out += _alignment_rules(al)[:max_findings]
    if pr is not None:
        out.append(pr)
    return out
