import numpy as np
import pytest

from monoculture.audit.alignment import knn


def brute(X, k):
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(D, np.inf)
    idx = np.array([np.lexsort((np.arange(len(X)), row))[:k] for row in D])
    return np.take_along_axis(D, idx, axis=1), idx


def test_line_hand_values_and_tie_to_lower_index():
    X = np.array([[0.0], [1.0], [2.0], [4.0]])
    d, i = knn(X, 2)
    # point 1 is equidistant (1.0) from points 0 and 2: the lower index comes first
    np.testing.assert_array_equal(i, [[1, 2], [0, 2], [1, 0], [2, 1]])
    np.testing.assert_allclose(d, [[1, 2], [1, 1], [1, 2], [2, 3]])


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_matches_brute_force(backend):
    X = np.random.default_rng(0).standard_normal((400, 6))
    d, i = knn(X, 7, backend=backend)
    db, ib = brute(X, 7)
    np.testing.assert_array_equal(i, ib)
    np.testing.assert_allclose(d, db, rtol=1e-12)


def test_backends_agree_with_many_exact_duplicates():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((200, 4))
    X = np.vstack([base, np.repeat(base[:3], 12, axis=0)])  # 13 copies of rows 0, 1, 2 (> margin)
    d1, i1 = knn(X, 5, backend="faiss")
    d2, i2 = knn(X, 5, backend="numpy")
    db, ib = brute(X, 5)
    np.testing.assert_array_equal(i1, ib)
    np.testing.assert_array_equal(i2, ib)
    # row 0's neighbours are its copies (distance 0), never itself
    assert 0 not in i1[0]
    np.testing.assert_array_equal(d1[0], 0.0)
    np.testing.assert_array_equal(i1[0], [200, 201, 202, 203, 204])


def test_cosine_metric_is_chord_distance():
    X = np.array([[1.0, 0.0], [10.0, 0.1], [0.0, 3.0]])
    d, i = knn(X, 1, metric="cosine")
    np.testing.assert_array_equal(i.ravel(), [1, 0, 1])
    c = 10.0 / np.hypot(10.0, 0.1)
    np.testing.assert_allclose(d[0, 0], np.sqrt(2 - 2 * c))


def test_rejects_bad_k():
    with pytest.raises(ValueError):
        knn(np.zeros((3, 2)), 3)
