"""SVCCA: canonical correlation analysis on each model's top singular directions (an optional metric).

Definition (Raghu, Gilmer, Yosinski & Sohl-Dickstein 2017), as platonic-rep's ``AlignmentMetrics.svcca``
computes it (``cca_dim = 10``):

1. standardise every feature column of ``X`` (shape (n, d_a)) and ``Y`` (shape (n, d_b)): subtract the
   column mean, divide by the column standard deviation (``ddof = 1``) plus ``1e-8``;
2. keep the first ``q`` left singular vectors of each, ``U_X`` and ``U_Y`` (shape (n, q), orthonormal
   columns with zero mean);
3. canonical correlation analysis of ``U_X`` against ``U_Y``; the score is the mean of the ``q`` canonical
   correlations.

Because both bases are orthonormal and centred, their covariances are ``I / (n - 1)`` and the canonical
correlations are exactly the singular values of ``U_X^T U_Y`` (the cosines of the principal angles between
the two q-dimensional subspaces), so this implementation needs no iterative CCA. The reference code uses a
randomised SVD (``torch.svd_lowrank``) and scikit-learn's iterative ``CCA``; here both steps are exact
(``numpy.linalg.svd``), which the test pins against the published recipe. ``q`` is capped at
``min(cca_dim, n - 1, d_a, d_b)``. Unitless, in [0, 1]; 1 when one model is an invertible linear map of the
other within the kept directions.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_pair
from . import AlignmentMetric, Reference, Variant, register_metric
from ._references import PLATONIC_REP_PAPER

__all__ = ["svcca", "top_singular_basis"]

#: Added to each column's standard deviation before dividing (as the reference).
STD_EPS = 1e-8


def top_singular_basis(X: np.ndarray, q: int, *, standardise: bool = True) -> np.ndarray:
    """The first ``q`` left singular vectors of the column-centred (and standardised) ``X``.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d)
    q : int
        Number of directions kept (at most ``min(n, d)``).
    standardise : bool
        Divide each centred column by its standard deviation (``ddof = 1``) plus :data:`STD_EPS`.

    Returns
    -------
    numpy.ndarray, shape (n, q)
        Orthonormal columns.
    """
    Z = X - X.mean(axis=0)
    if standardise:
        Z = Z / (Z.std(axis=0, ddof=1) + STD_EPS)
    U, _, _ = np.linalg.svd(Z, full_matrices=False)
    return U[:, :q]


def svcca(X, Y, cca_dim: int = 10, *, standardise: bool = True) -> float:
    """Mean canonical correlation between the top ``cca_dim`` singular directions of two embeddings.

    Parameters
    ----------
    X, Y : array-like, shapes (n, d_a) and (n, d_b)
        Paired rows (row i of both describes structure i).
    cca_dim : int
        Singular directions kept per model (the reference's ``cca_dim``, 10), capped at
        ``min(n - 1, d_a, d_b)``.
    standardise : bool
        Standardise every feature column first (the reference's preprocessing).

    Returns
    -------
    float
        SVCCA similarity in [0, 1] (unitless); higher = more aligned.
    """
    X, Y = check_pair(X, Y)
    if int(cca_dim) < 1:
        raise ValueError(f"cca_dim must be >= 1; got {cca_dim}")
    q = int(min(cca_dim, X.shape[0] - 1, X.shape[1], Y.shape[1]))
    if q < 1:
        return float("nan")
    Ux = top_singular_basis(X, q, standardise=standardise)
    Uy = top_singular_basis(Y, q, standardise=standardise)
    rho = np.linalg.svd(Ux.T @ Uy, compute_uv=False)
    return float(np.mean(np.clip(rho, 0.0, 1.0)))


register_metric(AlignmentMetric(
    name="svcca", label="SVCCA", function=svcca, kind="pair", higher_is_more_aligned=True, scope="global",
    default=False, order=110, description="symmetric; diagonal 1 by definition (mean canonical correlation of the "
                                          "top singular directions)",
    scale="1 = the same top singular subspaces, near 0 = unrelated",
    reference=Reference("platonic-rep metrics.py, AlignmentMetrics.svcca (cca_dim=10)",
                        "the version in a public code index, 2026 (commit not recorded)",
                        "Raghu, Gilmer, Yosinski & Sohl-Dickstein (2017), SVCCA, NeurIPS 30, arXiv 1706.05806; "
                        + PLATONIC_REP_PAPER),
    variants={
        "platonic-rep": Variant(
            "platonic-rep", "mean canonical correlation between the top 10 left singular vectors of the "
                            "column-standardised embeddings (exact SVD; canonical correlations as the singular "
                            "values of U_X^T U_Y)", {"cca_dim": 10, "standardise": True},
            "platonic-rep (github.com/minyoungg/platonic-rep, metrics.py): AlignmentMetrics.svcca(cca_dim=10), "
            "re-implemented"),
        "centred": Variant(
            "centred", "as platonic-rep but columns only centred, not scaled to unit variance (SVCCA of Raghu et "
                       "al. 2017 on raw activations)", {"cca_dim": 10, "standardise": False}),
    }))
