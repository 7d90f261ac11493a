import numpy as np
import pytest
import skdim

from monoculture.audit.alignment import id_vs_scale, mle_id, twonn

from alignment_testdata import gaussian_on_subspace


def test_twonn_matches_scikit_dimension():
    X = gaussian_on_subspace(1500, 7, 30, seed=0)
    assert twonn(X).dimension == pytest.approx(skdim.id.TwoNN().fit(X).dimension_, rel=1e-9)
    assert twonn(X, 0.2).dimension == pytest.approx(
        skdim.id.TwoNN(discard_fraction=0.2).fit(X).dimension_, rel=1e-9
    )


def test_twonn_and_mle_recover_known_dimension():
    X = gaussian_on_subspace(3000, 5, 50, seed=1)
    res = twonn(X)
    assert res.dimension == pytest.approx(5.0, rel=0.1)
    assert (res.n_points, res.n_duplicates, res.n_used) == (3000, 0, 2700)
    assert mle_id(X, k=20).dimension == pytest.approx(5.0, rel=0.1)


def test_mle_matches_scikit_dimension_harmonic_mean():
    X = gaussian_on_subspace(800, 4, 10, seed=2)
    assert mle_id(X, k=15).dimension == pytest.approx(
        skdim.id.MLE().fit(X, n_neighbors=15, comb="mle").dimension_, rel=1e-9
    )


def test_mle_hand_value_k2():
    X = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    # log(T2/T1) per point: log 3, log 2, log 1.5, log(4/3), log(7/4)
    inv = np.mean(np.log([3.0, 2.0, 1.5, 4 / 3, 7 / 4]))
    assert mle_id(X, k=2).dimension == pytest.approx(1 / inv)


def test_twonn_hand_value():
    X = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    # mu = r2/r1 = 3, 2, 1.5, 4/3, 7/4; discard 0.2 keeps 4 smallest, F = i/5
    mu = np.sort([3.0, 2.0, 1.5, 4 / 3, 7 / 4])[:4]
    x, y = np.log(mu), -np.log(1 - np.arange(1, 5) / 5)
    assert twonn(X, 0.2).dimension == pytest.approx(x @ y / (x @ x))


def test_exact_duplicates_are_removed_and_counted():
    X = gaussian_on_subspace(1000, 3, 6, seed=3)
    Xd = np.vstack([X, X[:50]])
    res = twonn(Xd)
    assert res.n_duplicates == 50
    assert res.dimension == pytest.approx(twonn(X).dimension, rel=1e-12)
    assert mle_id(Xd, k=10).n_duplicates == 50


def test_id_vs_scale_table():
    X = gaussian_on_subspace(1024, 4, 12, seed=4)
    table = id_vs_scale(X, n_min=64)
    assert list(table["n_points"]) == [1024, 512, 256, 128, 64]
    assert list(table["n_subsets"]) == [1, 2, 4, 8, 16]
    assert table["nn_distance"].is_monotonic_increasing
    assert table["id"].iloc[0] == pytest.approx(twonn(X).dimension)
    assert np.all(np.abs(table["id"] - 4.0) < 1.0)
