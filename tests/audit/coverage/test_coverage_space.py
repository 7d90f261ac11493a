"""Chemical-space, compare and priorities on inputs small enough to check by hand."""
from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest
from coverage_testframes import five_frames, random_frames

from monoculture.audit.coverage import (
    ChemicalSpaceCoverage,
    CoverageAudit,
    build_priorities,
    compare_arrays,
    knn_self,
    quests_entropy,
    vendi_score,
)
from monoculture.audit.coverage.knn import knn


def test_vendi_by_hand():
    assert vendi_score(np.zeros((4, 3)))[0] == 1.0
    # two points at distance 2: h = median pairwise distance = 2, K offdiag = exp(-1/2)
    s, h = vendi_score(np.array([[0.0], [2.0]]))
    k = math.exp(-0.5)
    lam = np.array([(1 + k) / 2, (1 - k) / 2])
    assert h == 2.0
    assert s == pytest.approx(math.exp(-(lam * np.log(lam)).sum()))
    # n far-apart points -> n
    assert vendi_score(np.arange(5.0)[:, None] * 100, bandwidth=1.0)[0] == pytest.approx(5.0)


def test_quests_entropy_by_hand():
    x = np.array([[0.0], [1.0]])
    # each point: (1 + exp(-1/2)) / 2 of density
    assert quests_entropy(x, 1.0) == pytest.approx(-math.log((1 + math.exp(-0.5)) / 2))
    assert quests_entropy(np.arange(6.0)[:, None] * 1e3, 1.0) == pytest.approx(math.log(6))


def test_knn_self_and_duplicates():
    x = np.array([[0.0], [1.0], [2.0], [3.0], [0.05]], dtype=np.float32)
    d, i, info = knn_self(x, 2)
    assert info["index"] == "IndexFlatL2"
    assert i[0, 0] == 4 and d[0, 0] == pytest.approx(0.05, abs=1e-6)
    assert i[1, 0] == 4 and d[1, 0] == pytest.approx(0.95, abs=1e-6)
    assert not (i == np.arange(5)[:, None]).any()
    # exact copies: the query itself may be hidden behind its twin; it must never be its own neighbour
    y = np.zeros((4, 2), dtype=np.float32)
    d, i, _ = knn_self(y, 3)
    assert (d == 0).all() and not (i == np.arange(4)[:, None]).any()


def test_ivf_index_used_beyond_exact_max():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2000, 4)).astype(np.float32)
    d_ex, i_ex, info_ex = knn(base, base[:50], 1)
    d_ivf, i_ivf, info = knn(base, base[:50], 1, exact_max=1000)
    assert info_ex["exact"] and not info["exact"] and info["nlist"] == round(4 * math.sqrt(2000))
    assert (i_ivf[:, 0] == np.arange(50)).all() and (d_ivf[:, 0] == 0).all()


def test_compare_arrays_by_hand():
    xb = np.arange(5.0)[:, None]  # B 1-NN distances all 1 -> r = 1
    xa = np.array([[0.5], [10.0]])
    r = compare_arrays(xa, xb)
    assert r["radius"] == 1.0
    assert r["coverage_of_b_by_a"] == 2 / 5  # B = 0 and 1 are within 1 of A = 0.5
    assert r["novelty_of_a"] == 0.5  # A = 10 is 6 away from B
    assert compare_arrays(xa, xb, radius=7.0)["coverage_of_b_by_a"] == 1.0


def _five_with_desc():
    b = five_frames()
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, 5.0]], dtype=np.float32)
    return b, x


def test_chemical_space_result_five():
    b, x = _five_with_desc()
    r = ChemicalSpaceCoverage(sample_size=10, seed=0, k=2, umap=False, quests_crosscheck=False).update(b, x).result()
    assert r["sample"]["size"] == 5 and r["sample"]["n_seen"] == 5 and r["sample"]["dim"] == 2
    # both columns have mean 1.4 and population std sqrt(27/5 - 1.96) = sqrt(3.44): distances / sqrt(3.44)
    s = math.sqrt(3.44)
    assert r["scaling"]["n_rows"] == 5 and r["scaling"]["n_constant_columns"] == 0
    # 1-NN: 1, 1, 1, 1, |(5,5)-(1,1)| = 4 sqrt 2, in units of s
    q = r["knn"]["nn1_quantiles"]
    assert q["q0.50"] == pytest.approx(1 / s) and q["q1.00"] == pytest.approx(4 * math.sqrt(2) / s)
    assert r["knn"]["nn1_mean"] == pytest.approx((4 + 4 * math.sqrt(2)) / 5 / s)
    assert r["entropy"]["bandwidth"] == 1.0 and r["entropy"]["n"] == 5  # fixed: one standard deviation
    z = (x - x.mean(0)) / x.std(0)
    assert r["entropy"]["entropy_nats"] == pytest.approx(quests_entropy(z, 1.0))
    # five different formulas: no candidate pair at all
    assert r["near_duplicates"]["n"] == 0 and r["near_duplicates"]["candidate_pairs"] == 0
    assert r["umap"] == {"not_applicable": "UMAP disabled"}
    json.dumps(r)


def test_chemical_space_not_applicable():
    assert "not_applicable" in ChemicalSpaceCoverage().result()
    b, x = _five_with_desc()
    r = ChemicalSpaceCoverage(umap=False).update(b.slice(0, 2), x[:2]).result()
    assert "not_applicable" in r and r["sample"]["size"] == 2


def test_audit_compare_and_priorities():
    b, x = _five_with_desc()
    ref_tab = random_frames(seed=1, n=60, dataset="ref")
    x_ref = np.random.default_rng(1).normal(size=(60, 2)).astype(np.float32)
    mine = CoverageAudit(descriptor_sample_size=100, seed=0, umap=False, quests_crosscheck=False).update(b, x)
    ref = CoverageAudit(descriptor_sample_size=100, seed=0, umap=False, quests_crosscheck=False).update(ref_tab, x_ref)
    cmp = mine.compare(ref)
    ref_el = ref.elements_.result()
    assert cmp["elements"]["missing_vs_reference"] == [e for e in ref_el["structures_per_element"]
                                                       if e not in ("O", "Na", "Cl", "Ti", "Fe", "Cu", "Sr")]
    cs = cmp["chemical_space"]
    assert cs["n_a"] == 5 and cs["n_b"] == 60 and 0 <= cs["coverage_of_b_by_a"] <= 1
    assert set(cs["per_method_novelty"]) == {"relax", "static", "md", "rattled"}
    assert cs["per_element_novelty"]["O"]["n"] == 2
    doc = mine.result(reference=ref, compare=cmp)
    json.dumps(doc)
    rows = doc["priorities"]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert all({"rank", "kind", "item", "items", "score", "evidence", "why", "suggestion"} == set(r) for r in rows)
    assert all(rows[i]["score"] >= rows[i + 1]["score"] for i in range(len(rows) - 1))
    kinds = {r["kind"] for r in rows}
    assert {"element_absent", "element_rare", "lot_monoculture", "regime_cell_empty"} <= kinds
    if cs["uncovered_regions"]:
        assert "descriptor_region" in kinds


def test_priorities_scores_by_hand():
    b = five_frames()
    a = CoverageAudit(umap=False, quests_crosscheck=False).update(b)
    rows = {(r["kind"], it): r for r in a.result()["priorities"] for it in r["items"]}
    # Li: tech-relevant, absent, no reference -> 1.0 * 0.7
    assert rows[("element_absent", "Li")]["score"] == 0.7
    # Ne: not tech-relevant -> 0.4 * 0.7
    assert rows[("element_absent", "Ne")]["score"] == pytest.approx(0.28)
    # Fe: 2 structures -> 0.8 * 0.7 * (1 - log10 3 / log10 101)
    assert rows[("element_rare", "Fe")]["score"] == pytest.approx(0.56 * (1 - math.log10(3) / math.log10(101)), abs=1e-6)
    # 60 % PBE -> 0.9 * 0.6
    assert rows[("lot_monoculture", "dataset")]["score"] == pytest.approx(0.54)
    # near-equilibrium share 0.5 is not > 0.5: no row; unknown temperature 3/5 -> 0.36
    assert ("regime_equilibrium", "far-from-equilibrium frames") not in rows
    assert rows[("regime_unknown_temperature", "temperature")]["score"] == pytest.approx(0.36)
    # 2 of 5 frames have T and P known; 28 empty cells at 0.5 * 2/5
    empty = [r for r in rows.values() if r["kind"] == "regime_cell_empty"]
    assert len(empty) == 28 and all(r["score"] == 0.2 for r in empty)
    assert rows[("regime_no_forces", "forces")]["score"] == pytest.approx(0.3 / 5)


def test_pair_absent_needs_reference():
    b = five_frames()
    ref = CoverageAudit(umap=False).update(b).exact_result()
    # this dataset: Cu, NaCl, Fe, SrTiO3: Fe and O both present, never together (the reference has FeO)
    mine = CoverageAudit(umap=False).update(pa.concat_tables([b.slice(0, 2), b.slice(3, 2)])).exact_result()
    rows = build_priorities(mine, ref)
    pairs = [r for r in rows if r["kind"] == "pair_absent"]
    # reference pair counts are all 1 -> 0.7 * log10(2) / log10(2)
    assert [(r["item"], r["score"], r["evidence"]) for r in pairs] == [
        ("O-Fe", 0.7, {"structures": 0, "reference_structures": 1})]
    assert not any(r["kind"] == "pair_absent" for r in build_priorities(mine, None))
    # crystals: an element the reference also lacks scores 0.3 * w_el (docs/findings_and_priorities.md)
    by = {(r["kind"], it): r["score"] for r in rows for it in r["items"]}
    assert by[("element_absent", "Li")] == 0.3


def test_deterministic_for_seed():
    t = random_frames(seed=5, n=80)
    x = np.random.default_rng(5).normal(size=(80, 3)).astype(np.float32)

    def run(seed):
        return json.dumps(CoverageAudit(descriptor_sample_size=40, seed=seed, umap=False,
                                        quests_crosscheck=False).update(t, x).result())

    assert run(4) == run(4)
    assert run(4) != run(5)


@pytest.mark.slow
def test_umap_and_quests_crosscheck_deterministic():
    t = random_frames(seed=6, n=150)
    x = np.random.default_rng(6).normal(size=(150, 6)).astype(np.float32)

    def run():
        return CoverageAudit(descriptor_sample_size=100, seed=3, quests_crosscheck=True).update(t, x).result()["chemical_space"]

    r1, r2 = run(), run()
    assert json.dumps(r1) == json.dumps(r2)
    assert len(r1["umap"]["x"]) == 100 and len(set(r1["umap"]["ids"])) == 100
    e = r1["entropy"]
    assert e["quests_abs_diff"] < 1e-6 * max(1.0, abs(e["entropy_nats"]))
    assert 1.0 <= r1["vendi"]["score"] <= 100


def test_quests_crosscheck_on_a_bounded_subsample(monkeypatch):
    import monoculture.audit.coverage.chemical_space as cs_module

    monkeypatch.setattr(cs_module, "CROSSCHECK_MAX", 20)
    t = random_frames(seed=7, n=50)
    x = np.random.default_rng(7).normal(size=(50, 4)).astype(np.float32)
    e = ChemicalSpaceCoverage(sample_size=100, umap=False, quests_crosscheck=True).update(t, x).result()["entropy"]
    assert e["n"] == 50 and e["quests_crosscheck_n"] == 20
    assert e["quests_abs_diff"] < 1e-9
    # the subsample's own entropy differs from the whole sample's: the check compares like with like
    assert abs(e["quests_entropy_nats"] - e["entropy_nats"]) > 1e-3
