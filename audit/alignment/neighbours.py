"""Exact k nearest neighbours of every row among the other rows, with deterministic ties.

Every neighbour-based metric of :mod:`monoculture.audit.alignment` goes through :func:`knn` or its internal
form :func:`neighbour_search`. The search itself lives in :mod:`monoculture.audit.neighbours` (the one
neighbour-search module of the audit: this certified exact backend, :mod:`~monoculture.audit.neighbours.exact`,
the indexed faiss backend of coverage and the subsample searches read from a full-set search); this module
re-exports the exact backend's public names and the internal ones the alignment code uses (``_SWEEP_MIN_N``,
``_exact_rows``, ``_sorted_exact``), so that it keeps importing them from here.
"""

from __future__ import annotations

from ..neighbours.exact import (  # noqa: F401  (re-exports)
    _SWEEP_MIN_N,
    BACKENDS,
    METRICS,
    NeighbourSearch,
    SweepNearest,
    _exact_rows,
    _sorted_exact,
    candidate_count,
    knn,
    l2_normalise_rows,
    neighbour_search,
)

__all__ = ["knn", "l2_normalise_rows", "neighbour_search", "candidate_count", "NeighbourSearch", "SweepNearest",
           "METRICS", "BACKENDS"]
