"""The alignment metric registry: one record per metric, defined once, read by everything else.

An alignment metric is one :class:`AlignmentMetric` record: its name, labels, function, named variants
(and which one is the default), kind (``"pair"``, ``"directed pair"`` or ``"per model"``), direction
(``higher_is_more_aligned``), scope (``"local"``, ``"global"``, ``"reconstruction"``, ``"dimension"``),
the neighbour count it needs, and the reference implementation and paper it follows. The analysis
(:func:`~monoculture.audit.alignment.analysis.align`), the variants (:mod:`..variants`), the metric
callables of the resampling engine (:func:`pair_functions`) and the report labels all read these records.

Adding a metric is one file plus its test: a module in this package (any name not starting with ``_``)
that calls :func:`register_metric` at import. The registry imports every module of this package by name
(:func:`importlib.import_module`, the first time a record is asked for), then the modules another package
declares under the entry-point group :data:`ENTRY_POINT_GROUP`::

    [project.entry-points."monoculture.alignment_metrics"]
    my_metric = "my_package.my_metric"

A metric with ``default=False`` is computed only when asked for by name
(``align(..., metrics=[name])``); a ``"pair"`` metric gets everything a default pair metric gets
(subsampling intervals, ID - OOD difference, equal-size repeats, calibration against chance by the
plain permutation loop) but no role in the verdicts (``verdict_rank=None``).
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType

from monoculture.datasets.plugins import import_public_modules

__all__ = ["Variant", "Reference", "AlignmentMetric", "register_metric", "get_metric", "metrics", "metric_names",
           "labels", "pair_functions", "KINDS", "SCOPES", "NEEDS_K", "ENTRY_POINT_GROUP"]

#: Entry-point group through which another package registers alignment metrics.
ENTRY_POINT_GROUP = "monoculture.alignment_metrics"
KINDS = ("pair", "directed pair", "per model")
SCOPES = ("local", "global", "reconstruction", "dimension")
#: Which of :func:`align`'s neighbour counts a metric takes as its ``k`` (``None``: none).
NEEDS_K = ("k", "ii_k", "mle_k")


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


@dataclass(frozen=True)
class Reference:
    """Where a metric's definition comes from.

    Attributes
    ----------
    implementation : str
        Reference code (repository and file, or package and function).
    version : str
        Commit or release of the reference code that was read.
    paper : str
        The publication defining the metric.
    """

    implementation: str = ""
    version: str = ""
    paper: str = ""

    def __str__(self) -> str:
        impl = f"{self.implementation} ({self.version})" if self.version else self.implementation
        return "; ".join(s for s in (impl, self.paper) if s)


@dataclass(frozen=True)
class AlignmentMetric:
    """One alignment metric.

    Attributes
    ----------
    name : str
        Key in the JSON (``metrics.<name>``) and in ``--variant NAME=...``.
    label : str
        Name in sentences (verdicts, warnings), e.g. ``"linear CKA"``.
    short_label : str
        Name on figure axes and titles, e.g. ``"CKA"`` (defaults to ``label``).
    function : callable
        ``function(X, Y, **variant.kwargs, [k=...], [cache=...]) -> float`` for pair metrics
        (``X`` shape (n, d_a), ``Y`` shape (n, d_b), paired rows); ``function(X, **kwargs)`` for per-model ones.
    kind : {"pair", "directed pair", "per model"}
        ``"directed pair"``: entry (i, j) of its matrix is ``metric(model_i -> model_j)``, not (j, i).
    higher_is_more_aligned : bool
        Direction (a dimension counts as "higher = less aligned").
    scope : {"local", "global", "reconstruction", "dimension"}
    reference : Reference
    variants : mapping of str to Variant
        Named definitions; empty for metrics without variants.
    default_variant : str, optional
        Name of the default variant (the first one if not given).
    needs_k : {"k", "ii_k", "mle_k"} or None
        The neighbour count of :func:`align` passed as ``k=`` (``k``: CKNNA / mutual k-NN; ``ii_k``:
        information imbalance; ``mle_k``: the MLE dimension).
    uses_cache : bool
        The function accepts ``cache=`` (a shared :class:`~..metrics.NeighbourCache`).
    default : bool
        Computed by :func:`align` without being asked for.
    intervals : bool
        Pair metric with subsampling intervals and ID - OOD comparisons (False: point estimates per set).
    verdict_rank : int or None
        Position in its scope's verdict (0 = the metric that decides it, 1, 2, ... supporting); None: no role.
    description : str
        Meaning of the matrix written to the JSON (``metrics.<name>.description``).
    scale : str
        What its values mean, for figure captions (e.g. ``"0 = independent, 1 = ..."``); empty: the report
        states only the direction.
    order : int
        Position among the metrics (JSON order); new metrics default to after the existing ones.
    """

    name: str
    label: str
    function: Callable
    kind: str
    higher_is_more_aligned: bool
    scope: str
    reference: Reference = Reference()
    variants: Mapping[str, Variant] = field(default_factory=dict)
    default_variant: str | None = None
    needs_k: str | None = None
    uses_cache: bool = False
    default: bool = True
    intervals: bool = True
    verdict_rank: int | None = None
    description: str = ""
    short_label: str = ""
    order: int = 1000
    scale: str = ""

    def __post_init__(self):
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"metric name must be an identifier; got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind of {self.name} must be one of {KINDS}; got {self.kind!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope of {self.name} must be one of {SCOPES}; got {self.scope!r}")
        if self.needs_k is not None and self.needs_k not in NEEDS_K:
            raise ValueError(f"needs_k of {self.name} must be one of {NEEDS_K} or None; got {self.needs_k!r}")
        if not callable(self.function):
            raise TypeError(f"function of {self.name} is not callable")
        variants = dict(self.variants)
        for key, v in variants.items():
            if not isinstance(v, Variant) or v.name != key:
                raise ValueError(f"variants of {self.name} must map each name to a Variant of that name")
        if self.default_variant is not None and self.default_variant not in variants:
            raise ValueError(f"default variant {self.default_variant!r} of {self.name} is not among {list(variants)}")
        object.__setattr__(self, "variants", MappingProxyType(variants))
        if self.default_variant is None and variants:
            object.__setattr__(self, "default_variant", next(iter(variants)))
        if not self.short_label:
            object.__setattr__(self, "short_label", self.label)

    @property
    def directed(self) -> bool:
        return self.kind == "directed pair"

    def variant(self, name: str | None = None) -> Variant:
        """The named variant (default: :attr:`default_variant`).

        Raises
        ------
        ValueError
            Unknown variant name (the message lists the known ones).
        """
        name = self.default_variant if name is None else name
        if name not in self.variants:
            raise ValueError(f"unknown variant {name!r} of {self.name}; known: {', '.join(self.variants)}")
        return self.variants[name]

    def bind(self, variant: Variant | str | None = None) -> Callable:
        """:attr:`function` with the variant's keyword arguments bound."""
        v = variant if isinstance(variant, Variant) else (self.variant(variant) if self.variants else None)
        return partial(self.function, **(v.kwargs if v else {}))

    def pair_function(self, variant: Variant | str | None = None) -> Callable:
        """``f(X, Y, k, ii_k, cache=None)``, the calling convention of :mod:`..resampling`."""
        f, needs, cache_ok = self.bind(variant), self.needs_k, self.uses_cache

        def fn(X, Y, k, ii_k, cache=None):
            kw = {}
            if needs == "k":
                kw["k"] = k
            elif needs == "ii_k":
                kw["k"] = ii_k
            if cache_ok:
                kw["cache"] = cache
            return f(X, Y, **kw)

        fn.__name__ = f"{self.name}_pair_function"
        return fn


_REGISTRY: dict[str, AlignmentMetric] = {}
_LOADED = False


def register_metric(metric: AlignmentMetric, *, replace: bool = False) -> AlignmentMetric:
    """Add a metric to the registry (the call a metric module makes at import).

    Raises
    ------
    ValueError
        A metric of that name is already registered (and ``replace`` is False).
    """
    if not isinstance(metric, AlignmentMetric):
        raise TypeError(f"register_metric takes an AlignmentMetric; got {type(metric).__name__}")
    old = _REGISTRY.get(metric.name)
    if old is not None and not replace and old is not metric:
        raise ValueError(f"alignment metric {metric.name!r} is already registered")
    _REGISTRY[metric.name] = metric
    return metric


def _load() -> None:
    """Import this package's metric modules, then those of the entry-point group (once)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import_public_modules(sys.modules[__name__], ENTRY_POINT_GROUP)


def metrics(*, kind: str | None = None, scope: str | None = None, default: bool | None = None
            ) -> tuple[AlignmentMetric, ...]:
    """The registered metrics in their :attr:`~AlignmentMetric.order`, optionally filtered."""
    _load()
    out = sorted(_REGISTRY.values(), key=lambda m: (m.order, m.name))
    return tuple(m for m in out if (kind is None or m.kind == kind) and (scope is None or m.scope == scope)
                 and (default is None or m.default == default))


def metric_names(**filters) -> tuple[str, ...]:
    """Names of :func:`metrics` (same filters)."""
    return tuple(m.name for m in metrics(**filters))


def get_metric(name: str) -> AlignmentMetric:
    """The record of one metric.

    Raises
    ------
    ValueError
        Unknown name (the message lists the registered ones).
    """
    _load()
    if name not in _REGISTRY:
        raise ValueError(f"unknown alignment metric {name!r}; known: {', '.join(metric_names())}")
    return _REGISTRY[name]


def labels(short: bool = False) -> dict[str, str]:
    """``{name: label}`` of every metric (``short``: the figure labels)."""
    return {m.name: (m.short_label if short else m.label) for m in metrics()}


def pair_functions(variants: Mapping[str, Variant]) -> dict[str, Callable]:
    """``{metric: f(X, Y, k, ii_k, cache=None)}`` for resolved variants (``{metric: Variant}``): what
    :func:`~..resampling.pair_values` calls, for every registered pair metric given."""
    return {name: get_metric(name).pair_function(v) for name, v in variants.items()
            if get_metric(name).kind != "per model"}
