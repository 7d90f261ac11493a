"""Decide which figures the document supports and how to draw each from its plain numbers.

:func:`plan_figures` returns :class:`FigurePlan` objects; nothing is drawn until ``plan.draw()`` is called,
so the writer controls the matplotlib settings and where files go. Sections without data yield no plan.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import alignment_charts as ac
from . import charts
from .paths import slugify
from .ptable import ptable_heatmap
from .style import SHARE_CMAP
from .view import comparisons, coverage_section, dig, level_of_theory_counts, not_applicable_reason

__all__ = ["FigurePlan", "plan_figures", "SECTIONS"]

#: Report sections that hold figures, in page order.
SECTIONS = ("elements", "level_of_theory", "regimes", "chemical_space", "comparison", "alignment")


@dataclass
class FigurePlan:
    """A figure the report will hold.

    Attributes
    ----------
    section : str
        One of :data:`SECTIONS`.
    dataset : str or None
        Dataset name (None for document-level figures).
    name : str
        File stem under ``figures/``, safe for any file system (content + slug of the dataset).
    title : str
    caption : str
    draw : callable returning a matplotlib Figure
    """

    section: str
    dataset: str | None
    name: str
    title: str
    caption: str
    draw: Callable


def _stem(content: str, dataset: str | None) -> str:
    return f"{content}_{slugify(dataset)}" if dataset is not None else content


def _pair_matrix(pairs: Mapping[str, int], diag: Mapping[str, int]):
    from ase.data import atomic_numbers

    names = sorted(diag, key=lambda s: atomic_numbers.get(s, 999))
    pos = {s: i for i, s in enumerate(names)}
    m = [[None] * len(names) for _ in names]
    for s, c in diag.items():
        m[pos[s]][pos[s]] = c
    for key, c in pairs.items():
        a, _, b = str(key).partition("-")
        if a in pos and b in pos:
            m[pos[a]][pos[b]] = c
            m[pos[b]][pos[a]] = c
    return m, names


def _pair_figure(pairs: Mapping[str, int], diag: Mapping[str, int]):
    m, names = _pair_matrix(pairs, diag)
    return charts.labelled_heatmap(m, names, names, xlabel="element", ylabel="element", log=True,
                                   colorbar_label="frames containing both (count)", annotate=len(names) <= 14,
                                   fmt="{:.0f}")


def _hist_note(h: Mapping) -> str | None:
    parts = [f"{k}: {h[k]}" for k in ("underflow", "overflow", "missing") if h.get(k)]
    return ", ".join(parts) + " frames" if parts else None


def _dataset_plans(ds: Mapping) -> list[FigurePlan]:
    name = str(ds.get("name", "dataset"))
    plans: list[FigurePlan] = []

    spe = dig(ds, "elements", "structures_per_element") or {}
    if spe:
        plans.append(FigurePlan(
            "elements", name, _stem("elements_ptable", name), f"Structures per element — {name}",
            "Frames containing each element (log colour scale); grey elements are absent.",
            lambda spe=spe: ptable_heatmap(spe, log=True, colorbar_label="structures containing the element (frames)")))
    el = coverage_section(ds, "elements")
    pairs = dig(el, "pairs", "counts")
    if pairs:
        diag = el.get("structures_per_element") or spe
        plans.append(FigurePlan(
            "elements", name, _stem("elements_pairs", name), f"Element pairs — {name}",
            "Frames containing both elements (log colour scale; diagonal = frames with the element; grey = never "
            "together).",
            lambda: _pair_figure(pairs, diag)))

    lot = level_of_theory_counts(ds)
    if lot:
        plans.append(FigurePlan(
            "level_of_theory", name, _stem("level_of_theory_bars", name), f"Level of theory — {name}",
            "Frames per level-of-theory label.",
            lambda: charts.bar_chart(lot, xlabel="frames (count)", ylabel="level of theory", horizontal=True)))
    per_el = dig(coverage_section(ds, "level_of_theory"), "per_element") or {}
    plus_u = {s: d.get("plus_u_share") for s, d in per_el.items() if isinstance(d, Mapping)}
    if plus_u and any(v for v in plus_u.values()):
        plans.append(FigurePlan(
            "level_of_theory", name, _stem("plus_u_ptable", name), f"+U share per element — {name}",
            "Share of the frames containing each element that were computed with a Hubbard U.",
            lambda: ptable_heatmap(plus_u, log=False, cmap=SHARE_CMAP, vmin=0.0, vmax=1.0, fmt="{:.2f}",
                                   colorbar_label="frames with +U / frames with the element (share)")))

    reg = coverage_section(ds, "regimes")
    grid = dig(reg, "grid")
    if grid and grid.get("counts"):
        plans.append(FigurePlan(
            "regimes", name, _stem("regimes_t_p_grid", name), f"Temperature × pressure — {name}",
            "Frames per temperature class (K) and pressure class (GPa, compression > 0); '0' cells are empty, "
            "the last row / column holds frames without a temperature / stress.",
            lambda: charts.labelled_heatmap(grid["counts"], grid["temperature_classes"], grid["pressure_classes"],
                                            xlabel="pressure class (GPa)", ylabel="temperature class (K)",
                                            colorbar_label="frames (count)", log=True, empty_label="0",
                                            fmt="{:.0f}")))
    hists = dig(reg, "histograms") or {}
    for key, label, log_y in (("fmax_eV_A", "largest atomic force fmax (eV/Å)", True),
                              ("energy_per_atom_eV", "energy per atom (eV/atom)", False),
                              ("temperature_K", "temperature (K)", False),
                              ("pressure_GPa", "pressure (GPa, compression > 0)", False)):
        h = hists.get(key)
        if isinstance(h, Mapping) and h.get("counts") and sum(h["counts"]) > 0:
            plans.append(FigurePlan(
                "regimes", name, _stem(f"regimes_{key}", name), f"{label[0].upper()}{label[1:]} — {name}",
                f"Histogram of {label} with the audit's fixed bin edges.",
                lambda h=h, label=label, log_y=log_y: charts.histogram_chart(
                    h["edges"], h["counts"], xlabel=label, ylabel="frames (count)", log_y=log_y, note=_hist_note(h))))
    methods = dig(reg, "methods") or dig(ds, "method") or {}
    if methods:
        plans.append(FigurePlan(
            "regimes", name, _stem("regimes_methods", name), f"Method — {name}",
            "Frames per generating method (relaxation, static, MD, rattled, unknown).",
            lambda: charts.bar_chart(methods, xlabel="method", ylabel="frames (count)")))
    if not grid:
        temps = dig(ds, "temperature_K", "values") or {}
        if temps:
            temps_sorted = dict(sorted(temps.items(), key=lambda kv: float(kv[0])))
            plans.append(FigurePlan(
                "regimes", name, _stem("regimes_temperatures", name), f"Temperatures — {name}",
                f"Frames per recorded temperature; {dig(ds, 'temperature_K', 'unknown', default=0)} frames "
                "have none.",
                lambda: charts.bar_chart({f"{k} K": v for k, v in temps_sorted.items()}, xlabel="temperature (K)",
                                         ylabel="frames (count)")))

    cs = coverage_section(ds, "chemical_space")
    umap = dig(cs, "umap")
    if isinstance(umap, Mapping) and not_applicable_reason(umap) is None and umap.get("x"):
        plans.append(_umap_plan(umap, name))
    nn1 = dig(cs, "knn", "nn1_histogram")
    if isinstance(nn1, Mapping) and nn1.get("counts"):
        plans.append(FigurePlan(
            "chemical_space", name, _stem("chemical_space_nn1", name), f"Nearest-neighbour distances — {name}",
            "Distance from each sampled frame to its nearest other frame in descriptor space.",
            lambda: charts.histogram_chart(nn1["edges"], nn1["counts"], categorical=False,
                                           xlabel="1-NN distance (descriptor units)", ylabel="frames (count)")))

    for c in comparisons(ds):
        pen = c.get("per_element_novelty") or {}
        if pen:
            other = str(c.get("b", "other"))
            plans.append(FigurePlan(
                "comparison", name, _stem("novelty_ptable", f"{name}_vs_{other}"),
                f"Per-element novelty — {name} vs {other}",
                f"Share of the {name} frames containing each element that lie outside the coverage radius of "
                f"{other}.",
                lambda pen=pen: ptable_heatmap({s: d.get("novelty") for s, d in pen.items()}, log=False,
                                               cmap=SHARE_CMAP, vmin=0.0, vmax=1.0, fmt="{:.2f}",
                                               colorbar_label="novel frames / frames with the element (share)")))
    return plans


def _umap_plan(umap: Mapping, name: str | None) -> FigurePlan:
    groups = umap.get("datasets") or None
    caption = (f"UMAP of the descriptor sample (n_neighbors = {umap.get('n_neighbors', '?')}, min_dist = "
               f"{umap.get('min_dist', '?')}, seed = {umap.get('seed', '?')}); coloured by dataset.")
    title = f"Chemical-space map — {name}" if name else "Chemical-space map — all datasets"
    return FigurePlan("chemical_space", name, _stem("chemical_space_umap", name), title, caption,
                      lambda: charts.grouped_scatter(umap["x"], umap["y"], groups, xlabel="UMAP 1 (arb. units)",
                                                     ylabel="UMAP 2 (arb. units)"))


_METRIC_NAMES = {"cknna": "CKNNA", "mutual_knn": "mutual k-NN", "cka": "CKA", "dcor": "distance correlation",
                 "information_imbalance": "information imbalance", "gfre": "GFRE", "lfre": "LFRE"}
_DIRECTED = ("information_imbalance", "gfre", "lfre")  # row = source model, column = target model


def _set_name(al: Mapping, key: str) -> str:
    nm = dig(al, "sets", key, "name")
    return f"{key.upper()}: {nm}" if nm else key.upper()


def _alignment_plans(al: Mapping) -> list[FigurePlan]:
    plans: list[FigurePlan] = []
    models = [str(m) for m in al.get("models") or []]
    for metric, m in (al.get("metrics") or {}).items():
        if not isinstance(m, Mapping) or not models:
            continue
        panels = {_set_name(al, s): m[s] for s in ("id", "ood") if m.get(s)}
        if not panels:
            continue
        label = _METRIC_NAMES.get(metric, str(metric))
        k = f" (k = {m['k']})" if m.get("k") is not None else ""
        low_good = m.get("higher_is_more_aligned") is False
        plans.append(FigurePlan(
            "alignment", None, f"alignment_{slugify(metric)}", f"{label}{k}: in vs out of distribution",
            f"{label} between every pair of models" + (" (0 = equivalent, 1 = unrelated)" if low_good else
                                                       " (1 = identical neighbourhoods / kernels)")
            + ("; row = source model, column = target model." if metric in _DIRECTED else ".")
            + (f" Variant: {m['variant']}." if m.get("variant") else ""),
            lambda panels=panels, label=label: ac.paired_heatmaps(models, panels,
                                                                  colorbar_label=f"{label} (unitless)")))
    idim = al.get("intrinsic_dimension")
    if isinstance(idim, Mapping) and idim.get("values"):
        est = idim.get("estimator", "estimator not stated")
        values = {_m: {_set_name(al, s): v for s, v in d.items()} for _m, d in idim["values"].items()}
        intervals = {_m: {_set_name(al, s): v for s, v in d.items()} for _m, d in (idim.get("intervals") or {}).items()}
        plans.append(FigurePlan(
            "alignment", None, "alignment_intrinsic_dimension", f"Intrinsic dimension ({est})",
            "Intrinsic dimension of each model's embeddings per evaluation set" +
            (", with intervals." if intervals else "."),
            lambda: ac.grouped_bars(values, intervals=intervals or None, ylabel="intrinsic dimension (count)")))
    sweep = al.get("k_sweep")
    if isinstance(sweep, Mapping) and sweep.get("curves") and sweep.get("k"):
        metric = _METRIC_NAMES.get(sweep.get("metric"), str(sweep.get("metric", "alignment")))
        curves = [{"label": c["label"] + (f" ({c['set'].upper()})" if c.get("set") else ""), "x": sweep["k"],
                   "y": c["values"], "dashed": str(c.get("set", "")).lower() == "ood"} for c in sweep["curves"]]
        plans.append(FigurePlan(
            "alignment", None, "alignment_k_sweep", f"{metric} against k",
            "Alignment as the neighbourhood size k grows (dashed: OOD set).",
            lambda: charts.curves_chart(curves, xlabel="neighbours k (count)", ylabel=f"{metric} (unitless)",
                                        log_x=True)))
    ivs = al.get("id_vs_scale")
    if isinstance(ivs, Mapping) and ivs.get("curves"):
        curves = [{"label": c["label"] + (f" ({c['set'].upper()})" if c.get("set") else ""), "x": c["scale"],
                   "y": c["id"], "dashed": str(c.get("set", "")).lower() == "ood"} for c in ivs["curves"]]
        plans.append(FigurePlan(
            "alignment", None, "alignment_id_vs_scale", "Intrinsic dimension against scale",
            f"Estimator: {ivs.get('estimator', 'not stated')} (dashed: OOD set).",
            lambda: charts.curves_chart(curves, xlabel=ivs.get("scale_label", "scale (neighbours k)"),
                                        ylabel="intrinsic dimension (count)", log_x=True)))
    gvc = al.get("gap_vs_collapse")
    if isinstance(gvc, Mapping) and gvc.get("points"):
        pts = gvc["points"]
        rho = gvc.get("spearman_rho")
        ci = gvc.get("ci")
        note = None
        if rho is not None:
            note = f"Spearman ρ = {rho:.2f}"
            if ci:
                note += f", {round(100 * gvc.get('ci_level', 0.95))}% CI [{ci[0]:.2f}, {ci[1]:.2f}]"
        plans.append(FigurePlan(
            "alignment", None, "alignment_gap_vs_collapse", "Gap against collapse",
            "One point per evaluation structure (coloured by set)." + (f" Interval from {gvc['n_boot']} bootstrap resamples." if gvc.get("n_boot") else ""),
            lambda: charts.grouped_scatter([p["x"] for p in pts], [p["y"] for p in pts], None,
                                           labels=[p["label"] for p in pts] if len(pts) <= 30 else None,
                                           xlabel=gvc.get("x_label", "gap (unitless)"),
                                           ylabel=gvc.get("y_label", "collapse (unitless)"), note=note)))
    tree = al.get("family_tree")
    if isinstance(tree, Mapping) and tree.get("linkage") and (tree.get("labels") or models):
        labels = tree.get("labels") or models
        plans.append(FigurePlan(
            "alignment", None, "alignment_family_tree", "Family tree of the models",
            f"Hierarchical clustering ({tree.get('method', 'average')} linkage) of "
            f"{tree.get('metric', 'the alignment distance')}" + (f" on the {tree['set']} set." if tree.get("set") else "."),
            lambda: ac.dendrogram_chart(tree["linkage"], labels,
                                        distance_label=f"{tree.get('metric', 'distance')} (unitless)")))
    return plans


def plan_figures(doc: Mapping) -> list[FigurePlan]:
    """All figures the document supports, in page order within each section.

    Parameters
    ----------
    doc : dict
        Audit document.

    Returns
    -------
    list of FigurePlan
        File stems are unique (a numeric suffix is added on collision).
    """
    plans: list[FigurePlan] = []
    for ds in doc.get("datasets") or []:
        if isinstance(ds, Mapping):
            plans += _dataset_plans(ds)
    joint = dig(doc, "chemical_space", "umap")
    if isinstance(joint, Mapping) and not_applicable_reason(joint) is None and joint.get("x"):
        plans.append(_umap_plan(joint, None))
    al = doc.get("alignment")
    if isinstance(al, Mapping) and not_applicable_reason(al) is None:
        plans += _alignment_plans(al)
    seen: dict[str, int] = {}
    for p in plans:
        n = seen.get(p.name, 0)
        seen[p.name] = n + 1
        if n:
            p.name = f"{p.name}_{n + 1}"
    return plans
