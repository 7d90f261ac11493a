"""Neighbour searches shared between metric calls, and read from a full-set search for subsamples.

:class:`NeighbourCache` is what :func:`~.metrics.mutual_knn` and :func:`~.metrics.cknna` accept as
``cache=``: within one (sub)sample every model's k-NN search is done once and shared by its pairs and by
both metrics. For the subsample replicates of :func:`~.resampling.resample`, a cache that knows which full
array and rows a subsample array came from (:meth:`NeighbourCache.register`) reads the subsample's k-NN
from one exact search of the full array with K > k neighbours (:class:`SubsampleLists`,
:func:`~monoculture.audit.neighbours.subsample_search`) instead of searching the subsample: the same
neighbour sets as a from-scratch search up to ties within float64 rounding, with float64 distances for
every row (a from-scratch search leaves the rows whose set is certain at its search precision, float32 from
1,500 rows; CKNNA's kernel values, formed from those distances, therefore agree to about 1e-8 relative
there and to 1e-12 below 1,500 rows).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..neighbours.subsample import NeighbourLists, full_lists, list_length, subsample_search
from ._validation import check_embeddings
from .neighbours import NeighbourSearch, neighbour_search

__all__ = ["NeighbourCache", "SubsampleLists", "SearchStats"]


@dataclass
class SearchStats:
    """What the neighbour searches of a resampling run cost: counts, wall seconds and CPU seconds (of the
    whole process, BLAS and faiss threads included: steadier than wall time on a shared machine).

    Attributes
    ----------
    direct, direct_seconds, direct_cpu : int, float, float
        Searches run on the array itself (full set, or a subsample without reuse) and their time.
    full_lists, full_lists_seconds, full_lists_cpu : int, float, float
        Full-set searches of K neighbours per row that subsamples read from, and their time.
    derived, derived_seconds, derived_cpu : int, float, float
        Subsample searches read from those lists (fallback rows included) and their time.
    derived_rows, fallback_rows : int
        Subsample rows read from the lists, and those searched directly because the lists could not decide.
    """

    direct: int = 0
    direct_seconds: float = 0.0
    direct_cpu: float = 0.0
    full_lists: int = 0
    full_lists_seconds: float = 0.0
    full_lists_cpu: float = 0.0
    derived: int = 0
    derived_seconds: float = 0.0
    derived_cpu: float = 0.0
    derived_rows: int = 0
    fallback_rows: int = 0

    def add(self, kind: str, wall: float, cpu: float) -> None:
        """Count one search of ``kind`` ("direct", "full_lists", "derived") and its seconds."""
        setattr(self, kind, getattr(self, kind) + 1)
        setattr(self, f"{kind}_seconds", getattr(self, f"{kind}_seconds") + wall)
        setattr(self, f"{kind}_cpu", getattr(self, f"{kind}_cpu") + cpu)

    @property
    def seconds(self) -> float:
        """All neighbour-search wall time."""
        return self.direct_seconds + self.full_lists_seconds + self.derived_seconds

    @property
    def cpu_seconds(self) -> float:
        """All neighbour-search CPU time."""
        return self.direct_cpu + self.full_lists_cpu + self.derived_cpu

    @property
    def fallback_rate(self) -> float:
        """Share of subsample rows searched directly (NaN before any derived search)."""
        return self.fallback_rows / self.derived_rows if self.derived_rows else float("nan")


class SubsampleLists:
    """Exact K-neighbour lists of full arrays, shared by the caches of all subsamples of those arrays.

    Parameters
    ----------
    fraction : float
        Share of the rows each subsample holds (sets K, :func:`~monoculture.audit.neighbours.list_length`).
    stats : SearchStats, optional
        Where to count searches and time.
    """

    def __init__(self, fraction: float, stats: SearchStats | None = None):
        self.fraction = float(fraction)
        self.stats = stats if stats is not None else SearchStats()
        self._lists: dict = {}

    def lists(self, parent, k: int, metric: str, backend: str) -> NeighbourLists:
        """The lists of ``parent`` long enough for k neighbours in a subsample (searched on first use)."""
        key = (id(parent), metric)
        hit = self._lists.get(key)
        n = parent.shape[0]
        K = list_length(k, self.fraction, n)
        if hit is None or hit[0] is not parent or hit[1].n_neighbours < K:
            t, c = time.perf_counter(), time.process_time()
            lists = full_lists(check_embeddings(parent), K, metric=metric, backend=backend)
            self.stats.add("full_lists", time.perf_counter() - t, time.process_time() - c)
            hit = (parent, lists)
            self._lists[key] = hit
        return hit[1]

    def search(self, parent, rows: np.ndarray, k: int, metric: str, backend: str) -> NeighbourSearch:
        """k-NN of the subsample ``parent[rows]`` (subsample positions as indices)."""
        lists = self.lists(parent, k, metric, backend)
        t, c = time.perf_counter(), time.process_time()
        res = subsample_search(lists, rows, k)
        self.stats.add("derived", time.perf_counter() - t, time.process_time() - c)
        self.stats.derived_rows += int(rows.size)
        self.stats.fallback_rows += int(res.fallback.size)
        return res.search


class NeighbourCache:
    """Neighbour searches shared by several metric calls on the same arrays (keyed by array identity).

    :func:`~.metrics.mutual_knn` and :func:`~.metrics.cknna` accept one (``cache=``): the analysis evaluates
    every model pair and both metrics on the same arrays, so each model's k-NN search is done once per
    (sub)sample instead of once per pair and metric. Results are those of uncached calls (the searches are
    deterministic). With ``reuse`` and arrays :meth:`register`-ed as subsamples of full arrays, their
    searches are read from the full arrays' lists (see the module docstring).

    Parameters
    ----------
    reuse : SubsampleLists, optional
        Full-set lists to read registered subsamples' searches from.
    stats : SearchStats, optional
        Where to count searches and time (default: ``reuse.stats``, else a new one).
    """

    def __init__(self, reuse: SubsampleLists | None = None, stats: SearchStats | None = None):
        self._store: dict = {}
        self._subsets: dict = {}
        self.reuse = reuse
        self.stats = stats if stats is not None else (reuse.stats if reuse is not None else SearchStats())

    def register(self, sub, parent, rows: np.ndarray) -> None:
        """Declare ``sub`` to be ``parent[rows]`` (distinct ``rows``), so its searches come from ``parent``'s."""
        rows = np.asarray(rows, dtype=np.int64)
        if np.unique(rows).size != rows.size:
            raise ValueError("a registered subsample needs distinct rows")
        self._subsets[id(sub)] = (sub, parent, rows)

    def search(self, key_obj, Z: np.ndarray, m: int, metric: str, backend: str) -> NeighbourSearch:
        """The k = m neighbour search of ``Z`` (the checked form of ``key_obj``), computed once."""
        key = (id(key_obj), m, metric, backend)
        hit = self._store.get(key)
        if hit is None or hit[0] is not key_obj:
            sub = self._subsets.get(id(key_obj))
            if self.reuse is not None and sub is not None and sub[0] is key_obj:
                res = self.reuse.search(sub[1], sub[2], m, metric, backend)
            else:
                t, c = time.perf_counter(), time.process_time()
                res = neighbour_search(Z, m, metric=metric, backend=backend, exact_values=False)
                self.stats.add("direct", time.perf_counter() - t, time.process_time() - c)
            hit = (key_obj, res)
            self._store[key] = hit
        return hit[1]
