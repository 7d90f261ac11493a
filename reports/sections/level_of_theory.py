"""Level of theory: frames per functional / +U label, per dataset (``level_of_theory``, ``coverage.level_of_theory``)."""
from __future__ import annotations

from .. import view
from ..text import num
from . import Report, ReportSection, register


def _lot_line(rows: list) -> str | None:
    """One sentence for a level-of-theory table that holds a single label (instead of a one-bar chart)."""
    if len(rows) != 1:
        return None
    lab, n, _ = rows[0]
    if lab == "unknown":
        return f"No frame records its level of theory (all {num(n)} frames: unknown)."
    return f"Every frame ({num(n)}) has the same level of theory: {lab}."


def _dataset_view(ds, d: dict, r: Report) -> dict:
    lot = view.coverage_section(ds, "level_of_theory") or {}
    counts = view.level_of_theory_counts(ds)
    total = sum(counts.values()) or 1
    rows = [(k, v, v / total) for k, v in counts.items()]
    return {"lot": {
        "rows": rows,
        "line": _lot_line(rows),
        "plus_u_share": lot.get("plus_u_share") if any(k != "unknown" for k in counts) else None,
        "only_plus_u": lot.get("only_plus_u") or [],
        "single_label": {k: v for k, v in (lot.get("single_label_elements") or {}).items() if len(counts) > 1},
    }}


def _figures(r: Report) -> list:
    from ..figures import level_of_theory_plans

    return [p for i, ds, nm in r.each_dataset()
            for p in level_of_theory_plans(ds, i, nm, r.colours.get(nm))]


SECTION = register(ReportSection(
    name="level_of_theory", title="Level of theory", order=50, anchor="lot",
    reads=("datasets[].level_of_theory", "datasets[].coverage.level_of_theory"),
    dataset_view=_dataset_view, figures=_figures, applies=lambda r: bool(r.live)))
