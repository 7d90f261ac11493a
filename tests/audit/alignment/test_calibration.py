"""Null-calibrated alignment scores (arXiv 2602.14486): the fast nulls against a plain permutation loop
written here from the definitions, the exact permutation moments against enumeration, and the
``calibrated-similarity`` package on the same permutations."""

import itertools
import json
import math
from functools import partial

import numpy as np
import pytest

from monoculture.audit.alignment import calibration as C
from monoculture.audit.alignment import null_moments as NM
from monoculture.audit.alignment.dependence import distance_correlation
from monoculture.audit.alignment.imbalance import information_imbalance
from monoculture.audit.alignment.metrics import cka, cknna, mutual_knn

P = 200


# -- the reference: a plain permutation loop and Algorithm 1, written from the definitions ----------------
def naive_perms(n, n_perm, seed):
    """The documented seeding: rng = default_rng(seed), permutation(n) drawn n_perm times; Y[pi]."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(n_perm)]


def naive_calibration(raw, null, q=0.95, higher=True, best=None):
    """tau = ceil(q (P + 1))-th smallest of null + raw; p = (1 + #null >= raw) / (1 + P);
    calibrated = max(0, (raw - tau) / (best - tau)). For lower-is-better metrics the same on -score."""
    null = [float(v) for v in null]
    if not higher:
        raw, null = -raw, [-v for v in null]
        best = 0.0 if best is None else -best
    else:
        best = 1.0 if best is None else best
    combined = sorted(null + [raw])
    tau = combined[math.ceil(q * (len(null) + 1)) - 1]
    p = (1 + sum(v >= raw for v in null)) / (1 + len(null))
    cal = min(max((raw - tau) / (best - tau), 0.0), 1.0)
    return {"tau": tau if higher else -tau, "p": p, "calibrated": cal,
            "mean": float(np.mean(null)) * (1 if higher else -1)}


def naive_loop(metric_fn, X, Y, n_perm, seed):
    raw = metric_fn(X, Y)
    null = [metric_fn(X, Y[pi]) for pi in naive_perms(X.shape[0], n_perm, seed)]
    return raw, np.array(null)


def pair_seed(i, j, seed=0):
    return np.random.SeedSequence([seed, 7919, i, j])  # calibrate_pairs' documented seeding


def rotation_pair(n=300, d=32, noise=0.01, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) @ np.diag(np.linspace(1.0, 3.0, d))
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return X, X @ Q + noise * rng.standard_normal((n, d))


# -- done when: independent Gaussians and a noisy rotation -------------------------------------------------
def gram_cka_loop(X, Y, perms):
    """Linear CKA of (X, Y[pi]) from the textbook Gram formula <HKH, HLH> / (|HKH| |HLH|), per permutation."""
    def centred_gram(A):
        A = A - A.mean(axis=0)
        return A @ A.T

    K, L = centred_gram(X), centred_gram(Y)
    den = np.linalg.norm(K) * np.linalg.norm(L)
    return np.array([np.sum(K * L[np.ix_(pi, pi)]) / den for pi in perms])


def test_independent_wide_gaussians_high_raw_cka_is_chance():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((100, 2000)), rng.standard_normal((100, 2000))
    res = C.calibrate_pairs([X, Y], metrics=("cka",), n_permutations=P, seed=0)["cka"][(0, 1)]
    raw = cka(X, Y)
    null = gram_cka_loop(X, Y, naive_perms(100, P, pair_seed(0, 1)))
    ref = naive_calibration(raw, null)
    assert raw > 0.9  # the trap: d / n = 20
    assert res.raw == pytest.approx(raw, abs=1e-12)
    np.testing.assert_allclose(res.null, null, atol=1e-12)
    assert res.tau == pytest.approx(ref["tau"], abs=1e-12)
    assert res.p_value == pytest.approx(ref["p"]) and res.p_value > 0.05
    assert res.calibrated == pytest.approx(ref["calibrated"], abs=1e-12) and res.calibrated < 0.05
    # the exact permutation mean tr(K) tr(L) / ((n - 1) sqrt(tr K^2 tr L^2)) is within 3 s.e. of the loop's
    assert abs(res.null_mean - null.mean()) < 3 * null.std() / math.sqrt(P)


def test_noisy_rotation_calibrates_near_one_with_smallest_p():
    X, Y = rotation_pair()
    out = C.calibrate_pairs([X, Y], metrics=("cka", "cknna"), k=10, n_permutations=P, seed=0)
    for name, fn in (("cka", cka), ("cknna", partial(cknna, k=10))):
        res = out[name][(0, 1)]
        raw, null = naive_loop(fn, X, Y, P, pair_seed(0, 1))
        ref = naive_calibration(raw, null)
        assert res.raw == pytest.approx(raw, abs=1e-10)
        np.testing.assert_allclose(res.null, null, atol=1e-10)
        assert res.p_value == 1 / (P + 1) == ref["p"]
        assert res.calibrated == pytest.approx(ref["calibrated"], abs=1e-10)
        assert res.calibrated > 0.8, name


# -- the fast nulls reproduce the permutation loop -----------------------------------------------------
@pytest.mark.parametrize("variant", [{"unbiased": True, "self_pairs": False, "eps": 1e-6},
                                     {"unbiased": False, "self_pairs": True, "eps": 1e-6},
                                     {"unbiased": False, "self_pairs": False, "eps": 0.0}])
def test_cknna_graph_null_equals_loop(related_pair, variant):
    X, Y = related_pair
    k = 10
    m = k - 1 if variant["self_pairs"] else k
    perms = C.permutations(X.shape[0], 30, 5)
    res = C.graph_nulls(C.cosine_graph(X, m), C.cosine_graph(Y, m), perms, **variant)
    fn = partial(cknna, k=k, **variant)
    raw, null = naive_loop(fn, X, Y, 30, 5)
    assert res["cknna"][0] == pytest.approx(raw, abs=1e-12)
    np.testing.assert_allclose(res["cknna"][1], null, atol=1e-12)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_mutual_knn_graph_null_equals_loop(related_pair, metric):
    X, Y = related_pair
    perms = C.permutations(X.shape[0], 30, 6)
    res = C.graph_nulls(C.cosine_graph(X, 7, metric=metric), C.cosine_graph(Y, 7, metric=metric), perms,
                        cknna=False)
    raw, null = naive_loop(partial(mutual_knn, k=7, metric=metric), X, Y, 30, 6)
    assert res["mutual_knn"][0] == pytest.approx(raw, abs=1e-15)
    np.testing.assert_allclose(res["mutual_knn"][1], null, atol=1e-15)


def test_graph_nulls_float32_search_path_agree_with_loop():
    # from 1,500 rows the k-NN search runs in float32 (kernel values to ~1e-7 relative)
    rng = np.random.default_rng(2)
    n = 1600
    Z = rng.standard_normal((n, 6))
    X = np.hstack([Z, rng.standard_normal((n, 20))])
    Y = np.hstack([Z + 0.3 * rng.standard_normal((n, 6)), rng.standard_normal((n, 10))])
    perms = C.permutations(n, 4, 1)
    res = C.graph_nulls(C.cosine_graph(X, 25), C.cosine_graph(Y, 25), perms)
    raw, null = naive_loop(partial(cknna, k=25), X, Y, 4, 1)
    assert res["cknna"][0] == pytest.approx(raw, rel=1e-6)
    np.testing.assert_allclose(res["cknna"][1], null, rtol=1e-5, atol=1e-9)
    raw, null = naive_loop(partial(mutual_knn, k=25), X, Y, 4, 1)
    np.testing.assert_allclose(res["mutual_knn"][1], null, atol=1e-15)  # same sets: equal counts


def test_mutual_knn_null_mean_is_k_over_n_minus_1(related_pair):
    # a random relabelling shares k * k / (n - 1) of row i's k neighbours on average: null mean k / (n - 1)
    X, Y = related_pair
    n, k = X.shape[0], 10
    res = C.calibrate_pairs([X, Y], metrics=("mutual_knn",), k=k, n_permutations=400)["mutual_knn"][(0, 1)]
    se = res.null.std() / math.sqrt(400)
    assert abs(res.null_mean - k / (n - 1)) < 4 * se


def test_cka_and_dcor_exact_permutation_paths_equal_loop(related_pair):
    X, Y = related_pair
    perms = C.permutations(X.shape[0], 25, 9)
    raw, null, _, _ = C.cka_null(X, Y, perms, method="permutation")
    r0, n0 = naive_loop(cka, X, Y, 25, 9)
    assert raw == pytest.approx(r0, abs=1e-12)
    np.testing.assert_allclose(null, n0, atol=1e-12)
    raw, null, _, _ = C.dcor_null(X, Y, perms, method="permutation")
    r0, n0 = naive_loop(distance_correlation, X, Y, 25, 9)
    assert raw == pytest.approx(r0, abs=1e-12)
    np.testing.assert_allclose(null, n0, atol=1e-12)


def test_information_imbalance_null_equals_loop_both_directions(related_pair):
    X, Y = related_pair
    perms = C.permutations(X.shape[0], 20, 4)
    res = C.imbalance_null(X, Y, perms, k=3)
    full = information_imbalance(X, Y, k=3)
    assert res["x_to_y"][0] == pytest.approx(full.x_to_y, abs=1e-12)
    assert res["y_to_x"][0] == pytest.approx(full.y_to_x, abs=1e-12)
    loop = [information_imbalance(X, Y[pi], k=3) for pi in naive_perms(X.shape[0], 20, 4)]
    np.testing.assert_allclose(res["x_to_y"][1], [r.x_to_y for r in loop], atol=1e-12)
    np.testing.assert_allclose(res["y_to_x"][1], [r.y_to_x for r in loop], atol=1e-12)


def test_information_imbalance_ranks_with_exact_duplicates():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((60, 3))
    X[10] = X[3]
    X[20] = X[3]
    Y = X @ rng.standard_normal((3, 4)) + 0.1 * rng.standard_normal((60, 4))
    res = C.imbalance_null(X, Y, C.permutations(60, 3, 0), k=2)
    full = information_imbalance(X, Y, k=2)
    assert res["x_to_y"][0] == pytest.approx(full.x_to_y, abs=1e-12)
    assert res["y_to_x"][0] == pytest.approx(full.y_to_x, abs=1e-12)


def test_information_imbalance_calibrated_in_its_own_direction(related_pair):
    X, Y = related_pair
    rng = np.random.default_rng(1)
    out = C.calibrate_pairs([X, Y, rng.standard_normal((300, 5))], metrics=("information_imbalance",),
                            ii_k=5, n_permutations=100, seed=2)["information_imbalance"]
    assert set(out) == {(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)}
    aligned, unrelated = out[(0, 1)], out[(0, 2)]
    assert aligned.p_value == 1 / 101 and aligned.calibrated > 0.3
    assert unrelated.p_value > 0.05 and unrelated.calibrated == 0.0
    assert aligned.null_mean == pytest.approx(1.0, abs=0.02)  # random ranks average n / 2
    ref = naive_calibration(aligned.raw, aligned.null, higher=False)
    assert aligned.tau == pytest.approx(ref["tau"]) and aligned.calibrated == pytest.approx(ref["calibrated"])


# -- exact permutation moments ------------------------------------------------------------------------
def test_permutation_moments_equal_enumeration():
    rng = np.random.default_rng(1)
    n = 7
    X = rng.standard_normal((n, 3)) ** 3
    Y = rng.standard_exponential((n, 4))
    perms = np.array(list(itertools.permutations(range(n))))  # all 5,040
    a, b = NM._gram_stats(X, third=True), NM._gram_stats(Y, third=True)
    da, db = NM._exact_distance_stats(X), NM._exact_distance_stats(Y)
    for s, M in ((da.stats, da.A), (db.stats, db.A)):
        d = np.diag(M)
        s.update(T3=float(np.trace(M @ M @ M)), S3=float((d**3).sum()), U=float((M**3).sum()),
                 R=float(d @ np.diag(M @ M)), B=float(d @ M @ d))
    for (sa, A), (sb, B) in (((a.stats, a.gram), (b.stats, b.gram)), ((da.stats, da.A), (db.stats, db.A))):
        T = np.einsum("ij,pij->p", A, B[perms[:, :, None], perms[:, None, :]])
        mu, var, skew = C.permutation_moments(sa, sb, n)
        assert mu == pytest.approx(T.mean(), rel=1e-12)
        assert var == pytest.approx(T.var(), rel=1e-10)
        assert skew == pytest.approx(((T - T.mean()) ** 3).mean() / T.std() ** 3, rel=1e-8)


def test_gram_statistics_feature_and_gram_forms_agree():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((50, 8))
    wide = rng.standard_normal((50, 80))
    for A in (X, wide):
        s = NM._gram_stats(A, third=True).stats
        Xc = A - A.mean(axis=0)
        K = Xc @ Xc.T
        d = np.diag(K)
        ref = {"T": np.trace(K), "T2": (K * K).sum(), "S2": (d**2).sum(), "T3": np.trace(K @ K @ K),
               "S3": (d**3).sum(), "U": (K**3).sum(), "R": d @ np.diag(K @ K), "B": d @ K @ d}
        for key, v in ref.items():
            assert s[key] == pytest.approx(v, rel=1e-9), key
    # without the n x n Gram matrix (large n) sum K_ij^3 comes from float32 blocks
    lean, full = NM._gram_stats(X, third=True, keep_gram=False), NM._gram_stats(X, third=True, keep_gram=True)
    assert lean.gram is None and full.gram is not None
    for key in full.stats:
        assert lean.stats[key] == pytest.approx(full.stats[key], rel=1e-5), key


@pytest.mark.parametrize("metric", ["cka", "dcor"])
def test_moment_nulls_match_permutation_within_monte_carlo_error(metric):
    # a moment-based null against 400 permutations: the null mean within 4 s.e. and tau within 4 times
    # its bootstrap s.e. (the Monte Carlo error of a 400-permutation null's 95% quantile)
    rng = np.random.default_rng(11)
    n = 400
    Z = rng.standard_normal((n, 4))
    X = np.tanh(np.hstack([Z, rng.standard_normal((n, 12))]) @ rng.standard_normal((16, 40)))
    Y = np.hstack([Z + rng.standard_normal((n, 4)), rng.standard_normal((n, 20))]) @ rng.standard_normal((24, 30))
    perms = C.permutations(n, 400, 0)
    f = C.cka_null if metric == "cka" else C.dcor_null
    raw, exact, _, _ = f(X, Y, perms, method="permutation")
    raw_m, approx, mean_m, how = f(X, Y, perms, method="moments")
    assert "moments" in how and raw_m == pytest.approx(raw, abs=1e-10)
    assert abs(mean_m - exact.mean()) < 4 * exact.std() / math.sqrt(400)
    tau_exact = np.sort(np.append(exact, raw))[math.ceil(0.95 * 401) - 1]
    tau_approx = np.sort(np.append(approx, raw))[math.ceil(0.95 * 401) - 1]
    boot = [np.quantile(rng.choice(exact, 400), 0.95) for _ in range(300)]
    assert abs(tau_approx - tau_exact) < 4 * np.std(boot)


def test_distance_sweep_equals_distance_correlation():
    rng = np.random.default_rng(5)
    for n, tol in ((300, 1e-10), (1600, 1e-6)):  # float64 below 1,500 rows, float32 GEMMs above
        A = rng.standard_normal((n, 6))
        arrays = [A @ rng.standard_normal((6, 20)), A[:, :3] ** 2 + rng.standard_normal((n, 3)),
                  rng.standard_normal((n, 5))]
        d2, stats = C.distance_sweep(arrays)
        for i, j in itertools.combinations(range(3), 2):
            assert math.sqrt(d2[i, j]) == pytest.approx(distance_correlation(arrays[i], arrays[j]), abs=tol)
        if n < 1500:
            for s, A_ in zip(stats, arrays):
                ref = NM._exact_distance_stats(A_).stats
                for key in ("T", "T2", "S2"):
                    assert s.stats[key] == pytest.approx(ref[key], rel=1e-9)


# -- Algorithm 1 against the calibrated-similarity package ---------------------------------------------
def test_calibrate_scores_matches_calibrated_similarity_package(related_pair):
    torch = pytest.importorskip("torch")
    cs = pytest.importorskip("calibrated_similarity")
    X, Y = related_pair
    X, Y = X[:120], Y[:120] + 2.0 * np.random.default_rng(0).standard_normal((120, 12))  # a weak relation
    perms = C.permutations(120, 99, 3)
    it = iter(perms)
    ours = C.calibrate(cka, X, Y, 99, 3)

    def sim(a, b):
        return cka(a.numpy().astype(np.float64), b.numpy().astype(np.float64))

    score, p, tau = cs.calibrate(torch.from_numpy(X), torch.from_numpy(Y), sim, K=99, alpha=0.05,
                                 perm_fn=lambda n, device: torch.from_numpy(next(it)))
    # same permutations; the package computes in float32
    assert ours.tau == pytest.approx(float(tau), abs=1e-6)
    assert ours.p_value == pytest.approx(float(p), abs=1e-6)
    assert ours.calibrated == pytest.approx(float(score), abs=1e-5)
    assert 0.0 < ours.calibrated < 1.0


def test_calibrate_scores_edge_cases():
    null = np.linspace(0.0, 0.1, 200)
    res = C.calibrate_scores(0.05, null)
    assert res.calibrated == 0.0 and res.p_value == pytest.approx((1 + 100) / 201)
    assert C.calibrate_scores(1.0, null).calibrated == 1.0
    assert math.isnan(C.calibrate_scores(float("nan"), null).p_value)
    with pytest.raises(ValueError, match="quantile"):
        C.calibrate_scores(0.1, null, quantile=1.0)


def test_information_imbalance_subsample_keeps_k_over_n():
    rng = np.random.default_rng(6)
    n, m, k = 900, 450, 10
    Z = rng.standard_normal((n, 4))
    X, Y = Z @ rng.standard_normal((4, 12)), Z @ rng.standard_normal((4, 9)) + 0.3 * rng.standard_normal((n, 9))
    res = C.calibrate_pairs([X, Y], metrics=("information_imbalance",), ii_k=k, ii_subsample=m,
                            n_permutations=20, seed=3)["information_imbalance"]
    rows = np.sort(np.random.default_rng(np.random.SeedSequence([3, 104729])).choice(n, m, replace=False))
    ref = information_imbalance(X[rows], Y[rows], k=k * m // n)  # k / n kept: 5 of 450 as 10 of 900
    assert res[(0, 1)].n_rows == m and "subsample of 450 of 900 rows with k = 5" in res[(0, 1)].method
    assert res[(0, 1)].raw == pytest.approx(ref.x_to_y, abs=1e-12)
    assert res[(1, 0)].raw == pytest.approx(ref.y_to_x, abs=1e-12)


# -- helpers for the audit document -------------------------------------------------------------------
def test_k_over_n_warning_names_k_over_n_only_above_a_tenth():
    assert C.k_over_n_warning(["CKNNA"], 10, {"id": 150, "ood": 162}) is None
    w = C.k_over_n_warning(["CKNNA", "mutual k-NN"], 25, {"id": 150, "ood": 162})
    assert "k/n" in w and "25/150 = 0.17" in w and "25/162 = 0.15" in w


def test_calibration_matrices_and_replicates(related_pair):
    X, Y = related_pair
    out = C.calibrate_pairs([X, Y, X[::-1]], metrics=("cka", "information_imbalance"), ii_k=3, n_permutations=50)
    m = C.calibration_matrices(out["cka"], 3)
    assert m["calibrated"][0][1] == m["calibrated"][1][0] == out["cka"][(0, 1)].calibrated
    assert m["p_value"][0][0] is None
    d = C.calibration_matrices(out["information_imbalance"], 3, directed=True)
    assert d["raw"][0][1] == out["information_imbalance"][(0, 1)].raw != d["raw"][1][0]
    c = out["cka"][(0, 1)]
    np.testing.assert_allclose(C.calibrated_replicates([c.raw], c), [c.calibrated])
    ii = out["information_imbalance"][(0, 1)]
    np.testing.assert_allclose(C.calibrated_replicates([ii.raw, 2.0], ii), [ii.calibrated, 0.0])


def test_settle_verdict():
    up, down, none = "higher in distribution", "higher out of distribution", "no detectable difference"
    assert C.settle_verdict(up, up, [0.1, 0.05]) == (up, [])
    word, why = C.settle_verdict(up, none)
    assert word == "not established" and "calibrated" in why[0]
    word, why = C.settle_verdict(down, down, [-0.1, 0.02])
    assert word == "not established" and "k-sweep" in why[0]
    assert C.settle_verdict(none, none, [-0.1, 0.02]) == (none, [])


# -- align: calibration in the audit document ----------------------------------------------------------
def _two_set_zoo(n=150, seed=0):
    """Three models: ID rows embed one shared 6-d latent (related models), OOD rows independent latents."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i:04d}" for i in range(2 * n)]
    shared = rng.standard_normal((n, 6))
    emb = {}
    for m in range(3):
        r = np.random.default_rng(seed + 10 + m)
        X = np.vstack([np.tanh(shared @ r.standard_normal((6, 20))), r.standard_normal((n, 20))])
        emb[f"m{m}"] = (ids, X + 0.05 * r.standard_normal(X.shape))
    return ids, emb


@pytest.fixture(scope="module")
def zoo_sections():
    from monoculture.audit.alignment.analysis import align

    ids, emb = _two_set_zoo()
    fast = dict(n_boot=20, repeats=3, n_perm=9, reconstruction=False, n_calibration=99)
    return {k: align(emb, ids[:150], ids[150:], k=k, **fast) for k in (25, 10)}


def test_align_json_holds_calibration_matrices_k_over_n_and_warnings(zoo_sections):
    sec = zoo_sections[25]
    json.dumps(sec, allow_nan=False)
    for mt in ("cknna", "mutual_knn", "cka", "dcor", "information_imbalance"):
        cal = sec["metrics"][mt]["calibration"]
        assert cal["n_permutations"] == 99 and cal["quantile"] == 0.95
        for key in ("id", "ood"):
            raw = np.array(sec["metrics"][mt][key], dtype=float)
            for field_ in ("null_mean", "tau", "p_value", "calibrated"):
                assert np.array(cal[key][field_], dtype=float).shape == raw.shape
            assert cal[key]["p_value"][0][1] >= 1 / 100
    n = sec["parameters"]["n"]
    for mt in ("cknna", "mutual_knn", "information_imbalance"):
        k = sec["metrics"][mt]["k"]
        assert sec["metrics"][mt]["k_over_n"] == pytest.approx({key: k / n[key] for key in n})
    assert any("k/n" in w and "CKNNA" in w for w in sec["warnings"])  # 25 of ~150 rows
    assert not any("CKNNA" in w for w in zoo_sections[10]["warnings"])  # 10 of ~150 rows: local
    assert any("information imbalance" in w for w in zoo_sections[10]["warnings"])  # ii_k = 50


def test_align_verdicts_on_calibrated_scores_with_raw_beside(zoo_sections):
    sec = zoo_sections[25]
    local = sec["verdicts"]["local"]
    assert local["raw"]["statistic"].startswith("mean over model pairs of CKNNA (k = 25)")
    assert local["calibrated"]["k"] == sec["parameters"]["calibration"]["local_verdict_k"] == 10  # k/n <= 0.1
    assert local["calibrated"]["k_sweep"]["k"] == [5, 10]
    # related models in ID, unrelated OOD: local and global alignment higher in distribution, established
    for scope in ("local", "global"):
        v = sec["verdicts"][scope]
        assert v["verdict"] == v["raw"]["verdict"] == "higher in distribution"
        assert v["calibrated"]["ood"] == pytest.approx(0.0, abs=0.05)  # unrelated OOD models: chance
        assert v["interval"][0] > 0 and "calibrated" in v["statistic"]
    assert "shuffled" in sec["calibration"]["explanation"]
    assert "family_tree_calibrated" in sec


def test_report_shows_calibration_note_and_warnings(zoo_sections, tmp_path):
    from monoculture.reports import write_report

    doc = {"schema_version": "1", "monoculture_version": "0.1.0", "run": {}, "datasets": [],
           "alignment": zoo_sections[25]}
    paths = write_report(doc, tmp_path / "r")
    html = open(paths["html"], encoding="utf-8").read()
    assert "Calibration." in html and "k/n is above 0.1" in html


@pytest.mark.slow
@pytest.mark.models
def test_bundled_models_crystals_vs_molecules_calibrated_verdicts(tmp_path):
    """The bundled models on the bundled crystals (ID) and ASE's g2 molecules (OOD), as the demo embeds them:
    calibrated CKA higher out of distribution, calibrated CKNNA at k/n <= 0.07 lower, and at k = 25 on ~150
    structures per set the warnings name k/n."""
    pytest.importorskip("chgnet")
    from monoculture.audit.alignment.runner import run_alignment
    from monoculture.datasets.samples import sample_dir
    from monoculture.demo import CRYSTAL_SAMPLES, _embed_all, _models_available, write_g2_molecules

    models = _models_available()
    assert len(models) >= 2
    crystals = [sample_dir() / name for name in CRYSTAL_SAMPLES]
    molecules = write_g2_molecules(tmp_path / "g2.extxyz")
    files = _embed_all(crystals + [molecules], tmp_path / "emb", models, lambda msg: None)
    files.pop("composition")
    fast = dict(n_boot=30, repeats=3, n_perm=9, reconstruction=False)
    sec25 = run_alignment(files, id_set=crystals, ood_set=[molecules], k=25, **fast)
    assert any("k/n" in w for w in sec25["warnings"])
    sec10 = run_alignment(files, id_set=crystals, ood_set=[molecules], k=10, **fast)
    assert max(sec10["metrics"]["cknna"]["k_over_n"].values()) <= 0.07
    cka_ = sec10["metrics"]["cka"]["calibration"]["mean_over_pairs"]
    cknna_ = sec10["metrics"]["cknna"]["calibration"]["mean_over_pairs"]
    assert cka_["ood"]["estimate"] > cka_["id"]["estimate"]
    assert cknna_["ood"]["estimate"] < cknna_["id"]["estimate"]


def test_variants_without_fast_null_use_a_plain_permutation_loop():
    """Unbiased CKA and the unbiased squared dCor fall back to a plain loop over the same permutations."""
    from monoculture.audit.alignment import calibration as cal
    from monoculture.audit.alignment.dependence import distance_correlation
    from monoculture.audit.alignment.metrics import cka

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 5))
    Y = X @ rng.normal(size=(5, 5)) + rng.normal(size=(40, 5))
    opts = {"cka": {"unbiased": True}, "dcor": {"estimator": "unbiased", "squared": True}}
    out = cal.calibrate_pairs([X, Y], metrics=("cka", "dcor"), n_permutations=30, seed=5, options=opts)
    perms = cal.permutations(40, 30, cal._pair_seed(5, 0, 1))
    for name, fn in (("cka", lambda a, b: cka(a, b, unbiased=True)),
                     ("dcor", lambda a, b: distance_correlation(a, b, estimator="unbiased", squared=True))):
        got = out[name][(0, 1)]
        null = np.array([fn(X, Y[p]) for p in perms])
        assert got.method == "permutation (plain loop)"
        assert got.raw == pytest.approx(fn(X, Y), abs=1e-12)
        assert got.null_mean == pytest.approx(null.mean(), abs=1e-12)
        assert got.p_value == pytest.approx((1 + (null >= got.raw).sum()) / 31)


def test_permutation_nulls_search_each_model_once(monkeypatch):
    """A permutation only relabels a k-NN graph: one search per model serves every pair and permutation,
    and CKNNA and mutual k-NN (same cosine k-NN sets by default) share it; the same for the imbalance."""
    from monoculture.audit.alignment import null_neighbours as NN

    searches, ranks, knns = [], [], []
    search, ranks_, knn_ = NN.neighbour_search, C._ranks_and_neighbours, NN.knn
    monkeypatch.setattr(NN, "neighbour_search", lambda X, k, **kw: searches.append(k) or search(X, k, **kw))
    monkeypatch.setattr(C, "_ranks_and_neighbours", lambda X, k: ranks.append(k) or ranks_(X, k))
    monkeypatch.setattr(NN, "knn", lambda X, k, **kw: knns.append(k) or knn_(X, k, **kw))
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(120, 3))
    arrays = [Z @ rng.normal(size=(3, 6)) + 0.3 * rng.normal(size=(120, 6)) for _ in range(3)]
    out = C.calibrate_pairs(arrays, metrics=("cknna", "mutual_knn", "information_imbalance"), k=10, ii_k=5,
                            n_permutations=40, seed=1)
    assert searches == [10, 10, 10]  # 3 models, not 3 pairs x 2 metrics x 41 evaluations
    assert len(ranks) == 3 and knns == []  # one sort per model gives its ranks and its k-NN sets
    assert len(out["cknna"]) == 3 and len(out["information_imbalance"]) == 6
