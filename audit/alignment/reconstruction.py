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

LFRE's speed (n = 10,000, d = 256: 5,000 local fits): the neighbours come from faiss's float32 search with
a float64 certificate (:func:`_local_neighbours`; exact, ties to the lower training row), and the local fits
with at most as many rows as columns are solved from their 15 x 15 Gram matrices, batched
(:func:`_ridge_cutoff_dual`), instead of three SVDs of 15 x 256 matrices per point; problems whose Gram
matrices are too ill-conditioned for that go through the SVD path (:func:`_ridge_cutoff`). Both paths
give the same predictions to about 1e-10 relative (tests).
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
    with the first t directions is ``|Y_c|^2 + sum_{r<t} u_rc (-2 A_rc + G_rr u_rc + 2 sum_{r'<r} G_rr' u_r'c)``
    with ``A = xv^T Y``, ``G = xv^T xv``, ``u = uty``: a cumulative sum over r of terms built by two
    batched products, so no prediction matrix is formed (O(b R^2 d_y) instead of O(b m R d_y) per cutoff).
    """
    b, m, R = xv.shape
    xt = np.swapaxes(xv, 1, 2)
    A, G = xt @ Y, xt @ xv
    diag = np.einsum("brr->br", G)
    lower = np.tril(G, -1)  # G_rr' for r' < r
    step = uty * (2.0 * (lower @ uty - A) + diag[:, :, None] * uty)  # (b, R, d_y)
    err = np.empty((b, R + 1, Y.shape[2]))
    err[:, 0] = np.einsum("bmc,bmc->bc", Y, Y)
    for t in range(R):  # cumulative sum (numpy's cumsum along a middle axis is 8 times slower)
        np.add(err[:, t], step[:, t], out=err[:, t + 1])
    np.maximum(err, 0.0, out=err)
    return np.sqrt(err, out=err).sum(axis=2) / (np.sqrt(m) * Y.shape[2])


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


_DUAL_MIN_RATIO = 1e-6  # smallest / largest eigenvalue of a local Gram matrix accepted by the dual path


def _helmert(m: int) -> np.ndarray:
    """Orthonormal basis of the vectors orthogonal to ``ones(m)``, shape (m, m - 1) (Helmert contrasts)."""
    B = np.zeros((m, m - 1))
    for j in range(1, m):
        B[:j, j - 1] = 1.0 / np.sqrt(j * (j + 1))
        B[j, j - 1] = -j / np.sqrt(j * (j + 1))
    return B


def _eig_desc(K: np.ndarray):
    """Eigen-decomposition of symmetric K (b, r, r), largest first: eigenvalues (b, r) clipped at 0,
    eigenvectors (b, r, r), and whether each problem is conditioned enough for the dual path (b,)."""
    lam, W = np.linalg.eigh(K)
    lam, W = lam[:, ::-1], W[:, :, ::-1]
    ok = lam[:, -1] >= _DUAL_MIN_RATIO * lam[:, 0]
    return np.maximum(lam, 0.0), W, ok


def _ridge_cutoff_dual(XQ: np.ndarray, Y: np.ndarray, m1: int, alphas: np.ndarray, rcond: float):
    """:func:`_ridge_cutoff` for a batch of locally centred problems with no more rows than columns
    (``m <= d_x``), from m x m Gram matrices instead of SVDs of the m x d_x rows.

    Parameters
    ----------
    XQ : numpy.ndarray, shape (b, m + 1, d_x)
        Per problem the m training rows, fold 1 first (rows ``[0, m1)``), then fold 2, then the query;
        all centred on the mean of the m training rows.
    Y : numpy.ndarray, shape (b, m, d_y)
        Targets of the training rows, centred the same way.
    m1 : int
        Rows of fold 1.
    alphas : numpy.ndarray, shape (n_alpha,)
        Relative cutoffs.
    rcond : float
        Absolute singular-value threshold of the fold fits (as :func:`_ridge_cutoff`).

    Returns
    -------
    pred : numpy.ndarray, shape (b, 1, d_y)
        Predictions for the queries.
    ok : numpy.ndarray, shape (b,), bool
        Problems whose Gram matrices were conditioned well enough; the others must be redone by
        :func:`_ridge_cutoff`.

    Notes
    -----
    Why: each fold's SVD ``X_f = U S V^T`` enters only through U, S and products with rows of X, and
    ``X_f X_f^T = U S^2 U^T``, so ``X_o V S^-1 = (X_o X_f^T) U S^-2`` and ``q V S^-1 = (q X^T) U S^-2``:
    one batched Gram product and three eigen-decompositions of at most 15 x 15 matrices replace three
    SVDs of 15 x 256 matrices per point (LAPACK ``gesdd`` calls were half of LFRE's time). The full fit's
    rows are centred, so ``ones(m)`` spans the null space of its Gram matrix: it is projected out
    (:func:`_helmert`), and the zero singular value the SVD path drops (it is below every cutoff) is
    never formed. Eigenvalues of a Gram matrix carry an absolute error of about ``m eps lambda_max``, so
    a problem is accepted only if every eigenvalue is at least ``1e-6`` of the largest: its singular
    values then agree with the SVD's to about 1e-10 relative (tests compare both paths).
    """
    b, m1q, _ = XQ.shape
    m = m1q - 1
    K = XQ @ np.swapaxes(XQ, 1, 2)  # (b, m + 1, m + 1): the query's products come with the Gram
    folds = (slice(0, m1), slice(m1, m))
    ok = np.ones(b, dtype=bool)
    fits = []
    for f in folds:
        lam, W, good = _eig_desc(K[:, f, f])
        ok &= good
        fits.append((lam, np.sqrt(lam), W))
    s_max = np.maximum(fits[0][1][:, 0], fits[1][1][:, 0])
    scaled = alphas[None, :] * s_max[:, None]  # (b, n_alpha)
    loss = np.zeros((b, alphas.size))
    for (lam, s, W), f, o in zip(fits, folds, folds[::-1]):
        n_fit = (s > rcond).sum(axis=1)
        uty = np.swapaxes(W, 1, 2) @ Y[:, f]  # (b, r, d_y)
        xv = (K[:, o, f] @ W) / np.where(lam > 0, lam, 1.0)[:, None, :]  # X_o V S^-1, (b, m_o, r)
        n_alpha = np.minimum(n_fit[:, None], (s[:, None, :] > scaled[:, :, None]).sum(axis=2))
        loss += np.take_along_axis(_truncation_rmse(xv, uty, Y[:, o]), n_alpha, axis=1) / 2.0
    cut = scaled[np.arange(b), loss.argmin(axis=1)]  # first of equal losses, as the SVD path
    B = _helmert(m)
    lam, W, good = _eig_desc(B.T @ K[:, :m, :m] @ B)
    ok &= good
    U = B @ W  # (b, m, m - 1)
    inv = np.where(np.sqrt(lam) > cut[:, None], 1.0 / np.where(lam > 0, lam, 1.0), 0.0)
    coef = (K[:, m:, :m] @ U) * inv[:, None, :]  # q V S^-1 over the kept directions, (b, 1, m - 1)
    return (coef @ np.swapaxes(U, 1, 2)) @ Y, ok


def _local_predictions(XQ: np.ndarray, Y: np.ndarray, m1: int, alphas: np.ndarray) -> np.ndarray:
    """Predictions (b, 1, d_y) of the cutoff ridge fitted on every local problem (arguments as
    :func:`_ridge_cutoff_dual`): the dual path where it applies (``m <= d_x`` and well-conditioned Gram
    matrices), :func:`_ridge_cutoff` (SVDs) for the rest."""
    b, m1q, d_x = XQ.shape
    m = m1q - 1
    fold1, fold2 = np.arange(m1), np.arange(m1, m)
    if m > d_x:
        return _ridge_cutoff(XQ[:, :m], Y, fold1, fold2, alphas, XQ[:, m:])
    rcond = max(m, d_x) * np.finfo(np.float64).eps
    pred, ok = _ridge_cutoff_dual(XQ, Y, m1, alphas, rcond)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        pred[bad] = _ridge_cutoff(XQ[bad, :m], Y[bad], fold1, fold2, alphas, XQ[bad, m:])
    return pred


def _sqdist_pairs(Q: np.ndarray, X: np.ndarray, cand: np.ndarray, chunk: int = 256) -> np.ndarray:
    """``||Q_i - X_cand[i, c]||^2`` in float64 from explicit differences, shape cand.shape."""
    out = np.empty(cand.shape)
    for s in range(0, cand.shape[0], chunk):
        diff = X[cand[s:s + chunk]] - Q[s:s + chunk, None, :]
        out[s:s + chunk] = np.einsum("bcd,bcd->bc", diff, diff)
    return out


def _local_neighbours(Xtr: np.ndarray, Xte: np.ndarray, k: int) -> np.ndarray:
    """The k nearest training rows of every test row, ascending by (squared distance, index), shape (n_te, k).

    Distances are exact float64 values from explicit differences. Candidates come from faiss's float32
    exhaustive search (``IndexFlatL2``; the fastest exact search in the dependencies, half the cost of the
    float64 GEMM plus a partition over whole rows that this replaced): ``m = k + max(4, k // 4)`` per row,
    each within ``eps_i = (2 d + 16) 2^-24 (|q_i|^2 + max_j |x_j|^2)`` of the exact value (bound derived in
    :mod:`._pairwise`; rows are centred on the training mean by :func:`_scale`). A row is accepted when
    every training row outside its candidates is provably farther than its k-th neighbour,
    ``D32[m-1] - eps_i > d_k^2``; the rows that fail (many exact ties) are recomputed against all training
    rows. The result is therefore the exact k-NN list with ties to the lower index, whatever the rounding.
    """
    import faiss

    n_tr, d = Xtr.shape
    m = min(n_tr, k + max(4, k // 4))
    sq_tr = np.einsum("ij,ij->i", Xtr, Xtr)
    if m >= n_tr:
        cand = np.broadcast_to(np.arange(n_tr), (Xte.shape[0], n_tr))
        ok = np.ones(Xte.shape[0], dtype=bool)
        e2 = _sqdist_pairs(Xte, Xtr, cand)
    else:
        index = faiss.IndexFlatL2(d)
        index.add(np.ascontiguousarray(Xtr, dtype=np.float32))
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # BLAS still runs its GEMM on every core; OpenMP heaps on busy cores: 2x slower
        try:
            D32, cand = index.search(np.ascontiguousarray(Xte, dtype=np.float32), m)
        finally:
            faiss.omp_set_num_threads(threads)
        cand = cand.astype(np.int64)
        e2 = _sqdist_pairs(Xte, Xtr, cand)
        eps = (2 * d + 16) * 2.0**-24 * (np.einsum("ij,ij->i", Xte, Xte) + sq_tr.max())
        kth = np.sort(e2, axis=1)[:, k - 1]
        ok = D32[:, m - 1].astype(np.float64) - eps > kth
    order = np.lexsort((cand, e2), axis=1)[:, :k]
    nbr = np.take_along_axis(cand, order, axis=1)
    allidx = np.arange(n_tr)
    for i in np.flatnonzero(~ok):
        diff = Xtr - Xte[i]
        nbr[i] = np.lexsort((allidx, np.einsum("ij,ij->i", diff, diff)))[:k]
    return nbr


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
    neighbours = _local_neighbours(Xtr, Xte, k)[:, np.concatenate([f1, f2])]  # fold 1's rows first
    rows = np.concatenate([Xtr, Xte])  # the query row of a local problem is gathered with its neighbours
    total = 0.0
    for s in range(0, te.size, batch):
        nbr = neighbours[s:s + batch]
        XQ = rows[np.concatenate([nbr, tr.size + np.arange(s, s + nbr.shape[0])[:, None]], axis=1)]
        XQ -= XQ[:, :k].mean(axis=1, keepdims=True)
        LY = Ytr[nbr]  # (b, k, d_y)
        my = LY.mean(axis=1, keepdims=True)
        LY -= my
        pred = my[:, 0] + _local_predictions(XQ, LY, f1.size, alphas)[:, 0]
        total += float(((Yte[s:s + batch] - pred) ** 2).sum())
    return float(np.sqrt(total / te.size))


def feature_reconstruction_error(X, Y, *, local: bool = False, n_local_points: int = 15,
                                 seed: int = SKMATTER_SEED) -> float:
    """GFRE (``local=False``) or LFRE (``local=True``) of reconstructing Y from X; see the module docstring."""
    if local:
        return local_reconstruction_error(X, Y, n_local_points, seed=seed)
    return global_reconstruction_error(X, Y, seed=seed)
