"""Descriptor calculators: frame batches in, ``(n_frames, n_features)`` float32 arrays out.

Each calculator follows scikit-learn's estimator contract on frame batches (see :mod:`.base`); the
registry (:func:`get_descriptor`) builds them by name and :func:`featurize` runs one over a dataset in
parallel, with a per-batch cache. Heavy libraries (dscribe, quests, rdkit, spglib) are imported by the
calculator that needs them, when it runs.
"""
from .base import AtomFeatures, Featurized, FrameDescriptor
from .runner import FeaturizeResult, featurize, read_features
from .registry import DESCRIPTORS, available_descriptors, get_descriptor

__all__ = [
    "FrameDescriptor",
    "Featurized",
    "AtomFeatures",
    "DESCRIPTORS",
    "available_descriptors",
    "get_descriptor",
    "featurize",
    "FeaturizeResult",
    "read_features",
]
