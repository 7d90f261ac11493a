"""Finding rules on documents built by hand (issue #19): numbers, intervals, weak evidence, priorities."""
from __future__ import annotations

import math

import pytest

from monoculture.reports.findings import MAX_FINDINGS, build_findings, wilson_interval


def _ds(name="set", n=200, lot=None, near=None, with_forces=None, priorities=(), compare=None, dup=0,
        elements=None, periodic=True):
    lot = lot or {"unknown": n}
    spe = elements or {"H": n, "O": n // 2}
    with_forces = n if with_forces is None else with_forces
    eq = {"threshold_fmax_eV_A": 0.05, "near_equilibrium": near or 0,
          "far_from_equilibrium": (with_forces - (near or 0)) if near is not None else 0,
          "near_equilibrium_share": (near / with_forces) if near is not None and with_forces else None}
    ds = {"name": name, "format": "extxyz", "files": [f"/data/{name}.extxyz"], "card": None, "n_frames": n,
          "n_atoms": 3 * n, "records": {"read": n, "skipped": 0, "failed": 0},
          "elements": {"structures_per_element": spe}, "level_of_theory": lot,
          "coverage": {
              "elements": {"n_frames": n, "structures_per_element": spe, "tech_relevant": {
                  "elements": ["H", "O", "Li"], "missing": ["Li"]},
                  "diversity": {"by_structures": {"hill_q1": 1.9}}},
              "level_of_theory": {"counts": lot},
              "regimes": {"n_frames": n, "equilibrium": eq,
                          "histograms": {"volume_per_atom_A3": {"missing": 0 if periodic else n}}},
              "duplicates": {"n_frames": n, "n_duplicates": dup, "share": dup / n, "rules": {"geometry": n}},
              "priorities": list(priorities)}}
    if compare is not None:
        ds["compare"] = compare
    return ds


def _doc(*datasets, reference=None, alignment=None):
    doc = {"schema_version": "1", "monoculture_version": "0", "run": {}, "parameters": {}, "datasets": list(datasets)}
    if reference:
        doc["parameters"]["reference"] = reference
    if alignment is not None:
        doc["alignment"] = alignment
    return doc


def _rule(findings, rule):
    return next(f for f in findings if f["rule"] == rule)


def test_wilson_interval_by_hand():
    z = 1.959963984540054
    k, n = 30, 120
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(centre - half, abs=1e-9) and hi == pytest.approx(centre + half, abs=1e-9)
    assert wilson_interval(0, 0) is None


def test_level_of_theory_finding_states_share_interval_and_the_reference_card():
    f = build_findings(_doc(_ds(n=200, lot={"PBE": 150, "r2SCAN": 50})))
    lot = _rule(f, "level_of_theory")
    lo, hi = wilson_interval(150, 200)
    assert lot["text"].startswith("75 % of the 200 frames of set (95 % interval")
    assert f"{100 * lo:.1f} %–{100 * hi:.1f} %) is PBE, the functional of MPTrj (PBE/PBE+U" in lot["text"]
    assert not lot["weak"]
    other = _rule(build_findings(_doc(_ds(n=200, lot={"wB97X": 200}))), "level_of_theory")
    assert "is wB97X, not the functional of MPTrj" in other["text"]
    unknown = _rule(build_findings(_doc(_ds())), "level_of_theory")
    assert unknown["text"].startswith("No frame of set records a level of theory")


def test_small_sets_are_said_to_be_weak_evidence():
    f = build_findings(_doc(_ds(n=40, near=30)))
    size, eq = _rule(f, "size"), _rule(f, "equilibrium")
    assert size["weak"] and "weak evidence" in size["text"] and "under 100 structures" in size["text"]
    assert eq["weak"] and "75 % of the 40 frames of set with forces are near equilibrium" in eq["text"]
    big = _rule(build_findings(_doc(_ds(n=1000, near=900))), "equilibrium")
    assert not big["weak"] and "may fail in MD" in big["text"]


def test_no_forces_is_said_in_words():
    f = _rule(build_findings(_doc(_ds(with_forces=0, near=None))), "equilibrium")
    assert f["text"] == ("No frame of set carries forces: nothing says how far from equilibrium it reaches, and a "
                         "force field cannot be trained on it as it stands.")


def test_reference_findings_name_the_missing_elements_and_the_novelty():
    prio = [{"rank": 1, "kind": "element_absent", "item": "Li", "items": ["Li"], "score": 0.9,
             "evidence": {"structures": 0, "reference_structures": 31, "reference_frames": 500},
             "why": "Li is in 31 of the 500 reference structures.", "suggestion": "add molecules containing Li"}]
    compare = {"reference": "ref", "elements": {"missing_vs_reference": ["Li", "Na"],
                                                "pairs_missing_vs_reference": {"H-Na": 4}},
               "chemical_space": {"a": "set", "b": "ref", "n_a": 200, "n_b": 500, "novelty_of_a": 0.25,
                                  "coverage_of_b_by_a": 0.5}}
    f = build_findings(_doc(_ds(priorities=prio, compare=compare), reference="ref"))
    el = _rule(f, "elements_vs_reference")
    assert "2 elements of ref are absent from set" in el["text"] and "Li 31" in el["text"]
    assert "1 element pair of the reference never occurs together here (e.g. H-Na (4))" in el["text"] and not el["weak"]
    nov = _rule(f, "novelty")
    lo, hi = wilson_interval(50, 200)
    assert "25 % of the 200 sampled structures of set lie outside the coverage radius of ref" in nov["text"]
    assert f"{100 * lo:.1f} %" in nov["text"] and not nov["weak"]
    # the top priority is in the findings, with its reason
    pr = _rule(f, "priorities")
    assert f[-1] is pr and "add molecules containing Li" in pr["text"] and "31 of the 500" in pr["text"]
    # a reference of 83 structures makes both findings weak
    compare["chemical_space"]["n_b"] = 83
    prio[0]["evidence"]["reference_frames"] = 83
    f = build_findings(_doc(_ds(priorities=prio, compare=compare), reference="ref"))
    assert _rule(f, "novelty")["weak"] and _rule(f, "elements_vs_reference")["weak"]


def test_duplicates_only_when_above_one_percent():
    assert not any(x["rule"] == "duplicates" for x in build_findings(_doc(_ds(n=1000, dup=10))))
    d = _rule(build_findings(_doc(_ds(n=1000, dup=50))), "duplicates")
    assert "50 of the 1,000 frames of set (5 %) repeat another frame exactly" in d["text"]


def test_between_three_and_eight_findings_and_plain_text():
    prio = [{"rank": 1, "kind": "lot_unknown", "item": "dataset", "items": ["dataset"], "score": 0.5,
             "evidence": {}, "why": "All frames lack a label.", "suggestion": "record the functional"}]
    docs = [_doc(_ds(priorities=prio)), _doc(*[_ds(name=f"s{i}", priorities=prio, dup=30, near=150) for i in range(4)])]
    for doc in docs:
        f = build_findings(doc)
        assert 3 <= len(f) <= MAX_FINDINGS
        assert f[-1]["rule"] == "priorities"
        for x in f:
            assert "None" not in x["text"] and "<" not in x["text"] and "&" not in x["text"]


def test_alignment_findings_mark_an_interval_through_zero_as_weak():
    al = {"models": ["m1", "m2"], "sets": {"id": {"name": "crystals", "n": 150}, "ood": {"name": "g2", "n": 60}},
          "verdicts": {"local": {"question": "Is local alignment higher in distribution?", "statistic": "mean gap",
                                 "estimate": 0.08, "interval": [0.03, 0.13], "level": 0.95, "verdict": "yes"},
                       "global": {"statistic": "mean gap", "estimate": 0.02, "interval": [-0.04, 0.08],
                                  "verdict": "inconclusive"}},
          "warnings": ["k/n above 0.1 on the OOD set"]}
    f = build_findings(_doc(alignment=al))
    sets = _rule(f, "alignment_sets")
    assert "2 embeddings (m1 and m2)" in sets["text"] and "g2 (out of distribution, 60 structures)" in sets["text"]
    assert sets["weak"]  # the OOD set has under 100 structures
    loc, glob = _rule(f, "alignment_local"), _rule(f, "alignment_global")
    assert not loc["weak"] and "0.08 (95 % interval 0.03 to 0.13)" in loc["text"]
    assert glob["weak"] and "weak" in glob["text"]
    assert _rule(f, "alignment_warnings")["weak"]


def test_a_document_with_datasets_and_alignment_keeps_every_alignment_finding():
    # five datasets fill the datasets' findings; the alignment's verdicts and warnings must not be cut
    prio = [{"rank": 1, "kind": "lot_unknown", "item": "dataset", "items": ["dataset"], "score": 0.5,
             "evidence": {}, "why": "All frames lack a label.", "suggestion": "record the functional"}]
    al = {"models": ["m1", "m2"], "sets": {"id": {"name": "crystals", "n": 150}, "ood": {"name": "g2", "n": 160}},
          "verdicts": {"local": {"statistic": "mean gap", "estimate": 0.2, "interval": [0.1, 0.3],
                                 "verdict": "higher in distribution"},
                       "global": {"statistic": "mean gap", "estimate": -0.2, "interval": [-0.3, -0.1],
                                  "verdict": "higher out of distribution"}},
          "warnings": ["k/n is above 0.1 on the ID set"],
          "confounders": {"warnings": ["periodic share differs (100% in ID vs 0% in OOD)"]}}
    datasets = [_ds(name=f"s{i}", priorities=prio, dup=30, near=150, n=300 + i) for i in range(5)]
    f = build_findings(_doc(*datasets, alignment=al))
    rules = [x["rule"] for x in f]
    for rule in ("alignment_sets", "alignment_local", "alignment_global", "alignment_warnings"):
        assert rule in rules, rules
    assert rules[-1] == "priorities"
    assert sum(not r.startswith("alignment") for r in rules) <= MAX_FINDINGS
    # the confounders of the ID / OOD comparison are named in the findings, not only in the section
    w = _rule(f, "alignment_warnings")["text"]
    assert w.startswith("2 warnings qualify") and "periodic share differs (100% in ID vs 0% in OOD)" in w
    assert "also: k/n is above 0.1 on the ID set" in w
