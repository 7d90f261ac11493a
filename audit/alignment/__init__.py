"""Representation alignment between model embeddings, and the statistics to trust it.

Pure functions on arrays: ``X`` of shape (n, d_a) and ``Y`` of shape (n, d_b) with paired rows (row i of
both describes structure i). Nothing here reads frames.

Metrics: :func:`mutual_knn`, :func:`cka`, :func:`cknna`, :func:`distance_correlation`,
:func:`information_imbalance`, :func:`global_reconstruction_error` (GFRE), :func:`local_reconstruction_error`
(LFRE); their named variants and defaults (the study's reference code): :data:`METRIC_VARIANTS`,
:data:`DEFAULT_VARIANTS`. Intrinsic dimension: :func:`twonn`, :func:`mle_id`, :func:`id_vs_scale`.
Hygiene: :func:`find_near_duplicates`, :func:`normalise`. Statistics: :func:`bootstrap_ci`,
:func:`bootstrap_diff_ci`, :func:`equal_size_comparison`, :func:`permutation_test`, :func:`k_sweep`,
:func:`spearman_with_ci`. Scores against chance (permutation nulls, arXiv 2602.14486): :func:`calibrate`,
:func:`calibrate_pairs`. Shared exact k-NN: :func:`knn`.

Every metric is one record of the registry :mod:`.metric_registry` (:class:`AlignmentMetric`: name, labels,
function, variants, direction, kind, scope, reference): :func:`get_metric`, :func:`metric_names`,
:func:`register_metric`; a new metric is one module in that package (or an entry point of the group
``monoculture.alignment_metrics``). The options of :func:`~.analysis.align` are one :class:`AlignOptions`.
"""

from .calibration import Calibration, calibrate, calibrate_pairs
from .dependence import distance_correlation
from .imbalance import InformationImbalance, information_imbalance
from .intrinsic_dim import IntrinsicDimension, drop_exact_duplicates, id_vs_scale, mle_id, twonn
from .neighbours import knn, l2_normalise_rows
from .metrics import CKNNA_VARIANTS, cka, cknna, median_heuristic_sigma, mutual_knn
from .reconstruction import feature_reconstruction_error, global_reconstruction_error, local_reconstruction_error
from .neardup import NearDuplicates, find_near_duplicates
from .normalise import NORMALISATIONS, EmbeddingNormaliser, normalise
from .variants import DEFAULT_VARIANTS, METRIC_VARIANTS, resolve_variants
from .metric_registry import AlignmentMetric, get_metric, metric_names, register_metric
from .options import AlignOptions
from . import stats as _stats
from .stats import (
    ConfidenceInterval,
    EqualSizeComparison,
    PermutationResult,
    SpearmanResult,
    bootstrap_ci,
    bootstrap_diff_ci,
    equal_size_comparison,
    k_sweep,
    permutation_test,
    spearman_with_ci,
)

__all__ = [
    "Calibration",
    "calibrate",
    "calibrate_pairs",
    "knn",
    "l2_normalise_rows",
    "mutual_knn",
    "cka",
    "cknna",
    "median_heuristic_sigma",
    "CKNNA_VARIANTS",
    "global_reconstruction_error",
    "local_reconstruction_error",
    "feature_reconstruction_error",
    "METRIC_VARIANTS",
    "DEFAULT_VARIANTS",
    "resolve_variants",
    "AlignmentMetric",
    "get_metric",
    "metric_names",
    "register_metric",
    "AlignOptions",
    "distance_correlation",
    "information_imbalance",
    "InformationImbalance",
    "twonn",
    "mle_id",
    "id_vs_scale",
    "drop_exact_duplicates",
    "IntrinsicDimension",
    "find_near_duplicates",
    "NearDuplicates",
    "normalise",
    "EmbeddingNormaliser",
    "NORMALISATIONS",
    *_stats.__all__,  # the resampling statistics: bootstrap_ci, permutation_test, spearman_with_ci, ...
]
