"""Which structures to compute next (``select``) and which to drop (``prune``), by greedy environment gain.

Gain of a candidate structure ``s`` given a reference set ``R`` (the training set plus the structures
already chosen), with the QUESTS kernel ``K`` (:mod:`.entropy`) and ``cap = radius_sigmas^2 / 2`` nats:

* **environment gain** ``G(s) = sum_k min(max(dH_k, 0), cap)`` with
  ``dH_k = -log[sum_{r in R} K(y_k, r) + sum_{l < k} K(y_k, y_l)]``: the QUESTS differential entropy of each
  of ``s``'s environments against ``R`` and the structure's earlier atoms (so 32 symmetry-equivalent atoms
  count once), clipped at zero (an environment already inside the support adds nothing) and at ``cap``
  (the differential entropy of an environment at the truncation radius of a single reference point: beyond
  it every environment is simply new). Nats. An environment with ``dH_k > 1e-5`` is *novel* (outside the
  support, as QUESTS overlap counts it).
* **coverage**: elements of ``s`` absent from ``R``, element pairs (two elements in one structure) absent
  from ``R``, and its regime (temperature x pressure x equilibrium class) when absent from ``R`` and fully
  known.

Candidates are ranked lexicographically by (new elements, new element pairs, new regime, environment gain):
a missing element is a hole that no number of environments of known elements fills, so it comes first.
Each component can only fall as ``R`` grows, so the greedy loop is *lazy* (Minoux): a candidate's stored
key is an upper bound, and only the top of the heap is re-evaluated. After each choice, the kernel sums of
the pool environments within the truncation radius of the chosen structure's environments are updated
through a faiss range search (:class:`~.kernel.KernelIndex` over the merged pool environments; exhaustive
up to 20,000 pool environments, IVF beyond, where a neighbour in a list not probed is missed and the
candidate's gain stays slightly too high). Selection stops at the budget or when no candidate adds
anything.

``prune`` runs the same loop with an empty reference, which orders the dataset from most to least
informative (a farthest-point traversal in the QUESTS kernel's sense, with coverage first); structures that
add nothing (exact and near duplicates of earlier ones) come last. The kept subset is the shortest prefix
of that order whose QUESTS entropy is at least ``keep`` times the full set's and which holds at least
``keep`` of its elements; both shares are measured on the kept subset. scikit-matter's farthest-point
sampling works on one vector per sample; it is not used because the unit chosen here is a structure (a set
of environments) and coverage comes first.
"""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..coverage._common import SYMBOLS
from .entropy import OVERLAP_EPS, environment_entropy, overlap, overlap_and_radius_novelty, resolve_bandwidth
from .kernel import (DEFAULT_MERGE_TOLERANCE, DEFAULT_NPROBE, DEFAULT_RADIUS_SIGMAS, EXACT_MAX, KernelIndex,
                     merge_duplicates)
from .sets import UNKNOWN_REGIME, EnvironmentSet, regime_name

__all__ = ["GreedyOptions", "SelectionResult", "select_structures", "prune_structures", "greedy_order",
           "GAIN_DEFINITION"]

GAIN_DEFINITION = ("candidates ranked by (new elements, new element pairs, new fully known regime, environment gain); "
                   "environment gain G(s) = sum_k min(max(dH_k, 0), radius_sigmas^2 / 2) nats, dH_k = QUESTS "
                   "differential entropy of the structure's k-th environment against the training set, the "
                   "structures already chosen and the structure's earlier atoms; greedy")


@dataclass
class GreedyOptions:
    """Parameters of the greedy loop.

    Parameters
    ----------
    bandwidth : None, "quests", "volume" or float
        See :func:`~.entropy.resolve_bandwidth` ("volume": mean volume per atom of the pool / dataset).
    radius_sigmas : float
        Truncation radius in bandwidths (also sets ``cap = radius_sigmas^2 / 2`` nats).
    merge_tolerance : float
        Merge tolerance in bandwidths (:func:`~.kernel.merge_duplicates`).
    exact_max, nprobe, seed
        Index parameters (:class:`~.kernel.KernelIndex`).
    use_regimes : bool
        Count new regimes as gain.
    """

    bandwidth: object = None
    radius_sigmas: float = DEFAULT_RADIUS_SIGMAS
    merge_tolerance: float = DEFAULT_MERGE_TOLERANCE
    exact_max: int = EXACT_MAX
    nprobe: int = DEFAULT_NPROBE
    seed: int = 0
    use_regimes: bool = True


@dataclass
class SelectionResult:
    """Ranked structures and a summary.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per ranked structure: ``rank``, ``id``, ``index`` (position of the structure in the pool /
        dataset, 0-based), ``gain_nats`` (environment gain), ``n_new_elements``, ``new_elements`` (symbols,
        space-separated), ``n_new_pairs``, ``new_pairs`` (element pairs absent so far, ``"Na-Cl"`` with the
        lighter element first, space-separated), ``new_regime``, ``n_environments``, ``n_novel_environments``,
        ``why`` (one sentence); ``prune`` adds ``kept``, and its ``index`` column is the greedy order.
    summary : dict
        Sizes, bandwidth and rule, measured entropies and shares, definitions.
    curve : dict or None
        ``prune`` only: what prefixes of the greedy order keep, ``n_structures`` (ascending prefix lengths,
        the kept one and the whole set among them), ``entropy_nats`` (QUESTS entropy of each prefix, nats),
        ``entropy_share``, ``n_elements``, ``element_share`` (shares of the full set's), one value per length.
    """

    table: pd.DataFrame
    summary: dict = field(default_factory=dict)
    curve: dict | None = None


def _pairs(z: np.ndarray) -> set:
    z = [int(v) for v in z]
    return {(a, b) for i, a in enumerate(z) for b in z[i + 1:]}


def _env_gain(Xs: np.ndarray, qs: np.ndarray, h: float, cap: float) -> tuple[float, int]:
    """Environment gain (nats) and novel-environment count of one structure, see the module docstring."""
    X = Xs.astype(np.float64)
    n = X.shape[0]
    within = np.zeros(n)
    if n > 1:
        sq = np.einsum("ij,ij->i", X, X)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * X @ X.T, 0.0)
        K = np.exp(-0.5 * d2 / h**2)
        within = np.tril(K, -1).sum(axis=1)
    p = qs + within
    with np.errstate(divide="ignore"):
        dH = np.where(p > 0, -np.log(np.where(p > 0, p, 1.0)), np.inf)
    return float(np.clip(dH, 0.0, cap).sum()), int(np.sum(dH > OVERLAP_EPS))


def _why(new_el, n_pairs, pair_names, regime, gain, n_novel, n_env) -> str:
    parts = []
    if new_el:
        parts.append(f"element{'s' if len(new_el) > 1 else ''} {', '.join(new_el)} absent so far")
    if n_pairs:
        shown = ", ".join(pair_names[:3]) + (" ..." if n_pairs > 3 else "")
        parts.append(f"{n_pairs} new element pair{'s' if n_pairs > 1 else ''} ({shown})")
    if regime:
        parts.append(f"a new regime ({regime})")
    if gain > 0:
        parts.append(f"{n_novel} of {n_env} environments outside the current support ({gain:.2f} nats)")
    return ("It adds " + "; ".join(parts) + ".") if parts else "It adds nothing the reference does not hold."


class _Greedy:
    """Lazy greedy state over the structures of a pool."""

    def __init__(self, pool: EnvironmentSet, reference: EnvironmentSet | None, h: float, opts: GreedyOptions):
        self.pool, self.h, self.opts = pool, h, opts
        self.cap = 0.5 * opts.radius_sigmas**2
        self.merged = merge_duplicates(pool.X, h, opts.merge_tolerance)
        self.pool_index = KernelIndex(h, radius_sigmas=opts.radius_sigmas, exact_max=opts.exact_max,
                                      nprobe=opts.nprobe, seed=opts.seed).fit(self.merged.X)
        self.q = np.zeros(self.merged.X.shape[0])
        self.elements, self.pairs, self.regimes = set(), set(), set()
        if reference is not None:
            if reference.n_environments:
                mr = merge_duplicates(reference.X, h, opts.merge_tolerance)
                ref_index = KernelIndex(h, radius_sigmas=opts.radius_sigmas, exact_max=opts.exact_max,
                                        nprobe=opts.nprobe, seed=opts.seed).fit(mr.X, mr.weights)
                self.q, _ = ref_index.sums(self.merged.X)
            for i in range(reference.n_structures):
                self._add_coverage(reference.species[i], reference.regimes[i])

    def _add_coverage(self, species, regime) -> None:
        self.elements.update(int(z) for z in species)
        self.pairs.update(_pairs(species))
        if self.opts.use_regimes:
            self.regimes.add(tuple(int(v) for v in regime))

    def _regime_new(self, regime) -> bool:
        r = tuple(int(v) for v in regime)
        return self.opts.use_regimes and all(a != b for a, b in zip(r, UNKNOWN_REGIME)) and r not in self.regimes

    def evaluate(self, i: int) -> tuple:
        p = self.pool
        a, b = p.offsets[i], p.offsets[i + 1]
        gain, n_novel = _env_gain(p.X[a:b], self.q[self.merged.inverse[a:b]], self.h, self.cap)
        new_el = sorted(int(z) for z in p.species[i] if int(z) not in self.elements)
        new_pairs = sorted(_pairs(p.species[i]) - self.pairs)
        reg = self._regime_new(p.regimes[i])
        key = (len(new_el), len(new_pairs), int(reg), gain)
        return key, {"new_el": new_el, "new_pairs": new_pairs, "regime": reg, "gain": gain, "n_novel": n_novel,
                     "n_env": int(b - a)}

    def choose(self, i: int) -> None:
        p = self.pool
        a, b = p.offsets[i], p.offsets[i + 1]
        inv2h2 = 0.5 / self.h**2
        for _, lims, d2, idx in self.pool_index.neighbours(p.X[a:b]):
            k = np.exp(-np.maximum(d2.astype(np.float64), 0.0) * inv2h2)
            self.q += np.bincount(idx, weights=k, minlength=self.q.shape[0])
        self._add_coverage(p.species[i], p.regimes[i])

    def run(self, budget: int, candidates: np.ndarray | None = None, progress=None) -> list[tuple[int, dict]]:
        rows = np.arange(self.pool.n_structures) if candidates is None else candidates
        heap = []
        for i in rows:
            key, _ = self.evaluate(int(i))
            heapq.heappush(heap, (tuple(-v for v in key), int(i)))
        chosen = []
        while heap and len(chosen) < budget:
            _, i = heapq.heappop(heap)
            key, info = self.evaluate(i)
            if not any(v > 1e-12 for v in key):
                continue  # adds nothing now, and never will (keys only fall)
            neg = tuple(-v for v in key)
            if heap and neg > heap[0][0]:
                heapq.heappush(heap, (neg, i))
                continue
            self.choose(i)
            chosen.append((i, info))
            if progress is not None and len(chosen) % 100 == 0:
                progress(len(chosen))
        return chosen


def _table(pool: EnvironmentSet, chosen: list[tuple[int, dict]]) -> pd.DataFrame:
    rows = []
    for rank, (i, info) in enumerate(chosen, start=1):
        els = [SYMBOLS[z] for z in info["new_el"]]
        pair_names = [f"{SYMBOLS[a]}-{SYMBOLS[b]}" for a, b in info["new_pairs"]]
        reg = regime_name(pool.regimes[i]) if info["regime"] else ""
        rows.append({"rank": rank, "id": str(pool.ids[i]), "index": int(i), "gain_nats": info["gain"],
                     "n_new_elements": len(els), "new_elements": " ".join(els),
                     "n_new_pairs": len(pair_names), "new_pairs": " ".join(pair_names), "new_regime": reg,
                     "n_environments": info["n_env"],
                     "n_novel_environments": info["n_novel"],
                     "why": _why(els, len(pair_names), pair_names, reg, info["gain"], info["n_novel"], info["n_env"])})
    cols = ["rank", "id", "index", "gain_nats", "n_new_elements", "new_elements", "n_new_pairs", "new_pairs",
            "new_regime", "n_environments", "n_novel_environments", "why"]
    return pd.DataFrame(rows, columns=cols)


def _bandwidth(opts: GreedyOptions, s: EnvironmentSet) -> tuple[float, str]:
    return resolve_bandwidth(opts.bandwidth, s.mean_volume_per_atom() if opts.bandwidth == "volume" else None)


def _entropy(X, h, opts, n_check=0) -> dict:
    return environment_entropy(X, h, radius_sigmas=opts.radius_sigmas, merge_tolerance=opts.merge_tolerance,
                               exact_max=opts.exact_max, nprobe=opts.nprobe, seed=opts.seed, n_check=n_check)


def select_structures(pool: EnvironmentSet, training: EnvironmentSet, budget: int,
                      options: GreedyOptions | None = None, progress=None) -> SelectionResult:
    """Rank up to ``budget`` pool structures by what they add to ``training`` (greedy, see the module docstring).

    Parameters
    ----------
    pool, training : EnvironmentSet
    budget : int
        Largest number of structures to rank (at least 1).
    options : GreedyOptions, optional
    progress : callable (str), optional
        Receives progress lines.

    Returns
    -------
    SelectionResult
        ``summary``: ``n_pool_structures``, ``n_pool_environments``, ``n_training_structures``,
        ``n_training_environments``, ``budget``, ``n_selected``, ``total_gain_nats``, ``new_elements``,
        ``bandwidth``, ``bandwidth_rule``, ``gain_definition``, ``training_entropy_nats``,
        ``entropy_after_nats`` (training plus selected), ``pool_overlap`` (QUESTS overlap of the pool's
        environments in the training set) and ``pool_radius_novelty`` (the project's radius novelty of the
        same environments), each with its ``definition``, ``time_s``.
    """
    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}")
    if pool.X.shape[1] != training.X.shape[1]:
        raise ValueError("pool and training environments were described with different descriptor widths")
    opts = options or GreedyOptions()
    t0 = time.perf_counter()
    h, rule = _bandwidth(opts, training)
    say = progress or (lambda _m: None)
    say(f"select: indexing {pool.n_environments} pool environments against {training.n_environments} training ones")
    g = _Greedy(pool, training, h, opts)
    chosen = g.run(budget, progress=lambda n: say(f"select: {n} structures chosen"))
    table = _table(pool, chosen)
    summary = {"n_pool_structures": pool.n_structures, "n_pool_environments": pool.n_environments,
               "n_training_structures": training.n_structures, "n_training_environments": training.n_environments,
               "budget": int(budget), "n_selected": len(chosen), "total_gain_nats": float(table["gain_nats"].sum()),
               "new_elements": sorted({e for s in table["new_elements"] for e in s.split()}),
               "bandwidth": h, "bandwidth_rule": rule, "gain_definition": GAIN_DEFINITION}
    if training.n_environments:
        say("select: measuring entropies and overlap")
        base = _entropy(training.X, h, opts)
        summary["training_entropy_nats"] = base["entropy_nats"]
        sel = pool.subset(np.array([i for i, _ in chosen], dtype=np.int64))
        summary["entropy_after_nats"] = (_entropy(np.concatenate([training.X, sel.X]), h, opts)["entropy_nats"]
                                         if sel.n_environments else base["entropy_nats"])
        if pool.n_environments:
            both = overlap_and_radius_novelty(pool.X, training.X, h, seed=opts.seed,
                                              radius_sigmas=opts.radius_sigmas,
                                              merge_tolerance=opts.merge_tolerance, exact_max=opts.exact_max,
                                              nprobe=opts.nprobe)
            summary["pool_overlap"] = both["quests_overlap"]
            summary["pool_radius_novelty"] = both["radius_novelty"]
    summary["time_s"] = time.perf_counter() - t0
    return SelectionResult(table, summary)


def greedy_order(dataset: EnvironmentSet, options: GreedyOptions | None = None, progress=None):
    """Order every structure of ``dataset`` from most to least informative (empty reference).

    Returns
    -------
    order : numpy.ndarray, shape (n_structures,), int64
        Greedy order; structures adding nothing follow in dataset order.
    chosen : list of (int, dict)
        The structures with a positive gain and their gain details, in order.
    h, rule : float, str
        Bandwidth used.
    """
    opts = options or GreedyOptions()
    h, rule = _bandwidth(opts, dataset)
    g = _Greedy(dataset, None, h, opts)
    chosen = g.run(dataset.n_structures, progress=progress)
    picked = [i for i, _ in chosen]
    rest = np.setdiff1d(np.arange(dataset.n_structures), picked)
    return np.concatenate([np.asarray(picked, dtype=np.int64), rest]), chosen, h, rule


def prune_structures(dataset: EnvironmentSet, keep: float, options: GreedyOptions | None = None,
                     progress=None, curve_points: int = 12) -> SelectionResult:
    """Smallest prefix of the greedy order keeping ``keep`` of the entropy and of the elements.

    Parameters
    ----------
    dataset : EnvironmentSet
    keep : float
        Share in (0, 1] of the QUESTS entropy and of the distinct elements to keep.
    options : GreedyOptions, optional
    progress : callable (str), optional
    curve_points : int
        Prefix lengths measured for ``curve`` (roughly geometric from 1 to all), besides the kept length; each
        costs one QUESTS entropy, and the lengths the search measured are not measured again.

    Returns
    -------
    SelectionResult
        ``table`` lists every structure in greedy order with ``kept``; ``curve`` what prefixes of that order
        keep (:class:`SelectionResult`); ``summary`` holds ``n_structures``,
        ``n_kept``, ``keep``, ``entropy_full_nats``, ``entropy_kept_nats``, ``entropy_share``,
        ``n_elements_full``, ``n_elements_kept``, ``element_share``, ``overlap_of_full_in_kept`` (QUESTS),
        ``bandwidth``, ``bandwidth_rule``, ``rule``, ``time_s``.
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    if dataset.n_structures == 0:
        raise ValueError("the dataset holds no structure that could be described")
    opts = options or GreedyOptions()
    t0 = time.perf_counter()
    say = progress or (lambda _m: None)
    say(f"prune: ordering {dataset.n_structures} structures ({dataset.n_environments} environments)")
    order, chosen, h, rule = greedy_order(dataset, opts, progress=lambda n: say(f"prune: {n} structures ordered"))
    full = _entropy(dataset.X, h, opts, n_check=256)
    all_el = set(int(z) for s in dataset.species for z in s)

    measured = {dataset.n_structures: (full["entropy_nats"], len(all_el))}  # prefix length -> (H, elements)

    def prefix(n: int) -> tuple[bool, float, int]:
        if n not in measured:
            sub = dataset.subset(order[:n])
            measured[n] = (_entropy(sub.X, h, opts)["entropy_nats"] if sub.n_environments else 0.0,
                           len(set(int(z) for s in sub.species for z in s)))
        H, els = measured[n]
        target_h = keep * full["entropy_nats"]
        return (H >= target_h - 1e-12 and els >= keep * len(all_el) - 1e-12), H, els

    say("prune: searching the shortest prefix that keeps the shares")
    lo, hi = 1, dataset.n_structures
    while lo < hi:  # smallest n with prefix(n) true (the full set always qualifies)
        mid = (lo + hi) // 2
        if prefix(mid)[0]:
            hi = mid
        else:
            lo = mid + 1
    n_kept = lo
    _, H_kept, n_el = prefix(n_kept)
    say("prune: measuring the shares along the greedy order")
    n = dataset.n_structures
    sizes = sorted({int(v) for v in np.round(np.geomspace(1, n, max(int(curve_points), 2)))} | {n_kept, n})
    curve = {"n_structures": sizes, "entropy_nats": [float(prefix(k)[1]) for k in sizes],
             "n_elements": [int(prefix(k)[2]) for k in sizes]}
    curve["entropy_share"] = [v / full["entropy_nats"] if full["entropy_nats"] > 0 else 1.0
                              for v in curve["entropy_nats"]]
    curve["element_share"] = [v / len(all_el) if all_el else 1.0 for v in curve["n_elements"]]
    kept = dataset.subset(order[:n_kept])
    ov = overlap(dataset.X, kept.X, h, radius_sigmas=opts.radius_sigmas, merge_tolerance=opts.merge_tolerance,
                 exact_max=opts.exact_max, nprobe=opts.nprobe, seed=opts.seed)
    info = {i: d for i, d in chosen}
    rows = [(i, info.get(int(i), {"new_el": [], "new_pairs": [], "regime": False, "gain": 0.0, "n_novel": 0,
                                  "n_env": int(dataset.offsets[i + 1] - dataset.offsets[i])})) for i in order]
    table = _table(dataset, rows)
    table.insert(2, "kept", np.arange(len(order)) < n_kept)
    summary = {"n_structures": dataset.n_structures, "n_environments": dataset.n_environments,
               "n_kept": int(n_kept), "keep": float(keep), "entropy_full_nats": full["entropy_nats"],
               "entropy_kept_nats": H_kept,
               "entropy_share": H_kept / full["entropy_nats"] if full["entropy_nats"] > 0 else 1.0,
               "n_elements_full": len(all_el), "n_elements_kept": n_el,
               "element_share": n_el / len(all_el) if all_el else 1.0,
               "overlap_of_full_in_kept": {k: ov[k] for k in ("overlap", "eps", "definition")},
               "entropy_measured_error": full.get("measured_error"),
               "bandwidth": h, "bandwidth_rule": rule,
               "rule": "shortest prefix of the greedy order (coverage first, then environment gain) whose QUESTS "
                       "entropy is at least keep x the full set's and which holds at least keep of its elements "
                       "(binary search on the prefix length)",
               "time_s": time.perf_counter() - t0}
    return SelectionResult(table, summary, curve)
