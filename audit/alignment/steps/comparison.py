"""Step 11 of :func:`~..analysis.align`: ID - OOD differences of every pair metric (per pair and as the mean
over pairs, with subsampling intervals), equal-size repeats, permutation tests of the ID/OOD labels, and the
ID - OOD differences of the intrinsic dimension and of the descriptor comparison."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from ..metric_registry import get_metric
from ..options import AlignOptions
from ..resampling import mean_over, pair_values
from ..stats import equal_size_comparison, permutation_test
from ._common import child_seed, diff_interval, iv, matrix, num, ordered_keys
from .plan import Plan
from .verdicts import direction

__all__ = ["Comparison", "comparison_step", "concat_mean_fn"]


@dataclass
class Comparison:
    """ID against OOD.

    Attributes
    ----------
    summary : dict
        ``{metric: comparison}``: ID and OOD means over pairs, their difference and interval, equal-size
        repeats, permutation test and the direction in words (``metrics.<name>.comparison``).
    differences : dict
        ``{metric: {"estimate", "intervals", "description"}}`` per pair (``metrics.<name>.difference``).
    """

    summary: dict = field(default_factory=dict)
    differences: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """``{metric: {"difference": ..., "comparison": ...}}``, merged into the ``metrics`` block."""
        return {mt: {"difference": self.differences[mt], "comparison": self.summary[mt]} for mt in self.summary}


def concat_mean_fn(widths: Sequence[int], metric: str, k: int, ii_k: int, fns=None):
    """``fn(C, _) -> mean over model pairs`` where ``C`` is the column-concatenation of the models."""
    cuts = np.cumsum([0, *widths])
    pairs = list(combinations(range(len(widths)), 2))

    def fn(C, _unused):
        arrays = [C[:, cuts[i]:cuts[i + 1]] for i in range(len(widths))]
        vals = pair_values(arrays, pairs, (metric,), k, ii_k, fns)[metric]
        return float(np.mean(list(vals.values())))

    return fn


def comparison_step(normed: dict, sets, pm, idim, desc, plan: Plan, fns: dict, opts: AlignOptions):
    """ID - OOD comparisons (None unless the sets are ID and OOD); adds ``difference`` to ``idim`` and ``desc``."""
    if not plan.two_sets:
        return None
    models, pairs, level = plan.models, plan.model_pairs, opts.ci_level
    ra, rb = pm.resampled["id"], pm.resampled["ood"]
    widths = [normed[m].shape[1] for m in models]
    C = {key: np.hstack([normed[m][sets.clean_rows[key]] for m in models]) for key in plan.keys}
    out = Comparison()
    for mt in plan.pair_metrics:
        directed = get_metric(mt).directed
        diffs, divs = np.full((len(models), len(models)), np.nan), [[None] * len(models) for _ in models]
        for p in ra.estimate[mt]:
            i, j = p
            diffs[i, j] = ra.estimate[mt][p] - rb.estimate[mt][p]
            divs[i][j] = iv(diff_interval(ra.estimate[mt][p], ra.reps[mt][p], ra.n, ra.m,
                                          rb.estimate[mt][p], rb.reps[mt][p], rb.n, rb.m, level))
            if not directed:
                diffs[j, i], divs[j][i] = diffs[i, j], divs[i][j]
        ea, reps_a = mean_over(ra, mt, ordered_keys(mt, pairs))
        eb, reps_b = mean_over(rb, mt, ordered_keys(mt, pairs))
        div = diff_interval(ea, reps_a, ra.n, ra.m, eb, reps_b, rb.n, rb.m, level)
        fn = concat_mean_fn(widths, mt, plan.k_used, plan.ii_k_used, fns)
        eq = equal_size_comparison(fn, (C["id"], C["id"][:, :1]), (C["ood"], C["ood"][:, :1]), plan.eq_size,
                                   opts.repeats, child_seed(opts.seed, "equal", mt))
        pt = (permutation_test(fn, (C["id"], C["id"][:, :1]), (C["ood"], C["ood"][:, :1]), opts.n_perm,
                               child_seed(opts.seed, "perm", mt)) if mt in opts.permutation_metrics else None)
        out.summary[mt] = {
            "id": num(ea), "ood": num(eb), "difference": num(ea - eb), "difference_interval": iv(div),
            "n_pairs": len(pairs), "k": plan.k_of(mt),
            "equal_size": {"size": eq.size, "repeats": int(opts.repeats), "id_mean": eq.id_mean, "id_std": eq.id_std,
                           "ood_mean": eq.ood_mean, "ood_std": eq.ood_std, "difference_mean": eq.diff_mean,
                           "difference_std": eq.diff_std},
            "permutation": ({"statistic": num(pt.statistic), "p_value": pt.p_value, "n_perm": int(opts.n_perm),
                             "alternative": pt.alternative} if pt is not None else None),
            "direction": direction(iv(div), get_metric(mt).higher_is_more_aligned),
        }
        out.differences[mt] = {"estimate": matrix(diffs), "intervals": divs,
                               "description": "ID − OOD per pair, with subsampling intervals"}
    idim.block["difference"] = {}
    for m in models:
        a, b = idim.replicates[(m, "id")], idim.replicates[(m, "ood")]
        idim.block["difference"][m] = {"estimate": num(a.estimate - b.estimate), "interval": iv(diff_interval(
            a.estimate, a.replicates, ra.n, a.m, b.estimate, b.replicates, rb.n, b.m, level))}
    if desc is not None:
        da, db = desc.resampled["id"], desc.resampled["ood"]
        d = len(models)
        for mt in ("cknna", "information_imbalance"):
            for i, m in enumerate(models):
                for p, name in (((i, d), "model_to_descriptor"), ((d, i), "descriptor_to_model")):
                    if p not in da.estimate[mt]:
                        continue
                    desc.difference.setdefault(m, {})[f"{mt}_{name}"] = {
                        "estimate": num(da.estimate[mt][p] - db.estimate[mt][p]),
                        "interval": iv(diff_interval(da.estimate[mt][p], da.reps[mt][p], da.n, da.m,
                                                     db.estimate[mt][p], db.reps[mt][p], db.n, db.m, level))}
    return out
