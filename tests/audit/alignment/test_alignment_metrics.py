from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monoculture.audit.alignment import cka, cknna, distance_correlation, mutual_knn
from monoculture.audit.alignment.metrics import median_heuristic_sigma

from alignment_testdata import dense_hsic, random_rotation

X4 = np.array([[0.0], [1.0], [3.0], [7.0]])
Y4 = np.array([[0.0], [2.0], [3.0], [10.0]])


def test_mutual_knn_hand_value():
    # 1-NN in X: 0->1, 1->0, 2->1, 3->2; in Y: 0->1, 1->2, 2->1, 3->2  => 3 of 4 agree
    assert mutual_knn(X4, Y4, k=1, metric="euclidean") == pytest.approx(0.75)
    # 2-NN in X: {1,2} {0,2} {1,0} {2,1}; Y: {1,2} {2,0} {1,0} {2,1} => all agree
    assert mutual_knn(X4, Y4, k=2, metric="euclidean") == pytest.approx(1.0)


def test_linear_cka_hand_value():
    X = np.array([[1.0], [2.0], [3.0], [4.0]])
    Y = np.array([[1.0], [2.0], [3.0], [5.0]])
    # one feature: CKA = Pearson r^2 = 6.5^2 / (5 * 8.75) = 169/175
    assert cka(X, Y) == pytest.approx(169 / 175, rel=1e-12)


def dense_cka(K, L, unbiased=False):
    return dense_hsic(K, L, unbiased) / np.sqrt(dense_hsic(K, K, unbiased) * dense_hsic(L, L, unbiased))


@pytest.mark.parametrize("unbiased", [False, True])
def test_linear_cka_matches_gram_form(related_pair, unbiased):
    X, Y = related_pair
    expected = dense_cka(X @ X.T, Y @ Y.T, unbiased)
    assert cka(X, Y, unbiased=unbiased) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("unbiased", [False, True])
def test_rbf_cka_matches_dense(related_pair, unbiased):
    X, Y = related_pair
    sx, sy = median_heuristic_sigma(X), median_heuristic_sigma(Y)
    D2x = ((X[:, None] - X[None]) ** 2).sum(-1)
    D2y = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    K, L = np.exp(-D2x / (2 * sx**2)), np.exp(-D2y / (2 * sy**2))
    assert cka(X, Y, "rbf", unbiased=unbiased, block_size=64) == pytest.approx(
        dense_cka(K, L, unbiased), rel=1e-9
    )


def dense_cknna(X, Y, k, unbiased=False):
    """Written from Huh et al. (2024) App. A with dense n x n masks."""
    n = X.shape[0]
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Yn = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    K, L = Xn @ Xn.T, Yn @ Yn.T

    def mask(S):
        S = S.copy()
        np.fill_diagonal(S, -np.inf)
        M = np.zeros((n, n))
        for i in range(n):
            M[i, np.lexsort((np.arange(n), -S[i]))[:k]] = 1.0
        return M

    Mk, Ml = mask(K), mask(L)
    kl = dense_hsic(Mk * Ml * K, Mk * Ml * L, unbiased)
    kk = dense_hsic(Mk * K, Mk * K, unbiased)
    ll = dense_hsic(Ml * L, Ml * L, unbiased)
    return kl / np.sqrt(kk * ll)


@pytest.mark.parametrize("k,unbiased", [(5, False), (10, False), (10, True)])
def test_cknna_matches_dense_reference(related_pair, k, unbiased):
    X, Y = related_pair[0][:80], related_pair[1][:80]
    got = cknna(X, Y, k=k, unbiased=unbiased, self_pairs=False, eps=0.0)
    assert got == pytest.approx(dense_cknna(X, Y, k, unbiased), rel=1e-9)


def test_cknna_full_k_equals_cka_without_diagonal(related_pair):
    X, Y = related_pair
    n = X.shape[0]
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Yn = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    K, L = Xn @ Xn.T, Yn @ Yn.T
    np.fill_diagonal(K, 0.0)
    np.fill_diagonal(L, 0.0)
    assert cknna(X, Y, k=n - 1, unbiased=False, self_pairs=False, eps=0.0) == pytest.approx(dense_cka(K, L), rel=1e-10)
    assert cknna(X, Y, k=n - 1, eps=0.0) == pytest.approx(dense_cka(K, L, unbiased=True), rel=1e-10)


def test_cknna_falls_with_noise():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 10))
    R = random_rotation(10, 1)
    values = [cknna(X, X @ R + s * rng.standard_normal((500, 10)), k=25) for s in (0.05, 0.3, 1.0)]
    assert values[0] > 0.9 and values[0] > values[1] > values[2]
    assert abs(cknna(X, rng.standard_normal((500, 10)), k=25)) < 0.1


IDENTITY_METRICS = {
    "cka_linear": cka,
    "cka_rbf": partial(cka, kernel="rbf"),
    "cknna": partial(cknna, k=10, eps=0.0),
    "mutual_knn": partial(mutual_knn, k=10),
    "dcor": distance_correlation,
}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(sorted(IDENTITY_METRICS)))
def test_identical_inputs_give_one(seed, name):
    X = np.random.default_rng(seed).standard_normal((60, 5))
    assert IDENTITY_METRICS[name](X, X.copy()) == pytest.approx(1.0, abs=1e-9)


INVARIANT_METRICS = {
    "cka_linear": cka,
    "cka_rbf": partial(cka, kernel="rbf"),
    "mutual_knn": partial(mutual_knn, k=5, metric="euclidean"),
    "dcor": distance_correlation,
}


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(0.01, 100.0),
    shift=st.floats(-50.0, 50.0),
    name=st.sampled_from(sorted(INVARIANT_METRICS)),
)
def test_rotation_scaling_translation_invariance(seed, scale, shift, name):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((50, 4))
    Y = X @ rng.standard_normal((4, 6)) + rng.standard_normal((50, 6))
    Y2 = scale * (Y @ random_rotation(6, seed + 1)) + shift
    f = INVARIANT_METRICS[name]
    assert f(X, Y2) == pytest.approx(f(X, Y), abs=1e-9)


def test_cknna_invariant_to_rotation_and_scaling_not_needed_translation():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((100, 4))
    Y = X @ rng.standard_normal((4, 6)) + rng.standard_normal((100, 6))
    assert cknna(X, 3.0 * Y @ random_rotation(6, 9), k=10) == pytest.approx(cknna(X, Y, k=10), abs=1e-10)


def test_pair_validation():
    with pytest.raises(ValueError, match="paired rows"):
        cka(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="kernel"):
        cka(np.eye(4), np.eye(4), kernel="poly")
