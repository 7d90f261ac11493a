"""The 2-D chemical-space map: UMAP's layout (McInnes, Healy & Melville 2018) on a given exact k-NN graph.

Why our own code rather than ``umap.UMAP``: the algorithm is umap-learn 0.5's, step for step (fuzzy
simplicial set of the k-NN graph, ``a`` / ``b`` fitted to ``min_dist``, stochastic gradient descent with
negative sampling, learning rate decaying linearly to 0, gradients clipped to 4), but umap-learn cannot be
imported without compiling pynndescent (measured here: 17 s in a process with an empty numba cache), and
its layout functions are compiled without ``cache=True``, so every process compiled them again (5-6 s).
On 5,000 molecules that was 32 s of a 60 s audit. Here the graph and the initialisation are numpy /
scipy, and the optimisation is one numba function (:mod:`._map_sgd`) compiled with ``cache=True`` (about 2 s once per numba
cache, a few ms after that).

Two documented differences from ``umap.UMAP(init="spectral")``:

* **initialisation**: the first two principal components of the (standardised) descriptor rows, scaled
  as umap-learn scales any initialisation (largest coordinate 10, Gaussian noise of 1e-4, then each axis
  to [0, 10]). umap-learn's spectral initialisation needs the Laplacian eigenvectors of the graph, and on
  a graph of several connected components (87 on 5,000 synthetic MPTrj frames) a second layout of the
  components; PCA initialisation is umap-learn's ``init="pca"`` and keeps the global structure as well
  (Kobak & Linderman, Nat. Biotechnol. 39, 156, 2021).
* **random numbers**: negative samples are drawn from numba's seeded Mersenne Twister in one thread, so a
  seed gives the same map on every run (umap-learn with a seed is deterministic too, single-threaded).

The quality of both maps is measured in ``benchmarks/commands.py`` (trustworthiness and k-NN preservation
against the descriptor space) and written in ``docs/command_speed.md``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["umap_layout", "fuzzy_graph", "find_ab_params", "MAP_METHOD", "default_epochs"]

#: How the map is computed (written into every map result as ``method``, and into the audit's ``parameters``).
MAP_METHOD = ("UMAP layout (umap-learn 0.5 algorithm, monoculture's numba port) on the exact k-NN graph, "
              "PCA initialisation")


def default_epochs(n: int) -> int:
    """umap-learn's default number of epochs: 500 up to 10,000 points, 200 above."""
    return 500 if n <= 10_000 else 200


_SMOOTH_K_TOLERANCE = 1e-5
_MIN_K_DIST_SCALE = 1e-3


def _smooth_knn_dist(dist: np.ndarray, n_iter: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """umap-learn's ``smooth_knn_dist`` (local_connectivity 1, bandwidth 1), vectorised over rows.

    Parameters
    ----------
    dist : numpy.ndarray, shape (n, k)
        Distances to the ``k`` nearest points, the point itself first (distance 0).

    Returns
    -------
    sigma, rho : numpy.ndarray, shape (n,)
        Per-point bandwidth and distance to the nearest point at a non-zero distance.
    """
    n, k = dist.shape
    target = np.log2(k)
    masked = np.where(dist > 0.0, dist, np.inf)
    rho = masked.min(axis=1)
    rho[~np.isfinite(rho)] = 0.0
    lo = np.zeros(n)
    hi = np.full(n, np.inf)
    mid = np.ones(n)
    done = np.zeros(n, bool)
    d = dist[:, 1:] - rho[:, None]
    for _ in range(n_iter):
        with np.errstate(over="ignore"):
            psum = np.where(d > 0, np.exp(-d / mid[:, None]), 1.0).sum(axis=1)
        done |= np.abs(psum - target) < _SMOOTH_K_TOLERANCE
        if done.all():
            break
        high = (psum > target) & ~done
        low = (psum <= target) & ~done
        hi[high] = mid[high]
        mid[high] = (lo[high] + hi[high]) / 2.0
        lo[low] = mid[low]
        finite = np.isfinite(hi)
        mid[low & ~finite] *= 2.0
        both = low & finite
        mid[both] = (lo[both] + hi[both]) / 2.0
    mean_row = dist.mean(axis=1)
    floor = np.where(rho > 0.0, _MIN_K_DIST_SCALE * mean_row, _MIN_K_DIST_SCALE * dist.mean())
    return np.maximum(mid, floor), rho


def fuzzy_graph(idx: np.ndarray, dist: np.ndarray):
    """UMAP's fuzzy simplicial set (fuzzy union, ``set_op_mix_ratio`` 1) of a k-NN graph.

    Parameters
    ----------
    idx, dist : numpy.ndarray, shape (n, k)
        Each point's ``k`` nearest points, itself first (index ``i``, distance 0), and their distances.

    Returns
    -------
    scipy.sparse.coo_matrix, shape (n, n)
        Symmetric membership strengths in [0, 1], duplicates summed, zeros removed.
    """
    import scipy.sparse as sp

    n, k = idx.shape
    sigma, rho = _smooth_knn_dist(dist)
    rows = np.repeat(np.arange(n), k)
    cols = idx.ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        vals = np.exp(-np.maximum(dist - rho[:, None], 0.0) / sigma[:, None]).ravel()
    vals[(dist - rho[:, None]).ravel() <= 0.0] = 1.0
    vals[cols == rows] = 0.0
    keep = cols >= 0
    a = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n))
    a.eliminate_zeros()
    at = a.T.tocsr()
    prod = a.multiply(at)
    g = (a + at - prod).tocoo()
    g.sum_duplicates()
    g.eliminate_zeros()
    return g


def find_ab_params(spread: float = 1.0, min_dist: float = 0.1) -> tuple[float, float]:
    """``a``, ``b`` of the low-dimensional kernel ``1 / (1 + a d^(2b))`` (umap-learn's least-squares fit)."""
    from scipy.optimize import curve_fit

    def curve(x, a, b):
        return 1.0 / (1.0 + a * x ** (2 * b))

    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    params, _ = curve_fit(curve, xv, yv)
    return float(params[0]), float(params[1])


def _pca_init(X: np.ndarray, seed: int, n_iter: int = 4, oversample: int = 10) -> np.ndarray:
    """First two principal-component scores of ``X`` (n, d), signs fixed (largest |score| positive).

    Randomised subspace iteration (Halko, Martinsson & Tropp 2011, algorithm 4.4: ``2 + oversample``
    seeded Gaussian directions, ``n_iter`` (4) power iterations with QR in between), in a dozen numpy
    matrix products: 0.05 s on 5,000 x 2,060, where scikit-learn's ``randomized_svd`` with the same
    settings took 1.2 s here and ARPACK (``scipy.sparse.linalg.svds``) 1-2 s.
    """
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(axis=0)
    n, d = Xc.shape
    if min(n, d) <= 2 + oversample:
        u, s, _ = np.linalg.svd(Xc, full_matrices=False)
    else:
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency

        rng = np.random.default_rng(seed)
        q = Xc @ rng.standard_normal((d, 2 + oversample))
        # QR of an (n, 12) block: one BLAS thread (threads only wait on each other at this size; on a busy
        # machine the eight threaded QRs took 1.8 s, single-threaded 0.05 s)
        with threadpool_limits(limits=1, user_api="blas"):
            for _ in range(n_iter):
                q, _ = np.linalg.qr(q)
                q = Xc @ (Xc.T @ q)
            q, _ = np.linalg.qr(q)
        ub, s, _ = np.linalg.svd(q.T @ Xc, full_matrices=False)
        u = q @ ub
    scores = np.zeros((n, 2))
    m = min(2, u.shape[1])
    scores[:, :m] = u[:, :m] * s[:m]
    for c in range(2):
        j = np.argmax(np.abs(scores[:, c]))
        if scores[j, c] < 0:
            scores[:, c] = -scores[:, c]
    return scores


def _scaled_init(scores: np.ndarray, seed: int) -> np.ndarray:
    """umap-learn's scaling of an initialisation: largest |coordinate| 10, noise 1e-4, each axis to [0, 10]."""
    rng = np.random.default_rng(seed)
    top = np.abs(scores).max()
    coords = scores * (10.0 / top) if top > 0 else scores.copy()
    coords = coords + rng.normal(scale=1e-4, size=coords.shape)
    span = coords.max(axis=0) - coords.min(axis=0)
    span[span == 0] = 1.0
    return 10.0 * (coords - coords.min(axis=0)) / span


def umap_layout(X: np.ndarray, idx: np.ndarray, dist: np.ndarray, *, seed: int = 0, min_dist: float = 0.1,
                spread: float = 1.0, n_epochs: int | None = None,
                negative_sample_rate: int = 5) -> tuple[np.ndarray, dict]:
    """2-D UMAP layout of ``n`` points from their k-NN graph (see the module docstring).

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d)
        The points (standardised descriptor rows): used only for the PCA initialisation.
    idx, dist : numpy.ndarray, shape (n, k)
        Each point's ``k`` nearest points, itself first (distance 0), and their distances (descriptor
        units); ``k`` is UMAP's ``n_neighbors``.
    seed : int
        Seed of the initialisation noise and of the negative samples.
    min_dist, spread : float
        UMAP's ``min_dist`` and ``spread``.
    n_epochs : int, optional
        Optimisation epochs (default :func:`default_epochs`: 500 up to 10,000 points).
    negative_sample_rate : int
        Negative samples per positive sample.

    Returns
    -------
    embedding : numpy.ndarray, shape (n, 2), float64
        Coordinates (arbitrary units).
    info : dict
        ``method``, ``init``, ``n_epochs``, ``a``, ``b``, ``n_edges``.
    """
    n = X.shape[0]
    n_epochs = default_epochs(n) if n_epochs is None else int(n_epochs)
    graph = fuzzy_graph(idx, dist)
    if graph.nnz and n_epochs > 10:
        graph.data[graph.data < graph.data.max() / float(n_epochs)] = 0.0
        graph.eliminate_zeros()
    a, b = find_ab_params(spread, min_dist)
    emb = _scaled_init(_pca_init(X, seed), seed)
    weights = graph.data.astype(np.float64)
    head = graph.row.astype(np.int64)
    tail = graph.col.astype(np.int64)
    if weights.size:
        eps = np.full(weights.size, -1.0)
        n_samples = n_epochs * (weights / weights.max())
        eps[n_samples > 0] = float(n_epochs) / n_samples[n_samples > 0]
        from ._map_sgd import optimize  # numba: imported only when a map is drawn
        from .compiled import wait

        wait("map")  # a warm-up process compiling the kernel (a first audit): let it finish, then load it

        emb = optimize(np.ascontiguousarray(emb), head, tail, eps, n_epochs, a, b, 1.0, 1.0,
                          float(negative_sample_rate), int(seed) % (2**32))
    info = {"method": MAP_METHOD, "init": "pca", "n_epochs": n_epochs, "a": a, "b": b,
            "n_edges": int(weights.size), "negative_sample_rate": int(negative_sample_rate)}
    return emb, info
