"""Write the report folder: report.html (self-contained), report.md, audit.json and figures/."""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import jinja2

from . import view
from .paths import safe_join, slugify
from .schema import schema_errors
from .style import figure_context, save_figure
from .text import md_cell, num, pct

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
    env.filters.update(pct=pct, num=num, md=md_cell)
    return env


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
        bits.append(f"{num(float(t))} s{where}")
    elif where:
        bits.append(where.strip())
    extra = [x for x in (f"{run['backend']} backend" if run.get("backend") else None,
                         f"seed {run['seed']}" if run.get("seed") is not None else None) if x]
    if extra:
        bits.append(", ".join(extra))
    return " · ".join(bits)


class _Figures(dict):
    """A dataset's figures by figure group; a group without figures reads as an empty list."""

    def __missing__(self, key):
        return []


def _dataset_base(ds: Mapping, r, idx: int) -> dict:
    """What every section may use of one dataset: name, colour, anchor, files, figures, not-applicable reasons."""
    name = r.names[idx]
    cov = ds.get("coverage") if isinstance(ds.get("coverage"), Mapping) else {}
    figs = _Figures()
    for (i, group), lst in r.figs.items():
        if i == idx:
            figs[group] = lst
    return {
        "index": idx,
        "name": name,
        "colour": r.colours.get(name),
        "anchor": "ds-" + slugify(f"{idx}-{name}"),
        "format": ds.get("format") or "format not recorded",
        "files": [str(f) for f in ds.get("files") or []],
        "empty": not int(ds.get("n_frames", 0) or 0),
        "card_name": (ds.get("card") or {}).get("name") if isinstance(ds.get("card"), Mapping) else None,
        "figures": figs,
        "reasons": {k: view.not_applicable_reason(v) for k, v in cov.items() if view.not_applicable_reason(v)},
    }


def _context(r) -> dict:
    """Template context of a report: the common keys, then every registered section's keys, then ``sections``
    (the sections that apply, in page order, with their template names)."""
    from .sections import merge_into, registered

    sections = registered()
    r.datasets = [_dataset_base(ds, r, i) for i, ds in enumerate(r.raw_datasets)]
    for sec in sections:
        if sec.dataset_view is not None:
            for ds, d in zip(r.raw_datasets, r.datasets):
                merge_into(d, sec.dataset_view(ds, d, r), sec.name, f"context of dataset {d['name']!r}")
    doc = r.doc
    run = doc.get("run") or {}
    run = {**{k: run.get(k) for k in ("started", "elapsed_s", "host", "backend")},
           "seed": (doc.get("parameters") or {}).get("seed", run.get("seed"))}
    ctx = r.context
    ctx.update({
        "title": view.report_title(doc, r.names, r.reference),
        "kind": view.report_kind(doc),
        "meta": _meta_line(doc, run),
        "csp": CSP,
        "schema_version": doc.get("schema_version"),
        "version": doc.get("monoculture_version") or "",
        "run": run,
        "reference": r.reference,
        "datasets": r.datasets,
        "live": r.live,
        "comparing": len(r.datasets) > 1,
    })
    for sec in sections:
        if sec.view is not None:
            merge_into(ctx, sec.view(r), sec.name)
    on = [sec for sec in sections if sec.applies(r)]
    heads = [h for h in (sec.headline(r) for sec in on if sec.headline is not None) if h]
    if heads:
        alone = not r.datasets and ctx["kind"] == "audit"  # the audit title would say nothing ("audit")
        ctx["title"] = "monoculture: " + "; ".join(heads) if alone else ctx["title"] + "; " + "; ".join(heads)
    ctx["sections"] = [{"name": sec.name, "title": sec.title, "anchor": sec.html_id, "toc": sec.toc,
                        "html": sec.html_template, "md": sec.md_template} for sec in on]
    return ctx


def render_context(doc: Mapping, figs: dict | None = None, errors: list[str] | None = None, *,
                   reference_path: str | None = None, context_docs=(), context_labels=()) -> dict:
    """The template context of a document (figures keyed by ``(dataset index or None, figure group)``).

    Parameters
    ----------
    doc : dict
        Audit document.
    figs : dict, optional
        ``{(dataset index or None, figure group): [figure dict]}`` as built by :func:`write_report`.
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
        The keys of every registered section (:mod:`monoculture.reports.sections`), the common ones (``title``,
        ``meta``, ``datasets``, ``live``, ...) and ``sections``: the sections on the page, in order.
    """
    from .sections import Report

    return _context(Report.build(doc, figs, errors, reference_path=reference_path, context_docs=context_docs,
                                 context_labels=context_labels))


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
    from .figures import plan_figures
    from .sections import Report

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    errors = schema_errors(doc)
    for e in errors[:20]:
        log.warning("audit document does not follow the schema: %s", e[:300])

    json_path = safe_join(root, "audit.json")
    json_path.write_text(json.dumps(doc, indent=1, allow_nan=False, default=_json_default) + "\n", encoding="utf-8")

    report = Report.build(doc, None, errors, reference_path=reference_path, set_paths=set_paths,
                          context_docs=context_docs, context_labels=context_labels)
    plans = plan_figures(report)
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
        report.figs.setdefault((plan.dataset, plan.section), []).append({
            "title": plan.title, "caption": plan.caption, "src": saved.data_uri, "name": plan.name,
            "png": saved.png.relative_to(root.resolve()).as_posix(),
            "svg": saved.svg.relative_to(root.resolve()).as_posix(),
            "width": saved.width_px, "height": saved.height_px,
        })

    ctx = _context(report)
    html_path = safe_join(root, "report.html")
    html_path.write_text(_environment().get_template("report.html.j2").render(**ctx), encoding="utf-8")
    md_path = safe_join(root, "report.md")
    md_path.write_text(_environment(markdown=True).get_template("report.md.j2").render(**ctx), encoding="utf-8")
    return {"html": html_path, "markdown": md_path, "json": json_path, "figures": written}
