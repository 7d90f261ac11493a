"""Synthetic data shared by the alignment tests."""
import numpy as np


def gaussian_on_subspace(n, intrinsic, ambient, seed):
    """n points of a standard Gaussian in `intrinsic` dims, rotated into `ambient` dims."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, intrinsic))
    Q, _ = np.linalg.qr(rng.standard_normal((ambient, intrinsic)))
    return Z @ Q.T


def random_rotation(d, seed):
    Q, R = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def dense_hsic(K, L, unbiased=False):
    """HSIC of two (n, n) kernel matrices by the dense textbook formulas (biased, or Song et al.'s unbiased)."""
    n = K.shape[0]
    if unbiased:
        K, L = K.copy(), L.copy()
        np.fill_diagonal(K, 0)
        np.fill_diagonal(L, 0)
        v = np.sum(K * L.T) + K.sum() * L.sum() / ((n - 1) * (n - 2)) - 2 * np.sum(K @ L) / (n - 2)
        return v / (n * (n - 3))
    H = np.eye(n) - 1.0 / n
    return np.trace(K @ H @ L @ H) / (n - 1) ** 2
