import numpy as np
import pytest

from monoculture.audit.alignment import NORMALISATIONS, EmbeddingNormaliser, normalise

X = np.array([[3.0, -4.0], [0.0, 0.0], [1.0, 2.0]])


def test_hand_values():
    np.testing.assert_allclose(normalise(X, "none"), X)
    np.testing.assert_allclose(normalise(X, "l2"), [[0.6, -0.8], [0, 0], [1 / np.sqrt(5), 2 / np.sqrt(5)]])
    np.testing.assert_allclose(normalise(X, "max"), [[0.75, -1.0], [0, 0], [0.5, 1.0]])
    mean, std = np.array([4 / 3, -2 / 3]), np.array([np.std([3, 0, 1]), np.std([-4, 0, 2])])
    np.testing.assert_allclose(normalise(X, "standard"), (X - mean) / std)


def test_standard_learns_and_constant_column():
    Z = np.array([[1.0, 5.0], [3.0, 5.0]])
    n = EmbeddingNormaliser("standard").fit(Z)
    np.testing.assert_allclose(n.mean_, [2.0, 5.0])
    np.testing.assert_allclose(n.scale_, [1.0, 1.0])
    np.testing.assert_allclose(n.transform([[2.0, 6.0]]), [[0.0, 1.0]])
    assert NORMALISATIONS == ("none", "l2", "max", "standard")


def test_unknown_method():
    with pytest.raises(ValueError, match="method"):
        normalise(X, "minmax")
