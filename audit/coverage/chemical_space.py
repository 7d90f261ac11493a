"""Chemical-space coverage of one descriptor: k-NN distances, Vendi score, QUESTS entropy, near-duplicates, UMAP.

These need all points at once, so they run on the seeded reservoir sample of
:class:`~monoculture.audit.coverage.reservoir.DescriptorReservoir` (``sample_size`` frames, default 5,000);
every result says so under ``sample``. Every distance below is taken after the descriptor columns are
standardised (:class:`~monoculture.audit.coverage.scaling.FeatureScaler`, fitted on this sample or, with a
reference, on the reference's sample; recorded under ``scaling``), so "descriptor units" are standard
deviations. Definitions:

* **k-NN distances**: Euclidean distance (descriptor units) from each sampled frame to its ``k`` nearest
  other sampled frames (exact: found in the float64 pass over all pairwise distances that also gives the
  entropy and the Vendi score, :func:`pairwise_pass`, then recomputed from the vectors).
* **Vendi score** (Friedman & Dieng 2023): ``exp(-sum_i l_i log l_i)`` over the eigenvalues ``l_i`` of
  ``K / n``, with the Gaussian kernel ``K_ij = exp(-|x_i - x_j|^2 / (2 h^2))`` and ``h`` = the median
  pairwise distance of the points used (median heuristic). Computed on the first ``vendi_max`` (2,000)
  frames of the sample (O(n^3) eigendecomposition). Between 1 (all identical) and n (all distinct).
* **QUESTS entropy** (Schwalbe-Koda et al. 2025): ``H = -(1/n) sum_i log[(1/n) sum_j exp(-|x_i - x_j|^2 /
  (2 h^2))]`` in nats, self term included; ``exp(H)`` is the effective number of distinct environments.
  ``h`` is ``entropy_bandwidth``: by default 1.0, one standard deviation of the standardised descriptor
  (the same for every dataset, and with a reference every dataset is scaled by the reference, so entropies
  of a run compare). ``exp(H)`` then counts frames that are more than about ``h`` apart. A bandwidth taken
  from the data (the median 1-NN distance, the rule before 2026-12) made every set look alike: 71 different
  elemental solids scored 2.2 effective frames and 71 copies of three cells had no defined value; with
  ``h = 1`` they score about 71 and 3 (``docs/chemical_space.md``). Computed here in float64 and, as a
  cross-check on request (``quests_crosscheck=True``, ``audit --quests-crosscheck``), by
  ``quests.entropy.entropy`` on the first ``CROSSCHECK_MAX`` (1,000) sampled rows with the same bandwidth; the
  difference on those rows is reported (``quests_abs_diff``, ``quests_crosscheck_n``). Off by default since
  2026-12-06 (issue #22): the agreement is pinned by the tests (to 1e-6 relative), and quests' parallel numba
  kernel cost a first audit about 3 s of compilation, most of what it paid beyond a later one.
* **Near-duplicates**: pairs of sampled frames that are the same structure to within an absolute tolerance
  but not exact duplicates (:func:`~monoculture.audit.coverage.duplicates.near_duplicates`: pymatgen's
  StructureMatcher for crystals, bond graph and sorted interatomic distances for molecules, the InChIKey
  connectivity for SMILES); exact duplicates are counted over every frame by
  :class:`~monoculture.audit.coverage.duplicates.ExactDuplicates`.
* **UMAP**: 2-D UMAP layout (``n_neighbors = min(15, n - 1)``, ``min_dist = 0.1``, seed ``seed``) of the
  first ``umap_max`` frames of the sample, on the exact neighbour graph of the k-NN step (one search serves
  both), computed by :func:`~monoculture.audit.coverage.map_layout.umap_layout` (umap-learn's algorithm
  with PCA initialisation and :data:`UMAP_EPOCHS` (200) epochs, compiled once per numba cache; ``method``,
  ``init`` and ``n_epochs`` are in the result), returned as coordinates + ids + dataset labels for the
  report.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa

from .duplicates import MAX_PAIRS, near_duplicates
from ..neighbours import knn_self_indexed as knn_self
from .map_layout import MAP_METHOD
from .reservoir import DescriptorReservoir, DescriptorSample
from .scaling import FeatureScaler

__all__ = ["joint_umap", "ChemicalSpaceCoverage", "vendi_score", "quests_entropy", "pairwise_pass",
           "SAMPLE_RULE", "ENTROPY_BANDWIDTH", "UMAP_EPOCHS", "UMAP_METHOD"]

#: How the sample is drawn (copied into every result).
SAMPLE_RULE = ("bottom-k reservoir: the frames with the smallest seeded 64-bit SipHash of 'dataset/id' "
               "(uniform without replacement, exact under merge)")

_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)

#: UMAP's ``n_neighbors`` (the point itself included, as in umap-learn) and ``min_dist``.
UMAP_NEIGHBORS = 15
UMAP_MIN_DIST = 0.1
#: Optimisation epochs of the map: umap-learn's default above 10,000 points (500 below). On 5,000 NCI
#: molecules and 5,000 MPTrj-like crystals 200 epochs keep the trustworthiness of the 500-epoch map
#: within 0.01 (0.619 vs 0.627, 0.989 vs 0.991; umap-learn's map: 0.622, 0.976) for 0.4x the time
#: (``benchmarks/commands.py``, ``docs/command_speed.md``).
UMAP_EPOCHS = 200
#: How the map is computed (``method`` of every map result, ``parameters.map_method`` of the audit).
UMAP_METHOD = MAP_METHOD

#: How the k-NN step of :meth:`ChemicalSpaceCoverage.result` searches (``knn.index`` of the result).
PAIRWISE_INDEX = "exact: float64 brute force, one pass shared with the entropy and the Vendi score"

#: Default QUESTS bandwidth of the chemical-space entropy, in standardised descriptor units.
ENTROPY_BANDWIDTH = 1.0
#: Rows on which the entropy is recomputed by the ``quests`` package as a cross-check (the first rows of the
#: sample, itself uniform): the check costs as much as the entropy, so it is bounded.
CROSSCHECK_MAX = 1000


def _pairwise_sq(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    X = X.astype(np.float64)
    Y = Y.astype(np.float64)
    d2 = (X * X).sum(1)[:, None] + (Y * Y).sum(1)[None, :] - 2.0 * X @ Y.T
    return np.maximum(d2, 0.0)


def vendi_score(X: np.ndarray | None, bandwidth: float | None = None, *,
                d2: np.ndarray | None = None) -> tuple[float, float]:
    """Vendi score of the rows of ``X`` with a Gaussian kernel.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d)
        The points (may be None when ``d2`` is given).
    bandwidth : float, optional
        Kernel width ``h`` (descriptor units); default the median pairwise distance (off-diagonal).
    d2 : numpy.ndarray, shape (n, n), optional
        Their squared distances, when already computed (:func:`pairwise_pass`).

    Returns
    -------
    score : float
        ``exp`` of the Shannon entropy of the eigenvalues of ``K / n``; in [1, n].
    bandwidth : float
        The ``h`` used.
    """
    d2 = _pairwise_sq(X, X) if d2 is None else d2
    n = d2.shape[0]
    if bandwidth is None:
        off = np.sqrt(d2[np.triu_indices(n, 1)])
        bandwidth = float(np.median(off)) if off.size else 1.0
    if bandwidth <= 0:  # every point identical
        return 1.0, 0.0
    K = np.exp(-d2 / (2.0 * bandwidth**2))
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    # one BLAS thread: LAPACK's symmetric eigensolver gains little from threads, and on a busy machine
    # OpenBLAS's waiting threads made this 2,000 x 2,000 call take 2-28 s instead of 0.8 s (load average 10)
    with threadpool_limits(limits=1, user_api="blas"):
        lam = np.clip(np.linalg.eigvalsh(K / n), 0.0, None)
    lam = lam[lam > 1e-15]
    return float(np.exp(-(lam * np.log(lam)).sum())), float(bandwidth)


def quests_entropy(X: np.ndarray, bandwidth: float, chunk: int = 1024) -> float:
    """QUESTS dataset entropy (nats) of the rows of ``X`` with Gaussian bandwidth ``bandwidth``.

    ``H = -(1/n) sum_i log((1/n) sum_j exp(-|x_i - x_j|^2 / (2 h^2)))``, computed in float64 by row chunks.
    """
    n = X.shape[0]
    logs = np.empty(n)
    for s in range(0, n, chunk):
        d2 = _pairwise_sq(X[s : s + chunk], X)
        logs[s : s + chunk] = np.log(np.exp(-d2 / (2.0 * bandwidth**2)).sum(1) / n)
    return float(-logs.mean())


def pairwise_pass(X: np.ndarray, k: int, bandwidth: float | None, n_block: int = 0,
                  chunk: int = 1024) -> dict:
    """One pass over the float64 squared distances of the rows of ``X``, by row chunks, serving three analyses.

    The k-NN distances, the QUESTS entropy and the Vendi score each need the pairwise distances of the
    sample; computed once here. On 5,000 molecules x 2,060 columns, profiled at a load average of about 10
    on 2 cores, the separate computations (a float32 faiss search, its float64 distance recomputation, the
    entropy's float64 pass, the Vendi block) took 10.7 s, this pass 7.9 s. The entropy is the same sum as
    :func:`quests_entropy` (same chunks, same float64 arithmetic).

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d)
    k : int
        Nearest *other* rows per row (capped at ``n - 1``).
    bandwidth : float or None
        Entropy bandwidth ``h``; None skips the entropy.
    n_block : int
        Size of the leading block ``d2[:n_block, :n_block]`` returned (Vendi score, cross-check).
    chunk : int
        Rows per block (a block holds ``chunk * n`` float64 values).

    Returns
    -------
    dict
        ``dist``, ``idx`` (n, k): each row's ``k`` nearest other rows, ascending by Euclidean distance
        recomputed from the vectors in float64 (exact for duplicates; ties by index); ``log_density``
        (n,): ``log((1/n) sum_j exp(-d_ij^2 / (2 h^2)))`` or None; ``block``: ``d2[:n_block, :n_block]``.
    """
    from ..neighbours.indexed import _exact_distances, _sorted

    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]
    k = int(min(k, n - 1))
    idx = np.zeros((n, k), np.int64)
    logs = np.empty(n) if bandwidth is not None else None
    block = np.empty((n_block, n_block)) if n_block else None
    for s in range(0, n, chunk):
        d2 = _pairwise_sq(X[s : s + chunk], X)
        rows = np.arange(d2.shape[0])
        if logs is not None:
            logs[s : s + chunk] = np.log(np.exp(-d2 / (2.0 * bandwidth**2)).sum(1) / n)
        if block is not None and s < n_block:
            block[s : min(s + chunk, n_block)] = d2[: n_block - s, :n_block]
        if k:
            d2[rows, s + rows] = np.inf  # leave-one-out
            part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < n - 1 else np.argsort(d2, axis=1)[:, :k]
            idx[s : s + chunk] = part
    dist = _exact_distances(X, X, idx)
    dist, idx = _sorted(dist, idx)
    return {"dist": dist, "idx": idx, "log_density": logs, "block": block}


class ChemicalSpaceCoverage:
    """Reservoir-sampled chemical-space analysis of one descriptor.

    Parameters
    ----------
    sample_size : int
        Reservoir capacity (frames).
    seed : int
        Sampling and UMAP seed.
    k : int
        Neighbours of the k-NN distance distribution.
    descriptor : str
        Name of the descriptor (copied to the result).
    vendi_max, umap_max : int
        Sample frames used by the Vendi score / UMAP (the first ones in sample order).
    entropy_bandwidth : float
        QUESTS bandwidth in standardised descriptor units (default :data:`ENTROPY_BANDWIDTH`, 1.0).
    max_near_duplicate_pairs : int
        Candidate pairs checked at most by the near-duplicate rule.
    umap : bool
        Compute the UMAP embedding.
    quests_crosscheck : bool
        Also compute the entropy with the ``quests`` package (default off: see the module docstring).
    """

    name = "chemical_space"

    def __init__(self, sample_size: int = 5000, seed: int = 0, k: int = 10, descriptor: str = "descriptor",
                 vendi_max: int = 2000, umap_max: int = 5000, entropy_bandwidth: float | None = None,
                 max_near_duplicate_pairs: int = MAX_PAIRS, umap: bool = True, quests_crosscheck: bool = False):
        self.sample_size = sample_size
        self.seed = seed
        self.k = k
        self.descriptor = descriptor
        self.vendi_max = vendi_max
        self.umap_max = umap_max
        self.entropy_bandwidth = entropy_bandwidth
        self.max_near_duplicate_pairs = max_near_duplicate_pairs
        self.umap = umap
        self.quests_crosscheck = quests_crosscheck
        self.reservoir_ = DescriptorReservoir(sample_size, seed)

    def update(self, batch: pa.Table, descriptors: np.ndarray) -> "ChemicalSpaceCoverage":
        """Offer a batch with its descriptor rows, shape (batch.num_rows, d); returns self."""
        self.reservoir_.update(batch, descriptors)
        return self

    def merge(self, other: "ChemicalSpaceCoverage") -> "ChemicalSpaceCoverage":
        """Merge another accumulator (same parameters); returns self."""
        self.reservoir_.merge(other.reservoir_)
        return self

    def sample(self) -> DescriptorSample | None:
        """The reservoir sample (None before any descriptor row)."""
        return self.reservoir_.sample()

    def result(self, scaler: FeatureScaler | None = None) -> dict:
        """JSON-ready summary (see the module docstring for every definition).

        Parameters
        ----------
        scaler : FeatureScaler, optional
            Column scaling (a reference's); default fitted on this sample.

        Returns
        -------
        dict
            ``{"not_applicable": reason}`` without descriptors or with fewer than 3 sampled frames; else
            ``sample`` (``rule``, ``seed``, ``capacity``, ``size``, ``n_seen``, ``descriptor``, ``dim``),
            ``knn`` (``k``, ``index``, ``nn1_quantiles`` / ``nnk_quantiles`` ``{"q0.00": d, ...}``,
            ``nn1_mean``, ``nn1_histogram`` ``{"edges", "counts"}`` with 20 equal bins on [0, max]),
            ``vendi`` (``score``, ``n``, ``bandwidth``, ``kernel``),
            ``entropy`` (``entropy_nats``, ``effective_environments``, ``bandwidth``, ``bandwidth_rule``,
            ``n``, ``quests_entropy_nats`` / ``quests_abs_diff`` or ``quests_error``),
            ``scaling`` (:meth:`FeatureScaler.describe`),
            ``near_duplicates`` (:func:`~monoculture.audit.coverage.duplicates.near_duplicates`),
            ``umap`` (``ids``, ``datasets``, ``x``, ``y``, ``n_neighbors``, ``min_dist``, ``seed``, ``n``,
            ``method``, ``init``, ``n_epochs``, ``a``, ``b``, ``n_edges``, ``negative_sample_rate``) or
            ``{"not_applicable": reason}``.
        """
        s = self.sample()
        if s is None:
            return {"not_applicable": "no descriptor array was given for this dataset"}
        n = len(s)
        info = {"rule": SAMPLE_RULE, "seed": int(self.seed), "capacity": int(self.sample_size), "size": n,
                "n_seen": int(s.n_seen), "descriptor": self.descriptor, "dim": int(s.X.shape[1])}
        if n < 3:
            return {"not_applicable": f"only {n} frames with descriptors (need 3)", "sample": info}
        scaler = scaler if scaler is not None else self.scaler()
        X = scaler.transform(s.X)
        k_map = min(UMAP_NEIGHBORS, self.umap_max, n) - 1 if self.umap else 0
        h, h_rule = self._bandwidth()
        nv = min(n, self.vendi_max)
        m = min(n, CROSSCHECK_MAX) if self.quests_crosscheck else 0
        pw = pairwise_pass(X, max(self.k, k_map), h if h > 0 else None, n_block=max(nv, m))
        dist_all, idx_all = pw["dist"], pw["idx"]
        kinfo = {"index": PAIRWISE_INDEX}
        k = min(self.k, n - 1)
        dist, idx = dist_all[:, :k], idx_all[:, :k]
        nn1 = dist[:, 0]
        q = lambda v: {f"q{p:.2f}": float(np.quantile(v, p)) for p in _QUANTILES}  # noqa: E731
        hmax = float(nn1.max()) if nn1.max() > 0 else 1.0
        hc, he = np.histogram(nn1, bins=20, range=(0.0, hmax))
        out = {
            "sample": info,
            "scaling": scaler.describe(),
            "knn": {"k": int(dist.shape[1]), "index": kinfo["index"], "nn1_quantiles": q(nn1),
                    "nnk_quantiles": q(dist[:, -1]), "nn1_mean": float(nn1.mean()),
                    "nn1_histogram": {"edges": [float(e) for e in he], "counts": [int(c) for c in hc]}},
        }
        score, h_v = vendi_score(None, d2=pw["block"][:nv, :nv])
        out["vendi"] = {"score": score, "n": nv, "bandwidth": h_v,
                        "kernel": "gaussian exp(-d^2/(2 h^2)), h = median pairwise distance"}
        # The map is drawn in a second thread while this one checks the near-duplicates (pymatgen, RDKit:
        # Python holding the GIL) and the entropy cross-check: the map's optimisation releases the GIL
        # (numba ``nogil``), so on two cores the two overlap. Started after the Vendi score, whose one-BLAS-
        # thread limit is process-wide and must not be lifted by the map's own limit (PCA) meanwhile. Every
        # result is the same as in sequence (seeded, single-threaded per step). The near-duplicates come
        # before the entropy (the document keeps its key order): a first audit's warm-up process
        # (:mod:`.compiled`) gets that long to compile the cross-check's kernel.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monoculture-map") if self.umap else None
        try:
            mapped = pool.submit(self._umap, s, X, neighbours=(dist_all, idx_all)) if pool else None
            near = near_duplicates(s, idx, dist, max_pairs=self.max_near_duplicate_pairs)
            out["entropy"] = self._entropy(X, pw, h, h_rule)
            out["near_duplicates"] = near
            out["umap"] = mapped.result() if mapped else {"not_applicable": "UMAP disabled"}
        except BaseException:
            # an error or Ctrl-C returns at once, without waiting for the map's optimisation (the thread ends
            # with it; its result is dropped)
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            raise
        if pool is not None:
            pool.shutdown(wait=True)
        return out

    def scaler(self) -> FeatureScaler:
        """The column scaling fitted on this sample (call only when there is a sample)."""
        s = self.sample()
        return FeatureScaler.fit(s.X, fitted_on=", ".join(sorted(set(s.datasets.tolist()))) or "sample")

    def _bandwidth(self) -> tuple[float, str]:
        if self.entropy_bandwidth is not None:
            return float(self.entropy_bandwidth), "given"
        return ENTROPY_BANDWIDTH, "fixed: 1 standard deviation of the standardised descriptor"

    def _entropy(self, X: np.ndarray, pw: dict, h: float, rule: str) -> dict:
        if h <= 0:
            return {"not_applicable": f"bandwidth must be positive, got {h}", "bandwidth": h}
        H = float(-pw["log_density"].mean())
        res = {"entropy_nats": H, "effective_environments": float(np.exp(H)), "bandwidth": h,
               "bandwidth_rule": rule, "n": int(X.shape[0])}
        if self.quests_crosscheck:
            try:
                from .compiled import wait

                wait("quests")  # a warm-up process compiling the kernel: let it finish (then it is loaded)
                from quests.entropy import entropy as q_entropy

                m = min(X.shape[0], CROSSCHECK_MAX)  # the first m sampled rows: a uniform subsample
                Hq = float(q_entropy(np.ascontiguousarray(X[:m], dtype=np.float64), h, batch_size=2000))
                if m == X.shape[0]:
                    mine = H
                else:  # the same entropy on those m rows, from the leading block of the pass
                    mine = float(-np.log(np.exp(-pw["block"][:m, :m] / (2.0 * h**2)).sum(1) / m).mean())
                res["quests_crosscheck_n"] = m
                res["quests_entropy_nats"] = Hq
                res["quests_abs_diff"] = abs(Hq - mine)
            except Exception as exc:  # pragma: no cover - depends on the installed quests
                res["quests_error"] = f"{type(exc).__name__}: {exc}"
        return res

    def _umap(self, s: DescriptorSample, X: np.ndarray, neighbours: tuple | None = None) -> dict:
        """The 2-D map of the first ``umap_max`` sampled rows (:func:`~.map_layout.umap_layout`).

        ``neighbours`` = (dist, idx), shape (n, >= 14), of a leave-one-out k-NN search of all rows of ``X``
        (the k-NN step's): used as the map's graph when the map covers every row, so the search is not
        repeated.
        """
        m = min(len(s), self.umap_max)
        if m < 4:
            return {"not_applicable": f"UMAP needs at least 4 frames, the sample has {m}"}
        from .map_layout import umap_layout

        nn = min(UMAP_NEIGHBORS, m - 1)
        if neighbours is not None and m == X.shape[0] and neighbours[1].shape[1] >= nn - 1:
            dist, idx = neighbours[0][:, : nn - 1], neighbours[1][:, : nn - 1]
        else:
            dist, idx, _ = knn_self(X[:m], nn - 1, seed=self.seed)
        own = np.arange(m)[:, None]
        emb, info = umap_layout(X[:m], np.hstack([own, idx]), np.hstack([np.zeros((m, 1)), dist]),
                                seed=int(self.seed), min_dist=UMAP_MIN_DIST, n_epochs=UMAP_EPOCHS)
        return {"ids": [str(i) for i in s.ids[:m]], "datasets": [str(d) for d in s.datasets[:m]],
                "x": [float(v) for v in emb[:, 0]], "y": [float(v) for v in emb[:, 1]],
                "n_neighbors": nn, "min_dist": UMAP_MIN_DIST, "seed": int(self.seed), "n": m, **info}

    @staticmethod
    def to_frame(result: dict) -> pd.DataFrame:
        """The UMAP coordinates of a :meth:`result` dict (columns id, dataset, x, y); empty if none."""
        u = result.get("umap", {})
        if "x" not in u:
            return pd.DataFrame(columns=["id", "dataset", "x", "y"])
        return pd.DataFrame({"id": u["ids"], "dataset": u["datasets"], "x": u["x"], "y": u["y"]})


def joint_umap(samples: list, seed: int = 0, max_per_dataset: int = 2000,
               scaler: FeatureScaler | None = None) -> dict:
    """2-D UMAP of several datasets' reservoir samples together (the comparison map of the report).

    Parameters
    ----------
    samples : list of DescriptorSample
        One per dataset, same descriptor (same width); the first ``max_per_dataset`` rows of each (the
        reservoir order is a seeded uniform sample) are used.
    seed : int
        UMAP ``random_state``.
    scaler : FeatureScaler, optional
        Column scaling (the reference's); default fitted on the rows mapped.

    Returns
    -------
    dict
        ``ids``, ``datasets``, ``x``, ``y``, ``n_neighbors``, ``min_dist``, ``seed``, ``n``, or
        ``{"not_applicable": reason}``.
    """
    parts = [s.take(np.arange(min(len(s), max_per_dataset))) for s in samples if s is not None and len(s)]
    if len(parts) < 2:
        return {"not_applicable": "a joint map needs descriptor samples of at least two datasets"}
    widths = {p.X.shape[1] for p in parts}
    if len(widths) != 1:
        return {"not_applicable": f"descriptor widths differ: {sorted(widths)}"}
    merged = DescriptorSample.concat(parts)
    scaler = scaler if scaler is not None else FeatureScaler.fit(merged.X, fitted_on="the mapped rows")
    result = ChemicalSpaceCoverage(sample_size=len(merged), seed=seed, umap_max=len(merged))._umap(
        merged, scaler.transform(merged.X))
    if "not_applicable" not in result:
        result["max_per_dataset"] = int(max_per_dataset)
        result["scaling"] = scaler.describe()
    return result
