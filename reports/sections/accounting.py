"""Data accounting and dataset cards: records read / skipped / failed, files, card fields (``records``, ``card``)."""
from __future__ import annotations

from .. import view
from . import Report, ReportSection, register


def _dataset_view(ds, d: dict, r: Report) -> dict:
    return {"accounting": view.accounting(ds), "card": view.card_rows(ds)}


SECTION = register(ReportSection(
    name="accounting", title="Data accounting", order=100, reads=("datasets[].records", "datasets[].card",
                                                                 "datasets[].files"),
    dataset_view=_dataset_view, applies=lambda r: bool(r.datasets)))
