"""Descriptor calculators: frame batches in, ``(n_frames, n_features)`` float32 arrays out.

Each calculator follows scikit-learn's estimator contract on frame batches (see :mod:`.base`); the
registry (:func:`get_descriptor`) builds them by name (names joined by ``+`` concatenate descriptors) and
:func:`featurize` runs one over a dataset in parallel, with a per-batch cache, through the frames -> vectors
driver (:mod:`.driver`) that model embeddings (:mod:`.models`) share; :func:`read_embedding_file` reads every
embedding and feature file. A featurized row is always finite: unknown or inapplicable values are imputed,
with ``*_missing`` indicator columns (see :mod:`.base`). Heavy libraries (dscribe, quests, rdkit, spglib,
and scikit-learn itself: see :mod:`._params`) are imported by the calculator that needs them, when it runs.
"""
from .base import AtomFeatures, DescriptorSizeError, Featurized, FrameDescriptor
from .embedding_files import EmbeddingFile, read_embedding_file
from .runner import FeaturizeResult, featurize, read_features
from .registry import DESCRIPTORS, available_descriptors, get_descriptor, is_descriptor_name

__all__ = [
    "FrameDescriptor",
    "Featurized",
    "AtomFeatures",
    "DescriptorSizeError",
    "DESCRIPTORS",
    "available_descriptors",
    "get_descriptor",
    "is_descriptor_name",
    "featurize",
    "FeaturizeResult",
    "read_features",
    "EmbeddingFile",
    "read_embedding_file",
]
