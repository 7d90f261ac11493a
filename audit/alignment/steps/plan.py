"""Step 5 of :func:`~..analysis.align`: the analysed sizes, the neighbour counts capped below them, the k sweep,
the local verdict's k, and the ``parameters`` block (:class:`Plan`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

from ..calibration import MAX_K_OVER_N, k_over_n_warning
from ..metric_registry import get_metric
from ..options import AlignOptions
from ..stats import _subsample_size
from ._common import cap_k

__all__ = ["Plan", "plan_step"]


@dataclass
class Plan:
    """What every later step shares.

    Attributes
    ----------
    models : list of str
    pair_metrics : tuple of str
        The pair metrics with intervals, in registry order (the defaults, then any asked for).
    resolved : dict
        ``{metric: Variant}``.
    keys : list of str
        The sets (``["id", "ood"]`` or ``["all"]``).
    n_by_set : dict
        Analysed rows per set (count).
    k_used, ii_k_used : int
        Neighbours of CKNNA / mutual k-NN and of information imbalance, capped below the smallest subsample.
    k_list : list of int
        The k sweep, capped below the smallest set.
    k_local : int
        The local verdict's k: ``k_used`` while k/n <= 0.1 in every set, else the largest such sweep k.
    eq_size : int or None
        Rows per set of the equal-size repeats (two sets only).
    model_pairs : list of (int, int)
    warnings : list of str
        The k/n warnings.
    params : dict
        The ``parameters`` block.
    """

    models: list
    pair_metrics: tuple
    resolved: dict
    keys: list
    n_by_set: dict
    k_used: int
    ii_k_used: int
    k_list: list
    k_local: int
    eq_size: int | None
    model_pairs: list
    warnings: list = field(default_factory=list)
    params: dict = field(default_factory=dict)

    @property
    def two_sets(self) -> bool:
        return self.keys == ["id", "ood"]

    def k_of(self, metric: str):
        """The neighbour count a metric ran with (None for metrics without one)."""
        needs = get_metric(metric).needs_k
        return self.k_used if needs == "k" else self.ii_k_used if needs == "ii_k" else None

    def local_enough(self, kk: int) -> bool:
        return all(kk / nn <= MAX_K_OVER_N for nn in self.n_by_set.values())

    def to_json(self) -> dict:
        """The ``parameters`` block."""
        return self.params


def plan_step(models, sets, nd, n_skipped: int, resolved: dict, pair_metrics, opts: AlignOptions) -> Plan:
    """Sizes, capped k, k sweep, the local verdict's k and the ``parameters`` block."""
    clean = sets.clean_rows
    keys = list(clean)
    two_sets = keys == ["id", "ood"]
    n_min = min(r.size for r in clean.values())
    m_min = min(_subsample_size(r.size, None) for r in clean.values())
    eq_size = n_min // 2 if two_sets else None
    smallest = min([m_min] + ([eq_size] if eq_size else []))
    k_used, ii_k_used = cap_k(opts.k, smallest), cap_k(opts.ii_k, smallest)
    k_list = sorted({cap_k(kk, n_min) for kk in opts.ks})
    n_by_set = {key: int(r.size) for key, r in clean.items()}
    plan = Plan(models, tuple(pair_metrics), resolved, keys, n_by_set, k_used, ii_k_used, k_list, 0, eq_size,
                list(combinations(range(len(models)), 2)))
    sweep_local = [kk for kk in k_list if plan.local_enough(kk)]
    plan.k_local = (k_used if plan.local_enough(k_used) else
                    max(sweep_local) if sweep_local else max(1, int(MAX_K_OVER_N * n_min)))
    local = [get_metric(m).label for m in pair_metrics if get_metric(m).needs_k == "k"]
    ii = [get_metric(m).label for m in pair_metrics if get_metric(m).needs_k == "ii_k"]
    plan.warnings = [w for w in (k_over_n_warning(local, k_used, n_by_set),
                                 k_over_n_warning(ii, ii_k_used, n_by_set, local_verdict=False)) if w]
    plan.params = {
        "k": k_used, "k_requested": int(opts.k), "information_imbalance_k": ii_k_used,
        "information_imbalance_k_requested": int(opts.ii_k),
        "variants": {m: v.name for m, v in resolved.items()},
        "cknna": resolved["cknna"].description,
        "mutual_knn_metric": resolved["mutual_knn"].kwargs["metric"], "cka_kernel": resolved["cka"].description,
        "dcor_estimator": resolved["dcor"].description, "normalisation": opts.normalisation,
        "n_boot": int(opts.n_boot), "ci_level": opts.ci_level,
        "interval_scheme": "m-out-of-n subsampling without replacement, m = n // 2, deviations rescaled by "
                           "sqrt(m / (n - m)); one set of subsamples shared by all pairs and metrics of a set",
        "repeats": int(opts.repeats), "equal_size": eq_size, "n_perm": int(opts.n_perm),
        "permutation_metrics": [m for m in pair_metrics if m in opts.permutation_metrics], "seed": int(opts.seed),
        "near_duplicate_tau": opts.tau, "near_duplicate_basis": ", ".join(nd.basis),
        "drop_near_duplicates": bool(opts.drop_near_duplicates), "mle_k": int(opts.mle_k),
        "twonn_discard_fraction": 0.1, "id_estimator_for_verdict": "twonn", "k_sweep": k_list,
        "match_atom_count": bool(opts.match_atom_count), "max_n": opts.max_n, "n": dict(n_by_set),
        "n_skipped_structures": n_skipped,
        "calibration": ({"n_permutations": int(opts.n_calibration), "quantile": float(opts.calibration_quantile),
                         "local_verdict_k": int(plan.k_local),
                         "information_imbalance_subsample": opts.calibration_subsample}
                        if opts.calibration else None),
    }
    return plan
