"""Environment-level alignment (``monoculture align-environments --report``), the ``environment_alignment`` key.

:func:`environment_alignment_document` turns an
:class:`~monoculture.audit.environments.alignment_result.EnvironmentAlignment` into a document (the usual
envelope, no dataset, an ``environment_alignment`` key). The section shows the result's sentences as findings,
one table per kind of group (all environments, elements, clusters) with a row per group and model pair
(calibrated CKNNA and mutual k-NN with their chance levels, k/n, the bootstrap interval, GFRE both ways,
coverage by the training set), the coverage link in words, and three figures: agreement against coverage
(one point per group), calibrated CKNNA per element sorted, and the same on the periodic table.

Layout of ``environment_alignment``: :meth:`EnvironmentAlignment.to_dict` (``models``, ``atoms``, ``settings``,
``groups``, ``skipped_elements``, ``skipped_clusters``, ``coverage``, ``coverage_link``, ``sentences``; see
``docs/environments.md``) plus ``inputs`` (``embeddings``: the files as given, ``structures``, ``training``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields

import numpy as np

from .. import view
from ...audit.document import document
from ...audit.environments.alignment_result import AGREE, GroupAlignment, PairScores, agrees, at_chance
from ..findings import _join
from ..text import num, pct
from . import Report, ReportSection, register

__all__ = ["environment_alignment_document", "SECTION", "KEY", "AGREE_LINE"]

KEY = "environment_alignment"
#: Mean calibrated CKNNA from which a group is said to agree (the rule of the result's sentences).
AGREE_LINE = AGREE
_KINDS = (("all", "All environments"), ("element", "Per element"), ("cluster", "Per cluster of environments"))
_MEASURES = (("overlap", "overlap share"), ("-mean differential entropy", "minus the mean differential entropy"))


def _stem(path) -> str | None:
    """File stem of a path as the user gave it (compression suffixes dropped), None for none."""
    return view.reference_display_name({}, path)


def _and(names) -> str:
    return _join([str(n) for n in names])


def environment_alignment_document(result, *, embeddings=(), structures: str | None = None,
                                   training: str | None = None, parameters: Mapping | None = None, seed: int = 0,
                                   started=None, elapsed_s: float | None = None) -> dict:
    """The document of an ``align-environments`` run.

    Parameters
    ----------
    result : EnvironmentAlignment or dict
        Output of :func:`~monoculture.audit.environments.alignment.align_environments` (or its ``to_dict()``).
    embeddings : sequence of str
        The per-atom embedding files, as the user gave them (one per model, in the result's model order).
    structures, training : str, optional
        The dataset the atoms came from and the training set of the coverage, as given.
    parameters : mapping, optional
        Options of the run (shown in the methods section).
    seed : int
    started : datetime, optional
    elapsed_s : float, optional
        Wall time of the run (s).

    Returns
    -------
    dict
        Envelope + ``environment_alignment`` (layout in the module docstring).
    """
    section = dict(result.to_dict() if hasattr(result, "to_dict") else result)
    section["inputs"] = {"embeddings": [str(p) for p in embeddings],
                         "structures": None if structures is None else str(structures),
                         "training": None if training is None else str(training)}
    return document(KEY, section, dict(parameters or {}), seed=seed, started=started, elapsed_s=elapsed_s)


_CAL = {"type": "object", "required": ["raw", "tau", "calibrated"],
        "properties": {k: {"type": ["number", "null"]} for k in ("raw", "null_mean", "tau", "p_value")}
        | {"calibrated": {"type": ["number", "null"], "minimum": 0, "maximum": 1}}}
_PAIR = {"type": "object", "required": ["model_a", "model_b", "cknna", "mutual_knn", "gfre_a_to_b", "gfre_b_to_a"],
         "properties": {"model_a": {"type": "string"}, "model_b": {"type": "string"}, "cknna": _CAL,
                        "mutual_knn": _CAL, "cknna_within_element": {"oneOf": [{"type": "null"}, _CAL]},
                        "gfre_a_to_b": {"type": ["number", "null"]}, "gfre_b_to_a": {"type": ["number", "null"]},
                        "mutual_knn_interval": {"type": ["array", "null"], "items": {"type": ["number", "null"]}}}}
_GROUP = {"type": "object", "required": ["kind", "label", "n_atoms", "n_environments", "n_used", "k", "pairs"],
          "properties": {"kind": {"enum": ["all", "element", "cluster"]}, "label": {"type": "string"},
                         "description": {"type": "string"},
                         **{k: {"type": "integer", "minimum": 0} for k in ("n_atoms", "n_environments", "n_used", "k")},
                         "effective_dimension": {"type": "object"}, "pairs": {"type": "array", "items": _PAIR},
                         "coverage": {"type": ["object", "null"]}}}
SCHEMA = {
    "description": "Result of `monoculture align-environments`: models' per-atom features compared per element "
                   "and per cluster of environments, and linked to coverage by a training set.",
    "if": {"type": "object", "required": ["not_applicable"]},
    "then": {"properties": {"not_applicable": {"type": "string"}}},
    "else": {"type": "object", "required": ["models", "atoms", "settings", "groups", "sentences"],
             "properties": {"models": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                            "atoms": {"type": "object"}, "settings": {"type": "object"},
                            "groups": {"type": "array", "items": _GROUP, "minItems": 1},
                            "skipped_elements": {"type": "object"}, "skipped_clusters": {"type": "object"},
                            "coverage": {"type": ["object", "null"]}, "coverage_link": {"type": "object"},
                            "sentences": {"type": "array", "items": {"type": "string"}},
                            "inputs": {"type": "object"}}},
}


def _sec(r: Report) -> Mapping | None:
    s = r.doc.get(KEY)
    return s if isinstance(s, Mapping) and view.not_applicable_reason(s) is None and s.get("groups") else None


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _f(x, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, ``"–"`` for None / NaN."""
    return f"{x:.{digits}f}" if _finite(x) else "–"


def _p(x) -> str:
    return "–" if not _finite(x) else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")


_GROUP_FIELDS = {f.name for f in fields(GroupAlignment)}
_PAIR_FIELDS = {f.name for f in fields(PairScores)}


def _group(g: Mapping) -> GroupAlignment:
    """The audit's record of a group of the document (:meth:`EnvironmentAlignment.to_dict` layout), so that the
    report judges a group by the audit's own rules; keys the record does not know are dropped, scores a pair
    lacks are None."""
    def scores(p: Mapping) -> dict:
        out = {k: p.get(k) for k in _PAIR_FIELDS}
        for k in ("cknna", "mutual_knn"):
            out[k] = {"calibrated": None, "p_value": None, **(p[k] if isinstance(p.get(k), Mapping) else {})}
        return out

    kw = {k: g.get(k) for k in _GROUP_FIELDS}
    kw["pairs"] = [PairScores(**scores(p)) for p in g.get("pairs") or [] if isinstance(p, Mapping)]
    return GroupAlignment(**kw)


def _mean_cal(g: Mapping, metric: str = "cknna") -> float | None:
    """Mean calibrated score of a group over its model pairs (:meth:`GroupAlignment.mean_calibrated`), None
    where no pair has a finite one."""
    m = _group(g).mean_calibrated(metric)
    return m if math.isfinite(m) else None


def _row(g: Mapping, p: Mapping, first: bool) -> dict:
    ck, mk, w = p.get("cknna") or {}, p.get("mutual_knn") or {}, p.get("cknna_within_element") or {}
    ival = p.get("mutual_knn_interval") or [None, None]
    cov = g.get("coverage") or {}
    eff = g.get("effective_dimension") or {}
    n_used = g.get("n_used") or 0
    return {
        "first": first, "label": g.get("label"), "description": g.get("description") if g.get("kind") == "cluster"
        else None, "n_atoms": g.get("n_atoms"), "n_environments": g.get("n_environments"), "n_used": n_used,
        "k": g.get("k"), "k_over_n": _f(g["k"] / n_used, 3) if n_used and _finite(g.get("k")) else "–",
        "pair": f"{p.get('model_a')} / {p.get('model_b')}",
        "cknna": _f(ck.get("calibrated")), "cknna_raw": _f(ck.get("raw")), "cknna_tau": _f(ck.get("tau")),
        "cknna_p": _p(ck.get("p_value")),
        "mknn": _f(mk.get("calibrated")), "mknn_raw": _f(mk.get("raw")), "mknn_tau": _f(mk.get("tau")),
        "mknn_interval": f"{_f(ival[0])}–{_f(ival[1])}" if _finite(ival[0]) and _finite(ival[1]) else None,
        "within": _f(w.get("calibrated")) if w else None, "within_tau": _f(w.get("tau")) if w else None,
        "gfre_ab": _f(p.get("gfre_a_to_b")), "gfre_ba": _f(p.get("gfre_b_to_a")),
        "dim_a": _f(eff.get(p.get("model_a")), 1), "dim_b": _f(eff.get(p.get("model_b")), 1),
        "overlap": pct(cov.get("overlap"), 0) if cov else None,
        "delta_h": _f(cov.get("mean_delta_entropy_nats")) if cov else None,
    }


def _link_rows(s: Mapping) -> list:
    out = []
    names = {"cluster": "clusters", "element": "elements"}
    for kind, word in names.items():
        for measure, what in _MEASURES:
            v = view.dig(s, "coverage_link", kind, measure)
            if not isinstance(v, Mapping):
                continue
            row = {"kind": word, "measure": what, "n_groups": v.get("n_groups"), "evidence": None}
            if _finite(v.get("rho")):
                row.update(rho=_f(v["rho"]), low=_f(v.get("low")), high=_f(v.get("high")), p=_p(v.get("p_value")),
                           evidence=v.get("evidence") or "", tied=v.get("n_tied_at_lowest_coverage"),
                           text=(f"Across {num(v.get('n_groups'))} {word}, coverage measured by {what} and the mean "
                                 f"calibrated CKNNA: Spearman rho {_f(v['rho'])} (95 % bootstrap {_f(v.get('low'))} "
                                 f"to {_f(v.get('high'))}, permutation p {_p(v.get('p_value'))}): "
                                 f"{v.get('evidence') or 'no verdict'}."))
            elif any(o["kind"] == word and o["rho"] is None for o in out):
                continue  # the reason is the same for both measures: said once
            else:
                row.update(rho=None, text=f"Across {word}, coverage was not linked to agreement: "
                                          f"{v.get('reason') or 'not computed'}.")
            out.append(row)
    return out


def _view(r: Report) -> dict:
    s = _sec(r)
    if s is None:
        return {KEY: None}
    groups = [g for g in s.get("groups") or [] if isinstance(g, Mapping)]
    models = [str(m) for m in s.get("models") or []]
    atoms = s.get("atoms") or {}
    cov = s.get("coverage") if isinstance(s.get("coverage"), Mapping) else None
    inputs = s.get("inputs") or {}
    tables = []
    for kind, title in _KINDS:
        gs = [g for g in groups if g.get("kind") == kind]
        rows = [_row(g, p, i == 0) for g in gs for i, p in enumerate(g.get("pairs") or [])]
        if rows:
            tables.append({"kind": kind, "title": title, "rows": rows, "n_groups": len(gs),
                           "within": any(r["within"] is not None for r in rows)})
    skipped = {k: ", ".join(f"{lab} ({n})" for lab, n in (s.get(k) or {}).items())
               for k in ("skipped_elements", "skipped_clusters")}
    return {KEY: {
        "models": models, "models_text": _and(models), "n_pairs": len((groups[0].get("pairs") or [])) if groups else 0,
        "ab": (f"a = {models[0]}, b = {models[1]}" if len(models) == 2 else
               "a, b: the first and the second model of each pair"),
        "structures": _stem(inputs.get("structures")), "training": view.dig(cov, "reference") if cov else None,
        "embeddings": list(inputs.get("embeddings") or []),
        "atoms": {"n_union": atoms.get("n_union"), "n_joined": atoms.get("n_joined"),
                  "n_distinct": atoms.get("n_distinct_environments"), "n_merged": atoms.get("n_merged"),
                  "n_mismatch": atoms.get("n_atomic_number_mismatch") or 0,
                  "missing": [{"name": k, "n": v} for k, v in (atoms.get("missing") or {}).items()]},
        "coverage": None if cov is None else {
            "reference": cov.get("reference"), "n_reference": cov.get("n_reference_environments"),
            "overlap_all": pct(cov.get("overlap_all")), "bandwidth": num(cov.get("bandwidth")),
            "definition": cov.get("definition")},
        "tables": tables, "links": _link_rows(s) if cov is not None else [],
        "skipped_elements": skipped["skipped_elements"], "skipped_clusters": skipped["skipped_clusters"],
        "min_environments": view.dig(s, "settings", "min_environments"),
        "figures": r.figures_of(KEY),
    }}


# -- figures ------------------------------------------------------------------------------------------------
def _coverage_figure(points: list, all_mean: float | None, notes: Mapping):
    """Two panels, mean calibrated CKNNA against overlap share and against mean differential entropy."""
    from ..style import category_colour, new_figure

    fig, ax = new_figure(7.4, 4.2)
    ax.remove()
    axes = fig.subplots(1, 2, sharey=True)
    style = {"element": (category_colour(0), "o", "element"), "cluster": (category_colour(1), "s", "cluster")}
    for a, key, xlabel in ((axes[0], "overlap", "atoms inside the training support (%)"),
                           (axes[1], "delta_h", "mean differential entropy (nats, symlog)")):
        for kind, (colour, marker, label) in style.items():
            pts = [p for p in points if p["kind"] == kind]
            if not pts:
                continue
            x = np.array([p[key] for p in pts], dtype=float) * (100.0 if key == "overlap" else 1.0)
            y = np.array([p["y"] for p in pts], dtype=float)
            a.scatter(x, y, s=22, color=colour, marker=marker, alpha=0.8, linewidths=0, label=f"{label}s")
            for xi, yi, p in zip(x, y, pts):
                if key == "overlap" and xi == 0:
                    continue  # the groups wholly outside the support pile up at 0: labelled on the right panel
                a.annotate(p["short"], (xi, yi), xytext=(2, 2), textcoords="offset points", fontsize=5.5,
                           color="#333333")
        if all_mean is not None:
            a.axhline(all_mean, color="#555555", lw=0.8, ls=":", label="all environments")
        a.axhline(AGREE_LINE, color="#999999", lw=0.6, ls="--")
        a.set_xlabel(xlabel)
        if key == "delta_h":
            a.set_xscale("symlog", linthresh=1.0)
            lo, hi = a.get_xlim()
            ticks = [t for t in (-1000, -100, -10, -1, 0, 1, 10, 100, 1000, 10000) if lo <= t <= hi]
            a.set_xticks(ticks, [f"{t:g}" for t in ticks])
            a.minorticks_off()
        text = notes.get(key)
        if text:
            a.set_title(text, fontsize=7, loc="left")
    axes[0].set_ylabel("mean calibrated CKNNA (unitless)")
    axes[0].set_ylim(-0.03, 1.03)
    axes[0].legend(frameon=False, fontsize=7, loc="upper right")
    return fig


def _element_bars(labels: list, values: list, pairs: list, verdicts: list):
    """Calibrated CKNNA per element (sorted by the mean over pairs); one bar per pair, or coloured by verdict."""
    from matplotlib.patches import Patch

    from ..style import category_colour, new_figure

    n, m = len(labels), len(pairs)
    fig, ax = new_figure(min(7.4, max(3.6, 0.11 * n * max(m, 1) + 1.5)), 3.0)
    pos = np.arange(n)
    width = 0.8 / m
    verdict_colour = {"agree": category_colour(2), "weak": category_colour(1), "chance": "#bbbbbb"}
    for j, pair in enumerate(pairs):
        v = np.array([np.nan if row[j] is None else row[j] for row in values], dtype=float)
        colours = ([verdict_colour[x] for x in verdicts] if m == 1 else category_colour(j))
        x = pos - 0.4 + width * (j + 0.5)
        ax.bar(x, np.nan_to_num(v), width=width * 0.92, color=colours, label=pair if m > 1 else None)
        zero = v == 0  # at chance: no bar to see, so a mark at the axis
        ax.plot(x[zero], np.full(zero.sum(), 0.02), ls="none", marker="x", ms=4, color="#777777")
    ax.axhline(AGREE_LINE, color="#555555", lw=0.7, ls="--")
    ax.set_xticks(pos, labels, rotation=90 if n > 20 else 0, fontsize=6 if n > 30 else 7)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("calibrated CKNNA (unitless)")
    ax.set_xlabel("element (sorted by calibrated CKNNA)")
    if m > 1:
        ax.legend(frameon=False, fontsize=7, loc="upper right")
    else:
        ax.legend(handles=[Patch(color=verdict_colour[k], label=t) for k, t in
                           (("agree", "agree"), ("weak", "weak"), ("chance", "at chance"))],
                  frameon=False, fontsize=7, loc="upper right", ncols=3)
    return fig


def _verdict(g: Mapping) -> str:
    """``"chance"``, ``"agree"`` or ``"weak"`` by the rules of the audit's sentences."""
    ga = _group(g)
    if ga.pairs and at_chance(ga):
        return "chance"
    return "agree" if agrees(ga) else "weak"


def _link_note(s: Mapping, kind: str, measure: str) -> str | None:
    v = view.dig(s, "coverage_link", kind, measure)
    if not isinstance(v, Mapping) or not _finite(v.get("rho")):
        return None
    return f"{kind}s: rho {_f(v['rho'])} [{_f(v.get('low'))}, {_f(v.get('high'))}], n = {v.get('n_groups')}"


def _link_caption(s: Mapping) -> str:
    parts = []
    for kind, word in (("cluster", "clusters"), ("element", "elements")):
        for measure, what in _MEASURES:
            v = view.dig(s, "coverage_link", kind, measure)
            if isinstance(v, Mapping) and _finite(v.get("rho")):
                parts.append(f"across {num(v.get('n_groups'))} {word}, {what}: rho {_f(v['rho'])}, 95 % bootstrap "
                             f"{_f(v.get('low'))} to {_f(v.get('high'))}: {v.get('evidence')}")
            elif isinstance(v, Mapping) and measure == "overlap":
                parts.append(f"across {word}: not computed ({v.get('reason')})")
    return ("Spearman correlation of coverage with agreement: " + "; ".join(parts) + ". Fewer than 8 groups, or an "
            "interval containing 0, is weak evidence.") if parts else "No correlation across groups was computed."


def _figures(r: Report) -> list:
    from ..figures import FigurePlan
    from ..ptable import ptable_heatmap
    from ..style import SHARE_CMAP

    s = _sec(r)
    if s is None:
        return []
    groups = [g for g in s["groups"] if isinstance(g, Mapping)]
    plans = []
    cov = s.get("coverage") if isinstance(s.get("coverage"), Mapping) else None
    ref = (cov or {}).get("reference") or "the training set"
    points = [{"kind": g["kind"], "y": _mean_cal(g), "overlap": g["coverage"].get("overlap"),
               "delta_h": g["coverage"].get("mean_delta_entropy_nats"),
               "short": g["label"] if g["kind"] == "element" else "c" + str(g["label"]).split()[-1]}
              for g in groups if g.get("kind") in ("element", "cluster") and isinstance(g.get("coverage"), Mapping)
              and _mean_cal(g) is not None and _finite(g["coverage"].get("overlap"))
              and _finite(g["coverage"].get("mean_delta_entropy_nats"))]
    if cov is not None and len(points) >= 2:
        overall = next((g for g in groups if g.get("kind") == "all"), None)
        notes = {"overlap": "\n".join(t for t in (_link_note(s, k, "overlap") for k in ("cluster", "element")) if t),
                 "delta_h": "\n".join(t for t in (_link_note(s, k, "-mean differential entropy")
                                                   for k in ("cluster", "element")) if t)}
        plans.append(FigurePlan(
            KEY, None, "environment_alignment_coverage", f"Agreement against coverage by {ref}",
            f"One point per group (elements labelled by symbol, clusters as cN): mean calibrated CKNNA over the model "
            f"pairs against the share of the group's atoms inside the support of {ref} (left; QUESTS overlap; groups "
            f"at 0 % are labelled on the right only) and their mean differential entropy against it (right; larger = "
            f"farther from the training data). Dotted: "
            f"all environments; dashed: the agreement line {AGREE_LINE:g}. " + _link_caption(s),
            lambda: _coverage_figure(points, _mean_cal(overall) if overall else None, notes)))
    elements = sorted((g for g in groups if g.get("kind") == "element" and _mean_cal(g) is not None),
                      key=lambda g: -_mean_cal(g))
    if elements:
        pairs = [f"{p.get('model_a')} / {p.get('model_b')}" for p in elements[0].get("pairs") or []]
        values = [[view.dig(p, "cknna", "calibrated") for p in g.get("pairs") or []] for g in elements]
        labels, verdicts = [g["label"] for g in elements], [_verdict(g) for g in elements]
        plans.append(FigurePlan(
            KEY, None, "environment_alignment_elements", "Calibrated CKNNA per element, sorted",
            "Calibrated CKNNA, max(0, (raw - chance level) / (1 - chance level)), of each element's distinct "
            "environments" + (", one bar per model pair" if len(pairs) > 1 else
                              "; green: agree (>= 0.5, above chance), orange: weak, grey x: at chance (within "
                              "the 95 % permutation null)") + f". Dashed: {AGREE_LINE:g}.",
            lambda: _element_bars(labels, values, pairs, verdicts)))
        if len(elements) >= 3:
            per = {g["label"]: _mean_cal(g) for g in elements}
            plans.append(FigurePlan(
                KEY, None, "environment_alignment_ptable", "Calibrated CKNNA on the periodic table",
                "Mean calibrated CKNNA over the model pairs of each element analysed (cividis, 0 to 1); grey: not in "
                "the data or below the minimum group size.",
                lambda: ptable_heatmap(per, log=False, cmap=SHARE_CMAP, vmin=0.0, vmax=1.0, fmt="{:.2f}",
                                       colorbar_label="mean calibrated CKNNA (unitless)")))
    return plans


# -- findings, headline, methods -------------------------------------------------------------------------------
def _findings(r: Report) -> list:
    s = _sec(r)
    if s is None:
        return []
    return [{"rule": f"environment_alignment_{i}", "text": str(t),
             "weak": "weak evidence" in str(t) or "no clear link" in str(t)}
            for i, t in enumerate(s.get("sentences") or [])]


def _headline(r: Report) -> str | None:
    s = _sec(r)
    if s is None:
        return None
    text = "align environments of " + _and(s.get("models") or [])
    on = _stem(view.dig(s, "inputs", "structures"))
    ref = view.dig(s, "coverage", "reference")
    return text + (f" on {on}" if on else "") + (f" against {ref}" if ref else "")


def _methods(r: Report) -> str | None:
    s = _sec(r)
    if s is None:
        return None
    st = s.get("settings") or {}
    cov = s.get("coverage") if isinstance(s.get("coverage"), Mapping) else None
    parts = [
        f"Environment alignment: CKNNA ({st.get('cknna_variant', 'unbiased HSIC, cosine kernel')}) and mutual "
        f"k-NN ({st.get('mutual_knn_metric', 'cosine')}) on distinct environments, k = {num(st.get('k'))} "
        f"({st.get('k_rule', 'one k for every group')}; {num(st.get('k_requested'))} requested).",
        f"Chance levels from {num(st.get('n_permutations'))} row permutations; calibrated score "
        f"{st.get('calibrated', 'max(0, (raw - tau) / (1 - tau))')}. For groups of several elements, CKNNA is "
        "also calibrated against permutations within elements (agreement beyond element identity); the interval "
        "of the calibrated mutual k-NN is a 95 % bootstrap over the group's atoms with the neighbour graphs fixed.",
        f"GFRE: {st['gfre']}." if st.get("gfre") else None,
        f"Groups: elements with at least {num(st.get('min_environments'))} distinct environments; "
        f"{num(st.get('n_clusters'))} k-means clusters ({num(st.get('n_clusters_requested'))} requested) of "
        f"{st.get('cluster_space', 'the environments')}; {st.get('cluster_rule', '')}. Groups above "
        f"{num(st.get('max_per_group'))} distinct environments are subsampled (seed {num(st.get('seed'))}).",
        (f"Symmetry-equivalent atoms merged: {st.get('merge_rule')}; metrics on distinct environments, coverage "
         "shares count atoms." if st.get("merge") else "Atoms with identical features were not merged (--no-merge): "
         "symmetry-equivalent atoms are each other's neighbours in every model and inflate the k-NN scores."),
    ]
    if cov is not None:
        parts.append(f"Coverage by {cov.get('reference')} ({num(cov.get('n_reference_environments'))} environments): "
                     f"{cov.get('definition') or 'QUESTS overlap'} (bandwidth {num(cov.get('bandwidth'))}, "
                     f"{cov.get('bandwidth_rule') or 'QUESTS default'}); Spearman's rho across groups with a 95 % "
                     "bootstrap interval, weak evidence below 8 groups.")
    return " ".join(p for p in parts if p)


SECTION = register(ReportSection(
    name=KEY, title="Environment alignment", order=92, reads=(KEY,), view=_view, figures=_figures,
    findings=_findings, headline=_headline, methods=_methods, schema={KEY: SCHEMA},
    applies=lambda r: bool(r.context[KEY])))
