"""Priority rules on coverage results built by hand (issue #19): evidence decides the order, never a name."""
from __future__ import annotations

import math

import pytest

from monoculture.audit.coverage.priorities import build_priorities, data_kind, evidence_key


def _cov(spe: dict, n: int, *, periodic: bool = True, smiles_only: bool = False, pairs: dict | None = None,
         forces: bool = True, near: int = 0) -> dict:
    """Coverage results of ``n`` frames with ``spe`` structures per element (every other analyzer minimal)."""
    temps = ["0-300 K", "unknown"]
    press = ["0-10 GPa", "unknown"]
    return {
        "elements": {"n_frames": n, "structures_per_element": dict(spe), "pairs": {"counts": dict(pairs or {})}},
        "level_of_theory": {"n_frames": n, "counts": {"unknown": n}, "dominant": "unknown", "dominant_share": 1.0,
                            "n_labels": 1, "per_element": {}},
        "regimes": {
            "n_frames": n, "no_forces": 0 if forces else n, "no_stress": n, "unknown_temperature": n,
            "equilibrium": {"near_equilibrium": near if forces else 0, "far_from_equilibrium": (n - near) if forces else 0,
                            "threshold_fmax_eV_A": 0.05,
                            "near_equilibrium_share": (near / n) if forces and n else None},
            "grid": {"temperature_classes": temps, "pressure_classes": press, "counts": [[0, 0], [0, n]]},
            "per_element": {}, "methods": {"unknown": n},
            "histograms": {"volume_per_atom_A3": {"missing": 0 if periodic else n}},
        },
        "duplicates": {"n_frames": n, "n_duplicates": 0, "share": 0.0, "n_groups": 0,
                       "rules": {"molecule": n} if smiles_only else {"geometry": n}},
    }


def _by_item(rows):
    return {(r["kind"], it): r for r in rows for it in r["items"]}


def test_data_kind_from_the_coverage():
    assert data_kind(_cov({"C": 3}, 3, periodic=False))["kind"] == "molecules"
    assert data_kind(_cov({"Fe": 3}, 3))["kind"] == "crystals"
    k = data_kind(_cov({"C": 3}, 3, periodic=False, smiles_only=True))
    assert k["kind"] == "molecules" and k["geometry"] is False


def test_molecule_set_gets_no_absent_metal_the_reference_lacks_too():
    mols = _cov({"H": 50, "C": 50, "O": 20}, 50, periodic=False)
    ref = _cov({"H": 40, "C": 40, "N": 31, "S": 1}, 40, periodic=False)
    rows = _by_item(build_priorities(mols, ref))
    # metals absent here and absent from the reference: no row at all
    for metal in ("Au", "Co", "Cd", "Fe", "Pt"):
        assert ("element_absent", metal) not in rows
    # elements the reference has: a row each, the one with 31 reference structures above the one with 1
    n_row, s_row = rows[("element_absent", "N")], rows[("element_absent", "S")]
    assert n_row["rank"] < s_row["rank"] and n_row["score"] > s_row["score"]
    assert n_row["evidence"]["reference_structures"] == 31 and "31 of the 40 reference structures" in n_row["why"]
    # by hand: w_el = 1 (N, S are molecular), E = log10(1+n_ref)/log10(1+40), R = 0 (no reference pairs)
    assert n_row["score"] == pytest.approx(0.4 + 0.3 * math.log10(32) / math.log10(41), abs=1e-6)
    assert s_row["score"] == pytest.approx(0.4 + 0.3 * math.log10(2) / math.log10(41), abs=1e-6)
    # a crystal set is still told about elements the reference lacks too, at a low weight
    crys = _by_item(build_priorities(_cov({"Fe": 10}, 10), _cov({"Fe": 5, "O": 5}, 5)))
    assert crys[("element_absent", "Co")]["score"] == pytest.approx(0.3)


def test_molecule_set_without_reference_only_molecular_elements():
    rows = _by_item(build_priorities(_cov({"H": 9, "C": 9}, 9, periodic=False)))
    assert ("element_absent", "N") in rows and ("element_absent", "Au") not in rows


def test_ties_are_broken_by_counts_never_by_name():
    # rare elements: 1 structure ranks above 31, whatever the names (Zn before Ag in this order)
    rows = build_priorities(_cov({"H": 500, "Zn": 1, "Ag": 31}, 500))
    zn = next(r for r in rows if "Zn" in r["items"] and r["kind"] == "element_rare")
    ag = next(r for r in rows if "Ag" in r["items"] and r["kind"] == "element_rare")
    assert zn["rank"] < ag["rank"]
    # with a reference: the absent element the reference holds 31 times ranks above the one it holds once
    ref = _cov({"H": 40, "Au": 1, "Co": 31}, 40)
    rows = build_priorities(_cov({"H": 10}, 10), ref)
    co = next(r for r in rows if r["kind"] == "element_absent" and "Co" in r["items"])
    au = next(r for r in rows if r["kind"] == "element_absent" and "Au" in r["items"])
    assert co["rank"] < au["rank"]
    # rows with equal score and equal evidence are merged (one row, listed in order of Z), not ordered by name
    rows = build_priorities(_cov({"H": 10}, 10))
    absent = [r for r in rows if r["kind"] == "element_absent" and r["score"] == 0.7]
    assert len(absent) == 1 and absent[0]["items"][:3] == ["He", "Li", "Be"]
    assert all(len(set(r["items"])) == len(r["items"]) for r in rows)
    # and equal scores with different evidence are ordered by the evidence
    a = {"kind": "element_absent", "score": 0.5, "evidence": {"structures": 0, "reference_structures": 3}}
    b = {"kind": "element_absent", "score": 0.5, "evidence": {"structures": 0, "reference_structures": 9}}
    assert sorted([a, b], key=evidence_key) == [b, a]


def test_suggestions_fit_the_kind_of_data():
    smiles = build_priorities(_cov({"H": 20, "C": 20}, 20, periodic=False, smiles_only=True, forces=False))
    text = " ".join(r["suggestion"] for r in smiles)
    assert "MD" not in text and "high-pressure" not in text
    geo = next(r for r in smiles if r["kind"] == "regime_no_forces")
    assert geo["item"] == "geometry" and "conformers" in geo["suggestion"]
    assert geo["score"] == pytest.approx(0.6)
    # crystals with unknown temperature do get the finite-temperature suggestion
    crys = build_priorities(_cov({"Fe": 20}, 20))
    assert any(r["kind"] == "regime_unknown_temperature" for r in crys)


def test_every_row_says_why_with_its_numbers():
    rows = build_priorities(_cov({"H": 500, "Zn": 1}, 500, near=450))
    for r in rows:
        assert r["why"] and any(ch.isdigit() for ch in r["why"]), r
    eq = next(r for r in rows if r["kind"] == "regime_equilibrium")
    assert "90.0% of the 500 frames with forces" in eq["why"]
    assert eq["score"] == pytest.approx(0.8 * (0.9 - 0.5) / 0.5)


def test_grouped_pair_rows_keep_the_element_symbol_capitalised():
    # eight absent pairs with equal evidence are merged; the example sentence starts with an element symbol
    pairs = {f"O-{el}": 4 for el in ("Ni", "Sr", "Ti", "Zn", "Fe", "Co", "Cu", "Mg")}
    here = {"O": 5, "Ni": 5, "Sr": 5, "Ti": 5, "Zn": 5, "Fe": 5, "Co": 5, "Cu": 5, "Mg": 5}
    ref = _cov({**here}, 40, pairs=pairs)
    rows = build_priorities(_cov(here, 40), ref)
    grouped = [r for r in rows if r["kind"] == "pair_absent" and len(r["items"]) > 1]
    assert grouped, [r["kind"] for r in rows]
    assert "e.g. O and " in grouped[0]["why"] and "e.g. o " not in grouped[0]["why"]
    # and the suggestion names every pair of the group, not the first one only
    assert all(p in grouped[0]["suggestion"] for p in grouped[0]["items"])
    # an ordinary first word is still lower-cased inside the sentence
    from monoculture.audit.coverage.priorities import _sentence_inside
    assert _sentence_inside("Each of these 3 elements") == "each of these 3 elements"
    assert _sentence_inside("Ca and F are both present") == "Ca and F are both present"
