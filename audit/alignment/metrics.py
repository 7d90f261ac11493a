"""Kernel and neighbourhood alignment between two paired embeddings: mutual k-NN, CKA, CKNNA.

All functions take ``X`` of shape (n, d_a) and ``Y`` of shape (n, d_b) whose rows describe the same n
structures (same order) and return a float in [0, 1] for aligned-vs-unrelated comparisons (unbiased
estimators can be slightly negative).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial.distance import pdist

from ._pairwise import double_centred_inner, pairwise_sums, u_centred_inner
from ._validation import check_k, check_pair
from .neighbour_cache import NeighbourCache
from .neighbours import l2_normalise_rows, neighbour_search

__all__ = ["mutual_knn", "cka", "cknna", "median_heuristic_sigma", "CKNNA_VARIANTS", "NeighbourCache"]


def _in_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``out[i, t] = a[i, t] in b[i]`` for index arrays a, b of shape (n, k) with distinct entries per row.

    Keys ``i * n + j`` of the row-sorted b are globally sorted, so one vectorised binary search answers
    every membership (O(n k log(n k)); ``numpy.isin`` hashes and was 5 times slower here).
    """
    n = a.shape[0]
    base = np.arange(n, dtype=np.int64)[:, None] * n
    kb = (base + np.sort(b, axis=1)).ravel()
    ka = (base + a).ravel()
    pos = np.minimum(np.searchsorted(kb, ka), kb.size - 1)
    return (kb[pos] == ka).reshape(a.shape)


def _search(cache, key_obj, Z, m, metric, backend):
    if cache is None:
        return neighbour_search(Z, m, metric=metric, backend=backend, exact_values=False)
    return cache.search(key_obj, Z, m, metric, backend)


def mutual_knn(X, Y, k: int = 10, *, metric: str = "cosine", backend: str = "auto",
               cache: NeighbourCache | None = None) -> float:
    """Mutual k-nearest-neighbour alignment.

    ``m = (1/n) sum_i |N_k^X(i) ∩ N_k^Y(i)| / k`` where ``N_k^X(i)`` is the set of the k nearest
    neighbours of row i in X (self excluded, ties to the lower index; see :func:`knn`).
    Huh et al. (2024), "The Platonic Representation Hypothesis", ICML, Sec. 2. The default,
    ``metric="cosine"``, is the reference code's definition (platonic-rep ``mutual_knn``: the top-k inner
    products of L2-normalised rows, self excluded); ``"euclidean"`` ranks the rows as given.

    Parameters
    ----------
    X : array-like, shape (n, d_a)
    Y : array-like, shape (n, d_b)
    k : int
        Neighbours per row, ``1 <= k <= n - 1``.
    metric : {"cosine", "euclidean"}
        Neighbour metric in both spaces. Cosine (the reference) makes the score invariant to rotation and
        scaling of either space, and to a separate positive scale of every row; Euclidean to rotation,
        isotropic scaling and translation.
    backend : {"auto", "faiss", "numpy"}
        Search backend of :func:`knn` (same result either way: only the neighbour sets are used, and rows
        whose set the float32 search leaves uncertain are refined in float64).
    cache : NeighbourCache, optional
        Reuse the searches of earlier calls on the same ``X`` / ``Y`` objects.

    Returns
    -------
    float
        In [0, 1]; 1 when the neighbourhoods coincide, about ``k / (n - 1)`` for unrelated spaces.
    """
    X0, Y0 = X, Y
    X, Y = check_pair(X, Y)
    k = check_k(k, X.shape[0])
    # only the neighbour sets matter: rows whose set is certain from the float32 search are not refined
    ix = _search(cache, X0, X, k, metric, backend).indices
    iy = _search(cache, Y0, Y, k, metric, backend).indices
    return float(_in_rows(ix, iy).sum(axis=1).mean() / k)


def median_heuristic_sigma(X: np.ndarray, max_rows: int = 1000, seed: int = 0) -> float:
    """Median of the pairwise Euclidean distances (i < j) of ``X``, the usual RBF bandwidth.

    Computed on all rows if ``n <= max_rows``, else on ``max_rows`` rows drawn without replacement with
    ``numpy.random.default_rng(seed)``. Returns 1.0 if all distances are zero.
    """
    if X.shape[0] > max_rows:
        X = X[np.sort(np.random.default_rng(seed).choice(X.shape[0], max_rows, replace=False))]
    med = float(np.median(pdist(X)))
    return med if med > 0 else 1.0


def _linear_hsic_terms(Xc: np.ndarray, Yc: np.ndarray, unbiased: bool):
    """(HSIC(K,L), HSIC(K,K), HSIC(L,L)) for linear kernels of centred features, feature-space form."""
    n = Xc.shape[0]

    def frob2(A, B):  # ||A^T B||_F^2 = tr(K L) with K = A A^T, L = B B^T
        if n < max(A.shape[1], B.shape[1]):  # Gram form is cheaper when d > n
            return float(np.einsum("ij,ij->", A @ A.T, B @ B.T))
        M = A.T @ B
        return float(np.einsum("ij,ij->", M, M))

    if not unbiased:
        # tr(K H L H) = tr(K L) for centred features; the 1/(n-1)^2 factor cancels in CKA
        return frob2(Xc, Yc), frob2(Xc, Xc), frob2(Yc, Yc)

    def hsic_u(A, B):
        da = np.einsum("ij,ij->i", A, A)  # diag(K)
        db = np.einsum("ij,ij->i", B, B)
        tr = frob2(A, B) - float(da @ db)  # tr(K~ L~), K~ = K - diag(K)
        ra = A @ A.sum(axis=0) - da  # K~ 1
        rb = B @ B.sum(axis=0) - db
        return (tr + ra.sum() * rb.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(ra @ rb)) / (
            n * (n - 3)
        )

    return hsic_u(Xc, Yc), hsic_u(Xc, Xc), hsic_u(Yc, Yc)


def cka(
    X,
    Y,
    kernel: str = "linear",
    *,
    unbiased: bool = False,
    sigma_scale: float = 1.0,
    sigma_max_rows: int = 1000,
    seed: int = 0,
    block_size: int = 512,
    precision: str = "auto",
) -> float:
    """Centred kernel alignment.

    ``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with the biased estimator
    ``HSIC(K, L) = tr(K H L H) / (n - 1)^2``, ``H = I - 11^T / n`` (Gretton et al. 2005; Kornblith et al.
    2019, "Similarity of Neural Network Representations Revisited", ICML). With ``unbiased=True`` the
    unbiased HSIC of Song et al. (2012) is used instead (needs n >= 4; may be slightly negative).

    * ``kernel="linear"``: ``K = X X^T``. Computed in feature space,
      ``||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F)`` with column-centred X_c, Y_c, so the cost
      is O(n d_a d_b) (the n x n Gram form is used only when d > n).
    * ``kernel="rbf"``: ``K_ij = exp(-||x_i - x_j||^2 / (2 sigma_X^2))`` with the median heuristic
      ``sigma_X = sigma_scale * median_{i<j} ||x_i - x_j||`` (on at most ``sigma_max_rows`` seeded rows,
      see :func:`median_heuristic_sigma`), separately for X and Y. Computed over the upper triangle in row
      blocks without storing n x n matrices (O(n^2 (d_a + d_b) / 2) time, memory O(block_size * n); see
      :mod:`._pairwise`): HSIC of the double-centred kernels from the sums
      ``sum(Kc * Lc) = sum(K * L) - (2/n) sum_i rowsum_i(K) rowsum_i(L) + sum(K) sum(L) / n^2``.
      With float32 distances (``precision``, the default above 1,500 rows) the result agrees with the
      float64 computation to about 1e-7 relative (tests require 1e-6).

    Linear CKA is invariant to rotations, isotropic scaling and translations of either space; RBF CKA
    with the median heuristic is too (the bandwidth scales with the data).

    Parameters
    ----------
    X : array-like, shape (n, d_a)
    Y : array-like, shape (n, d_b)
    kernel : {"linear", "rbf"}
    unbiased : bool
        Use the unbiased HSIC estimator.
    sigma_scale : float
        Multiplier of the median-heuristic bandwidth (RBF only).
    sigma_max_rows : int
        Rows used for the median heuristic (RBF only).
    seed : int
        Seed for the rows of the median heuristic (RBF only, when n > ``sigma_max_rows``).
    block_size : int
        Rows per block (RBF only).
    precision : {"auto", "float32", "float64"}
        Working precision of the RBF kernel blocks: ``"auto"`` is float64 below 1,500 rows and float32
        GEMMs above (sums always accumulate in float64). RBF only.

    Returns
    -------
    float
        CKA in [0, 1] (biased estimator); NaN if either self-similarity is zero (constant embedding).
    """
    X, Y = check_pair(X, Y, min_rows=4 if unbiased else 2)
    n = X.shape[0]
    if kernel == "linear":
        kl, kk, ll = _linear_hsic_terms(X - X.mean(axis=0), Y - Y.mean(axis=0), unbiased)
    elif kernel == "rbf":
        if not sigma_scale > 0:
            raise ValueError(f"sigma_scale must be > 0; got {sigma_scale}")
        cx = -1.0 / (2.0 * (sigma_scale * median_heuristic_sigma(X, sigma_max_rows, seed)) ** 2)
        cy = -1.0 / (2.0 * (sigma_scale * median_heuristic_sigma(Y, sigma_max_rows, seed)) ** 2)

        def rbf(c):
            def f(d2):
                np.multiply(d2, d2.dtype.type(c), out=d2)
                return np.exp(d2, out=d2)

            return f

        s = pairwise_sums(X, Y, rbf(cx), rbf(cy), block_size=block_size, zero_diagonal=unbiased,
                          precision=precision)
        inner = u_centred_inner if unbiased else double_centred_inner
        kl = inner(n, s.s_ab, s.r_a, s.r_b)
        kk = inner(n, s.s_aa, s.r_a, s.r_a)
        ll = inner(n, s.s_bb, s.r_b, s.r_b)
    else:
        raise ValueError(f"kernel must be 'linear' or 'rbf'; got {kernel!r}")
    den = np.sqrt(kk * ll) if kk > 0 and ll > 0 else 0.0
    return float(kl / den) if den > 0 else float("nan")


def _sparse_hsic(A: sp.csr_matrix, B: sp.csr_matrix, n: int, unbiased: bool) -> float:
    """HSIC of two (possibly non-symmetric) sparse n x n matrices, scaled as the reference code scales it.

    * biased: ``tr(A H B H)`` with ``H = I - 11^T / n``, *not* divided by ``(n - 1)^2`` (platonic-rep's
      ``hsic_biased``; the factor cancels in every ratio except against the denominator epsilon of
      :func:`cknna`). The diagonal is kept.
    * unbiased: Song et al. (2012), eq. 5, on ``A`` and ``B`` with their diagonals set to zero, divided by
      ``n (n - 3)`` (platonic-rep's ``hsic_unbiased``). The callers pass zero-diagonal matrices.
    """
    tr_ab = float(A.multiply(B.T).sum())  # tr(A B) = sum_ij A_ij B_ji
    ra, ca = np.asarray(A.sum(axis=1)).ravel(), np.asarray(A.sum(axis=0)).ravel()
    rb, cb = np.asarray(B.sum(axis=1)).ravel(), np.asarray(B.sum(axis=0)).ravel()
    sa, sb = float(ra.sum()), float(rb.sum())
    if unbiased:
        # sum(A B) = 1^T A B 1 = (column sums of A) . (row sums of B)
        val = tr_ab + sa * sb / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(ca @ rb)
        return val / (n * (n - 3))
    # tr(A H B H) = tr(AB) - (1/n)(1^T B A 1 + 1^T A B 1) + (1^T A 1)(1^T B 1)/n^2
    return tr_ab - (float(cb @ ra) + float(ca @ rb)) / n + sa * sb / n**2


#: Named CKNNA variants: keyword arguments of :func:`cknna` (``k`` and ``backend`` aside).
CKNNA_VARIANTS = {
    "unbiased": {"unbiased": True, "self_pairs": False, "eps": 1e-6},
    "biased": {"unbiased": False, "self_pairs": True, "eps": 1e-6},
    "biased-no-self": {"unbiased": False, "self_pairs": False, "eps": 0.0},
}


def cknna(X, Y, k: int = 25, *, unbiased: bool = True, self_pairs: bool | None = None, eps: float = 1e-6,
          backend: str = "auto", cache: NeighbourCache | None = None) -> float:
    """Centred kernel nearest-neighbour alignment (CKNNA) of Huh et al. (2024), as their code computes it.

    Huh, Cheung, Wang & Isola (2024), "The Platonic Representation Hypothesis", ICML, Appendix A, and its
    reference code (github.com/minyoungg/platonic-rep, ``metrics.py``, ``AlignmentMetrics.cknna``, which
    the study arXiv 2512.03750 used with k = 25). Definition implemented here:

    1. L2-normalise every row of X and Y (the reference's ``compute_score`` does so before every metric);
       kernels ``K = X X^T``, ``L = Y Y^T`` (cosine similarities).
    2. Neighbour sets ``N^X(i)``: the k entries of row i of K with the highest value, where

       * unbiased (default, the reference's default): the diagonal is excluded, so ``N^X(i)`` holds the k
         most similar *other* rows;
       * biased: the reference takes the top k of K itself, diagonal included, so for distinct rows
         ``N^X(i)`` is row i itself plus its k - 1 most similar other rows (``self_pairs=True``; an exact
         duplicate direction ties with i, and the reference's choice between them is unspecified).
         ``self_pairs=False`` gives the biased estimator on the self-excluded sets (this project's
         former default).

       Ties among other rows go to the lower index (:func:`knn` with ``metric="cosine"``).
    3. Masks ``M^XY_ij = 1[j in N^X(i) and j in N^Y(i)]``, ``M^X_ij = 1[j in N^X(i)]``,
       ``M^Y_ij = 1[j in N^Y(i)]`` (not symmetric).
    4. ``CKNNA = HSIC(M^XY∘K, M^XY∘L) / (sqrt(HSIC(M^X∘K, M^X∘K) HSIC(M^Y∘L, M^Y∘L)) + eps)`` with the
       reference's scaling of HSIC (see :func:`_sparse_hsic`: unbiased divided by ``n (n - 3)``, biased
       not divided). ``eps = 1e-6`` is what the reference code adds to the denominator; with the unbiased
       HSIC, which is O(k / n), it lowers CKNNA by a relative ``~ 1e-6 n / k``-order amount (0.01% at
       n = 500, k = 25), so ``eps=0`` gives the published formula exactly.

    With ``k = n - 1`` (self excluded) every off-diagonal pair is kept and CKNNA equals CKA on cosine
    kernels with the diagonal removed. Everything is sparse (O(n k) memory) after the two k-NN searches.

    Speed and precision: the neighbour sets are exact (:func:`~.neighbours.neighbour_search`; equal to
    :func:`knn`'s), and the kernel values come from the same search, ``x.y = (|x|^2 + |y|^2 -
    |x - y|^2) / 2`` on the unit rows: float64 for rows the search had to refine, the search's precision
    for the others (float32 from 1,500 rows with ``"auto"``, or with ``backend="faiss"``; measured
    agreement with float64 values 1e-8 to 1e-9 relative, tests require 1e-6).

    Parameters
    ----------
    X : array-like, shape (n, d_a)
    Y : array-like, shape (n, d_b)
    k : int
        Neighbours (the reference's ``topk``), ``1 <= k <= n - 1`` (default 25 as in the study).
    unbiased : bool
        Unbiased HSIC (Song et al. 2012; needs n >= 4), the reference's default; False for the biased one.
    self_pairs : bool, optional
        Count row i among its own k neighbours. Default: as the reference, i.e. True for the biased and
        False for the unbiased estimator (the unbiased estimator ignores the diagonal, so True is refused).
    eps : float
        Added to the denominator (reference: 1e-6).
    backend : {"auto", "faiss", "numpy"}
        k-NN search backend: the same neighbour sets either way; kernel values in float32 precision with
        faiss where the search is not refined (see above).
    cache : NeighbourCache, optional
        Reuse the searches of earlier calls on the same ``X`` / ``Y`` objects (e.g. :func:`mutual_knn`'s with
        the same k: the unbiased CKNNA searches the same cosine k-NN sets).

    Returns
    -------
    float
        CKNNA; ``1 / (1 + eps / self-alignment)`` for identical inputs. NaN if a self-alignment is zero.
    """
    X0, Y0 = X, Y
    X, Y = check_pair(X, Y, min_rows=4 if unbiased else 2)
    n = X.shape[0]
    k = check_k(k, n)
    if self_pairs is None:
        self_pairs = not unbiased
    if self_pairs and unbiased:
        raise ValueError("self_pairs=True needs the biased estimator (the unbiased HSIC ignores the diagonal)")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0; got {eps}")
    m = k - 1 if self_pairs else k  # neighbours other than i
    rows = np.repeat(np.arange(n), m)
    parts = {}
    for name, Z, Z0 in (("x", X, X0), ("y", Y, Y0)):
        if m == 0:
            parts[name] = (np.zeros((n, 0), np.int64), np.zeros((n, 0)), l2_normalise_rows(Z))
            continue
        res = _search(cache, Z0, Z, m, "cosine", backend)
        # cosine similarity from the squared chord distance, x.y = (|x|^2 + |y|^2 - |x - y|^2) / 2
        # (zero rows stay zero); float64 where refined, search precision elsewhere
        nrm = np.einsum("ij,ij->i", res.points, res.points)
        parts[name] = (res.indices, 0.5 * (nrm[:, None] + nrm[res.indices] - res.d2), res.points)
    (ix, kx, px), (iy, ly, py) = parts["x"], parts["y"]
    in_y = _in_rows(ix, iy).ravel() if m else np.zeros(0, bool)  # pairs of N^X(i) also in N^Y(i)
    in_x = _in_rows(iy, ix).ravel() if m else np.zeros(0, bool)  # the same pairs, located in the Y lists
    cx, cy, kx, ly = ix.ravel(), iy.ravel(), kx.ravel(), ly.ravel()
    if self_pairs:  # (i, i) is in every mask; its kernel value is |x_i|^2 (1, or 0 for a zero row)
        diag = np.arange(n)
        dx, dy = np.einsum("ij,ij->i", px, px), np.einsum("ij,ij->i", py, py)
        rows_x = np.concatenate([rows[in_y], diag])
        rows_y = np.concatenate([rows[in_x], diag])
        kx_in, cx_in = np.concatenate([kx[in_y], dx]), np.concatenate([cx[in_y], diag])
        ly_in, cy_in = np.concatenate([ly[in_x], dy]), np.concatenate([cy[in_x], diag])
        rows_all, kx, cx, ly, cy = (np.concatenate([rows, diag]), np.concatenate([kx, dx]),
                                    np.concatenate([cx, diag]), np.concatenate([ly, dy]),
                                    np.concatenate([cy, diag]))
    else:
        rows_x, rows_y, rows_all = rows[in_y], rows[in_x], rows
        kx_in, cx_in, ly_in, cy_in = kx[in_y], cx[in_y], ly[in_x], cy[in_x]

    def matrix(r, c, v):
        return sp.csr_matrix((v, (r, c)), shape=(n, n))

    kl = _sparse_hsic(matrix(rows_x, cx_in, kx_in), matrix(rows_y, cy_in, ly_in), n, unbiased)
    Kx = matrix(rows_all, cx, kx)
    Ly = matrix(rows_all, cy, ly)
    kk = _sparse_hsic(Kx, Kx, n, unbiased)
    ll = _sparse_hsic(Ly, Ly, n, unbiased)
    if not (kk > 0 and ll > 0):
        return float("nan")
    return float(kl / (np.sqrt(kk * ll) + eps))
