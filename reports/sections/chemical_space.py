"""Chemical space: descriptor-sample diversity, entropy, duplicates and maps (``coverage.chemical_space``)."""
from __future__ import annotations

from collections.abc import Mapping

from .. import view
from ..text import num
from . import Report, ReportSection, register


def _dataset_view(ds, d: dict, r: Report) -> dict:
    from ..figures import crowded_histogram

    cov = ds.get("coverage") if isinstance(ds.get("coverage"), Mapping) else {}
    cs = view.coverage_section(ds, "chemical_space") or {}
    nn1 = view.dig(cs, "knn", "nn1_histogram")
    q = view.dig(cs, "knn", "nn1_quantiles") or {}
    nn1_line = None
    if crowded_histogram(nn1) and q:
        nn1_line = (f"Nearest-neighbour distances: median {num(q.get('q0.50'))}, 95th percentile "
                    f"{num(q.get('q0.95'))}, largest {num(q.get('q1.00'))} (standardised descriptor units); "
                    "no histogram, as one of its fixed bins holds most frames.")
    return {"chemical_space": {
        "present": bool(cs),
        "sample": cs.get("sample") or {},
        "vendi": view.dig(cs, "vendi", "score"),
        "entropy": view.dig(cs, "entropy", "entropy_nats"),
        "effective": view.dig(cs, "entropy", "effective_environments"),
        "nn1_mean": view.dig(cs, "knn", "nn1_mean"),
        "nn1_line": nn1_line,
        "near_dup_share": view.dig(cs, "near_duplicates", "share"),
        "exact_dup": view.dig(cov, "duplicates", "n_duplicates"),
        "exact_frames": view.dig(cov, "duplicates", "n_frames"),
        "umap_reason": view.not_applicable_reason(cs.get("umap")),
    }}


def _view(r: Report) -> dict:
    joint = r.figures_of("chemical_space")
    return {"joint_figures": joint,
            "any_chemical_space": any(d["chemical_space"]["present"] or d["figures"]["chemical_space"]
                                      or "chemical_space" in d["reasons"] for d in r.datasets) or bool(joint)}


def _figures(r: Report) -> list:
    from ..figures import chemical_space_plans, joint_umap_plans

    plans = [p for i, ds, nm in r.each_dataset()
             for p in chemical_space_plans(ds, i, nm, r.colours)]
    return plans + joint_umap_plans(r.doc, r.names, r.colours, r.reference)


SECTION = register(ReportSection(
    name="chemical_space", title="Chemical space", order=70,
    reads=("datasets[].coverage.chemical_space", "datasets[].coverage.duplicates", "chemical_space"),
    dataset_view=_dataset_view, view=_view, figures=_figures, applies=lambda r: r.context["any_chemical_space"]))
