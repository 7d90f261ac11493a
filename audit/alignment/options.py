"""The options of :func:`~.analysis.align`, grouped in one dataclass.

``align(embeddings, id_ids, ood_ids, **kwargs)`` keeps its keyword arguments; they fill an
:class:`AlignOptions` (``align(embeddings, options=AlignOptions(...))`` is the same call), which every step of
the pipeline (:mod:`.steps`) reads. The groups below follow the pipeline: what is compared, the metrics,
the statistics, the hygiene of the sets, the confounders and the gap vs collapse, the calibration.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import pandas as pd

from .calibration import CALIBRATION_QUANTILE
from .metric_registry import get_metric
from .normalise import NORMALISATIONS

__all__ = ["AlignOptions", "DEFAULT_KS"]

DEFAULT_KS = (5, 10, 25, 50, 100)


@dataclass(frozen=True)
class AlignOptions:
    """Every option of :func:`~.analysis.align` (see there for each one's meaning, units and default).

    Attributes
    ----------
    reference_model, descriptor_name, ids, set_names, pairwise_ids
        What is compared: the reference model, the model-free descriptor entry, the id policy
        (``"common"`` / ``"same"``), display names of the sets, per-pair id sets.
    k, ii_k, normalisation, variants, reconstruction, metrics
        The metrics: neighbours of CKNNA / mutual k-NN (count) and of information imbalance (count), the
        scaling before every metric, ``{metric: variant}``, GFRE / LFRE on or off, and optional registered
        metrics computed besides the defaults (names from :func:`~.metric_registry.metric_names`).
    n_boot, repeats, n_perm, permutation_metrics, seed, ci_level, ks, mle_k
        Statistics: subsamples per interval, equal-size repeats, ID/OOD label shuffles, metrics with a
        permutation test, master seed, interval coverage (fraction), k sweep (counts), MLE neighbours (count).
    tau, drop_near_duplicates, near_duplicate_basis, max_n
        Hygiene: near-duplicate threshold (fraction of the median 1-NN distance), drop or only report, the
        embeddings the guard uses, seeded cap on rows per set (count).
    metadata, match_atom_count, reference_descriptor, reference_element_counts, gap_k, max_points, spearman_n_perm
        Confounders and gap vs collapse: per-id metadata table, atom-count matching, the reference
        descriptor array (shape (n_ref, d)), reference structures per element, reference neighbours of the
        coverage gap (count), points written (count), Spearman permutations.
    calibration, n_calibration, calibration_quantile, calibration_subsample
        Calibration against chance: on or off, row permutations P, the quantile q of tau, rows of the
        information-imbalance null (count or None).
    """

    reference_model: str | None = None
    descriptor_name: str | None = None
    k: int = 25
    ii_k: int = 50
    normalisation: str = "none"
    variants: Mapping[str, str] | None = None
    ids: str = "common"
    pairwise_ids: bool = False
    reconstruction: bool = True
    metrics: Sequence[str] = ()
    n_boot: int = 200
    repeats: int = 20
    n_perm: int = 200
    permutation_metrics: Sequence[str] = ("cknna", "dcor")
    seed: int = 0
    ci_level: float = 0.95
    ks: Sequence[int] = DEFAULT_KS
    mle_k: int = 50
    tau: float = 0.05
    drop_near_duplicates: bool = True
    near_duplicate_basis: str = "models"
    metadata: pd.DataFrame | None = field(default=None, repr=False)
    match_atom_count: bool = False
    reference_descriptor: object = field(default=None, repr=False)
    reference_element_counts: Mapping[str, int] | None = None
    gap_k: int = 5
    max_n: int | None = None
    set_names: Mapping[str, str] | None = None
    max_points: int = 2000
    spearman_n_perm: int = 999
    calibration: bool = True
    n_calibration: int = 200
    calibration_quantile: float = CALIBRATION_QUANTILE
    calibration_subsample: int | None = 2000

    @classmethod
    def from_kwargs(cls, options: AlignOptions | None = None, **kwargs) -> AlignOptions:
        """``options`` (or the defaults) with the given keyword arguments replacing fields.

        Raises
        ------
        TypeError
            A keyword that is not an option.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(f"align() got unexpected keyword argument(s) {unknown}")
        base = options if options is not None else cls()
        return cls(**{**{n: getattr(base, n) for n in names}, **kwargs})

    def check(self) -> None:
        """Raise ValueError for options that cannot work together (before any computation)."""
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}; got {self.normalisation!r}")
        if self.n_boot < 2:
            raise ValueError(f"n_boot must be >= 2; got {self.n_boot}")
        if self.calibration and self.n_calibration < 1:
            raise ValueError(f"n_calibration must be >= 1; got {self.n_calibration}")
        for name in self.metrics:
            if get_metric(name).kind == "per model":
                raise ValueError(f"{name} is a per-model quantity, not a pair metric that can be asked for")

    def extra_metrics(self) -> tuple[str, ...]:
        """The optional pair metrics asked for (default metrics named in ``metrics`` are always computed)."""
        out = []
        for name in self.metrics:
            m = get_metric(name)
            if not m.default and name not in out:
                out.append(name)
        return tuple(out)
