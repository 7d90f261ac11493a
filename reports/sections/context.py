"""Context: this run's datasets beside the bundled dataset cards (and ``--context`` documents)."""
from __future__ import annotations

from . import Report, ReportSection, register


def _rows(r: Report) -> list:
    from ..context import context_rows

    return context_rows(r.doc, r.names, r.context_docs, r.context_labels) if r.names else []


def _figures(r: Report) -> list:
    from ..context import context_figure
    from ..figures import FigurePlan

    if not r.names:
        return []
    rows, colours = _rows(r), r.colours
    return [FigurePlan(
        "context", None, "context_dataset_sizes", "Size beside known datasets",
        "Structures per dataset (log scale) with the level of theory: this run's datasets in their colours, "
        "the bundled dataset cards in grey (full datasets, as their cards state).",
        lambda rows=rows: context_figure(rows, colours))]


def _view(r: Report) -> dict:
    return {"context_rows": _rows(r) if r.datasets else [], "context_figures": r.figures_of("context")}


SECTION = register(ReportSection(
    name="context", title="Context", order=10, reads=("datasets",), view=_view, figures=_figures,
    applies=lambda r: bool(r.context["context_rows"])))
