"""Summary: the five numbers of each dataset (structures, elements, dominant level of theory, equilibrium)."""
from __future__ import annotations

from .. import view
from . import Report, ReportSection, register


def _dataset_view(ds, d: dict, r: Report) -> dict:
    return {"summary": view.dataset_summary(ds)}


SECTION = register(ReportSection(
    name="summary", title="Summary", order=30,
    reads=("datasets[].n_frames", "datasets[].n_atoms", "datasets[].elements", "datasets[].coverage.regimes",
           "datasets[].coverage.level_of_theory"),
    dataset_view=_dataset_view, applies=lambda r: bool(r.live)))
