"""The chemical-space map (UMAP layout on the k-NN step's graph) and the shared pairwise pass."""
import numpy as np
import pytest

from monoculture.audit.coverage.chemical_space import (
    UMAP_EPOCHS,
    ChemicalSpaceCoverage,
    pairwise_pass,
    quests_entropy,
    vendi_score,
)
from monoculture.audit.coverage.knn import knn_self
from monoculture.audit.coverage.map_layout import (
    MAP_METHOD,
    _pca_init,
    _smooth_knn_dist,
    find_ab_params,
    fuzzy_graph,
    umap_layout,
)

from coverage_testframes import random_frames


def _graph(X, k):
    d, i, _ = knn_self(X, k - 1)
    n = X.shape[0]
    return np.hstack([np.arange(n)[:, None], i]), np.hstack([np.zeros((n, 1)), d])


def _two_clusters(n=120, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[n // 2 :, 0] += 20.0
    return X, np.arange(n) >= n // 2


def test_smooth_knn_dist_hits_log2_k():
    # umap-learn's rule: sum_j exp(-(d_ij - rho_i) / sigma_i) over the k - 1 other neighbours = log2(k)
    X = np.random.default_rng(1).normal(size=(200, 5))
    idx, dist = _graph(X, 15)
    sigma, rho = _smooth_knn_dist(dist)
    assert np.allclose(rho, dist[:, 1])  # no duplicates: rho is the nearest other point
    d = np.maximum(dist[:, 1:] - rho[:, None], 0.0)
    assert np.allclose(np.exp(-d / sigma[:, None]).sum(1), np.log2(15), atol=1e-4)


def test_fuzzy_graph_is_a_symmetric_fuzzy_union():
    X = np.random.default_rng(2).normal(size=(60, 4))
    idx, dist = _graph(X, 6)
    g = fuzzy_graph(idx, dist).toarray()
    assert np.allclose(g, g.T)
    assert g.max() <= 1.0 + 1e-12 and g.min() >= 0.0 and np.all(np.diag(g) == 0)
    # every point's nearest other point has membership 1 in its own row, so 1 in the union too
    assert np.allclose(g[np.arange(60), idx[:, 1]], 1.0)


def test_ab_params_of_min_dist_0_1():
    a, b = find_ab_params(1.0, 0.1)  # umap-learn's documented values for spread 1, min_dist 0.1
    assert a == pytest.approx(1.577, abs=2e-3) and b == pytest.approx(0.895, abs=2e-3)


def test_pca_init_matches_svd_up_to_sign():
    # a spectrum with a gap after the second component (what randomised subspace iteration relies on)
    X = np.random.default_rng(3).normal(size=(300, 40)) * np.r_[10.0, 5.0, np.linspace(1.0, 0.1, 38)]
    mine = _pca_init(X, 0)
    Xc = X - X.mean(0)
    u, s, _ = np.linalg.svd(Xc, full_matrices=False)
    for c in range(2):
        assert abs(np.corrcoef(mine[:, c], u[:, c] * s[c])[0, 1]) > 0.9999
        assert np.abs(mine[:, c]).max() == pytest.approx(np.abs(u[:, c] * s[c]).max(), rel=1e-3)


def test_umap_layout_separates_clusters_and_is_seeded():
    X, label = _two_clusters()
    idx, dist = _graph(X, 15)
    e1, info = umap_layout(X, idx, dist, seed=4, n_epochs=100)
    e2, _ = umap_layout(X, idx, dist, seed=4, n_epochs=100)
    e3, _ = umap_layout(X, idx, dist, seed=5, n_epochs=100)
    assert np.array_equal(e1, e2) and not np.array_equal(e1, e3)
    assert info["method"] == MAP_METHOD and info["init"] == "pca" and info["n_epochs"] == 100
    # every point lies nearer its own cluster's centre on the map than the other's
    ca, cb = e1[~label].mean(0), e1[label].mean(0)
    near_a = np.linalg.norm(e1 - ca, axis=1) < np.linalg.norm(e1 - cb, axis=1)
    assert np.array_equal(near_a, ~label)
    # and the map keeps neighbourhoods: most 10-NN on the map are 10-NN in the data
    _, hi, _ = knn_self(X, 10)
    _, lo, _ = knn_self(e1, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hi, lo)]) > 0.4


def test_pairwise_pass_equals_the_separate_computations():
    X = np.random.default_rng(5).normal(size=(700, 12))
    X[10] = X[11]  # an exact duplicate: distance 0 exactly
    pw = pairwise_pass(X, 7, 1.5, n_block=300, chunk=256)
    d, i, _ = knn_self(X, 7)
    assert np.allclose(pw["dist"], d, atol=1e-5)
    assert pw["dist"][10, 0] == 0.0 and pw["idx"][10, 0] == 11
    assert float(-pw["log_density"].mean()) == pytest.approx(quests_entropy(X, 1.5), rel=1e-12)
    assert vendi_score(None, d2=pw["block"]) == pytest.approx(vendi_score(X[:300]), rel=1e-9)


def test_audit_parameters_name_the_map(tmp_path):
    from monoculture.audit.run import AuditOptions, run_audit
    from monoculture.datasets.samples import sample_dir

    path = sample_dir() / "mptrj_sample.json"
    doc = run_audit([path], AuditOptions(quiet=True, sample_size=50, quests_crosscheck=False))
    p = doc["parameters"]
    assert (p["map_method"], p["map_epochs"]) == (MAP_METHOD, 200)
    assert doc["datasets"][0]["coverage"]["chemical_space"]["umap"]["method"] == MAP_METHOD
    off = run_audit([path], AuditOptions(quiet=True, sample_size=50, umap=False,
                                                          quests_crosscheck=False))
    assert "map_method" not in off["parameters"]


def test_coverage_map_records_its_method_and_reuses_the_knn_graph(monkeypatch):
    import monoculture.audit.coverage.chemical_space as cs_module

    t = random_frames(seed=7, n=80)
    x = np.random.default_rng(7).normal(size=(80, 6)).astype(np.float32)
    calls = []
    monkeypatch.setattr(cs_module, "knn_self", lambda *a, **k: calls.append(a) or knn_self(*a, **k))
    r = ChemicalSpaceCoverage(sample_size=60, seed=1, quests_crosscheck=False).update(t, x).result()
    assert calls == []  # the map's neighbours come from the k-NN step's pass
    u = r["umap"]
    assert (u["method"], u["init"], u["n_epochs"], u["n_neighbors"], u["n"]) == (MAP_METHOD, "pca", UMAP_EPOCHS, 15, 60)
    assert UMAP_EPOCHS == 200
    assert r["knn"]["k"] == 10 and r["knn"]["index"].startswith("exact")
    assert len(u["x"]) == len(u["ids"]) == 60 and np.all(np.isfinite(u["x"]))
