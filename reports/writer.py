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


_MD_SPECIAL = "\\`*_{}[]<>#|!~"


def _md_cell(x) -> str:
    """Text as Markdown: every Markdown / HTML special character backslash-escaped (CommonMark escapes), newlines
    and pipes neutralised, so that the text reads as written inside a table cell or a paragraph."""
    s = "–" if x is None else str(x)
    s = s.replace("\r", " ").replace("\n", " ")
    out = "".join("\\" + c if c in _MD_SPECIAL else c for c in s)
    return "\\" + out if out[:1] in ("+", "-", "=") else out


def _environment(markdown: bool = False) -> jinja2.Environment:
    """The Jinja environment of the HTML page (autoescaped) or of the Markdown file (no HTML escaping: every
    value goes through the ``md`` filter, which escapes Markdown)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("monoculture.reports", "templates"),
        autoescape=not markdown,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(pct=_pct, num=_num, md=_md_cell)
    return env


def _share_text(k, n) -> str:
    return f"{_num(k)} of {_num(n)} ({_pct(k / n) if n else '–'})"


def _lot_line(rows: list) -> str | None:
    """One sentence for a level-of-theory table that holds a single label (instead of a one-bar chart)."""
    if len(rows) != 1:
        return None
    lab, n, _ = rows[0]
    if lab == "unknown":
        return f"No frame records its level of theory (all {_num(n)} frames: unknown)."
    return f"Every frame ({_num(n)}) has the same level of theory: {lab}."


def _regime_lines(ds: Mapping, reg: Mapping) -> list[str]:
    """Sentences of the regimes section for what has no figure (no temperature, no stress, no forces...)."""
    from .figures import grid_has_known_cells

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
                     f"Every frame ({_num(c)}) comes from one method: {m}.")
    return lines


def _dataset_context(ds: Mapping, figs: dict, idx: int, name: str, colour: str | None, reference: str | None) -> dict:
    from .figures import crowded_histogram

    cov = ds.get("coverage") if isinstance(ds.get("coverage"), Mapping) else {}
    reasons = {k: view.not_applicable_reason(v) for k, v in cov.items() if view.not_applicable_reason(v)}
    el = view.coverage_section(ds, "elements") or {}
    lot = view.coverage_section(ds, "level_of_theory") or {}
    reg = view.coverage_section(ds, "regimes") or {}
    cs = view.coverage_section(ds, "chemical_space") or {}
    lot_counts = view.level_of_theory_counts(ds)
    total = sum(lot_counts.values()) or 1
    lot_rows = [(k, v, v / total) for k, v in lot_counts.items()]
    my_figs = {s: figs.get((idx, s), []) for s in SECTIONS}
    nn1 = view.dig(cs, "knn", "nn1_histogram")
    q = view.dig(cs, "knn", "nn1_quantiles") or {}
    nn1_line = None
    if crowded_histogram(nn1) and q:
        nn1_line = (f"Nearest-neighbour distances: median {_num(q.get('q0.50'))}, 95th percentile "
                    f"{_num(q.get('q0.95'))}, largest {_num(q.get('q1.00'))} (standardised descriptor units); "
                    "no histogram, as one of its fixed bins holds most frames.")
    present = list((view.dig(ds, "elements", "structures_per_element") or {}).keys())
    comps = []
    for c in view.comparisons(ds):
        pen = {s: d for s, d in (c.get("per_element_novelty") or {}).items() if isinstance(d, Mapping)}
        novs = {round(float(d.get("novelty") or 0), 3) for d in pen.values()}
        comps.append({
            "b": reference or c.get("b") or "the reference", "n_a": c.get("n_a"), "n_b": c.get("n_b"),
            "coverage": c.get("coverage_of_b_by_a"), "novelty": c.get("novelty_of_a"), "radius": c.get("radius"),
            "radius_rule": c.get("radius_rule"), "exact": view.dig(c, "duplicates", "exact"),
            "near": view.dig(c, "duplicates", "near"),
            "uniform_novelty": (f"Every element has the same novelty ({_pct(next(iter(novs)))}), so no per-element "
                                "map is drawn.") if pen and len(novs) == 1 else None,
            "top_novel": sorted(((s, d.get("novelty"), d.get("n")) for s, d in pen.items()),
                                key=lambda r: (-(r[1] or 0), -(r[2] or 0)))[:10] if len(novs) > 1 else [],
        })
    cmp_sec = view.compare_section(ds) or {}
    return {
        "index": idx,
        "name": name,
        "colour": colour,
        "anchor": "ds-" + slugify(f"{idx}-{name}"),
        "format": ds.get("format") or "format not recorded",
        "files": [str(f) for f in ds.get("files") or []],
        "empty": not int(ds.get("n_frames", 0) or 0),
        "summary": view.dataset_summary(ds),
        "accounting": view.accounting(ds),
        "card": view.card_rows(ds),
        "card_name": (ds.get("card") or {}).get("name") if isinstance(ds.get("card"), Mapping) else None,
        "figures": my_figs,
        "reasons": reasons,
        "elements": {
            "present": present,
            "missing_tech": (view.dig(el, "tech_relevant", "missing") or []) if _kind(cov) != "molecules" else [],
            "pairs_seen": view.dig(el, "pairs", "n_pairs_seen"),
            "pairs_share": view.dig(el, "pairs", "share_among_present"),
            "arity": view.dig(el, "arity_names") or {},
            "hill": view.dig(el, "diversity", "by_structures") or {},
            "beyond_94": [e for e in present if _z(e) > 94],
        },
        "lot": {
            "rows": lot_rows,
            "line": _lot_line(lot_rows),
            "plus_u_share": lot.get("plus_u_share") if any(k != "unknown" for k in lot_counts) else None,
            "only_plus_u": lot.get("only_plus_u") or [],
            "single_label": {k: v for k, v in (lot.get("single_label_elements") or {}).items()
                             if len(lot_counts) > 1},
        },
        "regimes": {
            "present": bool(reg),
            "equilibrium": (reg.get("equilibrium") or {}) if (reg.get("equilibrium") or {}).get(
                "near_equilibrium_share") is not None else {},
            "empty_cells": view.dig(reg, "grid", "empty_cells") or [],
            "n_cells": view.dig(reg, "grid", "n_cells") if my_figs["regimes"] and any(
                f["name"].startswith("regimes_t_p_grid") for f in my_figs["regimes"]) else None,
            "temperatures": [(k, v) for k, v in (view.dig(ds, "temperature_K", "values") or {}).items()],
            "temperature_unknown": view.dig(ds, "temperature_K", "unknown", default=0),
            "methods": {k: v for k, v in (reg.get("methods") or ds.get("method") or {}).items() if v},
            "lines": _regime_lines(ds, reg),
        },
        "chemical_space": {
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
        },
        "comparisons": comps,
        "comparison_reason": view.comparison_reason(ds),
        "missing_vs_reference": list(view.dig(cmp_sec, "elements", "missing_vs_reference") or []),
        "pairs_missing_vs_reference": dict(view.dig(cmp_sec, "elements", "pairs_missing_vs_reference") or {}),
        "priorities": view.priorities(ds)[:PRIORITY_ROWS_SHOWN],
        "priorities_total": len(view.priorities(ds)),
    }


def _kind(cov: Mapping) -> str | None:
    from monoculture.audit.coverage.priorities import data_kind

    try:
        return data_kind(cov)["kind"]
    except (KeyError, TypeError, AttributeError):
        return None


def _z(symbol: str) -> int:
    from ase.data import atomic_numbers

    return int(atomic_numbers.get(symbol, 0))


def _alignment_context(doc: Mapping, figs: dict) -> dict | None:
    al = doc.get("alignment")
    if not isinstance(al, Mapping):
        return None
    reason = view.not_applicable_reason(al)
    verdicts = []
    for key, v in (al.get("verdicts") or {}).items():
        if isinstance(v, Mapping) and v.get("verdict") is not None:
            verdicts.append({"key": key.replace("_", " "), **{k: v.get(k) for k in (
                "question", "statistic", "estimate", "interval", "level", "verdict", "explanation")}})
    nd = al.get("near_duplicates") if isinstance(al.get("near_duplicates"), Mapping) else {}
    sets = []
    for k, v in (al.get("sets") or {}).items():
        if isinstance(v, Mapping):
            nm, n = view.dig(v, "name"), view.dig(v, "n")
            sets.append({"key": str(k).upper(), "name": nm if nm is not None else str(k).upper(), "n": n})
    return {
        "reason": reason,
        "models": [str(m) for m in al.get("models") or []],
        "sets": sets,
        "figures": figs.get((None, "alignment"), []),
        "near_duplicates": {"metric": nd.get("metric"), "threshold": nd.get("threshold"),
                            "rows": [{"model_a": r.get("model_a") or "–", "model_b": r.get("model_b"),
                                      "set": r.get("set") or "–", "score": r.get("score"), "note": r.get("note") or ""}
                                     for r in nd.get("rows") or [] if isinstance(r, Mapping)]},
        "verdicts": verdicts,
        "warnings": [str(w) for w in al.get("warnings") or []],
        "calibration_note": view.dig(al, "calibration", "explanation"),
    }


def _meta_line(doc: Mapping, run: Mapping) -> str:
    """The line under the title: only the facts the document records (never "None")."""
    bits = [f"monoculture {doc['monoculture_version']}" if doc.get("monoculture_version") else "monoculture"]
    if doc.get("schema_version") is not None:
        bits.append(f"audit document schema {doc['schema_version']}")
    if run.get("started"):
        bits.append(f"started {run['started']}")
    t = run.get("elapsed_s")
    where = f" on {run['host']}" if run.get("host") else ""
    if t is not None:
        bits.append(f"{_num(float(t))} s{where}")
    elif where:
        bits.append(where.strip())
    extra = [x for x in (f"{run['backend']} backend" if run.get("backend") else None,
                         f"seed {run['seed']}" if run.get("seed") is not None else None) if x]
    if extra:
        bits.append(", ".join(extra))
    return " · ".join(bits)


def render_context(doc: Mapping, figs: dict | None = None, errors: list[str] | None = None, *,
                   reference_path: str | None = None, context_docs=(), context_labels=()) -> dict:
    """The template context of a document (figures keyed by ``(dataset index or None, section)``).

    Parameters
    ----------
    doc : dict
        Audit document.
    figs : dict, optional
        ``{(dataset index or None, section): [figure dict]}`` as built by :func:`write_report`.
    errors : list of str, optional
        Schema violations to show in the methods section.
    reference_path : str, optional
        Path of the reference as the user gave it (names the reference by its file stem).
    context_docs : sequence of dict
        Audit documents whose datasets join the context table (``--context``).
    context_labels : sequence of str
        Their labels (file names).

    Returns
    -------
    dict
    """
    from .context import context_rows
    from .findings import build_findings
    from .style import dataset_colours

    figs = figs or {}
    names = view.display_names(doc)
    reference = view.reference_display_name(doc, reference_path)
    colours = dataset_colours(names + ([reference] if reference else []))
    raw = [ds for ds in doc.get("datasets") or [] if isinstance(ds, Mapping)]
    datasets = [_dataset_context(ds, figs, i, names[i], colours.get(names[i]), reference) for i, ds in enumerate(raw)]
    run = doc.get("run") or {}
    run = {**{k: run.get(k) for k in ("started", "elapsed_s", "host", "backend")},
           "seed": (doc.get("parameters") or {}).get("seed", run.get("seed"))}
    kind = view.report_kind(doc)
    return {
        "title": view.report_title(doc, names, reference),
        "kind": kind,
        "meta": _meta_line(doc, run),
        "csp": CSP,
        "schema_version": doc.get("schema_version"),
        "version": doc.get("monoculture_version") or "",
        "run": run,
        "reference": reference,
        "findings": build_findings(doc, names, reference),
        "context_rows": context_rows(doc, names, context_docs, context_labels) if datasets else [],
        "context_figures": figs.get((None, "context"), []),
        "datasets": datasets,
        "live": [d for d in datasets if not d["empty"]],
        "comparing": len(datasets) > 1,
        "any_comparison": any(d["comparisons"] or d["comparison_reason"] or d["missing_vs_reference"]
                              for d in datasets),
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
REPORT_ITEMS = frozenset({"audit.json", "report.html", "report.md", "report.pdf", "figures"})


class ReportFolderError(ValueError):
    """The report folder exists and holds files that are not a previous report."""


def write_report(doc: dict, out_dir, *, pdf: bool = False, context=(), reference_path: str | None = None,
                 set_paths: Mapping | None = None) -> dict:
    """Write the report of an audit document into ``out_dir``, whole or not at all.

    Everything is first written into a hidden sibling folder, which then replaces ``out_dir`` (a previous
    report there is removed, so a finished report never mixes two runs). An interrupted or failed run
    leaves ``out_dir`` as it was. An existing ``out_dir`` that holds anything but a report
    (:data:`REPORT_ITEMS`) raises :class:`ReportFolderError` before anything is written.

    Parameters
    ----------
    doc : dict
        Audit document.
    out_dir : str or path-like
        Report folder.
    pdf : bool
        Also print ``report.pdf`` with the installed Chromium (:func:`monoculture.reports.pdf.print_pdf`);
        without one, ``pdf`` in the result is None and the reason is in ``pdf_skipped``.
    context : sequence of str, path-like or dict
        Audit documents (or JSON files of them) whose datasets join the context table.
    reference_path : str, optional
        Path of the reference as the user gave it (the report names the reference by its file stem).
    set_paths : mapping, optional
        ``{"id": [paths], "ood": [paths]}``: the alignment's evaluation sets as the user gave them; the report
        names each set by its file stems (``audit.json`` keeps the document as it is).

    Returns
    -------
    dict
        ``{"html", "markdown", "json", "figures", "pdf", "pdf_skipped"}``.
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
    docs, labels = _load_context(context)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    old = None
    try:
        written = _write_report_into(doc, tmp, context_docs=docs, context_labels=labels,
                                     reference_path=reference_path, set_paths=set_paths)
        pdf_path, skipped = None, None
        if pdf:
            from .pdf import print_pdf

            pdf_path, skipped = print_pdf(written["html"], safe_join(tmp, "report.pdf"))
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
            "figures": [moved(p) for p in written["figures"]], "pdf": moved(pdf_path) if pdf_path else None,
            "pdf_skipped": skipped}


def _load_context(context) -> tuple[list[dict], list[str]]:
    """Context documents and their labels; a file that is not an audit document gives a one-line error."""
    docs, labels = [], []
    for i, c in enumerate(context or ()):
        if isinstance(c, Mapping):
            docs.append(dict(c))
            labels.append(f"context {i + 1}")
            continue
        path = Path(c)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--context {path}: not a readable audit JSON ({type(exc).__name__})") from None
        if not isinstance(d, Mapping) or not isinstance(d.get("datasets"), list):
            raise ValueError(f"--context {path}: not an audit document (no 'datasets' list)")
        docs.append(d)
        labels.append(path.name)
    return docs, labels


def _named_sets(doc: dict, set_paths: Mapping | None) -> dict:
    """A shallow copy of ``doc`` whose alignment sets are named by the stems of the paths the user gave."""
    al = doc.get("alignment")
    if not set_paths or not isinstance(al, Mapping) or not isinstance(al.get("sets"), Mapping):
        return doc
    sets = {k: dict(v) if isinstance(v, Mapping) else v for k, v in al["sets"].items()}
    for key, paths in set_paths.items():
        if key in sets and isinstance(sets[key], dict) and paths:
            sets[key]["name"] = " + ".join(view.reference_display_name({}, str(p)) for p in paths)
    return {**doc, "alignment": {**al, "sets": sets}}


def _write_report_into(doc: dict, out_dir, *, context_docs=(), context_labels=(),
                       reference_path: str | None = None, set_paths: Mapping | None = None) -> dict:
    """Write the report of an audit document into ``out_dir`` (see :func:`write_report`).

    Writes ``audit.json`` (the document), ``figures/<content>_<dataset>.png`` and ``.svg`` for every figure
    the document supports, ``report.html`` (one self-contained page: inline CSS, figures as SVG ``data:``
    URIs, no script, no network) and ``report.md`` (findings, tables and priorities; figures linked as PNG).
    Nothing is written outside ``out_dir``.

    Parameters
    ----------
    doc : dict
        Audit document (see ``reports/schema/audit.schema.json``). Sections that are missing or
        ``{"not_applicable": reason}`` are left out of the report (with the reason when there is one).
    out_dir : str or path-like
        Report folder; created when missing.
    context_docs, context_labels : sequence
        Context documents and their labels (see :func:`write_report`).
    reference_path : str, optional
        Path of the reference as the user gave it.

    Returns
    -------
    dict
        ``{"html": Path, "markdown": Path, "json": Path, "figures": [Path, ...]}`` (figures: PNG and SVG).
    """
    from .context import context_figure, context_rows
    from .figures import FigurePlan
    from .style import dataset_colours

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    errors = schema_errors(doc)
    for e in errors[:20]:
        log.warning("audit document does not follow the schema: %s", e[:300])

    json_path = safe_join(root, "audit.json")
    json_path.write_text(json.dumps(doc, indent=1, allow_nan=False, default=_json_default) + "\n", encoding="utf-8")

    doc = _named_sets(doc, set_paths)
    names = view.display_names(doc)
    reference = view.reference_display_name(doc, reference_path)
    colours = dataset_colours(names + ([reference] if reference else []))
    plans = []
    if names:
        rows = context_rows(doc, names, context_docs, context_labels)
        plans.append(FigurePlan(
            "context", None, "context_dataset_sizes", "Size beside known datasets",
            "Structures per dataset (log scale) with the level of theory: this run's datasets in their colours, "
            "the bundled dataset cards in grey (full datasets, as their cards state).",
            lambda rows=rows: context_figure(rows, colours)))
    plans += plan_figures(doc, names, colours, reference)
    figs: dict = {}
    written: list[Path] = []
    for plan in plans:
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

    ctx = render_context(doc, figs, errors, reference_path=reference_path, context_docs=context_docs,
                         context_labels=context_labels)
    html_path = safe_join(root, "report.html")
    html_path.write_text(_environment().get_template("report.html.j2").render(**ctx), encoding="utf-8")
    md_path = safe_join(root, "report.md")
    md_path.write_text(_environment(markdown=True).get_template("report.md.j2").render(**ctx), encoding="utf-8")
    return {"html": html_path, "markdown": md_path, "json": json_path, "figures": written}
