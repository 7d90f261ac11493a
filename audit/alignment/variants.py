"""Named variants of the pairwise alignment metrics, and which one is each metric's default.

Every number :func:`~.analysis.align` writes names the variant that produced it (``metrics[m]["variant"]``
and ``parameters["variants"]``), so a reader can put it beside a published value computed by the same
definition. The defaults are the definitions of the reference code the study arXiv 2512.03750 used
(platonic-rep for CKNNA and mutual k-NN), on the embeddings as given (no row scaling); every other variant
stays available by name (``align(..., variants={"cknna": "biased"})``, ``monoculture align --variant
cknna=biased``). ``docs/alignment_metrics.md`` tabulates them with their measured agreement.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from .dependence import distance_correlation
from .imbalance import information_imbalance
from .metrics import CKNNA_VARIANTS, cka, cknna, mutual_knn
from .reconstruction import feature_reconstruction_error

__all__ = ["Variant", "METRIC_VARIANTS", "DEFAULT_VARIANTS", "resolve_variants", "parse_variant_options"]

#: Reference code the defaults transcribe (repository, file, commit of the stored version read).
PLATONIC_REP = "platonic-rep (github.com/minyoungg/platonic-rep, metrics.py at commit 07ef02a)"


@dataclass(frozen=True)
class Variant:
    """One definition of a metric.

    Attributes
    ----------
    name : str
    description : str
        What is computed, in words (written to the JSON).
    kwargs : dict
        Keyword arguments of the metric function.
    reference : str
        The implementation this variant reproduces, if any.
    """

    name: str
    description: str
    kwargs: dict = field(default_factory=dict)
    reference: str = ""


def _v(name, description, reference="", **kwargs):
    return name, Variant(name, description, kwargs, reference)


#: ``{metric: {variant name: Variant}}``; the first variant of each metric is its default.
METRIC_VARIANTS: dict[str, dict[str, Variant]] = {
    "cknna": dict([
        _v("unbiased", "CKNNA on L2-normalised rows (cosine kernels), k-NN sets without self, unbiased HSIC "
                       "(Song et al. 2012) scaled by 1/(n(n-3)), denominator + 1e-6",
           f"{PLATONIC_REP}: AlignmentMetrics.cknna(topk=k, unbiased=True) on F.normalize'd rows",
           **CKNNA_VARIANTS["unbiased"]),
        _v("biased", "CKNNA on L2-normalised rows, top-k of the kernel with the diagonal (self + k - 1 others), "
                     "biased HSIC tr(AHBH) unscaled, denominator + 1e-6",
           f"{PLATONIC_REP}: AlignmentMetrics.cknna(topk=k, unbiased=False) on F.normalize'd rows",
           **CKNNA_VARIANTS["biased"]),
        _v("biased-no-self", "CKNNA on L2-normalised rows, k-NN sets without self, biased HSIC, no epsilon "
                             "(monoculture's default before issue 20)", **CKNNA_VARIANTS["biased-no-self"]),
    ]),
    "mutual_knn": dict([
        _v("cosine", "share of the k nearest neighbours (cosine similarity, self excluded) shared by both models",
           f"{PLATONIC_REP}: AlignmentMetrics.mutual_knn(topk=k) on F.normalize'd rows", metric="cosine"),
        _v("euclidean", "share of the k nearest neighbours (Euclidean distance on the rows as given) shared",
           metric="euclidean"),
    ]),
    "cka": dict([
        _v("linear", "linear CKA, biased HSIC (Kornblith et al. 2019)",
           "dense Gram-matrix formula; platonic-rep AlignmentMetrics.cka(kernel_metric='ip') on unnormalised rows",
           kernel="linear", unbiased=False),
        _v("linear-unbiased", "linear CKA, unbiased HSIC (Song et al. 2012)", kernel="linear", unbiased=True),
        _v("rbf", "RBF CKA, median-heuristic bandwidth per space, biased HSIC", kernel="rbf", unbiased=False),
    ]),
    "dcor": dict([
        _v("v-statistic", "distance correlation, double-centred Euclidean distances (V-statistic)",
           "dcor.distance_correlation (Szekely, Rizzo & Bakirov 2007)", estimator="biased"),
        _v("u-statistic-squared", "bias-corrected squared distance correlation (U-centred, Szekely & Rizzo 2014)",
           "dcor.u_distance_correlation_sqr", estimator="unbiased", squared=True),
    ]),
    "information_imbalance": dict([
        _v("euclidean", "information imbalance Delta(A -> B), Euclidean ranks on the rows as given, k source "
                        "neighbours (Glielmo et al. 2022)", "the paper's definition; dadapy MetricComparisons"),
    ]),
    "gfre": dict([
        _v("skmatter", "global feature reconstruction error: ridge (2-fold CV over relative singular-value "
                       "cutoffs) from A to B on a half split, both standardised to unit total variance "
                       "(Goscinski et al. 2021)",
           "skmatter.metrics.global_reconstruction_error defaults, re-implemented (scikit-matter is not "
           "installable here)", local=False),
    ]),
    "lfre": dict([
        _v("skmatter", "local feature reconstruction error: the same regression fitted on the k nearest "
                       "training points of each test point (Goscinski et al. 2021)",
           "skmatter.metrics.local_reconstruction_error defaults, re-implemented", local=True),
    ]),
}

DEFAULT_VARIANTS = {m: next(iter(v)) for m, v in METRIC_VARIANTS.items()}

_FUNCTIONS: dict[str, Callable] = {"cknna": cknna, "mutual_knn": mutual_knn, "cka": cka,
                                   "dcor": distance_correlation, "information_imbalance": information_imbalance,
                                   "gfre": feature_reconstruction_error, "lfre": feature_reconstruction_error}


def resolve_variants(variants: Mapping[str, str] | None = None) -> dict[str, Variant]:
    """``{metric: Variant}``, the defaults overridden by ``variants`` (``{metric: name}``).

    Raises
    ------
    ValueError
        An unknown metric or variant name (the message lists the known ones).
    """
    out = {m: METRIC_VARIANTS[m][name] for m, name in DEFAULT_VARIANTS.items()}
    for metric, name in (variants or {}).items():
        if metric not in METRIC_VARIANTS:
            raise ValueError(f"unknown metric {metric!r} in variants; known: {', '.join(METRIC_VARIANTS)}")
        if name not in METRIC_VARIANTS[metric]:
            raise ValueError(f"unknown variant {name!r} of {metric}; known: {', '.join(METRIC_VARIANTS[metric])}")
        out[metric] = METRIC_VARIANTS[metric][name]
    return out


def metric_function(metric: str, variant: Variant) -> Callable:
    """The metric function with the variant's keyword arguments bound."""
    return partial(_FUNCTIONS[metric], **variant.kwargs)


def parse_variant_options(items) -> dict[str, str]:
    """``["cknna=biased", "mutual_knn=euclidean"]`` -> ``{"cknna": "biased", ...}`` (checked)."""
    out = {}
    for item in items or ():
        metric, sep, name = str(item).partition("=")
        if not sep or not metric or not name:
            raise ValueError(f"--variant takes METRIC=NAME, e.g. cknna=biased; got {item!r}")
        out[metric.strip()] = name.strip()
    resolve_variants(out)
    return out
