import numpy as np
import pytest

from monoculture.audit.alignment import find_near_duplicates, twonn

from alignment_testdata import gaussian_on_subspace


def test_planted_near_copies_bias_twonn_and_guard_repairs_it():
    rng = np.random.default_rng(0)
    clean = gaussian_on_subspace(2000, 5, 20, seed=0)
    src = rng.choice(2000, 300, replace=False)  # 15 % near copies
    copies = clean[src] + 1e-4 * rng.standard_normal((300, 20))
    X = np.vstack([clean, copies])
    id_clean = twonn(clean).dimension
    id_raw = twonn(X).dimension
    assert id_raw < 0.7 * id_clean  # near copies drag TwoNN down a lot

    nd = find_near_duplicates(X)
    assert nd.n_dropped == 300
    np.testing.assert_array_equal(np.flatnonzero(nd.drop_mask), np.arange(2000, 2300))
    assert nd.fraction == pytest.approx(300 / 2300)
    assert all(c.size == 2 and c[0] < 2000 for c in nd.clusters)
    assert twonn(X[nd.keep_mask]).dimension == pytest.approx(id_clean, rel=0.15)


def grid_with(extra):
    """A 5 x 5 grid of unit spacing (median NN distance 1) followed by `extra` rows."""
    g = np.array([[i, j] for i in range(5) for j in range(5)], dtype=float)
    return np.vstack([g, extra])


def test_hand_made_clusters_keep_lowest_index():
    # row 25 copies row 0 exactly; rows 26, 27 sit 0.01 and 0.02 from row 6 = (1, 1); row 28 is 0.2 away
    X = grid_with([[0.0, 0.0], [1.01, 1.0], [1.0, 1.02], [3.2, 3.0]])
    nd = find_near_duplicates(X, tau=0.05)
    assert nd.median_nn_distance == pytest.approx(1.0)
    assert nd.threshold == pytest.approx(0.05)
    assert [c.tolist() for c in nd.clusters] == [[0, 25], [6, 26, 27]]
    np.testing.assert_array_equal(np.flatnonzero(nd.drop_mask), [25, 26, 27])


def test_groups_restrict_links():
    X = grid_with([[0.0, 0.01], [4.0, 4.01]])
    labels = ["a"] * 25 + ["b", "a"]
    nd = find_near_duplicates(X, groups=labels)
    # row 25 is near row 0 but has another label; row 26 is near row 24 with the same label
    assert [c.tolist() for c in nd.clusters] == [[24, 26]]
    assert [c.tolist() for c in find_near_duplicates(X).clusters] == [[0, 25], [24, 26]]


def test_large_exact_duplicate_cluster_is_complete():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.standard_normal((100, 3)), np.repeat([[9.0, 9.0, 9.0]], 40, axis=0)])
    nd = find_near_duplicates(X, n_neighbours=4)
    assert len(nd.clusters) == 1 and nd.clusters[0].tolist() == list(range(100, 140))
    assert nd.n_dropped == 39
