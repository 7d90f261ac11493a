import dcor
import numpy as np
import pytest

from monoculture.audit.alignment import distance_correlation


def test_blocked_matches_dcor(related_pair):
    X, Y = related_pair[0][:150], related_pair[1][:150]
    assert distance_correlation(X, Y, block_size=40) == pytest.approx(
        dcor.distance_correlation(X, Y), abs=1e-10
    )
    assert distance_correlation(X, Y, estimator="unbiased", squared=True, block_size=40) == pytest.approx(
        dcor.u_distance_correlation_sqr(X, Y), abs=1e-10
    )
    assert distance_correlation(X, Y, backend="dcor") == pytest.approx(distance_correlation(X, Y), abs=1e-10)


def test_hand_value_two_points_each_side():
    # 1-d, x = (0, 1, 2), y = (0, 1, 2)**2 = (0, 1, 4); a = |i-j|, b = |y_i - y_j|
    x = np.array([[0.0], [1.0], [2.0]])
    y = x**2
    a = np.abs(x - x.T)
    b = np.abs(y - y.T)
    H = np.eye(3) - 1 / 3
    A, B = H @ a @ H, H @ b @ H
    expected = np.sqrt((A * B).sum() / np.sqrt((A * A).sum() * (B * B).sum()))
    assert distance_correlation(x, y) == pytest.approx(expected, rel=1e-12)
    assert distance_correlation(x, y, squared=True) == pytest.approx(expected**2, rel=1e-12)


def test_independent_near_zero_and_unbiased_requires_squared():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((400, 3)), rng.standard_normal((400, 3))
    assert distance_correlation(X, Y, estimator="unbiased", squared=True) == pytest.approx(0.0, abs=0.01)
    with pytest.raises(ValueError, match="squared=True"):
        distance_correlation(X, Y, estimator="unbiased")


def test_subsample_is_seeded():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((500, 3))
    Y = X + rng.standard_normal((500, 3))
    a = distance_correlation(X, Y, subsample=100, seed=4)
    assert a == distance_correlation(X, Y, subsample=100, seed=4)
    rows = np.sort(np.random.default_rng(4).choice(500, 100, replace=False))
    assert a == pytest.approx(distance_correlation(X[rows], Y[rows]), abs=1e-14)
