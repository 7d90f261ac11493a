import numpy as np
import pytest

from monoculture.audit.alignment import information_imbalance


def test_hand_value_four_points():
    X = np.array([[0.0], [1.0], [3.0], [7.0]])
    Y = np.array([[0.0], [2.0], [3.0], [10.0]])
    # nn_X = (1, 0, 1, 2); their ranks in Y: 1, 2, 1, 1 -> mean 1.25 -> 2/4 * 1.25
    # nn_Y = (1, 2, 1, 2); their ranks in X: 1, 2, 1, 1
    res = information_imbalance(X, Y)
    assert res.x_to_y == pytest.approx(0.625)
    assert res.y_to_x == pytest.approx(0.625)


def test_ties_get_mid_rank():
    X = np.array([[0.0], [1.0], [3.0], [7.0]])
    Y = np.array([[0.0], [1.0], [2.0], [10.0]])
    # i=1: nn_X is 0; in Y points 0 and 2 are both at distance 1 from point 1 -> rank 1.5
    assert information_imbalance(X, Y).x_to_y == pytest.approx(2 / 4 * (1 + 1.5 + 1 + 1) / 4)


@pytest.mark.parametrize("k", [1, 3, 20])
def test_identical_spaces_give_k_plus_one_over_n(k):
    X = np.random.default_rng(0).standard_normal((200, 5))
    res = information_imbalance(X, X.copy(), k=k)
    assert res.x_to_y == pytest.approx((k + 1) / 200)
    assert res.y_to_x == pytest.approx((k + 1) / 200)


def test_independent_spaces_near_one_and_subspace_asymmetry():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((1000, 4))
    res = information_imbalance(X, rng.standard_normal((1000, 4)))
    assert res.x_to_y == pytest.approx(1.0, abs=0.08)
    assert res.y_to_x == pytest.approx(1.0, abs=0.08)
    # the full space predicts a sub-space better than the other way round
    sub = information_imbalance(X, X[:, :2], k=1)
    assert sub.x_to_y < 0.1 < sub.y_to_x


def test_sort_path_agrees_with_compare_path():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 3))
    Y = X + 0.5 * rng.standard_normal((300, 3))
    # k = 1, 8 and 9 through the window counts of the blocked sweep, against ranks from dense distances
    from monoculture.audit.alignment.imbalance import _mean_rank

    r8 = _mean_rank(X, Y, 8, "numpy", 64)
    r9 = _mean_rank(X, Y, 9, "numpy", 64)
    r1 = _mean_rank(X, Y, 1, "numpy", 64)
    assert r8 < r9  # the 9th neighbour ranks worse on average
    from monoculture.audit.alignment import knn

    _, nn = knn(X, 9)
    D = np.sqrt(((Y[:, None] - Y[None]) ** 2).sum(-1))
    np.fill_diagonal(D, np.inf)
    ranks = np.array([[1 + (D[i] < D[i, j]).sum() for j in nn[i]] for i in range(300)])
    assert r9 == pytest.approx(ranks.mean())
    assert r8 == pytest.approx(ranks[:, :8].mean())
    assert r1 == pytest.approx(ranks[:, 0].mean())
