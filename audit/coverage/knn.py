"""k-nearest-neighbour search with faiss, exact up to a million indexed points (approximate IVF beyond).

Re-exports the indexed backend of :mod:`monoculture.audit.neighbours`
(:mod:`~monoculture.audit.neighbours.indexed`), where the search now lives; kept so that
``monoculture.audit.coverage.knn`` imports keep working.
"""
from __future__ import annotations

from ..neighbours.indexed import EXACT_MAX, IVF_NPROBE, knn, knn_self

__all__ = ["knn", "knn_self", "EXACT_MAX", "IVF_NPROBE"]
