"""QUESTS entropy, diversity, differential entropy and overlap of atomic environments, at scale.

Definitions (those of the ``quests`` package, ``quests/entropy.py`` and ``quests/cli/overlap.py``, with
``K_h(a, b) = exp(-|a - b|^2 / (2 h^2))`` on QUESTS descriptors, natural logarithms):

* **entropy** ``H(X) = -(1/n) sum_i log[(1/n) sum_j K_h(x_i, x_j)]`` (nats; the sum includes ``j = i``);
  ``exp(H)`` reads as an effective number of distinct environments.
* **diversity** ``D(X) = log sum_i 1 / sum_j K_h(x_i, x_j)`` (nats).
* **differential entropy** of an environment ``y`` against a set ``X``:
  ``dH(y | X) = -log sum_j K_h(y, x_j)`` (unnormalised, as ``quests.entropy.delta_entropy``): negative or
  zero inside ``X``'s support, large where ``X`` has nothing near ``y``.
* **overlap** of A in B: the share of A's environments with ``dH(a | B) < eps`` (``eps = 1e-5``, quests'
  default), i.e. inside B's support. ``1 - overlap`` is QUESTS novelty.

The bandwidth defaults to quests' ``DEFAULT_BANDWIDTH`` (0.015 in descriptor units); ``bandwidth="volume"``
uses ``quests.entropy.get_bandwidth`` of the mean volume per atom (QUESTS' density rule), a float is used as
given.

The sums are computed by :class:`~.kernel.KernelIndex` (truncated at ``radius_sigmas`` bandwidths, merged
near-identical environments, faiss IVF beyond ``exact_max`` points); every result carries the measured
error of ``log p`` on a seeded sample of queries against exact float64 sums (:func:`~.kernel.measured_error`).
The exact all-pairs values of the ``quests`` package are available as :func:`exact_entropy` and
:func:`exact_delta_entropy` (for checks; quadratic cost).
"""
from __future__ import annotations

import time

import numpy as np

from .kernel import (
    DEFAULT_K,
    DEFAULT_MERGE_TOLERANCE,
    DEFAULT_NPROBE,
    DEFAULT_RADIUS_SIGMAS,
    EXACT_MAX,
    KernelIndex,
    measured_error,
    merge_duplicates,
)

__all__ = [
    "QUESTS_BANDWIDTH",
    "OVERLAP_EPS",
    "ENTROPY_DEFINITION",
    "DIVERSITY_DEFINITION",
    "DELTA_ENTROPY_DEFINITION",
    "OVERLAP_DEFINITION",
    "resolve_bandwidth",
    "environment_entropy",
    "differential_entropy",
    "overlap",
    "overlap_and_radius_novelty",
    "RADIUS_NOVELTY_DEFINITION",
    "exact_entropy",
    "exact_delta_entropy",
]


def _quests_default() -> float:
    from quests.entropy import DEFAULT_BANDWIDTH

    return float(DEFAULT_BANDWIDTH)


#: quests' default bandwidth (descriptor units).
QUESTS_BANDWIDTH = 0.015
#: quests' threshold on dH for "inside the support" (``quests.compression.compress.EPSILON``).
OVERLAP_EPS = 1e-5

ENTROPY_DEFINITION = ("QUESTS entropy H = -(1/n) sum_i log[(1/n) sum_j exp(-|x_i - x_j|^2 / 2h^2)] over the "
                      "per-atom QUESTS descriptors (nats)")
DIVERSITY_DEFINITION = "QUESTS diversity D = log sum_i 1 / sum_j exp(-|x_i - x_j|^2 / 2h^2) (nats)"
DELTA_ENTROPY_DEFINITION = "QUESTS differential entropy dH(y | X) = -log sum_j exp(-|y - x_j|^2 / 2h^2) (nats)"
OVERLAP_DEFINITION = ("QUESTS overlap: share of A's environments a with dH(a | B) < eps (inside B's support); "
                      "QUESTS novelty = 1 - overlap")


def resolve_bandwidth(bandwidth=None, volume_per_atom_A3: float | None = None) -> tuple[float, str]:
    """The bandwidth ``h`` (descriptor units) and the rule that gave it.

    Parameters
    ----------
    bandwidth : None, "quests", "volume" or float
        None / "quests": quests' ``DEFAULT_BANDWIDTH``; "volume": ``quests.entropy.get_bandwidth`` of
        ``volume_per_atom_A3``; a positive number: used as given.
    volume_per_atom_A3 : float, optional
        Mean volume per atom (Å^3/atom) for "volume".

    Raises
    ------
    ValueError
        Unknown rule, non-positive value, or "volume" without a volume.
    """
    if bandwidth is None or bandwidth == "quests":
        return _quests_default(), "quests default (quests.entropy.DEFAULT_BANDWIDTH)"
    if bandwidth == "volume":
        if volume_per_atom_A3 is None or not np.isfinite(volume_per_atom_A3) or volume_per_atom_A3 <= 0:
            raise ValueError("bandwidth 'volume' needs periodic frames (a mean volume per atom)")
        from quests.entropy import get_bandwidth

        h = float(get_bandwidth(float(volume_per_atom_A3)))
        return h, f"quests.entropy.get_bandwidth of the mean volume per atom ({volume_per_atom_A3:.2f} Å^3/atom)"
    try:
        h = float(bandwidth)
    except (TypeError, ValueError):
        raise ValueError(f"bandwidth must be 'quests', 'volume' or a positive number, got {bandwidth!r}") from None
    if not np.isfinite(h) or h <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth!r}")
    return h, "given"


def _check(X, name: str) -> None:
    if getattr(X, "ndim", 0) != 2:
        raise ValueError(f"{name} must be a 2-D array (n_environments, n_features), got shape "
                         f"{getattr(X, 'shape', None)}")


def _index(U, w, h, radius_sigmas, exact_max, nprobe, seed) -> KernelIndex:
    return KernelIndex(h, radius_sigmas=radius_sigmas, k=DEFAULT_K, exact_max=exact_max, nprobe=nprobe,
                       seed=seed).fit(U, w)


def _approximation(index_info: dict, merged, radius_sigmas: float) -> dict:
    return {
        "method": (f"kernel sums over the {DEFAULT_K} nearest merged environments (faiss) plus, where the "
                   f"{DEFAULT_K}th is within the radius, the remainder within it estimated from a reference "
                   "subsample"),
        "radius_sigmas": float(radius_sigmas),
        "truncation_bound_per_term": float(np.exp(-0.5 * radius_sigmas**2)),
        "merge_tolerance": merged.tolerance,
        "n_unique": int(merged.X.shape[0]),
        "index": dict(index_info),
    }


def _shard_sums(path: str, start: int, stop: int, weights: np.ndarray, h: float, index_kwargs: dict) -> np.ndarray:
    """Kernel sums of every merged environment (rows of the ``.npy`` at ``path``) over rows ``start:stop``."""
    U = np.load(path, mmap_mode="r")
    index = KernelIndex(h, **index_kwargs).fit(np.asarray(U[start:stop]), weights)
    return index.sums(U)[0]


def _sharded_sums(U: np.ndarray, w: np.ndarray, h: float, n_shards: int, client, workdir,
                  index_kwargs: dict) -> tuple[np.ndarray, dict]:
    """Kernel sums of the rows of ``U`` over ``U``, the reference split in ``n_shards`` row ranges.

    Each shard is indexed on its own and queried with every row; the per-shard sums (exact ``k`` nearest of
    the shard plus the shard's unbiased dense remainder) add up to an estimate of the total. Serially, one
    shard's index is in memory at a time; with a Dask ``client`` each shard is one task on a worker, which
    reads the merged environments from a ``.npy`` file in ``workdir`` (a path every worker can read).
    """
    import os
    import tempfile

    n = U.shape[0]
    bounds = np.linspace(0, n, n_shards + 1).astype(np.int64)
    total = np.zeros(n)
    tmpdir = tempfile.mkdtemp(prefix="monoculture_env_", dir=workdir)
    path = os.path.join(tmpdir, "merged.npy")
    np.save(path, U)
    try:
        if client is None:
            for a, b in zip(bounds[:-1], bounds[1:]):
                total += _shard_sums(path, int(a), int(b), w[a:b], h, index_kwargs)
        else:
            from distributed import as_completed

            futures = [client.submit(_shard_sums, path, int(a), int(b), w[a:b], h, index_kwargs, pure=False)
                       for a, b in zip(bounds[:-1], bounds[1:])]
            for fut in as_completed(futures):
                total += fut.result()
                fut.release()
    finally:
        os.unlink(path)
        os.rmdir(tmpdir)
    info = {"index": "sharded", "n_shards": int(n_shards), "backend": "dask" if client is not None else "serial",
            "shard_index": {k: v for k, v in index_kwargs.items()}}
    return total, info


def environment_entropy(X: np.ndarray, bandwidth=None, *, radius_sigmas: float = DEFAULT_RADIUS_SIGMAS,
                        merge_tolerance: float = DEFAULT_MERGE_TOLERANCE, exact_max: int = EXACT_MAX,
                        nprobe: int = DEFAULT_NPROBE, seed: int = 0, n_check: int = 256,
                        return_log_p: bool = False, n_shards: int = 1, client=None,
                        workdir: str | None = None, n_queries: int | None = None) -> dict:
    """QUESTS entropy and diversity of a set of environments, by truncated kernel sums.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d)
        Per-atom QUESTS descriptors (a memory map is read in chunks; the merged set is held in memory).
    bandwidth : None, "quests" or float
        See :func:`resolve_bandwidth` ("volume" must be resolved by the caller).
    radius_sigmas, merge_tolerance, exact_max, nprobe, seed
        See :mod:`.kernel`.
    n_check : int
        Queries whose kernel sums are recomputed exactly (0: no check).
    return_log_p : bool
        Add ``_log_p`` (n,) = ``log sum_j K(x_i, x_j)`` of every environment.
    n_shards : int
        Split the reference into this many row ranges, each indexed on its own (memory: one shard's index
        at a time serially); the sums are added. 1 (default): one index.
    client : distributed.Client, optional
        Run the shards as Dask tasks (``n_shards`` defaults then to 4 per worker).
    workdir : str, optional
        Folder for the merged environments the shards read (default: the system's temporary folder; on a
        cluster, a path every worker can read).
    n_queries : int, optional
        Estimate the entropy and the diversity from this many environments drawn uniformly (seeded, with
        replacement) instead of all of them: each drawn environment's kernel sum is still over the whole
        set, so this only replaces the mean over ``i`` by a sample mean, whose standard error is reported
        (``standard_error_nats``). The index then uses ``sqrt(n) / 4`` IVF lists (cheap to build). For sets
        of millions of environments where only the entropy is wanted.

    Returns
    -------
    dict
        ``entropy_nats``, ``effective_environments`` (``exp(H)``), ``diversity_nats``, ``n_environments``,
        ``bandwidth``, ``bandwidth_rule``, ``definition``, ``diversity_definition``, ``approximation``,
        ``measured_error`` (``log p`` errors on the checked queries; the entropy error is at most their
        mean absolute value), ``standard_error_nats`` (0 unless ``n_queries``), ``time_s``.
    """
    _check(X, "X")
    h, rule = resolve_bandwidth(bandwidth)
    n = int(X.shape[0])
    if n == 0:
        raise ValueError("no environment to compute an entropy of")
    t0 = time.perf_counter()
    merged = merge_duplicates(X, h, merge_tolerance)
    w = merged.weights
    if client is not None and n_shards == 1:
        n_shards = 4 * max(1, len(client.scheduler_info().get("workers", {})))
    sampled = n_queries is not None and 0 < n_queries < n and client is None and n_shards == 1
    if sampled:
        rng = np.random.default_rng(seed + 2)
        draw = rng.choice(len(w), size=int(n_queries), replace=True, p=w / w.sum())
        index = KernelIndex(h, radius_sigmas=radius_sigmas, k=DEFAULT_K, exact_max=exact_max, nprobe=nprobe,
                            seed=seed, nlist=max(1, int(round(np.sqrt(len(w)) / 4)))).fit(merged.X, w)
        p_draw, _ = index.sums(merged.X[draw])
        index_info = {**index.info_, "n_queries": int(n_queries)}
        log_p = np.log(p_draw)
        H = float(np.log(n) - log_p.mean())
        D = float(np.log(n * np.mean(1.0 / p_draw)))
        se = float(log_p.std(ddof=1) / np.sqrt(len(log_p))) if len(log_p) > 1 else float("nan")
    elif n_shards > 1 or client is not None:
        kw = {"radius_sigmas": radius_sigmas, "k": DEFAULT_K, "exact_max": exact_max, "nprobe": nprobe,
              "seed": seed}
        p_u, index_info = _sharded_sums(merged.X, w, h, int(n_shards), client, workdir, kw)
    else:
        index = _index(merged.X, w, h, radius_sigmas, exact_max, nprobe, seed)
        p_u, _ = index.sums(merged.X)
        index_info = index.info_
    if not sampled:
        H = float(-np.sum(w * np.log(p_u / n)) / n)
        D = float(np.log(np.sum(w / p_u)))
        se = 0.0
    elapsed = time.perf_counter() - t0
    out = {
        "entropy_nats": H, "effective_environments": float(np.exp(H)), "diversity_nats": D,
        "n_environments": n, "bandwidth": h, "bandwidth_rule": rule, "definition": ENTROPY_DEFINITION,
        "diversity_definition": DIVERSITY_DEFINITION,
        "approximation": _approximation(index_info, merged, radius_sigmas),
        "standard_error_nats": se, "time_s": elapsed,
    }
    if n_check > 0 and sampled:
        m = min(n_check, len(draw))
        out["measured_error"] = measured_error(p_draw[:m], merged.X[draw[:m]], X, h, n_check=m, seed=seed)
    elif n_check > 0:
        out["measured_error"] = measured_error(p_u[merged.inverse], X, X, h, n_check=n_check, seed=seed)
    if return_log_p and not sampled:
        out["_log_p"] = np.log(p_u)[merged.inverse]
    return out


def differential_entropy(Y: np.ndarray, X: np.ndarray, bandwidth=None, *,
                         radius_sigmas: float = DEFAULT_RADIUS_SIGMAS,
                         merge_tolerance: float = DEFAULT_MERGE_TOLERANCE, exact_max: int = EXACT_MAX,
                         nprobe: int = DEFAULT_NPROBE, seed: int = 0, n_check: int = 256) -> tuple[np.ndarray, dict]:
    """QUESTS differential entropy ``dH(y | X)`` of every row of ``Y``.

    Parameters
    ----------
    Y : numpy.ndarray, shape (m, d)
        Query environments.
    X : numpy.ndarray, shape (n, d)
        Reference environments.
    bandwidth, radius_sigmas, merge_tolerance, exact_max, nprobe, seed, n_check
        See :func:`environment_entropy`.

    Returns
    -------
    dH : numpy.ndarray, shape (m,), float64
        Nats (finite: the 32 nearest reference points are always summed).
    info : dict
        ``bandwidth``, ``bandwidth_rule``, ``definition``, ``approximation`` (with ``n_dense``: queries
        whose remainder was estimated), ``measured_error``, ``time_s``.
    """
    _check(Y, "Y")
    _check(X, "X")
    if Y.shape[1] != X.shape[1]:
        raise ValueError(f"Y and X must have the same width, got {Y.shape[1]} and {X.shape[1]}")
    if X.shape[0] == 0:
        raise ValueError("the reference set X holds no environment")
    h, rule = resolve_bandwidth(bandwidth)
    t0 = time.perf_counter()
    mx = merge_duplicates(X, h, merge_tolerance)
    my = merge_duplicates(Y, h, merge_tolerance)
    index = _index(mx.X, mx.weights, h, radius_sigmas, exact_max, nprobe, seed)
    p_u, dense = index.sums(my.X)
    p = p_u[my.inverse]
    dH = -np.log(np.maximum(p, np.finfo(np.float64).tiny))
    info = {"bandwidth": h, "bandwidth_rule": rule, "definition": DELTA_ENTROPY_DEFINITION,
            "approximation": {**_approximation(index.info_, mx, radius_sigmas),
                              "n_dense": int(np.sum(my.weights[dense]))},
            "time_s": time.perf_counter() - t0}
    if n_check > 0 and Y.shape[0]:
        info["measured_error"] = measured_error(p, Y, X, h, n_check=n_check, seed=seed)
    return dH, info


def overlap(A: np.ndarray, B: np.ndarray, bandwidth=None, *, eps: float = OVERLAP_EPS, **kwargs) -> dict:
    """QUESTS overlap of A in B: the share of A's environments inside B's support.

    Parameters
    ----------
    A : numpy.ndarray, shape (n_A, d)
    B : numpy.ndarray, shape (n_B, d)
    bandwidth
        See :func:`resolve_bandwidth`.
    eps : float
        Threshold on ``dH(a | B)`` (nats; quests' default 1e-5).
    **kwargs
        Passed to :func:`differential_entropy`.

    Returns
    -------
    dict
        ``overlap``, ``novelty`` (= 1 - overlap), ``n_a``, ``n_b``, ``eps``, ``bandwidth``, ``definition``,
        ``mean_delta_entropy_nats`` (of A's environments), ``approximation``, ``measured_error``.
    """
    dH, info = differential_entropy(A, B, bandwidth, **kwargs)
    share = float(np.mean(dH < eps)) if dH.size else 0.0
    return {"overlap": share, "novelty": 1.0 - share, "n_a": int(A.shape[0]), "n_b": int(B.shape[0]),
            "eps": float(eps), "bandwidth": info["bandwidth"], "bandwidth_rule": info["bandwidth_rule"],
            "definition": OVERLAP_DEFINITION, "mean_delta_entropy_nats": float(dH.mean()) if dH.size else 0.0,
            "approximation": info["approximation"], "measured_error": info.get("measured_error"),
            "time_s": info["time_s"]}


def exact_entropy(X: np.ndarray, bandwidth=None, batch_size: int = 4096) -> float:
    """Exact QUESTS entropy (nats) by ``quests.entropy.entropy`` over all pairs (quadratic cost)."""
    from quests.entropy import entropy

    h, _ = resolve_bandwidth(bandwidth)
    return float(entropy(np.ascontiguousarray(X, dtype=np.float64), h, batch_size=batch_size))


def exact_delta_entropy(Y: np.ndarray, X: np.ndarray, bandwidth=None, batch_size: int = 4096) -> np.ndarray:
    """Exact QUESTS differential entropy (nats), shape (m,), by ``quests.entropy.delta_entropy``."""
    from quests.entropy import delta_entropy

    h, _ = resolve_bandwidth(bandwidth)
    return np.asarray(delta_entropy(np.ascontiguousarray(Y, dtype=np.float64),
                                    np.ascontiguousarray(X, dtype=np.float64), h, batch_size=batch_size))


RADIUS_NOVELTY_DEFINITION = ("monoculture radius novelty: share of A's environments farther than r from every "
                             "B environment, r = the 0.95 quantile of B's leave-one-out nearest-neighbour "
                             "distances (audit.coverage.compare)")


def overlap_and_radius_novelty(A: np.ndarray, B: np.ndarray, bandwidth=None, *, max_rows: int = 20_000,
                               seed: int = 0, **kwargs) -> dict:
    """QUESTS overlap of A in B beside the project's radius novelty, each labelled with its definition.

    The two answer different questions: QUESTS overlap asks whether each environment of A lies inside the
    kernel support of B (a fixed bandwidth, comparable with published QUESTS numbers); radius novelty asks
    whether it lies farther from B than B's own typical nearest-neighbour spacing (a scale set by B).

    Parameters
    ----------
    A : numpy.ndarray, shape (n_A, d)
    B : numpy.ndarray, shape (n_B, d)
    bandwidth
        See :func:`resolve_bandwidth`.
    max_rows : int
        Radius novelty is computed on seeded subsamples of at most this many rows of each set (its exact
        nearest-neighbour search is quadratic); QUESTS overlap on all rows.
    seed : int
    **kwargs
        Passed to :func:`overlap`.

    Returns
    -------
    dict
        ``quests_overlap`` (:func:`overlap`'s summary with ``definition``) and ``radius_novelty``
        (``novelty_of_a``, ``coverage_of_b_by_a``, ``radius``, ``radius_rule``, ``n_a``, ``n_b``,
        ``definition``).
    """
    from ..coverage.compare import compare_arrays

    ov = overlap(A, B, bandwidth, seed=seed, **kwargs)
    rng = np.random.default_rng(seed)

    def sub(X):
        if X.shape[0] <= max_rows:
            return np.asarray(X)
        return np.asarray(X[np.sort(rng.choice(X.shape[0], max_rows, replace=False))])

    rad = compare_arrays(sub(A), sub(B), seed=seed)
    return {
        "quests_overlap": {k: ov[k] for k in ("overlap", "novelty", "eps", "bandwidth", "bandwidth_rule",
                                              "n_a", "n_b", "definition", "measured_error")},
        "radius_novelty": {"novelty_of_a": rad["novelty_of_a"], "coverage_of_b_by_a": rad["coverage_of_b_by_a"],
                           "radius": rad["radius"], "radius_rule": rad["radius_rule"], "n_a": rad["n_a"],
                           "n_b": rad["n_b"], "definition": RADIUS_NOVELTY_DEFINITION},
    }
