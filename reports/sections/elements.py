"""Elements: which elements and element pairs each dataset holds (``elements``, ``coverage.elements``)."""
from __future__ import annotations

from collections.abc import Mapping

from .. import view
from . import Report, ReportSection, register


def _z(symbol: str) -> int:
    from ase.data import atomic_numbers

    return int(atomic_numbers.get(symbol, 0))


def _kind(cov: Mapping) -> str | None:
    from monoculture.audit.coverage.priorities import data_kind

    try:
        return data_kind(cov)["kind"]
    except (KeyError, TypeError, AttributeError):
        return None


def _dataset_view(ds, d: dict, r: Report) -> dict:
    cov = ds.get("coverage") if isinstance(ds.get("coverage"), Mapping) else {}
    el = view.coverage_section(ds, "elements") or {}
    present = list((view.dig(ds, "elements", "structures_per_element") or {}).keys())
    return {"elements": {
        "present": present,
        "missing_tech": (view.dig(el, "tech_relevant", "missing") or []) if _kind(cov) != "molecules" else [],
        "pairs_seen": view.dig(el, "pairs", "n_pairs_seen"),
        "pairs_share": view.dig(el, "pairs", "share_among_present"),
        "arity": view.dig(el, "arity_names") or {},
        "hill": view.dig(el, "diversity", "by_structures") or {},
        "beyond_94": [e for e in present if _z(e) > 94],
    }}


def _figures(r: Report) -> list:
    from ..figures import elements_plans

    return [p for i, ds, nm in r.each_dataset()
            for p in elements_plans(ds, i, nm)]


SECTION = register(ReportSection(
    name="elements", title="Elements", order=40, reads=("datasets[].elements", "datasets[].coverage.elements"),
    dataset_view=_dataset_view, figures=_figures, applies=lambda r: bool(r.live)))
