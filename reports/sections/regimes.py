"""Thermodynamic regimes: equilibrium, temperature x pressure, methods, per dataset (``coverage.regimes``)."""
from __future__ import annotations

from collections.abc import Mapping

from .. import view
from ..text import num
from . import Report, ReportSection, register


def _regime_lines(ds: Mapping, reg: Mapping) -> list[str]:
    """Sentences of the regimes section for what has no figure (no temperature, no stress, no forces...)."""
    from ..figures import grid_has_known_cells

    n = int(reg.get("n_frames") or ds.get("n_frames") or 0)
    lines = []
    if not reg:
        return lines
    unk_t, no_s, no_f = reg.get("unknown_temperature"), reg.get("no_stress"), reg.get("no_forces")
    lacking = [what for what, v in (("a temperature", unk_t), ("a stress tensor (so no pressure)", no_s),
                                    ("forces (so no distance from equilibrium)", no_f)) if v is not None and v >= n]
    if lacking:
        lines.append(f"No frame records {', '.join(lacking[:-1]) + ' or ' + lacking[-1] if len(lacking) > 1 else lacking[0]}.")
    grid = reg.get("grid")
    if grid and not grid_has_known_cells(grid) and len(lacking) < 2:
        lines.append("The temperature × pressure grid is empty: no frame has both a temperature and a pressure.")
    methods = {k: v for k, v in (reg.get("methods") or {}).items() if v}
    if len(methods) == 1:
        (m, c), = methods.items()
        lines.append("No frame records how it was generated (relaxation, MD, ...)." if m == "unknown" else
                     f"Every frame ({num(c)}) comes from one method: {m}.")
    return lines


def _dataset_view(ds, d: dict, r: Report) -> dict:
    reg = view.coverage_section(ds, "regimes") or {}
    figs = d["figures"]["regimes"]
    eq = reg.get("equilibrium") or {}
    return {"regimes": {
        "present": bool(reg),
        "equilibrium": eq if eq.get("near_equilibrium_share") is not None else {},
        "empty_cells": view.dig(reg, "grid", "empty_cells") or [],
        "n_cells": view.dig(reg, "grid", "n_cells") if figs and any(
            f["name"].startswith("regimes_t_p_grid") for f in figs) else None,
        "temperatures": [(k, v) for k, v in (view.dig(ds, "temperature_K", "values") or {}).items()],
        "temperature_unknown": view.dig(ds, "temperature_K", "unknown", default=0),
        "methods": {k: v for k, v in (reg.get("methods") or ds.get("method") or {}).items() if v},
        "lines": _regime_lines(ds, reg),
    }}


def _figures(r: Report) -> list:
    from ..figures import regimes_plans

    return [p for i, ds, nm in r.each_dataset()
            for p in regimes_plans(ds, i, nm, r.colours.get(nm))]


SECTION = register(ReportSection(
    name="regimes", title="Regimes", order=60,
    reads=("datasets[].coverage.regimes", "datasets[].temperature_K", "datasets[].method"),
    dataset_view=_dataset_view, figures=_figures, applies=lambda r: bool(r.live)))
