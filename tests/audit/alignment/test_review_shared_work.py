"""Work the alignment analysis shares instead of repeating: one RV-null flow for CKA and dCor, the full-array
TwoNN, the k-sweep's neighbour searches."""
import numpy as np
import pytest

from monoculture.audit.alignment import calibration as C
from monoculture.audit.alignment import neighbour_cache as NC
from monoculture.audit.alignment import null_moments as NM
from monoculture.audit.alignment.analysis import align
from monoculture.audit.alignment.dependence import distance_correlation
from monoculture.audit.alignment.intrinsic_dim import twonn
from monoculture.audit.alignment.metrics import cka
from monoculture.audit.alignment.stats import bootstrap_ci


def _models(n=90, widths=(5, 8, 11), seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 3))
    return [Z @ rng.standard_normal((3, d)) + 0.4 * rng.standard_normal((n, d)) for d in widths]


def test_choose_picks_by_cost_and_rejects_unknown_methods():
    assert NM._choose("auto", 100, 1e7) == "permutation" and NM._choose("auto", 101, 1e7) == "moments"
    assert NM._choose("moments", 1, 1.0) == "moments"
    with pytest.raises(ValueError, match="method must be"):
        NM._choose("exact", 10, 1.0)


@pytest.mark.parametrize("method", ["permutation", "moments"])
@pytest.mark.parametrize("squared", [False, True])
def test_calibrate_pairs_cka_and_dcor_are_the_pair_nulls(method, squared):
    """Every pair of calibrate_pairs (stats built once for all models) equals cka_null / dcor_null of that
    pair alone, and the raw values are the metrics'."""
    arrays = _models()
    out = C.calibrate_pairs(arrays, metrics=("cka", "dcor"), n_permutations=25, seed=2, cka_method=method,
                            dcor_method=method, options={"dcor": {"squared": squared}})
    for (i, j), c in out["cka"].items():
        raw, null, mean, how = C.cka_null(arrays[i], arrays[j], C.permutations(90, 25, C._pair_seed(2, i, j)),
                                          method=method)
        assert c.raw == pytest.approx(raw, abs=1e-12) == pytest.approx(cka(arrays[i], arrays[j]), abs=1e-9)
        np.testing.assert_allclose(c.null, null, rtol=0, atol=1e-12)
        assert c.null_mean == pytest.approx(mean, abs=1e-12) and c.method == how
        assert how.startswith(method)
    for (i, j), c in out["dcor"].items():
        raw, null, mean, how = C.dcor_null(arrays[i], arrays[j], C.permutations(90, 25, C._pair_seed(2, i, j)),
                                           method=method, squared=squared)
        ref = distance_correlation(arrays[i], arrays[j], squared=squared)
        assert c.raw == pytest.approx(raw, abs=1e-9) and raw == pytest.approx(ref, abs=1e-6)
        np.testing.assert_allclose(c.null, null, rtol=0, atol=1e-9)
        assert c.null_mean == pytest.approx(mean, abs=1e-9) and c.method == how and how.startswith(method)
        assert np.all((null >= 0) & (null <= 1))


def test_cka_null_with_and_without_precomputed_stats_agree():
    X, Y = _models()[:2]
    perms = C.permutations(90, 20, 7)
    for method in ("permutation", "moments"):
        a = C.cka_null(X, Y, perms, method=method)
        st = tuple(NM._gram_stats_all([X, Y], method))
        b = C.cka_null(None, None, perms, method=method, stats=st)
        assert a[0] == b[0] and a[2] == b[2] and a[3] == b[3]
        np.testing.assert_array_equal(a[1], b[1])


def test_distance_stats_all_exact_and_sweep_agree():
    arrays = _models()
    d2_exact, st_exact = NM._distance_stats_all(arrays, "permutation")
    d2_sweep, st_sweep = NM._distance_stats_all(arrays, "moments")
    assert all(s.A is not None for s in st_exact) and all(s.A is None for s in st_sweep)
    np.testing.assert_allclose(d2_exact, d2_sweep, rtol=0, atol=1e-5)
    for i in range(3):
        for j in range(i + 1, 3):
            assert d2_exact[i, j] == pytest.approx(distance_correlation(arrays[i], arrays[j], squared=True),
                                                   abs=1e-9)


def test_bootstrap_ci_uses_a_given_estimate_and_the_same_replicates():
    X = _models()[0]
    a = bootstrap_ci(lambda A, _: twonn(A), X, X[:, :1], 8, 0.9, 3)
    b = bootstrap_ci(lambda A, _: twonn(A), X, X[:, :1], 8, 0.9, 3, estimate=a.estimate)
    assert (a.estimate, a.low, a.high) == (b.estimate, b.low, b.high)
    np.testing.assert_array_equal(a.replicates, b.replicates)
    c = bootstrap_ci(lambda A, _: twonn(A), X, X[:, :1], 8, 0.9, 3, estimate=a.estimate + 1.0)
    assert c.estimate == a.estimate + 1.0 and c.low == pytest.approx(a.low + 1.0, abs=1e-12)


def _zoo(n=100, seed=3):
    rng = np.random.default_rng(seed)
    ids = [f"s{i:03d}" for i in range(n)]
    Z = rng.standard_normal((n, 4))
    return ids, {f"m{m}": (ids, np.tanh(Z @ rng.standard_normal((4, 10))) + 0.05 * rng.standard_normal((n, 10)))
                 for m in range(3)}


def test_intrinsic_dimension_is_the_twonn_matrix_diagonal():
    ids, emb = _zoo()
    sec = align(emb, n_boot=4, repeats=2, n_perm=2, n_calibration=5, reconstruction=False)
    J = np.array(sec["metrics"]["twonn"]["all"], dtype=float)
    for i, m in enumerate(sec["models"]):
        value = sec["intrinsic_dimension"]["values"][m]["all"]
        assert value == pytest.approx(J[i, i], abs=1e-12)
        assert value == pytest.approx(twonn(emb[m][1]).dimension, rel=1e-9)  # no near-duplicates, no scaling


def test_k_sweep_searches_each_model_once_per_k(monkeypatch):
    calls = []
    search = NC.neighbour_search
    monkeypatch.setattr(NC, "neighbour_search", lambda Z, m, **kw: calls.append((Z.shape, m)) or search(Z, m, **kw))
    from monoculture.audit.alignment.steps import k_sweep as KS

    ids, emb = _zoo()
    arrays = [emb[m][1] for m in emb]

    class _PM:  # what k_sweep_step reads of the pair-metrics step
        pass

    class _Plan:
        models = list(emb)
        model_pairs = [(0, 1), (0, 2), (1, 2)]
        keys = ["all"]
        k_list = [5, 10, 20]

    from monoculture.audit.alignment.options import AlignOptions
    from monoculture.audit.alignment.variants import resolve_variants

    pm, plan = _PM(), _Plan()
    pm.arrays = {"all": arrays}
    plan.resolved = resolve_variants()
    out = KS.k_sweep_step(pm, plan, AlignOptions())
    # 3 models x 3 k, shared by the 3 pairs and by CKNNA and mutual k-NN (same cosine k-NN sets by default)
    assert len(calls) == 9
    from monoculture.audit.alignment.metrics import cknna, mutual_knn
    mean = [np.mean([cknna(arrays[i], arrays[j], k=k) for i, j in plan.model_pairs]) for k in plan.k_list]
    got = [c for c in out.curves["cknna"] if c["label"] == "mean over model pairs"][0]["values"]
    np.testing.assert_allclose(got, mean, rtol=0, atol=1e-12)
    mk = [mutual_knn(arrays[0], arrays[1], k=k) for k in plan.k_list]
    np.testing.assert_allclose(out.curves["mutual_knn"][0]["values"], mk, rtol=0, atol=1e-12)
