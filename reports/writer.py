"""Write the report folder: report.html (self-contained), report.md, audit.json and figures/."""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import jinja2

from . import view
from .figures import SECTIONS, plan_figures
from .paths import safe_join, slugify
from .schema import schema_errors
from .style import figure_context, save_figure

__all__ = ["write_report", "render_context"]

log = logging.getLogger(__name__)

#: Content-Security-Policy of report.html: no script, no network; images only from data: URIs.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _json_default(obj):
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if np is not None:
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return float(obj)
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def _pct(x, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{100 * float(x):.{digits}f} %"


def _num(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "–"
        return f"{x:,.0f}" if x.is_integer() and abs(x) < 1e15 else f"{x:.4g}"
    return str(x)


def _md_cell(x) -> str:
    """Text safe inside a Markdown table cell (pipes, backticks and newlines neutralised)."""
    s = "–" if x is None else str(x)
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("\r", " ").replace("\n", " ")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("monoculture.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(pct=_pct, num=_num, md=_md_cell)
    return env


def _dataset_context(ds: Mapping, figs: dict) -> dict:
    name = str(ds.get("name", "dataset"))
    cov = ds.get("coverage") if isinstance(ds.get("coverage"), Mapping) else {}
    reasons = {k: view.not_applicable_reason(v) for k, v in cov.items() if view.not_applicable_reason(v)}
    el = view.coverage_section(ds, "elements") or {}
    lot = view.coverage_section(ds, "level_of_theory") or {}
    reg = view.coverage_section(ds, "regimes") or {}
    cs = view.coverage_section(ds, "chemical_space") or {}
    lot_counts = view.level_of_theory_counts(ds)
    total = sum(lot_counts.values()) or 1
    return {
        "name": name,
        "anchor": "ds-" + slugify(name),
        "format": ds.get("format"),
        "files": [str(f) for f in ds.get("files") or []],
        "summary": view.dataset_summary(ds),
        "accounting": view.accounting(ds),
        "card": view.card_rows(ds),
        "figures": {s: figs.get((name, s), []) for s in SECTIONS},
        "reasons": reasons,
        "elements": {
            "present": list((view.dig(ds, "elements", "structures_per_element") or {}).keys()),
            "missing_tech": view.dig(el, "tech_relevant", "missing") or [],
            "pairs_seen": view.dig(el, "pairs", "n_pairs_seen"),
            "pairs_share": view.dig(el, "pairs", "share_among_present"),
            "arity": view.dig(el, "arity_names") or {},
            "hill": view.dig(el, "diversity", "by_structures") or {},
        },
        "lot": {
            "rows": [(k, v, v / total) for k, v in lot_counts.items()],
            "plus_u_share": lot.get("plus_u_share"),
            "only_plus_u": lot.get("only_plus_u") or [],
            "single_label": lot.get("single_label_elements") or {},
        },
        "regimes": {
            "equilibrium": reg.get("equilibrium") or {},
            "empty_cells": view.dig(reg, "grid", "empty_cells") or [],
            "n_cells": view.dig(reg, "grid", "n_cells"),
            "temperatures": [(k, v) for k, v in (view.dig(ds, "temperature_K", "values") or {}).items()],
            "temperature_unknown": view.dig(ds, "temperature_K", "unknown", default=0),
            "methods": reg.get("methods") or ds.get("method") or {},
        },
        "chemical_space": {
            "present": bool(cs),
            "sample": cs.get("sample") or {},
            "vendi": view.dig(cs, "vendi", "score"),
            "entropy": view.dig(cs, "entropy", "entropy_nats"),
            "effective": view.dig(cs, "entropy", "effective_environments"),
            "nn1_mean": view.dig(cs, "knn", "nn1_mean"),
            "near_dup_share": view.dig(cs, "near_duplicates", "share"),
            "exact_dup": view.dig(cov, "duplicates", "n_duplicates"),
            "exact_frames": view.dig(cov, "duplicates", "n_frames"),
            "umap_reason": view.not_applicable_reason(cs.get("umap")),
        },
        "comparisons": [
            {"b": c.get("b"), "n_a": c.get("n_a"), "n_b": c.get("n_b"), "coverage": c.get("coverage_of_b_by_a"),
             "novelty": c.get("novelty_of_a"), "radius": c.get("radius"), "radius_rule": c.get("radius_rule"),
             "exact": view.dig(c, "duplicates", "exact"), "near": view.dig(c, "duplicates", "near"),
             "top_novel": sorted(((s, d.get("novelty"), d.get("n")) for s, d in
                                  (c.get("per_element_novelty") or {}).items() if isinstance(d, Mapping)),
                                 key=lambda r: (-(r[1] or 0), r[0]))[:10]}
            for c in view.comparisons(ds)
        ],
        "priorities": view.priorities(ds)[:PRIORITY_ROWS_SHOWN],
        "priorities_total": len(view.priorities(ds)),
    }


def _alignment_context(doc: Mapping, figs: dict) -> dict | None:
    al = doc.get("alignment")
    if not isinstance(al, Mapping):
        return None
    reason = view.not_applicable_reason(al)
    verdicts = []
    for key, v in (al.get("verdicts") or {}).items():
        if isinstance(v, Mapping):
            verdicts.append({"key": key, **{k: v.get(k) for k in ("question", "statistic", "estimate", "interval",
                                                                  "level", "verdict", "explanation")}})
    nd = al.get("near_duplicates") if isinstance(al.get("near_duplicates"), Mapping) else {}
    return {
        "reason": reason,
        "models": [str(m) for m in al.get("models") or []],
        "sets": [(k, view.dig(v, "name"), view.dig(v, "n")) for k, v in (al.get("sets") or {}).items()
                 if isinstance(v, Mapping)],
        "figures": figs.get((None, "alignment"), []),
        "near_duplicates": {"metric": nd.get("metric"), "threshold": nd.get("threshold"),
                            "rows": [r for r in nd.get("rows") or [] if isinstance(r, Mapping)]},
        "verdicts": verdicts,
        "warnings": [str(w) for w in al.get("warnings") or []],
        "calibration_note": view.dig(al, "calibration", "explanation"),
    }


def render_context(doc: Mapping, figs: dict | None = None, errors: list[str] | None = None) -> dict:
    """The template context of a document (figures keyed by ``(dataset or None, section)``).

    Parameters
    ----------
    doc : dict
        Audit document.
    figs : dict, optional
        ``{(dataset, section): [figure dict]}`` as built by :func:`write_report`.
    errors : list of str, optional
        Schema violations to show in the methods section.

    Returns
    -------
    dict
    """
    figs = figs or {}
    datasets = [_dataset_context(ds, figs) for ds in doc.get("datasets") or [] if isinstance(ds, Mapping)]
    run = doc.get("run") or {}
    names = ", ".join(d["name"] for d in datasets) or "no dataset"
    return {
        "title": f"monoculture audit — {names}",
        "csp": CSP,
        "schema_version": doc.get("schema_version"),
        "version": doc.get("monoculture_version"),
        "run": {**{k: run.get(k) for k in ("started", "elapsed_s", "host", "backend")},
                "seed": (doc.get("parameters") or {}).get("seed", run.get("seed"))},
        "datasets": datasets,
        "comparing": len(datasets) > 1,
        "any_comparison": any(d["comparisons"] for d in datasets),
        "any_chemical_space": any(d["chemical_space"]["present"] or d["figures"]["chemical_space"]
                                  or "chemical_space" in d["reasons"] for d in datasets)
        or bool(figs.get((None, "chemical_space"))),
        "joint_figures": figs.get((None, "chemical_space"), []),
        "alignment": _alignment_context(doc, figs),
        "parameters": view.parameters(doc),
        "versions": view.package_versions(doc),
        "schema_errors": errors or [],
    }


#: Rows of each priority table shown in HTML / Markdown (audit.json holds all of them).
PRIORITY_ROWS_SHOWN = 30


#: What a report folder holds; an existing folder with anything else in it is never replaced.
REPORT_ITEMS = frozenset({"audit.json", "report.html", "report.md", "figures"})


class ReportFolderError(ValueError):
    """The report folder exists and holds files that are not a previous report."""


def write_report(doc: dict, out_dir) -> dict:
    """Write the report of an audit document into ``out_dir``, whole or not at all.

    Everything is first written into a hidden sibling folder, which then replaces ``out_dir`` (a previous
    report there is removed, so a finished report never mixes two runs). An interrupted or failed run
    leaves ``out_dir`` as it was. An existing ``out_dir`` that holds anything but a report
    (:data:`REPORT_ITEMS`) raises :class:`ReportFolderError` before anything is written.
    """
    import os
    import shutil
    import tempfile

    final = Path(out_dir).resolve()
    if final.exists():
        if not final.is_dir():
            raise ReportFolderError(f"{out_dir}: exists and is not a folder")
        foreign = sorted(p.name for p in final.iterdir() if p.name not in REPORT_ITEMS)
        if foreign:
            raise ReportFolderError(f"{out_dir}: holds files that are not a report ({', '.join(foreign[:3])}"
                                    f"{', ...' if len(foreign) > 3 else ''}); choose a new or empty folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    old = None
    try:
        written = _write_report_into(doc, tmp)
        if final.exists():
            old = final.with_name(f"{tmp.name}.old")
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not final.exists():
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    moved = lambda p: final / p.resolve().relative_to(tmp.resolve())  # noqa: E731
    return {"html": moved(written["html"]), "markdown": moved(written["markdown"]), "json": moved(written["json"]),
            "figures": [moved(p) for p in written["figures"]]}


def _write_report_into(doc: dict, out_dir) -> dict:
    """Write the report of an audit document into ``out_dir`` (see :func:`write_report`).

    Writes ``audit.json`` (the document), ``figures/<content>_<dataset>.png`` and ``.svg`` for every figure
    the document supports, ``report.html`` (one self-contained page: inline CSS, figures as SVG ``data:``
    URIs, no script, no network) and ``report.md`` (summary, tables and priorities; figures linked as PNG).
    Nothing is written outside ``out_dir``.

    Parameters
    ----------
    doc : dict
        Audit document (see ``reports/schema/audit.schema.json``). Sections that are missing or
        ``{"not_applicable": reason}`` are left out of the report (with the reason when there is one).
    out_dir : str or path-like
        Report folder; created when missing.

    Returns
    -------
    dict
        ``{"html": Path, "markdown": Path, "json": Path, "figures": [Path, ...]}`` (figures: PNG and SVG).
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    errors = schema_errors(doc)
    for e in errors[:20]:
        log.warning("audit document does not follow the schema: %s", e[:300])

    json_path = safe_join(root, "audit.json")
    json_path.write_text(json.dumps(doc, indent=1, allow_nan=False, default=_json_default) + "\n", encoding="utf-8")

    figs: dict = {}
    written: list[Path] = []
    for plan in plan_figures(doc):
        stem = safe_join(root, "figures", plan.name)
        try:
            with figure_context():
                fig = plan.draw()
        except (ValueError, KeyError, TypeError, IndexError) as exc:  # malformed optional section: skip it
            log.warning("figure %s skipped: %s", plan.name, exc)
            continue
        saved = save_figure(fig, stem)
        written += [saved.png, saved.svg]
        figs.setdefault((plan.dataset, plan.section), []).append({
            "title": plan.title, "caption": plan.caption, "src": saved.data_uri, "name": plan.name,
            "png": saved.png.relative_to(root.resolve()).as_posix(),
            "svg": saved.svg.relative_to(root.resolve()).as_posix(),
            "width": saved.width_px, "height": saved.height_px,
        })

    ctx = render_context(doc, figs, errors)
    env = _environment()
    html_path = safe_join(root, "report.html")
    html_path.write_text(env.get_template("report.html.j2").render(**ctx), encoding="utf-8")
    md_path = safe_join(root, "report.md")
    md_path.write_text(env.get_template("report.md.j2").render(**ctx), encoding="utf-8")
    return {"html": html_path, "markdown": md_path, "json": json_path, "figures": written}
