"""Shared machinery of the model embedders, in one namespace (the names live in three modules):

* :mod:`.embedder`: structure checks, graph building, pooling, skip records, :class:`ModelEmbedder`;
* :mod:`.streaming`: frame batches through graph workers and the model (:func:`embed_frame_rows`);
* :mod:`.clock`: time of the forward passes (:class:`ForwardClock`).
"""
from __future__ import annotations

from . import clock as _clock
from . import embedder as _embedder
from . import streaming as _streaming
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
    build_frame_batches,
    embed_frame_rows,
    embed_frames,
    forward_batches,
    graph_worker_pool,
    start_workers,
)

__all__ = [*_embedder.__all__, *_streaming.__all__, *_clock.__all__]
_PRIVATE = (_check_pooling, _frames_to_atoms)  # used by tests and benchmarks through this module
