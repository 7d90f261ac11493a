"""The alignment analysis (monoculture.audit.alignment.analysis.align) on small synthetic model zoos."""
import copy
import json

import numpy as np
import pandas as pd
import pytest

from monoculture.audit.alignment import bootstrap_ci, bootstrap_diff_ci, twonn
from monoculture.audit.alignment import analysis as an
from monoculture.audit.alignment.analysis import align, set_confounders
from monoculture.audit.alignment.stats import _draw
from monoculture.audit.alignment.metrics import cka
from monoculture.audit.alignment.resampling import resample

N_ID = N_OOD = 150
FAST = dict(n_boot=20, repeats=5, n_perm=19, spearman_n_perm=99)


def _ids(n, prefix="s"):
    return [f"{prefix}{i:04d}" for i in range(n)]


def collapse_zoo(seed=0, n_models=3):
    """ID: each model embeds its own independent 8-d latent; OOD: every model embeds one shared 3-d latent
    (different random maps). A 'soap' descriptor sees the shared OOD latent and an 8-d ID latent."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((N_OOD, 3))
    ids = _ids(N_ID + N_OOD)
    emb = {}
    for m in range(n_models):
        r = np.random.default_rng(seed + 100 + m)
        zid = r.standard_normal((N_ID, 8))
        X = np.vstack([np.tanh(zid @ r.standard_normal((8, 24))), np.tanh(shared @ r.standard_normal((3, 24)))])
        emb[f"model-{m}"] = (ids, X + 0.01 * r.standard_normal(X.shape))
    desc = np.vstack([rng.standard_normal((N_ID, 8)) @ rng.standard_normal((8, 10)),
                      np.hstack([shared, np.zeros((N_OOD, 7))]) @ rng.standard_normal((10, 10))])
    emb["soap"] = (ids, desc)
    meta = pd.DataFrame({
        "id": ids,
        "n_atoms": np.r_[rng.integers(20, 80, N_ID), rng.integers(3, 12, N_OOD)],
        "elements": ["Fe-O"] * N_ID + [["C", "H", "O"]] * N_OOD,
        "periodic": [True] * N_ID + [False] * N_OOD,
    })
    reference = rng.standard_normal((200, 10)) @ np.diag(np.linspace(0.5, 1.5, 10))
    return ids, emb, meta, reference


@pytest.fixture(scope="module")
def collapse_section():
    ids, emb, meta, reference = collapse_zoo()
    return align(emb, ids[:N_ID], ids[N_ID:], reference_model="model-0", descriptor_name="soap", metadata=meta,
                 reference_descriptor=reference, set_names={"id": "synthetic ID", "ood": "synthetic OOD"}, **FAST)


def _doc(section):
    return {"schema_version": "1", "monoculture_version": "0.1.0", "run": {}, "datasets": [], "alignment": section}


def test_section_follows_report_schema_and_is_strict_json(collapse_section):
    from monoculture.reports import schema_errors

    assert schema_errors(_doc(collapse_section)) == []
    json.dumps(collapse_section, allow_nan=False)
    # every documented key is present with the documented layout
    for key in ("models", "sets", "parameters", "metrics", "intrinsic_dimension", "k_sweep", "id_vs_scale",
                "near_duplicates", "gap_vs_collapse", "family_tree", "verdicts"):
        assert key in collapse_section, key
    assert collapse_section["models"] == ["model-0", "model-1", "model-2"]
    for name in ("cknna", "mutual_knn", "cka", "dcor", "information_imbalance", "twonn"):
        m = collapse_section["metrics"][name]
        assert np.array(m["id"], dtype=float).shape == (3, 3) and np.array(m["ood"], dtype=float).shape == (3, 3)
    assert collapse_section["metrics"]["information_imbalance"]["higher_is_more_aligned"] is False
    assert collapse_section["metrics"]["cknna"]["k"] == 25
    p = collapse_section["parameters"]
    assert (p["normalisation"], p["n_boot"], p["repeats"], p["seed"]) == ("none", 20, 5, 0)
    assert p["variants"]["cknna"] == "unbiased" and p["variants"]["mutual_knn"] == "cosine"
    for name in ("cknna", "mutual_knn", "cka", "dcor", "information_imbalance", "gfre", "lfre"):
        assert collapse_section["metrics"][name]["variant"] == p["variants"][name]
    sets = collapse_section["sets"]
    assert p["n"] == {s: 150 - sets[s]["n_near_duplicates"] for s in ("id", "ood")}
    assert all(sets[s]["n_near_duplicates"] <= 3 for s in ("id", "ood"))  # honest data: the guard keeps it
    # an invalid schema document is caught, so the check above can fail
    bad = copy.deepcopy(collapse_section)
    bad["verdicts"]["local"]["interval"] = [0.1]
    assert schema_errors(_doc(bad))


def test_report_figures_draw_from_the_section(collapse_section):
    from monoculture.reports.figures import plan_figures

    plans = [p for p in plan_figures(_doc(collapse_section)) if p.section == "alignment"]
    names = {p.name for p in plans}
    assert {"alignment_cknna", "alignment_intrinsic_dimension", "alignment_k_sweep", "alignment_id_vs_scale",
            "alignment_gap_vs_collapse", "alignment_family_tree"} <= names
    for plan in plans:
        fig = plan.draw()
        assert fig.axes


def test_collapse_case_gives_expected_verdicts(collapse_section):
    v = collapse_section["verdicts"]
    assert v["local"]["verdict"] == "higher out of distribution"
    assert v["global"]["verdict"] == "higher out of distribution"
    assert v["intrinsic_dimension"]["verdict"] == "higher in distribution"
    for key in ("local", "global", "intrinsic_dimension"):
        lo, hi = v[key]["interval"]
        assert lo <= v[key]["estimate"] <= hi
        assert (lo > 0) if key == "intrinsic_dimension" else (hi < 0)
    # supporting metrics point the same way; information imbalance falls (more aligned) out of distribution
    assert v["local"]["supporting"]["mutual_knn"]["verdict"] == "higher out of distribution"
    ii = collapse_section["metrics"]["information_imbalance"]["comparison"]
    assert ii["difference"] > 0 and ii["direction"] == "higher out of distribution"
    # the confounders (periodic crystals vs small molecules) are flagged in the verdict
    assert collapse_section["confounders"]["warnings"]
    assert "Warning" in v["local"]["explanation"] and v["local"]["warnings"]
    # permutation test sees the difference with the few shuffles used
    assert collapse_section["metrics"]["cknna"]["comparison"]["permutation"]["p_value"] <= 0.05


def test_pair_intervals_contain_their_estimate(collapse_section):
    m = collapse_section["metrics"]["dcor"]
    for key in ("id", "ood"):
        for i in range(3):
            for j in range(3):
                if i == j:
                    continue
                lo, hi = m["intervals"][key][i][j]
                assert lo <= m[key][i][j] <= hi
    d = m["difference"]
    assert d["intervals"][0][1][1] < 0  # ID - OOD dCor of a pair is negative with an interval below 0


def test_intrinsic_dimension_reported_clean_and_raw(collapse_section):
    idim = collapse_section["intrinsic_dimension"]
    assert idim["used_by_verdict"] == "twonn" and "TwoNN" in idim["estimator"]
    for m in collapse_section["models"]:
        assert 5.0 < idim["values"][m]["id"] < 10.0  # 8-d latent
        assert 2.0 < idim["values"][m]["ood"] < 4.5  # 3-d latent
        assert idim["mle"]["values"][m]["ood"] < idim["mle"]["values"][m]["id"]
        lo, hi = idim["intervals"][m]["id"]
        assert lo < idim["values"][m]["id"] < hi
        assert set(idim["raw"]["twonn"][m]) == {"id", "ood"}


def test_family_tree_and_k_sweep_layout(collapse_section):
    tree = collapse_section["family_tree"]
    assert tree["set"] == "id" and tree["method"] == "average" and tree["newick"].endswith(";")
    assert len(tree["linkage"]) == 2 and all(m in tree["newick"] for m in collapse_section["models"])
    sweep = collapse_section["k_sweep"]
    assert sweep["k"] == [5, 10, 25, 50, 100]
    assert all(len(c["values"]) == 5 for c in sweep["curves"])
    # reference model given: curves for its pairs plus the mean, per set
    labels = {(c["label"], c["set"]) for c in sweep["curves"]}
    assert ("model-0 vs model-1", "ood") in labels and ("model-1 vs model-2", "id") not in labels
    assert ("mean over model pairs", "id") in labels


def test_reference_and_descriptor_comparisons(collapse_section):
    ref = collapse_section["reference_comparison"]
    assert ref["model"] == "model-0"
    ii = collapse_section["metrics"]["information_imbalance"]["ood"]
    assert ref["information_imbalance"]["ood"]["model-1"]["model_to_reference"]["estimate"] == ii[1][0]
    assert ref["information_imbalance"]["ood"]["model-1"]["reference_to_model"]["estimate"] == ii[0][1]
    desc = collapse_section["descriptor_comparison"]
    # OOD descriptor sees the shared latent: models keep more of its neighbourhoods than in ID
    for m in collapse_section["models"]:
        assert desc["ood"][m]["cknna"]["estimate"] > desc["id"][m]["cknna"]["estimate"]


def _planted(n=200, n_dup=60, seed=3):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 5))
    base = {f"m{j}": Z @ rng.standard_normal((5, 16)) + 0.002 * rng.standard_normal((n, 16)) for j in range(2)}
    src = rng.choice(n, n_dup, replace=False)
    planted = {m: np.vstack([X, X[src] + 1e-7 * rng.standard_normal((n_dup, 16))]) for m, X in base.items()}
    return base, planted


def test_planted_near_duplicates_leave_intrinsic_dimension_near_clean_value():
    base, planted = _planted()
    ids = _ids(260)
    sec = align({m: (ids, X) for m, X in planted.items()}, n_boot=6, repeats=2, n_perm=2)
    rows = [r for r in sec["near_duplicates"]["rows"] if r["model_a"] == "all models"]
    assert rows[0]["score"] == pytest.approx(60 / 260, abs=0.01)
    assert sec["sets"]["all"]["n"] == 200
    for m, X in base.items():
        clean = twonn(X).dimension  # default: no row scaling
        reported = sec["intrinsic_dimension"]["values"][m]["all"]
        raw = sec["intrinsic_dimension"]["raw"]["twonn"][m]["all"]
        assert abs(reported - clean) <= 0.15 * clean
        assert raw < 0.85 * clean  # the guard matters: the raw estimate is pulled down
    # no ID/OOD sets: matrices under "all", no verdicts
    assert "verdicts" not in sec and set(sec["metrics"]["cknna"]) >= {"all"}


def test_identical_models_give_cknna_matrix_of_ones():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((120, 10))
    ids = _ids(120)
    emb = {"a": (ids, X), "b": (ids, X.copy()), "c": (ids, 3.0 * X)}
    sec = align(emb, n_boot=4, repeats=2, n_perm=2, variants={"cknna": "biased-no-self"})
    np.testing.assert_allclose(np.array(sec["metrics"]["cknna"]["all"]), np.ones((3, 3)), atol=1e-12)
    # the default (reference) variant adds 1e-6 to the denominator: just below 1
    default = np.array(align(emb, n_boot=2, repeats=2, n_perm=2)["metrics"]["cknna"]["all"])
    assert np.all(default > 1 - 1e-4) and np.all(default <= 1.0)
    np.testing.assert_allclose(np.array(sec["metrics"]["mutual_knn"]["all"]), np.ones((3, 3)), atol=1e-12)
    assert all(row[2] == pytest.approx(0.0, abs=1e-12) for row in sec["family_tree"]["linkage"])


def _small_zoo(seed=0, n=120):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 4))
    ids = _ids(n)
    return ids, {f"m{j}": (ids, np.tanh(Z @ rng.standard_normal((4, 12))) + 0.1 * rng.standard_normal((n, 12)))
                 for j in range(2)}


def test_deterministic_for_a_seed():
    ids, emb = _small_zoo()
    kw = dict(n_boot=8, repeats=3, n_perm=5)
    a = align(emb, ids[:60], ids[60:], seed=5, **kw)
    b = align(emb, ids[:60], ids[60:], seed=5, **kw)
    c = align(emb, ids[:60], ids[60:], seed=6, **kw)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["metrics"]["cknna"]["id"] == c["metrics"]["cknna"]["id"]  # estimates do not depend on the seed
    assert a["metrics"]["cknna"]["intervals"]["id"] != c["metrics"]["cknna"]["intervals"]["id"]


def test_id_mismatches_are_clear_errors():
    ids, emb = _small_zoo()
    bad = dict(emb)
    bad["m1"] = (ids[:-3], emb["m1"][1][:-3])
    with pytest.raises(ValueError, match=r"3 id\(s\) only in 'm0'"):
        align(bad, ids="same")
    dup = dict(emb)
    dup["m1"] = (ids[:-1] + [ids[0]], emb["m1"][1])
    with pytest.raises(ValueError, match=r"1 id\(s\) appear more than once"):
        align(dup)
    with pytest.raises(ValueError, match="2 ID id"):
        align(emb, ["nope", "nada"] + ids[:50], ids[60:])
    with pytest.raises(ValueError, match="both the ID and the OOD"):
        align(emb, ids[:70], ids[60:])
    with pytest.raises(ValueError, match="normalisation"):
        align(emb, normalisation="zscore")
    with pytest.raises(ValueError, match="descriptor"):
        align(emb, descriptor_name="soap")


def test_skipped_rows_are_dropped_for_every_model():
    ids, emb = _small_zoo()
    X = emb["m0"][1].copy()
    X[[3, 70]] = np.nan
    emb = {"m0": (ids, X), "m1": emb["m1"]}
    sec = align(emb, ids[:60], ids[60:], n_boot=4, repeats=2, n_perm=2)
    assert sec["sets"]["id"]["n_skipped_by_a_model"] == 1 and sec["sets"]["ood"]["n_skipped_by_a_model"] == 1
    assert sec["parameters"]["n_skipped_structures"] == 2
    assert sec["sets"]["id"]["n"] == 59 - sec["sets"]["id"]["n_near_duplicates"]


def test_resampling_engine_reproduces_bootstrap_ci_and_diff_ci(related_pair):
    X, Y = related_pair
    res = resample([X, Y], [(0, 1)], ("cka",), 10, 10, 25, 11)
    ref = bootstrap_ci(lambda a, b: cka(a, b), X, Y, 25, 0.95, 11)
    iv = an._interval(res.estimate["cka"][(0, 1)], res.reps["cka"][(0, 1)], res.n, res.m, 0.95)
    np.testing.assert_allclose(res.reps["cka"][(0, 1)], ref.replicates)
    np.testing.assert_allclose(iv, (ref.low, ref.high))
    # difference interval: replicate bootstrap_diff_ci's draws (ID first, then OOD, one stream)
    Xb, Yb = X[:200] + 0.5, Y[:200]
    ref_d = bootstrap_diff_ci(lambda a, b: cka(a, b), (X, Y), (Xb, Yb), 25, 0.95, 4)
    rng = np.random.default_rng(4)
    ra = np.array([cka(X[r], Y[r]) for r in (_draw(rng, 300, "subsample", 150) for _ in range(25))])
    rb = np.array([cka(Xb[r], Yb[r]) for r in (_draw(rng, 200, "subsample", 100) for _ in range(25))])
    got = an._diff_interval(cka(X, Y), ra, 300, 150, cka(Xb, Yb), rb, 200, 100, 0.95)
    np.testing.assert_allclose(got, (ref_d.low, ref_d.high))


def test_direction_words_follow_the_interval():
    assert an._direction((0.1, 0.3), True) == "higher in distribution"
    assert an._direction((-0.3, -0.1), True) == "higher out of distribution"
    assert an._direction((-0.1, 0.2), True) == "no detectable difference"
    assert an._direction((-0.3, -0.1), False) == "higher in distribution"  # information imbalance falls in ID
    assert an._direction(None, True) == "not determined"


def test_confounders_and_atom_count_matching():
    meta = pd.DataFrame({"id": ["a", "b", "c", "d", "e", "f"], "n_atoms": [1, 4, 30, 2, 3, 31],
                         "elements": ["Fe-O", ["Fe"], "O", "C-H", "C-H-O", "N"],
                         "periodic": [True, True, True, False, False, False]})
    out = set_confounders(meta, {"id": ["a", "b", "c"], "ood": ["d", "e", "f"]})
    assert out["per_set"]["id"]["periodic_share"] == 1.0 and out["per_set"]["ood"]["periodic_share"] == 0.0
    assert out["per_set"]["id"]["single_atom_share"] == pytest.approx(1 / 3)
    assert out["between"]["element_jaccard"] == pytest.approx(1 / 5)
    assert any("periodic" in w for w in out["warnings"]) and any("element" in w for w in out["warnings"])
    same = set_confounders(meta, {"id": ["a", "b"], "ood": ["a", "b"]})
    assert same["warnings"] == []
    md = an._metadata_table(meta)
    ia, ib = an._match_atom_counts(md, np.array(["a", "b", "c"]), np.array(["d", "e", "f"]), 0)
    na = md.loc[np.array(["a", "b", "c"])[ia], "n_atoms"].to_numpy()
    nb = md.loc[np.array(["d", "e", "f"])[ib], "n_atoms"].to_numpy()
    # bins (1), (2), (3-4), (17-32): ID has 1, 4, 30 atoms, OOD 2, 3, 31 -> the 3-4 and 17-32 bins match
    assert sorted(an._atom_count_bin(na)) == sorted(an._atom_count_bin(nb)) == [2, 5]


def test_gap_vs_collapse_finds_a_planted_negative_relation():
    """Models keep the descriptor's neighbourhoods near the reference data and lose them far from it."""
    rng = np.random.default_rng(2)
    n = 240
    Z = rng.uniform(-3, 3, (n, 3))
    reference = 0.5 * rng.standard_normal((300, 3))
    far = np.linalg.norm(Z, axis=1)
    ids = _ids(n)
    emb = {"desc": (ids, Z)}
    for j in range(2):
        W = rng.standard_normal((3, 12))
        noise = (0.05 * np.exp(1.3 * far))[:, None] * rng.standard_normal((n, 12))
        emb[f"m{j}"] = (ids, Z @ W + noise)
    sec = align(emb, descriptor_name="desc", reference_descriptor=reference, normalisation="none", n_boot=20,
                repeats=2, n_perm=2, spearman_n_perm=99, gap_k=3)
    g = sec["gap_vs_collapse"]
    assert g["spearman_rho"] < -0.4 and g["ci"][1] < 0 and g["p_value"] <= 0.02
    assert len(g["points"]) == n and {p["label"] for p in g["points"]} == {"all"}
    assert all(g["measures"]["model_descriptor_agreement"]["per_model"][m]["rho"] < 0 for m in ("m0", "m1"))


def test_match_atom_count_compares_equal_bins():
    ids, emb = _small_zoo()
    rng = np.random.default_rng(9)
    meta = pd.DataFrame({"id": ids, "n_atoms": np.r_[rng.integers(1, 40, 60), rng.integers(1, 12, 60)],
                         "periodic": [True] * 60 + [False] * 60, "elements": ["Si-O"] * 120})
    sec = align(emb, ids[:60], ids[60:], metadata=meta, match_atom_count=True, n_boot=4, repeats=2, n_perm=2)
    assert sec["parameters"]["match_atom_count"] and sec["sets"]["id"]["matched_by_atom_count"]
    assert sec["sets"]["id"]["n"] == sec["sets"]["ood"]["n"] < 60
    conf = sec["confounders"]
    assert conf["per_set"]["id"]["n_atoms"]["max"] <= 16  # only bins shared with the OOD set (<= 11 atoms) remain
    assert any("periodic" in w for w in conf["warnings"])
    with pytest.raises(ValueError, match="match_atom_count needs metadata"):
        align(emb, ids[:60], ids[60:], match_atom_count=True)
