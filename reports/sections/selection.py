"""Selection: which pool structures to compute next (``monoculture select``), the ``selection`` key.

:func:`selection_document` turns a :class:`~monoculture.audit.environments.selection.SelectionResult` into a
document (the usual envelope, no dataset, a ``selection`` key); the section shows the ranked candidates with
their gain and why, the cumulative gain against the number of structures chosen, and the elements, element
pairs and regimes the selection adds to the training set.

Layout of ``selection`` (numbers as :func:`~monoculture.audit.environments.selection.select_structures`
measures them): ``pool`` and ``training`` (``name``, ``path``, ``n_structures``, ``n_environments``),
``summary`` (its summary: sizes, bandwidth, entropies in nats, QUESTS overlap and radius novelty with their
definitions), ``rows`` (every ranked structure as the result's table gives it: ``rank``, ``id``, ``index``,
``gain_nats``, ``n_new_elements``, ``new_elements``, ``n_new_pairs``, ``new_pairs``, ``new_regime``,
``n_environments``, ``n_novel_environments``, ``why``, and ``elements``: the structure's distinct elements),
``added`` (``elements``: ``[{"element", "rank", "n_selected"}]`` in order of first appearance; ``pairs``:
``[{"pair", "rank"}]``; ``regimes``: ``[{"regime", "rank"}]``), ``cumulative`` (``rank``, ``gain_nats``,
``new_elements``, ``new_pairs``, ``new_regimes``: running totals, one value per rank) and
``elements_selected`` (``{symbol: selected structures containing it}``).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import view
from ...audit.document import document, json_safe
from ..text import num, pct
from . import Report, ReportSection, register

__all__ = ["selection_document", "describe_set", "SECTION", "ROWS_SHOWN"]

#: Ranked rows shown in HTML / Markdown (``audit.json`` and the ``--out`` table hold all of them).
ROWS_SHOWN = 30
#: Element pairs listed by name (the rest are counted).
PAIRS_SHOWN = 60


def _symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(z)] if 0 <= int(z) < len(chemical_symbols) else f"Z{int(z)}"


def describe_set(env, path: str | None) -> dict:
    """``{"name", "path", "n_structures", "n_environments"}`` of an environment set."""
    return {"name": str(env.name), "path": None if path is None else str(path),
            "n_structures": int(env.n_structures), "n_environments": int(env.n_environments)}


def selection_document(result, pool, training, *, pool_path: str | None = None, training_path: str | None = None,
                       parameters: Mapping | None = None, seed: int = 0, started=None) -> dict:
    """The document of a ``select`` run.

    Parameters
    ----------
    result : SelectionResult
        Output of :func:`~monoculture.audit.environments.selection.select_structures`.
    pool, training : EnvironmentSet
        The sets it ranked (the elements of each chosen structure, by its ``index`` in the pool).
    pool_path, training_path : str, optional
        Paths as the user gave them.
    parameters : mapping, optional
        Options of the run (shown in the methods section).
    seed : int
    started : datetime, optional

    Returns
    -------
    dict
        Envelope + ``selection`` (layout in the module docstring).
    """
    rows = json_safe(result.table.to_dict(orient="records"))
    added = {"elements": [], "pairs": [], "regimes": []}
    per_el: dict[str, int] = {}
    cum = {"rank": [], "gain_nats": [], "new_elements": [], "new_pairs": [], "new_regimes": []}
    g = 0.0
    for r in rows:  # the greedy's own bookkeeping: what each chosen structure added, in the order chosen
        els = [_symbol(z) for z in pool.species[r["index"]]]
        r["elements"] = " ".join(els)
        for e in els:
            per_el[e] = per_el.get(e, 0) + 1
        added["elements"] += [{"element": e, "rank": r["rank"]} for e in (r.get("new_elements") or "").split()]
        added["pairs"] += [{"pair": q, "rank": r["rank"]} for q in (r.get("new_pairs") or "").split()]
        if r.get("new_regime"):
            added["regimes"].append({"regime": r["new_regime"], "rank": r["rank"]})
        g += float(r.get("gain_nats") or 0.0)
        cum["rank"].append(r["rank"])
        cum["gain_nats"].append(g)
        cum["new_elements"].append(len(added["elements"]))
        cum["new_pairs"].append(len(added["pairs"]))
        cum["new_regimes"].append(len(added["regimes"]))
    for e in added["elements"]:  # an element new to the training set is in no structure chosen before it
        e["n_selected"] = per_el.get(e["element"], 0)
    section = {"pool": describe_set(pool, pool_path), "training": describe_set(training, training_path),
               "summary": dict(result.summary), "rows": rows, "added": added, "cumulative": cum,
               "elements_selected": per_el}
    return document("selection", section, dict(parameters or {}), seed=seed, started=started)


# --- the section -----------------------------------------------------------------------------------------

_SET = {"type": "object", "required": ["name", "n_structures", "n_environments"],
        "properties": {"name": {"type": "string"}, "path": {"type": ["string", "null"]},
                       "n_structures": {"type": "integer", "minimum": 0},
                       "n_environments": {"type": "integer", "minimum": 0}}}
#: Ranked rows as ``select`` / ``prune`` write them (extra columns allowed).
ROW_SCHEMA = {"type": "object", "required": ["rank", "id", "gain_nats", "why"],
              "properties": {"rank": {"type": "integer", "minimum": 1}, "id": {"type": "string"},
                             "gain_nats": {"type": "number", "minimum": 0},
                             "n_new_elements": {"type": "integer", "minimum": 0},
                             "n_new_pairs": {"type": "integer", "minimum": 0},
                             "n_environments": {"type": "integer", "minimum": 0},
                             "n_novel_environments": {"type": "integer", "minimum": 0},
                             "why": {"type": "string"}}}
SCHEMA = {
    "description": "Result of `monoculture select`: pool structures ranked by what they add to a training set.",
    "if": {"type": "object", "required": ["not_applicable"]},
    "then": {"properties": {"not_applicable": {"type": "string"}}},
    "else": {
        "type": "object", "required": ["pool", "training", "summary", "rows"],
        "properties": {
            "pool": _SET, "training": _SET,
            "summary": {"type": "object", "required": ["budget", "n_selected"],
                        "properties": {"budget": {"type": "integer", "minimum": 1},
                                       "n_selected": {"type": "integer", "minimum": 0},
                                       "bandwidth": {"type": "number", "exclusiveMinimum": 0}}},
            "rows": {"type": "array", "items": ROW_SCHEMA},
            "added": {"type": "object", "properties": {k: {"type": "array"} for k in ("elements", "pairs", "regimes")}},
            "cumulative": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "number"}}},
            "elements_selected": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
        }},
}

def _sel(r: Report) -> Mapping | None:
    s = r.doc.get("selection")
    return s if isinstance(s, Mapping) and view.not_applicable_reason(s) is None else None


def _view(r: Report) -> dict:
    s = _sel(r)
    if s is None:
        return {"selection": None}
    summ = s.get("summary") or {}
    rows = [x for x in s.get("rows") or [] if isinstance(x, Mapping)]
    added = s.get("added") or {}
    h0, h1 = summ.get("training_entropy_nats"), summ.get("entropy_after_nats")
    return {"selection": {
        "pool": s.get("pool") or {}, "training": s.get("training") or {},
        "budget": summ.get("budget"), "n_selected": summ.get("n_selected", len(rows)),
        "total_gain": summ.get("total_gain_nats"),
        "entropy_before": h0, "entropy_after": h1,
        "entropy_rise": (h1 - h0) / h0 if h0 and h1 is not None and h0 > 0 else None,
        "overlap": view.dig(summ, "pool_overlap"), "radius_novelty": view.dig(summ, "pool_radius_novelty"),
        "bandwidth": summ.get("bandwidth"), "bandwidth_rule": summ.get("bandwidth_rule"),
        "gain_definition": summ.get("gain_definition"),
        "rows": rows[:ROWS_SHOWN], "n_rows": len(rows),
        "new_elements": list(added.get("elements") or []),
        "new_pairs": list(added.get("pairs") or [])[:PAIRS_SHOWN], "n_new_pairs": len(added.get("pairs") or []),
        "new_regimes": list(added.get("regimes") or []),
        "figures": r.figures_of("selection"),
    }}


def _cumulative_figure(cum: Mapping):
    from ..style import category_colour, new_figure

    fig, ax = new_figure(7.2, 3.2)
    ax.remove()
    left, right = fig.subplots(1, 2)
    x = np.asarray(cum["rank"], dtype=float)
    left.plot(x, cum["gain_nats"], marker="o", markersize=3, color=category_colour(0))
    left.set_xlabel("structures selected (count)")
    left.set_ylabel("cumulative environment gain (nats)")
    for i, (key, label) in enumerate((("new_elements", "new elements"), ("new_pairs", "new element pairs"),
                                      ("new_regimes", "new regimes"))):
        right.step(x, cum[key], where="post", color=category_colour(i + 1), label=label)
    right.set_xlabel("structures selected (count)")
    right.set_ylabel("added to the training set (count)")
    right.legend(frameon=False, fontsize=7, loc="best")
    for a in (left, right):
        a.set_xlim(0.5, max(float(x.max()), 1.0) + 0.5)
    return fig


def _figures(r: Report) -> list:
    from ..figures import FigurePlan
    from ..ptable import ptable_heatmap

    s = _sel(r)
    if s is None or not s.get("rows"):
        return []
    cum, per_el = s.get("cumulative") or {}, s.get("elements_selected") or {}
    pool, training = view.dig(s, "pool", "name") or "the pool", view.dig(s, "training", "name") or "the training set"
    plans = []
    if cum.get("rank"):
        plans.append(FigurePlan(
            "selection", None, "selection_cumulative_gain", f"What the selection adds to {training}",
            f"Left: running sum of the environment gain (QUESTS differential entropy, nats) of the {pool} structures "
            "in the order chosen. Right: elements, element pairs and regimes absent from the training set that "
            "the first n structures bring.",
            lambda: _cumulative_figure(cum)))
    new = {e["element"]: e["rank"] for e in view.dig(s, "added", "elements") or [] if isinstance(e, Mapping)}
    if new:
        plans.append(FigurePlan(
            "selection", None, "selection_new_elements_ptable", f"Elements new to {training}, in the order chosen",
            "Each element absent from the training set that the selection brings, coloured and labelled by the rank "
            "of the first selected structure holding it (dark: chosen first); grey: already in the training set or "
            "not brought.",
            lambda: ptable_heatmap(new, log=False, fmt="{:.0f}", vmin=1, vmax=max(max(new.values()), 2),
                                   colorbar_label="rank of the first selected structure with the element")))
    if len(set(per_el.values())) > 1:
        plans.append(FigurePlan(
            "selection", None, "selection_elements_ptable", "Elements of the selected structures",
            "Selected structures containing each element (log colour scale); grey: in none.",
            lambda: ptable_heatmap(per_el, log=True, fmt="{:.0f}",
                                   colorbar_label="selected structures containing the element (count)")))
    return plans


def _findings(r: Report) -> list:
    v = _view(r)["selection"]
    if v is None:
        return []
    pool, training = v["pool"].get("name") or "the pool", v["training"].get("name") or "the training set"
    out = []
    text = (f"{num(v['n_selected'])} of the {num(v['pool'].get('n_structures'))} {pool} structures add to "
            f"{training} (budget {num(v['budget'])})")
    if v["new_elements"]:
        els = [e["element"] for e in v["new_elements"]]
        text += f"; they bring {len(els)} element{'s' if len(els) > 1 else ''} it lacks ({', '.join(els[:12])}"
        text += ", ...)" if len(els) > 12 else ")"
    if v["n_new_pairs"]:
        text += f" and {num(v['n_new_pairs'])} new element pair{'s' if v['n_new_pairs'] > 1 else ''}"
    out.append({"rule": "selection_size", "text": text + ".", "weak": False})
    if v["entropy_before"] is not None and v["entropy_after"] is not None:
        out.append({"rule": "selection_entropy", "weak": False, "text": (
            f"With them the QUESTS entropy of {training} goes from {num(v['entropy_before'])} to "
            f"{num(v['entropy_after'])} nats"
            + (f" ({'+' if v['entropy_rise'] >= 0 else ''}{pct(v['entropy_rise'])})" if v["entropy_rise"] is not None
               else "") + ".")})
    ov = v["overlap"]
    if isinstance(ov, Mapping) and ov.get("overlap") is not None:
        out.append({"rule": "selection_overlap", "weak": False, "text": (
            f"{pct(ov['overlap'])} of the {pool} environments lie inside the support of {training} "
            "(QUESTS overlap): the rest is what the pool can add.")})
    if not v["n_selected"]:
        out.append({"rule": "selection_none", "weak": False,
                    "text": f"No {pool} structure adds anything to {training}: no new element, pair, regime or "
                            "environment outside its support."})
    return out


def _methods(r: Report) -> str | None:
    v = _view(r)["selection"]
    if v is None:
        return None
    parts = [f"Selection: {v['gain_definition']}." if v.get("gain_definition") else None,
             f"QUESTS kernel bandwidth {num(v['bandwidth'])} (descriptor units; {v['bandwidth_rule']})."
             if v.get("bandwidth") is not None else None]
    for key, label in (("overlap", "QUESTS overlap"), ("radius_novelty", "Radius novelty")):
        d = v.get(key)
        if isinstance(d, Mapping) and d.get("definition"):
            parts.append(f"{label}: {d['definition']}.")
    return " ".join(p for p in parts if p) or None


def _headline(r: Report) -> str | None:
    s = _sel(r)
    if s is None:
        return None
    summ = s.get("summary") or {}
    return (f"select {num(summ.get('n_selected'))} of {view.dig(s, 'pool', 'name') or 'the pool'} against "
            f"{view.dig(s, 'training', 'name') or 'the training set'}")


SECTION = register(ReportSection(
    name="selection", title="Selection", order=85, reads=("selection",), view=_view, figures=_figures,
    findings=_findings, headline=_headline, methods=_methods, schema={"selection": SCHEMA},
    applies=lambda r: bool(r.context["selection"])))
