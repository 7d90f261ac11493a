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


