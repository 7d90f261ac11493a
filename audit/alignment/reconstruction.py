"""Global and local feature reconstruction errors (GFRE, LFRE) between two representations.

Goscinski, Fraux, Imbalzano & Ceriotti (2021), "The role of feature space in atomistic learning", Mach.
Learn.: Sci. Technol. 2, 025028; used to compare the latent features of universal MLIPs by arXiv 2512.05717.
``GFRE(A -> B)`` asks how well one linear map from A reproduces B on held-out structures; ``LFRE(A -> B)``
fits such a map on the k nearest neighbours (in A) of every held-out structure, so it measures whether A
keeps B's information *locally*. Both are ~0 when B is a linear function of A and ~1 when A says nothing
about B (the standardisation makes predicting the mean score 1). Not symmetric: a rich A reconstructs a
poor B, not the reverse.

The maintained implementation is scikit-matter (``skmatter.metrics.global_reconstruction_error`` and
``local_reconstruction_error``). It is not installable from the package index this project uses, so its
default procedure is re-implemented here step by step, vectorised (tests compare with a loop transcription):

1. **Split**: ``sklearn.model_selection.train_test_split(arange(n), train_size=0.5, test_size=0.5,
   shuffle=True, random_state=0x5F3759DF)``.
2. **Scale** (skmatter ``StandardFlexibleScaler``, not column-wise): centre both A and B by the training
   mean and divide by ``sqrt(sum of the training column variances)``.
3. **Regress** (skmatter ``Ridge2FoldCV(alphas=geomspace(1e-9, 0.9, 20), alpha_type="relative",
   regularization_method="cutoff", shuffle=True, random_state=0x5F3759DF,
   scoring="neg_root_mean_squared_error")``): the training rows are split in two folds by
   ``KFold(2, shuffle=True, random_state=0x5F3759DF)``; for every relative cutoff ``alpha`` the
   pseudo-inverse keeps the singular values above ``alpha * s_max`` (``s_max`` the largest of both folds),
   each fold predicts the other, and the cutoff with the lowest mean of the two RMSEs (RMSE averaged over
   output columns) wins; the map is refitted on all training rows with that cutoff. No intercept.
4. **Error**: ``sqrt(mean over test rows of ||b_i - a_i W||^2)``. LFRE does steps 3-4 for every test row on
   its ``n_local_points`` nearest training rows (squared Euclidean distance in scaled A), each centred by its
   local means, and predicts ``mean_B + (a_i - mean_A) W_i``.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_pair

__all__ = ["feature_reconstruction_error", "global_reconstruction_error", "local_reconstruction_error",
           "SKMATTER_SEED", "SKMATTER_ALPHAS"]

SKMATTER_SEED = 0x5F3759DF
SKMATTER_ALPHAS = np.geomspace(1e-9, 0.9, 20)


def _split(n: int, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(n), train_size=0.5, test_size=0.5, shuffle=True, random_state=seed)


def _scale(train: np.ndarray, test: np.ndarray):
    mean = train.mean(axis=0)
    scale = np.sqrt(((train - mean) ** 2).mean(axis=0).sum())
    scale = scale if scale > 0 else 1.0
    return (train - mean) / scale, (test - mean) / scale


def _folds(n: int, seed: int):
    from sklearn.model_selection import KFold

    return next(KFold(n_splits=2, shuffle=True, random_state=seed).split(np.zeros((n, 1))))


def _rmse(y, p):
    """RMSE averaged over output columns (sklearn's ``root_mean_squared_error``), batched over axis 0."""
    return np.sqrt(((y - p) ** 2).mean(axis=-2)).mean(axis=-1)


def _truncation_rmse(xv: np.ndarray, uty: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """RMSE (mean over columns) of the predictions ``sum_{r < t} xv[:, :, r] uty[r, :]`` of Y for every t.

    ``xv`` (b, m, R), ``uty`` (b, R, d_y), ``Y`` (b, m, d_y) -> (b, R + 1). The squared error of column c
    with the first t directions is ``|Y_c|^2 - 2 sum_{r<t} A_rc u_rc + sum_{r,r'<t} u_rc G_rr' u_r'c`` with
    ``A = xv^T Y``, ``G = xv^T xv``, ``u = uty``: built up one direction at a time, so no prediction matrix
    is formed (O(b R^2 d_y) instead of O(b m R d_y) per cutoff).
    """
    b, m, R = xv.shape
    xt = np.swapaxes(xv, 1, 2)
    A, G = xt @ Y, xt @ xv
    err = np.empty((b, R + 1, Y.shape[2]))
    err[:, 0] = np.einsum("bmc,bmc->bc", Y, Y)
    for t in range(1, R + 1):
        u = uty[:, t - 1]
        inner = np.einsum("br,brc->bc", G[:, t - 1, :t - 1], uty[:, :t - 1])
        err[:, t] = err[:, t - 1] - 2.0 * A[:, t - 1] * u + u * (2.0 * inner + G[:, t - 1, t - 1][:, None] * u)
    return np.sqrt(np.maximum(err, 0.0) / m).mean(axis=2)


def _ridge_cutoff(X: np.ndarray, Y: np.ndarray, fold1, fold2, alphas, Q: np.ndarray) -> np.ndarray:
    """Predictions ``Q W`` (b, q, d_y) of skmatter's 2-fold-CV cutoff ridge ``W`` fitted on each of a batch of
    problems X (b, m, d_x), Y (b, m, d_y) that share the fold split, for queries Q (b, q, d_x).

    ``W = V S^-1 U^T Y`` over the kept singular directions is never formed: ``Q W = ((Q V) S^-1)(U^T Y)``."""
    b, m, _ = X.shape
    rcond = max(m, X.shape[2]) * np.finfo(np.float64).eps
    svd = {}
    for name, idx in (("1", fold1), ("2", fold2)):
        U, s, Vt = np.linalg.svd(X[:, idx], full_matrices=False)
        svd[name] = (U, s, Vt)
    s_max = np.maximum(svd["1"][1].max(axis=1, initial=0.0), svd["2"][1].max(axis=1, initial=0.0))  # (b,)
    scaled = alphas[None, :] * s_max[:, None]  # (b, n_alpha)
    loss = np.zeros((b, alphas.size))

    def n_alpha_of(s, n_fit):  # directions kept for every alpha, (b, n_alpha)
        return np.minimum(n_fit[:, None], (s[:, None, :] > scaled[:, :, None]).sum(axis=2))

    for fit, other, idx_fit, idx_other in (("1", "2", fold1, fold2), ("2", "1", fold2, fold1)):
        U, s, Vt = svd[fit]
        n_fit = (s > rcond).sum(axis=1)  # (b,)
        uty = np.swapaxes(U, 1, 2) @ Y[:, idx_fit]  # (b, r, d_y)
        xv = (X[:, idx_other] @ np.swapaxes(Vt, 1, 2)) / np.where(s > 0, s, 1.0)[:, None, :]  # (b, m2, r)
        loss += np.take_along_axis(_truncation_rmse(xv, uty, Y[:, idx_other]), n_alpha_of(s, n_fit), axis=1) / 2.0
    best = loss.argmin(axis=1)  # first of equal losses, as argmax of the negated scores
    cut = scaled[np.arange(b), best]
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    keep = s > cut[:, None]
    inv = np.where(keep, 1.0 / np.where(s > 0, s, 1.0), 0.0)
    return ((Q @ np.swapaxes(Vt, 1, 2)) * inv[:, None, :]) @ (np.swapaxes(U, 1, 2) @ Y)


def global_reconstruction_error(X, Y, *, seed: int = SKMATTER_SEED, alphas=SKMATTER_ALPHAS) -> float:
    """GFRE(X -> Y): error of the best global linear map from X to Y on held-out rows (module docstring).

    Parameters
    ----------
    X : array-like, shape (n, d_x)
        Source representation.
    Y : array-like, shape (n, d_y)
        Target representation, rows paired with X.
    seed : int
        Seed of the train/test split and of the CV folds (skmatter's: 0x5F3759DF).
    alphas : array-like
        Relative singular-value cutoffs tried by the 2-fold CV.

    Returns
    -------
    float
        About 0 when Y is a linear function of X, about 1 when X carries nothing of Y (unitless).
    """
    X, Y = check_pair(X, Y, min_rows=4)
    tr, te = _split(X.shape[0], seed)
    Xtr, Xte = _scale(X[tr], X[te])
    Ytr, Yte = _scale(Y[tr], Y[te])
    f1, f2 = _folds(tr.size, seed)
    pred = _ridge_cutoff(Xtr[None], Ytr[None], f1, f2, np.asarray(alphas, dtype=float), Xte[None])[0]
    return float(np.sqrt(((Yte - pred) ** 2).sum(axis=1).mean()))


def local_reconstruction_error(X, Y, n_local_points: int = 15, *, seed: int = SKMATTER_SEED,
                               alphas=SKMATTER_ALPHAS, batch: int = 256) -> float:
    """LFRE(X -> Y): error of local linear maps fitted on each held-out row's nearest training rows.

    Parameters
    ----------
    X : array-like, shape (n, d_x)
    Y : array-like, shape (n, d_y)
    n_local_points : int
        Training neighbours (in scaled X, Euclidean) of every test row; capped at the number of training
        rows (n // 2). At least 4 (two CV folds of 2).
    seed : int
        Seed of the split and of the CV folds.
    alphas : array-like
        Relative singular-value cutoffs.
    batch : int
        Test rows solved together (memory ~ batch * n_local_points * (d_x + d_y) * 8 bytes, times r).

    Returns
    -------
    float
        Unitless, about 0 for a locally linear relation, about 1 for none.
    """
    X, Y = check_pair(X, Y, min_rows=8)
    tr, te = _split(X.shape[0], seed)
    Xtr, Xte = _scale(X[tr], X[te])
    Ytr, Yte = _scale(Y[tr], Y[te])
    k = int(min(n_local_points, tr.size))
    if k < 4:
        raise ValueError(f"n_local_points must be >= 4; got {n_local_points}")
    f1, f2 = _folds(k, seed)
    alphas = np.asarray(alphas, dtype=float)
    sq_tr = np.einsum("ij,ij->i", Xtr, Xtr)
    total = 0.0
    for s in range(0, te.size, batch):
        xs = Xte[s:s + batch]
        d2 = sq_tr[None, :] + np.einsum("ij,ij->i", xs, xs)[:, None] - 2.0 * xs @ Xtr.T
        # the k smallest by (distance, index): a partition, then a stable sort of those k (not of whole rows)
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else np.argsort(d2, axis=1)
        part = np.sort(part, axis=1)
        nbr = np.take_along_axis(part, np.argsort(np.take_along_axis(d2, part, axis=1), axis=1, kind="stable"), axis=1)
        LX, LY = Xtr[nbr], Ytr[nbr]  # (b, k, d)
        mx, my = LX.mean(axis=1, keepdims=True), LY.mean(axis=1, keepdims=True)
        pred = my[:, 0] + _ridge_cutoff(LX - mx, LY - my, f1, f2, alphas, (xs - mx[:, 0])[:, None, :])[:, 0]
        total += float(((Yte[s:s + batch] - pred) ** 2).sum())
    return float(np.sqrt(total / te.size))


def feature_reconstruction_error(X, Y, *, local: bool = False, n_local_points: int = 15,
                                 seed: int = SKMATTER_SEED) -> float:
    """GFRE (``local=False``) or LFRE (``local=True``) of reconstructing Y from X; see the module docstring."""
    if local:
        return local_reconstruction_error(X, Y, n_local_points, seed=seed)
    return global_reconstruction_error(X, Y, seed=seed)
