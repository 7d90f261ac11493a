"""Atomic environments at scale: QUESTS entropy, differential entropy and overlap, and structure selection.

See :mod:`.entropy` for the definitions, :mod:`.kernel` for the approximation and its error bounds,
:mod:`.sets` for per-structure environment sets read from datasets and :mod:`.selection` for
``select`` / ``prune``.
"""
from .entropy import (
    DELTA_ENTROPY_DEFINITION,
    DIVERSITY_DEFINITION,
    ENTROPY_DEFINITION,
    OVERLAP_DEFINITION,
    OVERLAP_EPS,
    QUESTS_BANDWIDTH,
    RADIUS_NOVELTY_DEFINITION,
    differential_entropy,
    environment_entropy,
    exact_delta_entropy,
    exact_entropy,
    overlap,
    overlap_and_radius_novelty,
    resolve_bandwidth,
)
from .kernel import KernelIndex, MergedEnvironments, exact_kernel_sums, measured_error, merge_duplicates
from .selection import GreedyOptions, SelectionResult, greedy_order, prune_structures, select_structures
from .sets import EnvironmentSet, read_environments, regime_name

__all__ = [
    "DELTA_ENTROPY_DEFINITION", "DIVERSITY_DEFINITION", "ENTROPY_DEFINITION", "OVERLAP_DEFINITION", "OVERLAP_EPS",
    "QUESTS_BANDWIDTH", "differential_entropy", "environment_entropy", "exact_delta_entropy", "exact_entropy",
    "overlap", "overlap_and_radius_novelty", "RADIUS_NOVELTY_DEFINITION", "resolve_bandwidth", "KernelIndex",
    "MergedEnvironments", "exact_kernel_sums", "measured_error", "GreedyOptions", "SelectionResult", "greedy_order",
    "prune_structures", "select_structures", "EnvironmentSet", "read_environments", "regime_name",
    "merge_duplicates",
]
