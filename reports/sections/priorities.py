"""Priorities: the ranked rows of what to collect next, per dataset (``coverage.priorities``)."""
from __future__ import annotations

from .. import view
from . import Report, ReportSection, register

#: Rows of each priority table shown in HTML / Markdown (audit.json holds all of them).
PRIORITY_ROWS_SHOWN = 30


def _dataset_view(ds, d: dict, r: Report) -> dict:
    rows = view.priorities(ds)
    return {"priorities": rows[:PRIORITY_ROWS_SHOWN], "priorities_total": len(rows)}


SECTION = register(ReportSection(
    name="priorities", title="Priorities", order=20, reads=("datasets[].coverage.priorities",),
    dataset_view=_dataset_view, applies=lambda r: bool(r.live)))
