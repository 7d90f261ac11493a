"""Environment-level alignment on built cases with known answers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from monoculture.audit.environments.alignment import AtomFeatures, align_environments, effective_dimension, join_atoms

P = 50  # permutations: enough for tau at the 95 % level, keeps the tests fast


def _atoms(n_struct, per, seed=0):
    ids = np.repeat([f"s{i:03d}" for i in range(n_struct)], per).astype(object)
    index = np.tile(np.arange(per), n_struct)
    return ids, index


def _rotation(d, rng):
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def _group(res, label):
    return next(g for g in res.groups if g.label == label)


def test_orthogonal_transform_agrees_in_every_group():
    rng = np.random.default_rng(1)
    ids, index = _atoms(60, 5)
    Z = np.where(index < 3, 8, 14)
    A = rng.normal(size=(len(ids), 12))
    B = 3.0 * A @ _rotation(12, rng)  # rotated and scaled: the same representation
    env = rng.normal(size=(len(ids), 6))
    res = align_environments([AtomFeatures("a", ids, index, A, Z), AtomFeatures("b", ids, index, B, Z)],
                             environments=AtomFeatures("q", ids, index, env, Z), n_clusters=3,
                             min_environments=40, n_permutations=P)
    kinds = [g.kind for g in res.groups]
    assert kinds.count("all") == 1 and kinds.count("element") == 2 and kinds.count("cluster") >= 2
    for g in res.groups:
        (p,) = g.pairs
        assert p.cknna["calibrated"] == pytest.approx(1.0, abs=1e-3)  # eps in the CKNNA denominator
        assert p.mutual_knn["calibrated"] == pytest.approx(1.0, abs=1e-9)
        assert p.gfre_a_to_b < 1e-6 and p.gfre_b_to_a < 1e-6
        assert p.cknna["p_value"] == pytest.approx(1 / (P + 1))
        assert p.mutual_knn_interval == pytest.approx([1.0, 1.0])  # every atom keeps all its neighbours
        assert g.k <= 0.1 * g.n_used + 1e-9


def test_agreement_on_one_element_and_chance_on_the_other():
    rng = np.random.default_rng(2)
    ids, index = _atoms(80, 4)
    Z = np.where(index % 2 == 0, 26, 78)  # Fe and Pt
    A = rng.normal(size=(len(ids), 10))
    B = A @ _rotation(10, rng)
    pt = Z == 78
    B[pt] = rng.normal(size=(pt.sum(), 10))  # model b is unrelated to model a on the Pt atoms
    res = align_environments([AtomFeatures("a", ids, index, A, Z), AtomFeatures("b", ids, index, B, Z)],
                             n_permutations=P, n_clusters=1)
    fe, pt_ = _group(res, "Fe").pairs[0], _group(res, "Pt").pairs[0]
    assert fe.cknna["calibrated"] > 0.95 and fe.gfre_a_to_b < 0.05
    assert pt_.cknna["calibrated"] == 0.0 and pt_.cknna["p_value"] > 0.05 and pt_.gfre_a_to_b > 0.8
    for p in (fe, pt_, _group(res, "all").pairs[0]):  # the interval holds the point estimate
        low, high = p.mutual_knn_interval
        assert low - 1e-12 <= p.mutual_knn["calibrated"] <= high + 1e-12
    low, high = _group(res, "all").pairs[0].mutual_knn_interval
    assert 0 < low < high < 1 and high - low < 0.2
    assert "Agreement collapses to chance (every pair's CKNNA within its permutation null) in Pt." in res.sentences
    assert any(s.startswith("The models agree") and "Fe" in s for s in res.sentences)
    # no structures: the clusters would be made from the model features, and the result says so
    assert "concatenated model features" in res.settings["cluster_space"]


def test_join_drops_and_counts_missing_atoms():
    rng = np.random.default_rng(3)
    ids, index = _atoms(20, 3)
    Z = np.full(len(ids), 6)
    A = rng.normal(size=(len(ids), 4))
    A[30, 2] = np.nan  # a NaN feature drops the atom
    keep_b = np.ones(len(ids), bool)
    keep_b[[0, 5, 7]] = False  # model b lacks three atoms
    keep_q = np.ones(len(ids), bool)
    keep_q[[10]] = False  # the structures lack one atom
    Zb = Z.copy()
    Zb[20] = 7  # one atom with a different element in b
    order = rng.permutation(keep_b.sum())  # file order does not matter
    a = AtomFeatures("a", ids, index, A, Z)
    b = AtomFeatures("b", ids[keep_b][order], index[keep_b][order], A[keep_b][order] + 1.0, Zb[keep_b][order])
    q = AtomFeatures("q", ids[keep_q], index[keep_q], A[keep_q], None)
    j = join_atoms([a, b], q)
    assert j.accounting["missing"] == {"a": 0, "b": 3, "q": 1}
    assert j.accounting["n_union"] == 60 and j.accounting["n_atomic_number_mismatch"] == 1
    assert j.accounting["n_non_finite"] == 1
    assert j.accounting["n_joined"] == 60 - 3 - 1 - 1 - 1 == len(j.ids)
    # rows stay paired after the join: b's features are a's plus one
    np.testing.assert_allclose(j.features[1], j.features[0] + 1.0)
    np.testing.assert_allclose(j.environments, j.features[0])
    assert list(zip(j.ids[:3], j.atom_index[:3])) == [("s000", 1), ("s000", 2), ("s001", 0)]


def test_symmetry_equivalent_atoms_are_merged_and_counted():
    rng = np.random.default_rng(4)
    ids, index = _atoms(100, 4)
    Z = np.full(len(ids), 14)
    A = rng.normal(size=(len(ids), 8))
    A[1::4] = A[0::4]  # atom 1 of each structure is a copy of atom 0 in both models
    B = A @ _rotation(8, rng)
    models = [AtomFeatures("a", ids, index, A, Z), AtomFeatures("b", ids, index, B, Z)]
    res = align_environments(models, n_permutations=P, n_clusters=1)
    assert res.atoms["n_distinct_environments"] == 300 and res.atoms["n_merged"] == 100
    g = _group(res, "all")
    assert g.n_atoms == 400 and g.n_environments == 300
    kept = align_environments(models, n_permutations=P, n_clusters=1, merge=False)
    assert kept.atoms["n_distinct_environments"] == 400


def test_element_only_agreement_vanishes_within_elements():
    """Two models that share nothing but the element: high against the ordinary null, at chance within."""
    rng = np.random.default_rng(5)
    ids, index = _atoms(100, 4)
    Z = np.array([3, 8, 14, 26])[index]
    onehot = (Z[:, None] == np.array([3, 8, 14, 26])[None, :]) * 5.0
    A = np.hstack([onehot, rng.normal(size=(len(ids), 6))])
    B = np.hstack([onehot, rng.normal(size=(len(ids), 6))])
    res = align_environments([AtomFeatures("a", ids, index, A, Z), AtomFeatures("b", ids, index, B, Z)],
                             n_permutations=P, n_clusters=1, min_environments=50)
    p = _group(res, "all").pairs[0]
    # both models put an atom's neighbours among its own element: above the ordinary chance level...
    assert p.cknna["p_value"] <= 2 / (P + 1) and p.cknna["calibrated"] > 0.02
    # ...but not above permutations that keep the elements
    assert p.cknna_within_element["p_value"] > 0.05 and p.cknna_within_element["calibrated"] == 0.0
    assert p.cknna_within_element["tau"] > p.cknna["tau"]
    assert p.cknna_within_element["raw"] == pytest.approx(p.cknna["raw"], abs=1e-12)  # same score, other null
    for el in ("Li", "O", "Si", "Fe"):
        assert _group(res, el).pairs[0].cknna_within_element is None
        assert _group(res, el).pairs[0].cknna["calibrated"] < 0.15


def _coverage_case(seed=6, n_clusters=6, per=60):
    """Well-separated environment clusters; agreement falls and coverage falls from cluster to cluster."""
    rng = np.random.default_rng(seed)
    n = n_clusters * per
    ids = np.array([f"c{c}-{i}" for c in range(n_clusters) for i in range(per)], dtype=object)
    index = np.zeros(n, np.int64)
    which = np.repeat(np.arange(n_clusters), per)
    centres = rng.normal(size=(n_clusters, 63))
    env = centres[which] + 0.01 * rng.normal(size=(n, 63))
    Z = np.full(n, 8)
    A = rng.normal(size=(n, 8))
    noise = np.linspace(0.0, 3.0, n_clusters)[which][:, None]
    B = A + noise * rng.normal(size=(n, 8))
    shares = np.linspace(1.0, 0.0, n_clusters)  # cluster c: the first shares[c] of its atoms are in training
    ref = np.concatenate([env[which == c][: int(round(shares[c] * per))] for c in range(n_clusters)])
    models = [AtomFeatures("a", ids, index, A, Z), AtomFeatures("b", ids, index, B, Z)]
    return models, AtomFeatures("q", ids, index, env, Z), ref


def test_coverage_link_has_the_right_sign():
    models, env, ref = _coverage_case()
    res = align_environments(models, environments=env, reference=ref, n_clusters=6, n_permutations=P,
                             min_environments=30, n_boot=200)
    clusters = [g for g in res.groups if g.kind == "cluster"]
    assert len(clusters) == 6
    overlaps = sorted(g.coverage["overlap"] for g in clusters)
    np.testing.assert_allclose(overlaps, np.linspace(0, 1, 6), atol=1e-9)
    link = res.coverage_link["cluster"]["overlap"]
    assert link["n_groups"] == 6 and link["rho"] > 0.8
    assert link["evidence"].startswith("weak evidence")  # 6 groups < 8
    assert res.coverage_link["cluster"]["-mean differential entropy"]["rho"] > 0.8
    assert "not computed" in " ".join(res.sentences)  # one element: no link across elements
    least = min(clusters, key=lambda g: g.coverage["overlap"])
    assert least.mean_calibrated() == min(g.mean_calibrated() for g in clusters)
    assert "the lowest agreement of all" in " ".join(res.sentences)
    assert res.coverage["reference"] == "training" and res.coverage["n_reference_environments"] == len(ref)


def test_deterministic_for_a_seed_and_serialisable():
    models, env, ref = _coverage_case(seed=7, n_clusters=4, per=50)
    kw = dict(environments=env, reference=ref, n_clusters=4, n_permutations=P, min_environments=30, n_boot=100,
              max_per_group=120)
    r1 = align_environments(models, seed=3, **kw)
    r2 = align_environments(models, seed=3, **kw)
    assert r1.to_json() == r2.to_json()
    doc = json.loads(r1.to_json())
    assert set(doc) == {"models", "atoms", "settings", "groups", "skipped_elements", "skipped_clusters", "coverage",
                        "coverage_link", "sentences"}
    assert doc["groups"][0]["n_used"] == 120 and doc["groups"][0]["n_environments"] == 200  # capped, seeded
    frame = r1.to_frame()
    assert len(frame) == len(r1.groups) and {"cknna_calibrated", "gfre_a_to_b", "coverage_overlap"} <= set(frame)


def test_three_models_give_three_pairs_per_group():
    rng = np.random.default_rng(8)
    ids, index = _atoms(60, 2)
    Z = np.full(len(ids), 29)
    A = rng.normal(size=(len(ids), 5))
    models = [AtomFeatures(nm, ids, index, A @ _rotation(5, rng), Z) for nm in ("x", "y", "z")]
    res = align_environments(models, n_permutations=P, n_clusters=1)
    frame = res.to_frame()
    assert len(frame) == 3 * len(res.groups)
    assert set(zip(frame.model_a, frame.model_b)) == {("x", "y"), ("x", "z"), ("y", "z")}


def test_effective_dimension_by_hand():
    assert effective_dimension(np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])) == pytest.approx(1.0)
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert effective_dimension(X) == pytest.approx(2.0)


def test_errors():
    rng = np.random.default_rng(9)
    ids, index = _atoms(10, 2)
    Z = np.full(len(ids), 1)
    a = AtomFeatures("a", ids, index, rng.normal(size=(20, 3)), Z)
    with pytest.raises(ValueError, match="at least two models"):
        align_environments([a])
    with pytest.raises(ValueError, match="needs the QUESTS descriptors"):
        align_environments([a, AtomFeatures("b", ids, index, rng.normal(size=(20, 3)), Z)], reference=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="distinct environments joined"):
        align_environments([a, AtomFeatures("b", ids, index, rng.normal(size=(20, 3)), Z)])
    with pytest.raises(ValueError, match="no atom is present"):
        other = AtomFeatures("b", np.array(["zz"] * 20, dtype=object), np.arange(20), rng.normal(size=(20, 3)), Z)
        align_environments([a, other])
    with pytest.raises(ValueError, match="one entry per atom"):
        AtomFeatures("c", ids, index[:5], rng.normal(size=(20, 3)), Z)
