"""Hand-checked numbers of the exact accumulators on the 5-structure case (see coverage_testframes)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from coverage_testframes import five_frames

from monoculture.audit.coverage import (
    ElementCoverage,
    FixedHistogram,
    LevelOfTheoryCoverage,
    RegimeCoverage,
    basis_family,
)


@pytest.fixture(scope="module")
def five():
    return five_frames()


def test_elements_five(five):
    r = ElementCoverage().update(five).result()
    assert r["n_frames"] == 5
    assert r["n_atoms"] == 1 + 2 + 2 + 1 + 5
    assert r["structures_per_element"] == {"O": 2, "Na": 1, "Cl": 1, "Ti": 1, "Fe": 2, "Cu": 1, "Sr": 1}
    assert list(r["structures_per_element"]) == ["O", "Na", "Cl", "Ti", "Fe", "Cu", "Sr"]  # order of Z
    assert r["atoms_per_element"] == {"O": 4, "Na": 1, "Cl": 1, "Ti": 1, "Fe": 2, "Cu": 1, "Sr": 1}
    assert r["n_present"] == 7 and r["n_missing"] == 87
    assert "H" in r["missing"] and "Fe" not in r["missing"]
    assert r["table_coverage"] == {"min_structures_1": 7 / 94, "min_structures_10": 0.0, "min_structures_100": 0.0}
    pairs = r["pairs"]
    assert pairs["counts"] == {"O-Ti": 1, "O-Fe": 1, "O-Sr": 1, "Na-Cl": 1, "Ti-Sr": 1}
    assert pairs["n_pairs_seen"] == 5 and pairs["n_pairs_possible"] == 4371
    assert pairs["share_of_possible"] == 5 / 4371
    assert pairs["n_pairs_possible_among_present"] == 21 and pairs["share_among_present"] == 5 / 21
    assert r["arity"] == {"1": 2, "2": 2, "3": 1}
    assert r["arity_names"] == {"unary": 2, "binary": 2, "ternary": 1, "quaternary": 0, "quinary_or_more": 0}
    d = r["diversity"]["by_structures"]  # counts 1,1,1,1,1,2,2 of 9
    h = 5 / 9 * math.log(9) + 4 / 9 * math.log(9 / 2)
    assert d["hill_q0"] == 7
    assert d["shannon_entropy"] == pytest.approx(h)
    assert d["hill_q1"] == pytest.approx(math.exp(h))
    assert d["hill_q2"] == pytest.approx(81 / 13)
    assert d["shannon_evenness"] == pytest.approx(h / math.log(7))
    # Gini over 94 elements, ascending x: 87 zeros, 1 at ranks 88..92, 2 at ranks 93, 94
    assert d["gini"] == pytest.approx((81 + 83 + 85 + 87 + 89 + 2 * 91 + 2 * 93) / (94 * 9))
    tech = r["tech_relevant"]
    assert set(tech["present"]) == {"O", "Na", "Ti", "Fe", "Cu", "Sr"}  # Cl is not in the list
    assert tech["share_present"] == 6 / len(tech["elements"])
    m = ElementCoverage().update(five).pair_matrix()
    assert m.loc["O", "Fe"] == 1 and m.loc["Fe", "O"] == 1 and m.loc["Fe", "Fe"] == 2 and m.loc["Cu", "O"] == 0
    df = ElementCoverage.to_frame(r)
    assert df.loc["O", "atoms"] == 4 and df.loc["Fe", "share_of_frames"] == 0.4


def test_level_of_theory_five(five):
    r = LevelOfTheoryCoverage().update(five).result()
    assert r["counts"] == {"PBE": 3, "PBE+U": 1, "r2SCAN": 1}
    assert r["dominant"] == "PBE" and r["dominant_share"] == 0.6
    assert r["known_share"] == 1.0
    assert r["functional_counts"] == {"PBE": 4, "r2SCAN": 1}
    assert r["hubbard_u"] == {"true": 1, "false": 2, "unknown": 2}
    assert r["plus_u_share"] == 0.2
    assert r["basis_counts"] == {"unknown": 4, "PAW_PBE_54": 1}
    assert r["basis_family_counts"] == {"unknown": 4, "PAW": 1}
    fe = r["per_element"]["Fe"]
    assert fe["counts"] == {"PBE": 1, "PBE+U": 1} and fe["dominant"] == "PBE" and fe["dominant_share"] == 0.5
    assert fe["plus_u_frames"] == 1 and fe["plus_u_share"] == 0.5
    o = r["per_element"]["O"]
    assert o["counts"] == {"PBE+U": 1, "r2SCAN": 1} and o["dominant"] == "PBE+U"
    assert r["only_plus_u"] == []
    assert r["never_plus_u"] == ["Na", "Cl", "Ti", "Cu", "Sr"]
    assert r["single_label_elements"] == {"PBE": ["Na", "Cl", "Cu"], "r2SCAN": ["Ti", "Sr"]}
    df = LevelOfTheoryCoverage.to_frame(r)
    assert df.loc["O", "r2SCAN"] == 1 and df.loc["Cu", "PBE"] == 1 and df.loc["Cu", "PBE+U"] == 0


def test_only_plus_u_element(five):
    r = LevelOfTheoryCoverage().update(five.slice(2, 1)).result()  # FeO alone
    assert r["only_plus_u"] == ["O", "Fe"] and r["dominant_share"] == 1.0 and r["never_plus_u"] == []


def test_regimes_five(five):
    r = RegimeCoverage().update(five).result()
    t = r["histograms"]["temperature_K"]
    assert t["missing"] == 3 and t["n"] == 2 and t["min"] == 300.0 and t["max"] == 1000.0
    assert t["counts"][4] == 1 and t["counts"][9] == 1 and sum(t["counts"]) == 2  # [300,400), [1000,1500)
    p = r["histograms"]["pressure_GPa"]
    assert p["missing"] == 2
    assert [i for i, c in enumerate(p["counts"]) if c] == [4, 6, 11]  # [-2,-1), [-0.1,0.1), [10,20)
    f = r["histograms"]["fmax_eV_A"]
    assert [i for i, c in enumerate(f["counts"]) if c] == [0, 2, 6, 8] and f["missing"] == 1
    e = r["histograms"]["energy_per_atom_eV"]  # -3.5, -3.0, -5.0, -8.0 eV/atom; 0.5 eV bins from -20
    assert [i for i, c in enumerate(e["counts"]) if c] == [24, 30, 33, 34] and e["missing"] == 1
    v = r["histograms"]["volume_per_atom_A3"]  # Cu 11.66, NaCl 22.43, FeO 9.94, Fe 11.82, SrTiO3 11.86
    assert v["counts"][:5] == [0, 1, 3, 0, 1]
    assert v["min"] == pytest.approx(4.3**3 / 8)
    assert "not_applicable" in r["volume_strain"]
    assert r["unknown_temperature"] == 3 and r["no_forces"] == 1 and r["no_stress"] == 2
    eq = r["equilibrium"]
    assert (eq["near_equilibrium"], eq["far_from_equilibrium"], eq["no_forces"], eq["strongly_distorted"]) == (2, 2, 1, 1)
    assert eq["near_equilibrium_share"] == 0.5
    g = np.array(r["grid"]["counts"])
    assert g.sum() == 5 and g[6, 1] == 1 and g[6, 5] == 2 and g[4, 3] == 1 and g[2, 0] == 1
    assert r["grid"]["n_empty_cells"] == 28 and r["grid"]["n_cells"] == 30
    assert "300-600 K x < -1 GPa" not in r["grid"]["empty_cells"]
    assert "0 K x -1..1 GPa" in r["grid"]["empty_cells"]
    assert r["methods"] == {"relax": 2, "static": 1, "md": 1, "rattled": 1, "unknown": 0}
    fe = r["per_element"]["Fe"]
    assert fe["temperature"] == {"300-600 K": 1, "1000-2000 K": 1}
    assert fe["pressure"] == {"< -1 GPa": 1, "10-50 GPa": 1}
    assert fe["equilibrium"] == {"far_from_equilibrium": 2}
    assert RegimeCoverage.to_frame(r).loc["unknown", "unknown"] == 2


def test_volume_strain_column(five):
    import pyarrow as pa

    b = five.append_column("volume_strain", pa.array([0.0, None, -0.04, 0.3, None], pa.float64()))
    r = RegimeCoverage().update(b).result()
    vs = r["volume_strain"]
    assert vs["missing"] == 2 and vs["n"] == 3 and vs["overflow"] == 0
    assert vs["counts"][7] == 1 and vs["counts"][4] == 0 and vs["counts"][5] == 1 and vs["counts"][14] == 1


def test_histogram_edges_and_merge():
    h = FixedHistogram([0.0, 1.0, 2.0]).update(np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan]))
    r = h.result()
    assert r["counts"] == [2, 1] and r["underflow"] == 1 and r["overflow"] == 1 and r["missing"] == 1
    g = FixedHistogram([0.0, 1.0, 2.0]).update(np.array([1.5]))
    assert h.merge(g).result()["counts"] == [2, 2]
    with pytest.raises(ValueError):
        FixedHistogram([0.0, 0.0])


def test_basis_family():
    assert basis_family("PAW_PBE_54") == "PAW"
    assert basis_family("def2-TZVPD") == "def2"
    assert basis_family("6-31G(2df,p)") == "Pople"
    assert basis_family(None) == "unknown"
    assert basis_family("my-basis") == "my-basis"


def test_empty_and_json(five):
    for acc in (ElementCoverage(), LevelOfTheoryCoverage(), RegimeCoverage()):
        empty = acc.result()
        json.dumps(empty)
        json.dumps(acc.update(five).result())
    assert LevelOfTheoryCoverage().result()["dominant"] is None
