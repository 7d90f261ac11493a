"""Comparison with the reference: coverage, novelty, duplicates and missing elements (``datasets[].compare``)."""
from __future__ import annotations

from collections.abc import Mapping

from .. import view
from ..text import pct
from . import Report, ReportSection, register


def _dataset_view(ds, d: dict, r: Report) -> dict:
    from ..figures import novelty_levels

    comps = []
    for c in view.comparisons(ds):
        pen = {s: x for s, x in (c.get("per_element_novelty") or {}).items() if isinstance(x, Mapping)}
        novs = novelty_levels(c)
        comps.append({
            "b": r.reference or c.get("b") or "the reference", "n_a": c.get("n_a"), "n_b": c.get("n_b"),
            "coverage": c.get("coverage_of_b_by_a"), "novelty": c.get("novelty_of_a"), "radius": c.get("radius"),
            "radius_rule": c.get("radius_rule"), "exact": view.dig(c, "duplicates", "exact"),
            "near": view.dig(c, "duplicates", "near"),
            "uniform_novelty": (f"Every element has the same novelty ({pct(next(iter(novs)))}), so no per-element "
                                "map is drawn.") if pen and len(novs) == 1 else None,
            "top_novel": sorted(((s, x.get("novelty"), x.get("n")) for s, x in pen.items()),
                                key=lambda row: (-(row[1] or 0), -(row[2] or 0)))[:10] if len(novs) > 1 else [],
        })
    sec = view.compare_section(ds) or {}
    return {"comparisons": comps, "comparison_reason": view.comparison_reason(ds),
            "missing_vs_reference": list(view.dig(sec, "elements", "missing_vs_reference") or []),
            "pairs_missing_vs_reference": dict(view.dig(sec, "elements", "pairs_missing_vs_reference") or {})}


def _view(r: Report) -> dict:
    return {"any_comparison": any(d["comparisons"] or d["comparison_reason"] or d["missing_vs_reference"]
                                  for d in r.datasets)}


def _figures(r: Report) -> list:
    from ..figures import comparison_plans

    return [p for i, ds, nm in r.each_dataset()
            for p in comparison_plans(ds, i, nm, r.reference)]


SECTION = register(ReportSection(
    name="comparison", title="Comparison", order=80, reads=("datasets[].compare", "parameters.reference"),
    dataset_view=_dataset_view, view=_view, figures=_figures, applies=lambda r: r.context["any_comparison"]))
