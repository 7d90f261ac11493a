"""Named variants of the pairwise alignment metrics, and which one is each metric's default.

Every number :func:`~.analysis.align` writes names the variant that produced it (``metrics[m]["variant"]``
and ``parameters["variants"]``), so a reader can put it beside a published value computed by the same
definition. The defaults are the definitions of the reference code the study arXiv 2512.03750 used
(platonic-rep for CKNNA and mutual k-NN), on the embeddings as given (no row scaling); every other variant
stays available by name (``align(..., variants={"cknna": "biased"})``, ``monoculture align --variant
cknna=biased``). ``docs/alignment_metrics.md`` tabulates them with their measured agreement.

The variants themselves are defined once, in each metric's record of :mod:`.metric_registry`; this module
is the view of them by metric name that the analysis, the command line and the API use.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Callable

from .metric_registry import Variant, get_metric, metrics
from .metric_registry._references import PLATONIC_REP

__all__ = ["Variant", "METRIC_VARIANTS", "DEFAULT_VARIANTS", "OPTIONAL_VARIANTS", "resolve_variants",
           "parse_variant_options", "metric_function", "PLATONIC_REP"]

#: ``{metric: {variant name: Variant}}`` of every metric with variants registered at import (the default first).
METRIC_VARIANTS: dict[str, dict[str, Variant]] = {
    m.name: {m.default_variant: m.variants[m.default_variant],
             **{k: v for k, v in m.variants.items() if k != m.default_variant}}
    for m in metrics() if m.variants}

#: ``{metric: default variant name}`` of the metrics :func:`~.analysis.align` computes unasked.
DEFAULT_VARIANTS = {m.name: m.default_variant for m in metrics(default=True) if m.variants}
#: The same for the metrics computed only when asked for by name (``align(..., metrics=[...])``).
OPTIONAL_VARIANTS = {m.name: m.default_variant for m in metrics(default=False) if m.variants}


def resolve_variants(variants: Mapping[str, str] | None = None, extra_metrics=()) -> dict[str, Variant]:
    """``{metric: Variant}``: the defaults, plus those of ``extra_metrics`` (optional metrics asked for),
    overridden by ``variants`` (``{metric: name}``; naming an optional metric's variant adds the metric).
    Reads the registry at call time, so a metric registered after import is known.

    Raises
    ------
    ValueError
        An unknown metric or variant name (the message lists the known ones).
    """
    known = {m.name: m for m in metrics() if m.variants}
    out = {name: m.variants[m.default_variant] for name, m in known.items() if m.default}
    for metric in extra_metrics:
        if metric in known and metric not in out:
            out[metric] = known[metric].variants[known[metric].default_variant]
    for metric, name in (variants or {}).items():
        if metric not in known:
            raise ValueError(f"unknown metric {metric!r} in variants; known: {', '.join(known)}")
        if name not in known[metric].variants:
            raise ValueError(f"unknown variant {name!r} of {metric}; known: {', '.join(known[metric].variants)}")
        out[metric] = known[metric].variants[name]
    return out


def metric_function(metric: str, variant: Variant) -> Callable:
    """The metric function with the variant's keyword arguments bound."""
    return get_metric(metric).bind(variant)


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
