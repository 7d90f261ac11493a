"""The fast paths (float32 GEMM sweeps, faiss candidates, refinement only where needed) against direct
definition-based computations on small inputs, ties included.

Ties are made exact in floating point: small integers with a power-of-two row count (column means are
then dyadic, so centring and differences are exact), exact copies of rows, and rows that are exact
power-of-two multiples of others (identical after L2 normalisation).
"""
import tracemalloc

import dcor
import numpy as np
import pytest

from monoculture.audit.alignment import (
    cka,
    cknna,
    distance_correlation,
    drop_exact_duplicates,
    information_imbalance,
    knn,
    mutual_knn,
)
from monoculture.audit.alignment._pairwise import augmented_rows, sqdist_block, upper_blocks
from monoculture.audit.alignment.metrics import median_heuristic_sigma
from monoculture.audit.alignment.neighbours import neighbour_search

from alignment_testdata import dense_hsic


def lattice(n, d, seed, high=4):
    """Integer points (many exact distance ties); n a power of two keeps centring exact."""
    return np.random.default_rng(seed).integers(0, high, (n, d)).astype(float)


def with_copies(n, d, seed):
    """Gaussian rows, a quarter of them repeated (exact duplicates), shuffled."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n - n // 4, d))
    X = np.vstack([base, base[rng.integers(0, base.shape[0], n // 4)]])
    return X[rng.permutation(n)]


def scaled_copies(n, d, seed):
    """Gaussian rows, a quarter of them replaced by power-of-two multiples of others (same unit vector)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    src = rng.integers(0, n // 2, n // 4)
    X[n // 2 : n // 2 + n // 4] = X[src] * rng.choice([0.5, 2.0, 4.0], (n // 4, 1))
    return X


def brute_knn(X, k):
    """Definition: Euclidean distances from explicit differences, self excluded, ties to the lower index."""
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(D, np.inf)
    idx = np.array([np.lexsort((np.arange(len(X)), row))[:k] for row in D])
    return np.take_along_axis(D, idx, axis=1), idx


def brute_mean_ranks(A, B, k):
    """Definition of the information-imbalance mean rank, with mid-ranks for exact ties."""
    _, nn = brute_knn(A, k)
    DB = ((B[:, None, :] - B[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(DB, np.inf)
    ranks = []
    for i in range(len(A)):
        for j in nn[i]:
            t = DB[i, j]
            closer = (DB[i] < t).sum()
            tied = (DB[i] == t).sum()
            ranks.append(1 + closer + 0.5 * (tied - 1))
    return float(np.mean(ranks))




# -- rounding bound of the float32 blocks --------------------------------------------------------------
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_float32_blocks_respect_the_rounding_bound(offset):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 40)) * rng.uniform(0.1, 10, 40) + offset
    rows = augmented_rows(X, np.float32)
    Xc = X - X.mean(axis=0)
    exact = ((Xc[:, None] - Xc[None]) ** 2).sum(-1)
    seen = np.zeros((300, 300), dtype=bool)
    for s, e in upper_blocks(300, 64):
        D = sqdist_block(rows, s, e).astype(np.float64)
        bound = rows.rel * (rows.sq[s:e, None] + rows.sq[None, s:])
        assert np.all(np.abs(D - exact[s:e, s:]) <= bound)
        assert np.all(np.diag(D[:, : e - s]) == 0.0)
        seen[s:e, s:] = True
    assert np.all(seen | seen.T)  # the upper-triangle blocks cover every pair


def test_exact_small_gives_exact_zeros_for_copies():
    X = with_copies(128, 6, 1) * 100.0 + 50.0
    rows = augmented_rows(X, np.float32)
    Xc = X - X.mean(axis=0)
    exact = ((Xc[:, None] - Xc[None]) ** 2).sum(-1)
    D = sqdist_block(rows, 0, 128, exact_small=True)
    assert np.all(D[exact == 0.0] == 0.0)


# -- k-NN -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: lattice(512, 5, 2), lambda: with_copies(512, 4, 3)])
@pytest.mark.parametrize("backend", ["faiss", "numpy"])
@pytest.mark.parametrize("k", [1, 6, 20])
def test_knn_with_ties_equals_definition(make, backend, k):
    X = make()
    d, i = knn(X, k, backend=backend)
    db, ib = brute_knn(X, k)
    np.testing.assert_array_equal(i, ib)
    np.testing.assert_allclose(d, db, rtol=1e-12, atol=0)
    # the set-only search (rows refined only where the set is uncertain) finds the same sets
    fast = neighbour_search(X, k, backend=backend, exact_values=False)
    np.testing.assert_array_equal(np.sort(fast.indices, axis=1), np.sort(ib, axis=1))
    # unrefined values stay within the rounding bound of the exact squared distances
    exact2 = ((X[:, None] - X[None]) ** 2).sum(-1)
    got = np.take_along_axis(exact2, fast.indices, axis=1)
    assert np.all(np.abs(fast.d2 - got) <= fast.eps[:, None] + 1e-12 * got)


@pytest.mark.parametrize("make", [lambda: lattice(256, 3, 21), lambda: with_copies(256, 4, 22)])
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("dtype,workers,block_size", [(np.float32, 1, 40), (np.float32, 2, 64),
                                                       (np.float64, 2, 256)])
def test_sweep_nearest_equals_definition_with_ties(make, k, dtype, workers, block_size):
    from monoculture.audit.alignment._pairwise import sweep
    from monoculture.audit.alignment.neighbours import SweepNearest

    X = make()
    rows = augmented_rows(X, dtype)
    (near,) = sweep(rows, lambda: [SweepNearest(rows, k)], block_size, workers=workers)
    d2, idx = near.result()
    db, ib = brute_knn(X, k)
    np.testing.assert_array_equal(idx, ib)
    np.testing.assert_allclose(np.sqrt(d2), db, rtol=1e-12, atol=0)


@pytest.mark.parametrize("make", [lambda: with_copies(4096, 3, 23), lambda: lattice(4096, 4, 24)])
def test_knn_sweep_paths_equal_faiss_path(make):
    X = make()  # "auto" takes the upper-triangle sweeps from 4,096 rows (SweepNearest for k <= 2, heaps above)
    for k in (1, 2, 7, 20):
        d_auto, i_auto = knn(X, k)
        d_faiss, i_faiss = knn(X, k, backend="faiss")
        np.testing.assert_array_equal(i_auto, i_faiss)
        np.testing.assert_array_equal(d_auto, d_faiss)
        fast = neighbour_search(X, k, exact_values=False)
        np.testing.assert_array_equal(np.sort(fast.indices, axis=1), np.sort(i_faiss, axis=1))


def test_refinement_orders_ties_by_index_whatever_the_candidate_order():
    from monoculture.audit.alignment.neighbours import _sorted_exact

    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [3.0, 3.0]])
    cand = np.array([[5, 4, 3, 2, 1]])  # four candidates tied at distance 1, given in descending index
    d2, idx = _sorted_exact(X, np.array([0]), cand, 3)
    np.testing.assert_array_equal(idx, [[1, 2, 3]])
    np.testing.assert_array_equal(d2, [[1.0, 1.0, 1.0]])


def test_cosine_ties_of_scaled_copies_go_to_the_lower_index():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((256, 5))
    X = np.vstack([base, 2.0 * base[:64], 0.5 * base[:64]])  # same directions as rows 0..63
    for backend in ("faiss", "numpy"):
        _, i = knn(X, 2, metric="cosine", backend=backend)
        # row 0's two nearest directions are its exact scaled copies, in index order
        np.testing.assert_array_equal(i[0], [256, 320])
        np.testing.assert_array_equal(i[256], [0, 320])
        _, ib = brute_knn(X / np.linalg.norm(X, axis=1, keepdims=True), 2)
        np.testing.assert_array_equal(i, ib)


# -- mutual k-NN and CKNNA --------------------------------------------------------------------------------
def dense_cknna(X, Y, k, unbiased):
    """Huh et al. (2024) App. A with dense masks; neighbours by chord distance, ties to the lower index."""
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Yn = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    _, ix = brute_knn(Xn, k)
    _, iy = brute_knn(Yn, k)
    n = len(X)
    Mx, My = np.zeros((n, n)), np.zeros((n, n))
    np.put_along_axis(Mx, ix, 1.0, axis=1)
    np.put_along_axis(My, iy, 1.0, axis=1)
    K, L = Xn @ Xn.T, Yn @ Yn.T
    kl = dense_hsic(Mx * My * K, Mx * My * L, unbiased)
    return kl / np.sqrt(dense_hsic(Mx * K, Mx * K, unbiased) * dense_hsic(My * L, My * L, unbiased))


@pytest.mark.parametrize("unbiased", [False, True])
def test_cknna_faiss_path_matches_definition_with_ties(unbiased):
    X = scaled_copies(512, 4, 5)  # exact cosine ties: a quarter of the rows repeat other rows' directions
    Y = np.hstack([X[:, :2], scaled_copies(512, 2, 6)])
    for k in (3, 15):
        expected = dense_cknna(X, Y, k, unbiased)
        assert cknna(X, Y, k, unbiased=unbiased, self_pairs=False, eps=0.0, backend="faiss") == pytest.approx(
            expected, rel=1e-6)
        assert cknna(X, Y, k, unbiased=unbiased, self_pairs=False, eps=0.0, backend="numpy") == pytest.approx(
            expected, rel=1e-10)


def test_mutual_knn_faiss_path_equals_definition_with_ties():
    X, Y = lattice(512, 5, 7), with_copies(512, 3, 8)
    for k in (1, 4, 12):
        _, ix = brute_knn(X, k)
        _, iy = brute_knn(Y, k)
        expected = np.mean([len(set(a) & set(b)) / k for a, b in zip(ix, iy)])
        assert mutual_knn(X, Y, k, metric="euclidean", backend="faiss") == pytest.approx(expected, abs=1e-15)
        assert mutual_knn(X, Y, k, metric="euclidean", backend="numpy") == pytest.approx(expected, abs=1e-15)


# -- CKA-RBF and distance correlation in float32 ---------------------------------------------------------
@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("block_size", [37, 512])
def test_rbf_cka_float32_within_1e6_of_dense(unbiased, block_size):
    rng = np.random.default_rng(9)
    X = with_copies(256, 6, 10) + 20.0
    Y = np.tanh(X @ rng.standard_normal((6, 9))) + 0.05 * rng.standard_normal((256, 9))
    sx, sy = median_heuristic_sigma(X), median_heuristic_sigma(Y)
    D2x = ((X[:, None] - X[None]) ** 2).sum(-1)
    D2y = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    K, L = np.exp(-D2x / (2 * sx**2)), np.exp(-D2y / (2 * sy**2))
    expected = dense_hsic(K, L, unbiased) / np.sqrt(dense_hsic(K, K, unbiased) * dense_hsic(L, L, unbiased))
    got32 = cka(X, Y, "rbf", unbiased=unbiased, block_size=block_size, precision="float32")
    got64 = cka(X, Y, "rbf", unbiased=unbiased, block_size=block_size, precision="float64")
    assert got32 == pytest.approx(expected, rel=1e-6)
    assert got64 == pytest.approx(expected, rel=1e-11)


@pytest.mark.parametrize("make", [lambda: (with_copies(256, 5, 11), 1), lambda: (lattice(256, 3, 12), 2)])
def test_dcor_float32_within_1e6_of_dcor_package(make):
    X, seed = make()
    rng = np.random.default_rng(seed)
    Y = X[:, :2] ** 2 + 0.3 * rng.standard_normal((256, 2))
    Y[:32] = Y[32:64]  # exact copies in Y that are not copies in X
    for block_size in (29, 512):
        got = distance_correlation(X, Y, block_size=block_size, precision="float32")
        assert got == pytest.approx(dcor.distance_correlation(X, Y), abs=1e-6)
        got_u = distance_correlation(X, Y, estimator="unbiased", squared=True, block_size=block_size,
                                     precision="float32")
        assert got_u == pytest.approx(dcor.u_distance_correlation_sqr(X, Y), abs=1e-6)
        got64 = distance_correlation(X, Y, block_size=block_size, precision="float64")
        assert got64 == pytest.approx(dcor.distance_correlation(X, Y), abs=1e-12)


def test_precision_is_validated():
    X = np.random.default_rng(0).standard_normal((20, 2))
    with pytest.raises(ValueError, match="precision"):
        cka(X, X, "rbf", precision="half")
    with pytest.raises(ValueError, match="precision"):
        distance_correlation(X, X, precision="half")


# -- information imbalance --------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 12])
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_information_imbalance_equals_definition_with_ties(k, precision):
    X = lattice(256, 4, 13)
    Y = np.hstack([X[:, :2], lattice(256, 1, 14)])  # Y keeps part of X: ranks full of exact ties
    res = information_imbalance(X, Y, k, precision=precision, block_size=48, backend="faiss")
    n = len(X)
    assert res.x_to_y == pytest.approx(2 / n * brute_mean_ranks(X, Y, k), rel=1e-12)
    assert res.y_to_x == pytest.approx(2 / n * brute_mean_ranks(Y, X, k), rel=1e-12)


def test_information_imbalance_float32_with_copies_and_offsets():
    X = with_copies(256, 5, 15) * 3.0 + 1e3  # large offset: centring matters for the float32 bound
    Y = X[:, :3] + 0.01 * np.random.default_rng(16).standard_normal((256, 3))
    for k in (1, 2):
        res = information_imbalance(X, Y, k, precision="float32", block_size=100)
        assert res.x_to_y == pytest.approx(2 / 256 * brute_mean_ranks(X, Y, k), rel=1e-12)
        assert res.y_to_x == pytest.approx(2 / 256 * brute_mean_ranks(Y, X, k), rel=1e-12)


# -- helpers ----------------------------------------------------------------------------------------------
def test_drop_exact_duplicates_matches_numpy_unique():
    rng = np.random.default_rng(17)
    X = np.vstack([rng.standard_normal((50, 3)), np.zeros((1, 3))])
    Xd = np.vstack([X, X[rng.integers(0, 51, 40)], -np.zeros((2, 3))])[rng.permutation(93)]
    U, dropped = drop_exact_duplicates(Xd)
    _, first = np.unique(Xd, axis=0, return_index=True)  # treats -0.0 == 0.0 like we do
    np.testing.assert_array_equal(U, Xd[np.sort(first)])
    assert dropped == 93 - first.size


def test_fast_paths_are_deterministic():
    X, Y = with_copies(2048, 8, 18), with_copies(2048, 6, 19)  # "auto" uses float32 and faiss here
    for f in (lambda: cka(X, Y, "rbf"), lambda: distance_correlation(X, Y),
              lambda: information_imbalance(X, Y, 1), lambda: cknna(X, Y, 10)):
        assert f() == f()


@pytest.mark.parametrize("name", ["cka_rbf", "dcor", "imbalance"])
def test_blocked_metrics_never_hold_an_n_by_n_float64_matrix(name):
    n = 3000
    rng = np.random.default_rng(20)
    X, Y = rng.standard_normal((n, 16)), rng.standard_normal((n, 12))
    f = {"cka_rbf": lambda: cka(X, Y, "rbf"), "dcor": lambda: distance_correlation(X, Y),
         "imbalance": lambda: information_imbalance(X, Y, 1)}[name]
    tracemalloc.start()
    try:
        f()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * n * 8 / 2  # well under one n x n float64 array (72 MB)
