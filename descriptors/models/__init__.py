"""Per-structure embeddings from pretrained interatomic potentials whose weights ship in their wheels.

>>> from monoculture.descriptors.models import available_models, load_embedder
>>> emb = load_embedder("chgnet-0.3.0")                       # doctest: +SKIP
>>> ids, X = emb.embed(atoms_list, pooling="mean")            # doctest: +SKIP  X: (n, emb.dim)
>>> emb.metadata("mean")                                      # doctest: +SKIP  model, version, layer, ...

Embedding = per-atom features of the last interaction layer, the tensor the energy readout consumes,
averaged over the atoms of each structure (as in arXiv 2512.03750; the study's extra rescaling so that the
largest element is 1 is left to the alignment analyses). ``mean_var`` adds the per-structure variance
(after arXiv 2512.05717); ``atoms`` returns the per-atom rows (with their atom positions and atomic numbers
through :func:`embed_frame_rows`; file layout in :mod:`monoculture.descriptors.embedding_files`). Frame
batches stream through :func:`embed_frame_rows` / :func:`embed_frames`. The torch-based modules are imported only when a model is loaded.
"""
from __future__ import annotations

from .embedder import (
    POOLINGS,
    EmbeddedRows,
    ModelEmbedder,
    SkippedStructure,
    UnsupportedStructure,
    build_graphs,
    pool_features,
)
from .streaming import embed_frame_rows, embed_frames
from .registry import MODELS, available_models, embeddings_table, load_embedder

__all__ = [
    "MODELS",
    "POOLINGS",
    "EmbeddedRows",
    "ModelEmbedder",
    "SkippedStructure",
    "UnsupportedStructure",
    "available_models",
    "build_graphs",
    "embed_frames",
    "embed_frame_rows",
    "embeddings_table",
    "load_embedder",
    "pool_features",
]
