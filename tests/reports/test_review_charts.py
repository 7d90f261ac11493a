"""The note of a scatter (e.g. the Spearman rho of the gap-vs-collapse figure) survives the hand-off to the
density map on large samples (review finding)."""
from __future__ import annotations

import numpy as np
import pytest

from monoculture.reports.charts import DENSITY_MIN_POINTS, grouped_scatter


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.mark.parametrize("n", [50, DENSITY_MIN_POINTS + 10])
def test_note_is_drawn_small_and_large(n):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=n), rng.normal(size=n)
    groups = np.where(np.arange(n) % 2 == 0, "ID", "OOD")
    fig = grouped_scatter(x, y, groups, xlabel="gap (unitless)", ylabel="drop (count)", note="Spearman ρ = 0.80")
    assert _texts(fig).count("Spearman ρ = 0.80") == 1
    large = any(c.__class__.__name__ == "PolyCollection" for ax in fig.axes for c in ax.collections)
    assert large == (n >= DENSITY_MIN_POINTS)  # the large sample is drawn as a density map (hexbin)
    plain = grouped_scatter(x, y, groups, xlabel="gap (unitless)", ylabel="drop (count)")
    assert _texts(plain) == []
