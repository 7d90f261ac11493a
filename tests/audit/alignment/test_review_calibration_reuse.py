"""Calibration work done once and reused: the k-sweep at the main k, one sort per model for the information
imbalance's ranks and neighbours, the graphs of calibrate_pairs."""
import numpy as np
import pytest

from monoculture.audit.alignment import calibration as C
from monoculture.audit.alignment.analysis import align
from monoculture.audit.alignment.neighbours import knn
from monoculture.audit.alignment.null_neighbours import _rank_matrix, _ranks_and_neighbours, imbalance_null


def _same_sets(a, b):
    return np.array_equal(np.sort(a, axis=1), np.sort(b, axis=1))


@pytest.mark.parametrize("case", ["gaussian", "duplicates", "integer grid"])
@pytest.mark.parametrize("k", [1, 7, 30])
def test_ranks_and_neighbours_give_knn_sets_and_the_rank_matrix(case, k):
    rng = np.random.default_rng(11)
    if case == "gaussian":
        X = rng.standard_normal((90, 6)) * np.linspace(0.1, 10.0, 6)
    elif case == "duplicates":  # exact copies: distance 0 ties among several rows
        X = rng.standard_normal((60, 4))
        X = np.vstack([X, X[:20], X[:10]])
    else:  # many exactly equal distances
        X = rng.integers(0, 3, size=(80, 3)).astype(float) + 1e3
    R, idx = _ranks_and_neighbours(X, k)
    np.testing.assert_array_equal(R, _rank_matrix(X))
    assert idx.shape == (X.shape[0], k) and idx.dtype == np.int64
    assert _same_sets(idx, knn(X, k)[1])
    if case == "gaussian":  # no ties: the review's identity, the stable order of the ranks
        np.testing.assert_array_equal(idx, np.argsort(R, axis=1, kind="stable")[:, :k])


def test_imbalance_null_with_and_without_precomputed_neighbours_agree(related_pair):
    X, Y = related_pair
    perms = C.permutations(X.shape[0], 25, 3)
    a = imbalance_null(X, Y, perms, 9)
    b = imbalance_null(X, Y, perms, 9, ranks=(_rank_matrix(X), _rank_matrix(Y)),
                       neighbours=(knn(X, 9)[1], knn(Y, 9)[1]))
    for key in ("x_to_y", "y_to_x"):
        assert a[key][0] == pytest.approx(b[key][0], abs=1e-15)
        np.testing.assert_allclose(a[key][1], b[key][1], rtol=0, atol=1e-15)


def test_calibrate_pairs_returns_the_graphs_it_built():
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((70, 5)) for _ in range(3)]
    graphs = {}
    out = C.calibrate_pairs(arrays, metrics=("cknna", "mutual_knn"), k=8, n_permutations=10, seed=1, graphs=graphs)
    assert set(out) == {"cknna", "mutual_knn"}
    assert set(graphs) == {(i, 8, "cosine") for i in range(3)}
    for (i, m, metric), g in graphs.items():
        ref = C.cosine_graph(arrays[i], m, metric=metric)
        np.testing.assert_array_equal(g.indices, ref.indices)
        np.testing.assert_allclose(g.values, ref.values, rtol=0, atol=0)
    again = C.calibrate_pairs(arrays, metrics=("cknna", "mutual_knn"), k=8, n_permutations=10, seed=1)
    for mt in out:
        for p in out[mt]:
            assert out[mt][p].as_dict() == again[mt][p].as_dict()


def test_the_k_sweep_at_the_main_k_is_the_main_calibration():
    """The sweep's value at k == k_used is the mean calibrated score of the main calibration (not a second
    calibration of the same k with other permutations)."""
    rng = np.random.default_rng(5)
    n = 120
    ids = [f"s{i:03d}" for i in range(2 * n)]
    shared = rng.standard_normal((n, 4))
    emb = {}
    for m in range(3):
        r = np.random.default_rng(40 + m)
        X = np.vstack([np.tanh(shared @ r.standard_normal((4, 12))), r.standard_normal((n, 12))])
        emb[f"m{m}"] = (ids, X + 0.05 * r.standard_normal(X.shape))
    sec = align(emb, ids[:n], ids[n:], k=25, ks=(5, 10, 25), n_boot=4, repeats=2, n_perm=2, n_calibration=30,
                reconstruction=False)
    sweep = sec["calibration"]["k_sweep"]
    at = sweep["k"].index(sec["parameters"]["k"])
    assert sec["parameters"]["calibration"]["local_verdict_k"] == 10  # k = 25 > n / 10: verdict at k = 10
    for mt in ("cknna", "mutual_knn"):
        means = sec["metrics"][mt]["calibration"]["mean_over_pairs"]
        for key in ("id", "ood"):
            assert sweep[f"calibrated_{mt}"][key][at] == pytest.approx(means[key]["estimate"], abs=1e-12)
    # the local verdict at k = 10 is the sweep's k = 10 calibration
    local = sec["verdicts"]["local"]["calibrated"]
    at10 = sweep["k"].index(10)
    assert local["id"] == pytest.approx(sweep["calibrated_cknna"]["id"][at10], abs=1e-12)
    assert local["ood"] == pytest.approx(sweep["calibrated_cknna"]["ood"][at10], abs=1e-12)
