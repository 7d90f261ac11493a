from functools import partial

import numpy as np
import pytest

from monoculture.audit.alignment import (
    bootstrap_ci,
    bootstrap_diff_ci,
    cknna,
    equal_size_comparison,
    k_sweep,
    mutual_knn,
    permutation_test,
    spearman_with_ci,
)


def pearson_first(X, Y):
    return float(np.corrcoef(X[:, 0], Y[:, 0])[0, 1])


def correlated(n, rho, rng):
    x = rng.standard_normal(n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    return x[:, None], y[:, None]


@pytest.mark.parametrize("scheme", ["subsample", "bootstrap"])
def test_interval_coverage_near_nominal(scheme):
    rng = np.random.default_rng(0)
    trials, hits = 150, 0
    for t in range(trials):
        X, Y = correlated(200, 0.5, rng)
        res = bootstrap_ci(pearson_first, X, Y, n_boot=200, seed=t, scheme=scheme)
        hits += res.low <= 0.5 <= res.high
    # nominal 0.95; binomial sd over 150 trials is 0.018
    assert 0.89 <= hits / trials <= 0.99


def test_bootstrap_ci_fields_and_determinism():
    rng = np.random.default_rng(1)
    X, Y = correlated(100, 0.3, rng)
    a = bootstrap_ci(pearson_first, X, Y, n_boot=50, seed=3)
    b = bootstrap_ci(pearson_first, X, Y, n_boot=50, seed=3)
    assert a.estimate == pearson_first(X, Y)
    assert (a.low, a.high) == (b.low, b.high)
    assert a.m == 50 and a.replicates.shape == (50,) and a.low < a.estimate < a.high


def test_diff_ci_covers_true_difference():
    rng = np.random.default_rng(2)
    hits = 0
    for t in range(60):
        ida = correlated(200, 0.6, rng)
        ood = correlated(200, 0.2, rng)
        res = bootstrap_diff_ci(pearson_first, ida, ood, n_boot=100, seed=t)
        assert res.estimate == pytest.approx(pearson_first(*ida) - pearson_first(*ood))
        hits += res.low <= 0.4 <= res.high
    assert hits >= 52  # nominal 57 of 60


def test_equal_size_removes_pure_size_effect():
    # same distribution, independent X and Y: mutual k-NN is about k / (n - 1), so a bigger set scores lower
    rng = np.random.default_rng(3)
    big = (rng.standard_normal((1600, 3)), rng.standard_normal((1600, 3)))
    small = (rng.standard_normal((400, 3)), rng.standard_normal((400, 3)))
    f = partial(mutual_knn, k=10, metric="euclidean")
    raw = f(*small) - f(*big)
    assert raw > 0.012  # about 10/399 - 10/1599 = 0.019
    cmp = equal_size_comparison(f, big, small, size=400, repeats=10, seed=0)
    assert abs(cmp.diff_mean) < 3 * cmp.diff_std / np.sqrt(10) + 1e-3
    assert abs(cmp.diff_mean) < raw / 4
    assert cmp.id_values.shape == (10,) and cmp.size == 400


def test_permutation_test_detects_and_does_not_invent():
    rng = np.random.default_rng(4)
    strong = correlated(150, 0.9, rng)
    weak = correlated(150, 0.0, rng)
    res = permutation_test(pearson_first, strong, weak, n_perm=99, seed=0)
    assert res.statistic > 0.7 and res.p_value == pytest.approx(1 / 100)
    same = permutation_test(pearson_first, correlated(150, 0.5, rng), correlated(150, 0.5, rng), n_perm=99, seed=0)
    assert same.p_value > 0.05
    assert permutation_test(pearson_first, strong, weak, n_perm=19, size=50, seed=0).null.shape == (19,)


def test_k_sweep_caps_below_n():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((30, 4))
    Y = X + 0.5 * rng.standard_normal((30, 4))
    table = k_sweep(X, Y)
    assert list(table["k"]) == [5, 10, 25, 29]
    assert list(table["k_requested"]) == [5, 10, 25, 50]
    assert table["value"].iloc[2] == pytest.approx(cknna(X, Y, k=25))
    t2 = k_sweep(X, Y, ks=(3,), metric=mutual_knn)
    assert t2["value"].iloc[0] == pytest.approx(mutual_knn(X, Y, k=3))


def test_spearman_perfect_monotone_exact_p():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    res = spearman_with_ci(x, x**3, n_boot=200, seed=0)
    assert res.rho == pytest.approx(1.0)
    assert res.low == pytest.approx(1.0) and res.high == pytest.approx(1.0)
    # exact over 6! = 720 pairings: only rho = +1 and rho = -1 are as extreme
    assert res.p_value == pytest.approx(2 / 720)


def test_spearman_unrelated():
    rng = np.random.default_rng(6)
    res = spearman_with_ci(rng.standard_normal(40), rng.standard_normal(40), n_boot=300, n_perm=999, seed=1)
    assert res.low < res.rho < res.high
    assert res.low < 0 < res.high
    assert res.p_value > 0.05
