"""Coverage analyzers: how much of the periodic table, of the levels of theory, of the thermodynamic regimes
and of a descriptor space a dataset covers, and what to collect next.

Every analyzer is an accumulator (``update(batch)``, ``merge(other)``, ``result()``) over frame batches
(:data:`~monoculture.datasets.frames.FRAME_SCHEMA`); :class:`CoverageAudit` bundles them.
"""
from .audit import CoverageAudit
from .chemical_space import ChemicalSpaceCoverage, quests_entropy, vendi_score
from .compare import compare_arrays, compare_samples, radius_from_reference
from .elements import ElementCoverage
from .histogram import FixedHistogram
from ..neighbours import knn_query as knn, knn_self_indexed as knn_self
from .level_of_theory import LevelOfTheoryCoverage, basis_family
from .priorities import build_priorities
from .regimes import RegimeCoverage
from .reservoir import DescriptorReservoir, DescriptorSample

__all__ = [
    "CoverageAudit",
    "ElementCoverage",
    "LevelOfTheoryCoverage",
    "RegimeCoverage",
    "ChemicalSpaceCoverage",
    "DescriptorReservoir",
    "DescriptorSample",
    "FixedHistogram",
    "build_priorities",
    "compare_arrays",
    "compare_samples",
    "radius_from_reference",
    "knn",
    "knn_self",
    "vendi_score",
    "quests_entropy",
    "basis_family",
]
