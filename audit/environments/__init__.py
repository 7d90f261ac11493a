"""Atomic environments at scale: QUESTS entropy, differential entropy and overlap, structure selection, and
the alignment of models' per-atom features per element and per environment cluster.

See :mod:`.entropy` for the definitions, :mod:`.kernel` for the approximation and its error bounds,
:mod:`.sets` for per-structure environment sets read from datasets, :mod:`.selection` for
``select`` / ``prune`` and :mod:`.alignment` for ``align-environments``.

Names are imported from their modules on first use (module ``__getattr__``), so that importing the package,
or a light module in it such as :mod:`.alignment_defaults`, does not import numpy, faiss or quests.
"""
from __future__ import annotations

from monoculture.datasets.plugins import lazy_exports

_EXPORTS = {
    "entropy": ("DELTA_ENTROPY_DEFINITION", "DIVERSITY_DEFINITION", "ENTROPY_DEFINITION", "OVERLAP_DEFINITION",
                "OVERLAP_EPS", "QUESTS_BANDWIDTH", "RADIUS_NOVELTY_DEFINITION", "differential_entropy",
                "environment_entropy", "exact_delta_entropy", "exact_entropy", "overlap",
                "overlap_and_radius_novelty", "resolve_bandwidth"),
    "kernel": ("KernelIndex", "MergedEnvironments", "exact_kernel_sums", "measured_error", "merge_duplicates"),
    "selection": ("GreedyOptions", "SelectionResult", "greedy_order", "prune_structures", "select_structures"),
    "sets": ("EnvironmentSet", "read_environments", "regime_name"),
    "alignment": ("AtomFeatures", "align_environments"),
    "alignment_result": ("EnvironmentAlignment",),
    "alignment_io": ("read_atom_embedding", "read_atom_environments"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
