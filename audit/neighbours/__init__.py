"""Nearest-neighbour search of the audit: three backends, one vocabulary.

Most k-NN searches of :mod:`monoculture.audit` go through this package; the exceptions are listed below.

* **exact, certified** (:mod:`.exact`): :func:`knn` / :func:`neighbour_search`, the k nearest *other* rows
  of every row of one set, exact sets and float64 distances with ties to the lower index, whatever the
  backend of the candidate search (faiss ``IndexFlatL2``, an upper-triangle float32 GEMM sweep or float64
  numpy). Used by the alignment metrics (mutual k-NN, CKNNA, information imbalance, intrinsic dimension,
  near duplicates, coverage gap) through ``monoculture.audit.alignment.neighbours``, which re-exports it.
* **indexed** (:mod:`.indexed`): :func:`knn_query` / :func:`knn_self_indexed`, neighbours in a base set of
  arbitrary queries with faiss, exact (``IndexFlatL2``, float64 re-ranked distances) up to ``EXACT_MAX``
  indexed points and approximate (``IndexIVFFlat``, ``nprobe = IVF_NPROBE``) beyond, the result saying which.
  Used by coverage (chemical-space coverage, dataset comparison, the map layout), which imports it from this
  package; ``monoculture.audit.coverage.knn`` re-exports it for older imports.
* **subsamples of a searched set** (:mod:`.subsample`): :func:`full_lists` searches a set once for K
  neighbours per row and :func:`subsample_search` reads the exact k-NN of any subsample from them (with a
  direct search of the few rows where the lists cannot decide). Used by the bootstrap / m-out-of-n loops of
  the alignment analysis (:class:`~monoculture.audit.alignment.neighbour_cache.NeighbourCache`).

Not through this package: the LFRE of :mod:`monoculture.audit.alignment.reconstruction` runs its own
certified search of test rows among training rows (faiss ``IndexFlatL2`` candidates, accepted under a float32
error bound, exact float64 distances); the kernel sums of :mod:`monoculture.audit.environments.kernel`
(weighted neighbours within a cutoff) build their faiss index with the same :func:`~.indexed.build_index`, and
their queries stay in that module.

Distances are Euclidean in the units of the rows; ``metric="cosine"`` (exact backend) ranks L2-normalised
rows and reports chord distances ``sqrt(2 - 2 cos)``.
"""

from __future__ import annotations

from .exact import BACKENDS, METRICS, NeighbourSearch, candidate_count, knn, l2_normalise_rows, neighbour_search
from .indexed import EXACT_MAX, IVF_NPROBE, build_index
from .indexed import knn as knn_query
from .indexed import knn_self as knn_self_indexed
from .subsample import NeighbourLists, SubsampleSearch, full_lists, list_length, subsample_search

__all__ = [
    "knn",
    "neighbour_search",
    "NeighbourSearch",
    "candidate_count",
    "l2_normalise_rows",
    "METRICS",
    "BACKENDS",
    "knn_query",
    "knn_self_indexed",
    "EXACT_MAX",
    "IVF_NPROBE",
    "build_index",
    "NeighbourLists",
    "SubsampleSearch",
    "full_lists",
    "list_length",
    "subsample_search",
]
