"""Step 15 of :func:`~..analysis.align`: the model family tree, average linkage of ``1 - CKNNA`` (and of
``1 - calibrated CKNNA``) on the ID set, or on all rows without sets (:func:`~..family_tree.family_tree`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..family_tree import family_tree

__all__ = ["FamilyTrees", "family_tree_step"]


@dataclass
class FamilyTrees:
    """``family_tree`` (raw CKNNA) and, with calibration, ``family_tree_calibrated`` (Newick, linkage, labels)."""

    raw: dict
    calibrated: dict | None

    def to_json(self) -> dict:
        out = {"family_tree": self.raw}
        if self.calibrated is not None:
            out["family_tree_calibrated"] = self.calibrated
        return out


def family_tree_step(pm, cal, plan) -> FamilyTrees:
    """Trees of ``1 - CKNNA`` and ``1 - calibrated CKNNA`` over the models."""
    tree_set = "id" if plan.two_sets else "all"
    raw = {**family_tree(np.array(pm.entries["cknna"][tree_set], dtype=float), plan.models),
           "metric": f"1 - CKNNA (k = {plan.k_used})", "set": tree_set}
    calibrated = None
    if cal is not None:
        S = np.array(cal.entries["cknna"][tree_set]["calibrated"], dtype=float)
        np.fill_diagonal(S, 1.0)
        calibrated = {**family_tree(S, plan.models), "metric": f"1 - calibrated CKNNA (k = {plan.k_used})",
                      "set": tree_set}
    return FamilyTrees(raw, calibrated)
