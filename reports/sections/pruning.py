"""Pruning: the smallest subset keeping a share of the entropy and of the elements (``monoculture prune``).

:func:`pruning_document` turns a :class:`~monoculture.audit.environments.selection.SelectionResult` of
:func:`~monoculture.audit.environments.selection.prune_structures` into a document with a ``pruning`` key;
the kept shares along the greedy order (``curve``, measured by the prune run) let the report show what each
subset size keeps. Layout of ``pruning``: ``dataset`` (``name``, ``path``, ``n_structures``,
``n_environments``), ``summary`` (the prune summary: shares, entropies in nats, QUESTS overlap, rule),
``curve`` (``n_structures``, ``entropy_nats``, ``entropy_share``, ``n_elements``, ``element_share``: one value
per measured prefix of the greedy order), ``rows`` (the kept structures in greedy order).
"""
from __future__ import annotations

from collections.abc import Mapping

from .. import view
from ..text import num, pct
from . import Report, ReportSection, register
from ...audit.document import document
from .selection import ROW_SCHEMA, describe_set

__all__ = ["pruning_document", "SECTION"]

#: Kept structures listed in HTML / Markdown.
ROWS_SHOWN = 30


def pruning_document(result, dataset, *, path: str | None = None, parameters: Mapping | None = None,
                     seed: int = 0, started=None) -> dict:
    """The document of a ``prune`` run (envelope + ``pruning``, layout in the module docstring).

    Parameters
    ----------
    result : SelectionResult
        Output of :func:`~monoculture.audit.environments.selection.prune_structures` (its ``curve`` becomes
        the document's ``curve``; nothing is measured here).
    dataset : EnvironmentSet
        The set it pruned.
    path : str, optional
        The dataset's path as the user gave it.
    parameters : mapping, optional
        Options shown in the methods section.
    seed : int
    started : datetime, optional
    """
    table = result.table
    rows = table[table["kept"]].to_dict(orient="records")
    section = {"dataset": describe_set(dataset, path), "summary": dict(result.summary),
               **({"curve": result.curve} if result.curve is not None else {}), "rows": rows}
    return document("pruning", section, dict(parameters or {}), seed=seed, started=started)


_SHARES = {"type": "array", "items": {"type": "number", "minimum": 0}}
SCHEMA = {
    "description": "Result of `monoculture prune`: the kept prefix of the greedy order and the shares it keeps.",
    "if": {"type": "object", "required": ["not_applicable"]},
    "then": {"properties": {"not_applicable": {"type": "string"}}},
    "else": {
        "type": "object", "required": ["dataset", "summary", "rows"],
        "properties": {
            "summary": {"type": "object", "required": ["n_kept", "n_structures", "keep"],
                        "properties": {"n_kept": {"type": "integer", "minimum": 0},
                                       "n_structures": {"type": "integer", "minimum": 0},
                                       "keep": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                                       "entropy_share": {"type": "number", "minimum": 0},
                                       "element_share": {"type": "number", "minimum": 0, "maximum": 1}}},
            "curve": {"type": "object", "properties": {"n_structures": {"type": "array", "items": {"type": "integer"}},
                                                       "entropy_share": _SHARES, "element_share": _SHARES}},
            "rows": {"type": "array", "items": ROW_SCHEMA},
        }},
}


def _pr(r: Report) -> Mapping | None:
    p = r.doc.get("pruning")
    return p if isinstance(p, Mapping) and view.not_applicable_reason(p) is None else None


def _view(r: Report) -> dict:
    p = _pr(r)
    if p is None:
        return {"pruning": None}
    s = p.get("summary") or {}
    rows = [x for x in p.get("rows") or [] if isinstance(x, Mapping)]
    return {"pruning": {
        "dataset": p.get("dataset") or {}, "n_kept": s.get("n_kept"), "n_structures": s.get("n_structures"),
        "keep": s.get("keep"), "entropy_share": s.get("entropy_share"), "entropy_kept": s.get("entropy_kept_nats"),
        "entropy_full": s.get("entropy_full_nats"), "element_share": s.get("element_share"),
        "n_elements_kept": s.get("n_elements_kept"), "n_elements_full": s.get("n_elements_full"),
        "overlap": view.dig(s, "overlap_of_full_in_kept", "overlap"), "rule": s.get("rule"),
        "rows": rows[:ROWS_SHOWN], "n_rows": len(rows), "figures": r.figures_of("pruning"),
    }}


def _curve_figure(curve: Mapping, n_kept: int | None, keep: float | None):
    from ..charts import curves_chart

    fig = curves_chart([{"label": "QUESTS entropy kept", "x": curve["n_structures"], "y": curve["entropy_share"]},
                        {"label": "elements kept", "x": curve["n_structures"], "y": curve["element_share"]}],
                       xlabel="structures kept, most informative first (count, log scale)",
                       ylabel="share of the full set (fraction)", log_x=len(curve["n_structures"]) > 2)
    ax = fig.axes[0]
    if keep is not None:
        ax.axhline(keep, color="#888888", linewidth=0.8, linestyle=":")
    if n_kept:
        ax.axvline(n_kept, color="#888888", linewidth=0.8, linestyle="--")
        ax.annotate(f"kept: {n_kept:,}", (n_kept, 0.02), xytext=(4, 0), textcoords="offset points", fontsize=8,
                    color="#444444", xycoords=("data", "axes fraction"))
    ax.set_ylim(0, 1.05)
    return fig


def _figures(r: Report) -> list:
    from ..figures import FigurePlan

    p = _pr(r)
    curve = (p or {}).get("curve") or {}
    if not curve.get("n_structures"):
        return []
    s = p.get("summary") or {}
    name = view.dig(p, "dataset", "name") or "the dataset"
    return [FigurePlan(
        "pruning", None, "pruning_kept_share", f"What each subset of {name} keeps",
        "Share of the full set's QUESTS entropy and of its elements held by the first n structures of the greedy "
        "order (measured at each marked size); dashed: the size kept, dotted: the share asked.",
        lambda: _curve_figure(curve, s.get("n_kept"), s.get("keep")))]


def _findings(r: Report) -> list:
    v = _view(r)["pruning"]
    if v is None:
        return []
    name = v["dataset"].get("name") or "the dataset"
    text = (f"{num(v['n_kept'])} of the {num(v['n_structures'])} structures of {name} "
            f"({pct(v['n_kept'] / v['n_structures']) if v['n_structures'] else '–'}) keep {pct(v['entropy_share'])} "
            f"of its QUESTS entropy and {num(v['n_elements_kept'])} of its {num(v['n_elements_full'])} elements "
            f"(asked: {pct(v['keep'], 0)}).")
    out = [{"rule": "pruning_size", "text": text, "weak": False}]
    if v["overlap"] is not None:
        out.append({"rule": "pruning_overlap", "weak": False, "text": (
            f"{pct(v['overlap'])} of the full set's environments lie inside the kept subset's support (QUESTS overlap).")})
    return out


def _headline(r: Report) -> str | None:
    p = _pr(r)
    if p is None:
        return None
    return f"prune {view.dig(p, 'dataset', 'name') or 'a dataset'} to {num(view.dig(p, 'summary', 'n_kept'))} structures"


def _methods(r: Report) -> str | None:
    v = _view(r)["pruning"]
    return f"Pruning: {v['rule']}." if v and v.get("rule") else None


SECTION = register(ReportSection(
    name="pruning", title="Pruning", order=86, reads=("pruning",), view=_view, figures=_figures,
    findings=_findings, headline=_headline, methods=_methods, schema={"pruning": SCHEMA},
    applies=lambda r: bool(r.context["pruning"])))
