"""Shared machinery of the model embedders, in one namespace (the names live in three modules):

* :mod:`.embedder`: structure checks, graph building, pooling, skip records, :class:`ModelEmbedder`;
* :mod:`.streaming`: frame batches through graph workers and the model (:func:`embed_frame_rows`);
* :mod:`.clock`: time of the forward passes (:class:`ForwardClock`).
"""
from __future__ import annotations

from .clock import ForwardClock, union_seconds
from .embedder import (
    POOLINGS,
    EmbeddedRows,
    ModelEmbedder,
    SkippedStructure,
    UnsupportedStructure,
    _check_pooling,
    atom_positions,
    build_graphs,
    pool_features,
    structure_ids,
)
from .streaming import (
    _frames_to_atoms,
    _pieces,
    build_frame_batches,
    embed_frame_rows,
    embed_frames,
    forward_batches,
    graph_worker_pool,
    start_workers,
)

__all__ = [
    "POOLINGS",
    "SkippedStructure",
    "EmbeddedRows",
    "atom_positions",
    "UnsupportedStructure",
    "ModelEmbedder",
    "pool_features",
    "build_graphs",
    "build_frame_batches",
    "embed_frames",
    "embed_frame_rows",
    "forward_batches",
    "graph_worker_pool",
    "start_workers",
    "ForwardClock",
    "union_seconds",
    "structure_ids",
]
_PRIVATE = (_check_pooling, _frames_to_atoms, _pieces)  # used by tests and benchmarks through this module
