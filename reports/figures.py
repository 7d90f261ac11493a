"""Decide which figures the document supports and how to draw each from its plain numbers.

:func:`plan_figures` returns :class:`FigurePlan` objects; nothing is drawn until ``plan.draw()`` is called,
so the writer controls the matplotlib settings and where files go. Sections without data yield no plan.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..audit.alignment.calibration_report import MAX_K_OVER_N
from . import alignment_charts as ac
from . import charts
from .paths import slugify
from .ptable import ptable_heatmap
from .style import SHARE_CMAP
from .view import comparisons, coverage_section, dig, level_of_theory_counts, not_applicable_reason

__all__ = ["FigurePlan", "plan_figures", "elements_plans", "level_of_theory_plans", "regimes_plans",
           "chemical_space_plans", "comparison_plans", "joint_umap_plans", "alignment_plans", "unique_names"]

#: A histogram whose fullest bin holds more than this share of the frames says little: it is left out and the
#: quantiles are given in words instead (the audit stores fixed-width bins, not the distances).
CROWDED_BIN_SHARE = 0.6


@dataclass
class FigurePlan:
    """A figure the report will hold.

    Attributes
    ----------
    section : str
        Figure group: the report section whose block shows it (``report.figs`` key, with ``dataset``).
    dataset : int or None
        Index of the dataset in ``doc["datasets"]`` (None for document-level figures).
    name : str
        File stem under ``figures/``, safe for any file system (content + slug of the dataset).
    title : str
    caption : str
    draw : callable returning a matplotlib Figure
    """

    section: str
    dataset: int | None
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


def crowded_histogram(h: Mapping | None) -> bool:
    """Whether one bin of a histogram dict holds more than :data:`CROWDED_BIN_SHARE` of its counts."""
    counts = [c for c in (h or {}).get("counts") or [] if c is not None]
    total = sum(counts)
    return bool(total) and max(counts) / total > CROWDED_BIN_SHARE


def novelty_levels(c: Mapping) -> set[float]:
    """Distinct per-element novelties (to 3 decimals) of one comparison: one level means every element has the
    same novelty, so no per-element map is drawn (the comparison section says so instead)."""
    pen = c.get("per_element_novelty") or {}
    return {round(float(x.get("novelty") or 0), 3) for x in pen.values() if isinstance(x, Mapping)}


def grid_has_known_cells(grid: Mapping | None) -> bool:
    """Whether any frame of a temperature x pressure grid has both a known temperature and a known pressure."""
    counts = (grid or {}).get("counts") or []
    return any(any(c for c in row[:-1]) for row in counts[:-1])


def elements_plans(ds: Mapping, idx: int, name: str) -> list[FigurePlan]:
    """Periodic table of structures per element and the element-pair matrix of one dataset."""
    plans: list[FigurePlan] = []
    spe = dig(ds, "elements", "structures_per_element") or {}
    if spe:
        plans.append(FigurePlan(
            "elements", idx, _stem("elements_ptable", name), f"Structures per element — {name}",
            "Frames containing each element (log colour scale); grey elements are absent.",
            lambda spe=spe: ptable_heatmap(spe, log=True, fmt="{:.0f}",
                                          colorbar_label="structures containing the element (frames)")))
    el = coverage_section(ds, "elements")
    pairs = dig(el, "pairs", "counts")
    if pairs:
        diag = el.get("structures_per_element") or spe
        plans.append(FigurePlan(
            "elements", idx, _stem("elements_pairs", name), f"Element pairs — {name}",
            "Frames containing both elements (log colour scale; diagonal = frames with the element; grey = never "
            "together).",
            lambda: _pair_figure(pairs, diag)))
    return plans


def level_of_theory_plans(ds: Mapping, idx: int, name: str, colour: str | None) -> list[FigurePlan]:
    """Frames per level-of-theory label and the +U share per element of one dataset."""
    plans: list[FigurePlan] = []
    lot = level_of_theory_counts(ds)
    if len(lot) > 1:  # one label is said in one line, not drawn
        plans.append(FigurePlan(
            "level_of_theory", idx, _stem("level_of_theory_bars", name), f"Level of theory — {name}",
            "Frames per level-of-theory label.",
            lambda: charts.bar_chart(lot, xlabel="frames (count)", ylabel="level of theory", horizontal=True,
                                     colour=colour)))
    per_el = dig(coverage_section(ds, "level_of_theory"), "per_element") or {}
    plus_u = {s: d.get("plus_u_share") for s, d in per_el.items() if isinstance(d, Mapping)}
    if plus_u and any(v for v in plus_u.values()):
        plans.append(FigurePlan(
            "level_of_theory", idx, _stem("plus_u_ptable", name), f"+U share per element — {name}",
            "Share of the frames containing each element that were computed with a Hubbard U.",
            lambda: ptable_heatmap(plus_u, log=False, cmap=SHARE_CMAP, vmin=0.0, vmax=1.0, fmt="{:.2f}",
                                   colorbar_label="frames with +U / frames with the element (share)")))
    return plans


def regimes_plans(ds: Mapping, idx: int, name: str, colour: str | None) -> list[FigurePlan]:
    """Temperature x pressure grid, regime histograms, methods and temperatures of one dataset."""
    plans: list[FigurePlan] = []
    reg = coverage_section(ds, "regimes")
    grid = dig(reg, "grid")
    if grid and grid.get("counts") and grid_has_known_cells(grid):
        plans.append(FigurePlan(
            "regimes", idx, _stem("regimes_t_p_grid", name), f"Temperature × pressure — {name}",
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
                "regimes", idx, _stem(f"regimes_{key}", name), f"{label[0].upper()}{label[1:]} — {name}",
                f"Histogram of {label} with the audit's fixed bin edges.",
                lambda h=h, label=label, log_y=log_y: charts.histogram_chart(
                    h["edges"], h["counts"], xlabel=label, ylabel="frames (count)", log_y=log_y, note=_hist_note(h),
                    colour=colour)))
    methods = {k: v for k, v in (dig(reg, "methods") or dig(ds, "method") or {}).items() if v}
    if len(methods) > 1:
        plans.append(FigurePlan(
            "regimes", idx, _stem("regimes_methods", name), f"Method — {name}",
            "Frames per generating method (relaxation, static, MD, rattled, unknown).",
            lambda: charts.bar_chart(methods, xlabel="method", ylabel="frames (count)", colour=colour)))
    if not grid:
        temps = dig(ds, "temperature_K", "values") or {}
        if temps:
            temps_sorted = dict(sorted(temps.items(), key=lambda kv: float(kv[0])))
            plans.append(FigurePlan(
                "regimes", idx, _stem("regimes_temperatures", name), f"Temperatures — {name}",
                f"Frames per recorded temperature; {dig(ds, 'temperature_K', 'unknown', default=0)} frames "
                "have none.",
                lambda: charts.bar_chart({f"{k} K": v for k, v in temps_sorted.items()}, xlabel="temperature (K)",
                                         ylabel="frames (count)", colour=colour)))
    return plans


def chemical_space_plans(ds: Mapping, idx: int, name: str, colours: Mapping[str, str]) -> list[FigurePlan]:
    """UMAP map and nearest-neighbour histogram of one dataset's descriptor sample."""
    plans: list[FigurePlan] = []
    colour = colours.get(name)
    cs = coverage_section(ds, "chemical_space")
    umap = dig(cs, "umap")
    if isinstance(umap, Mapping) and not_applicable_reason(umap) is None and umap.get("x"):
        plans.append(_umap_plan(umap, name, idx, {name: colours.get(name, "#0072B2")}, [name] * len(umap["x"])))
    nn1 = dig(cs, "knn", "nn1_histogram")
    if isinstance(nn1, Mapping) and nn1.get("counts") and not crowded_histogram(nn1):
        plans.append(FigurePlan(
            "chemical_space", idx, _stem("chemical_space_nn1", name), f"Nearest-neighbour distances — {name}",
            "Distance from each sampled frame to its nearest other frame in descriptor space.",
            lambda: charts.histogram_chart(nn1["edges"], nn1["counts"], categorical=False, colour=colour,
                                           xlabel="1-NN distance (descriptor units)", ylabel="frames (count)")))
    return plans


def comparison_plans(ds: Mapping, idx: int, name: str, reference: str | None) -> list[FigurePlan]:
    """Per-element novelty against the reference of one dataset."""
    plans: list[FigurePlan] = []
    for c in comparisons(ds):
        pen = c.get("per_element_novelty") or {}
        if len(novelty_levels(c)) > 1:
            other = str(reference or c.get("b") or "the reference")
            plans.append(FigurePlan(
                "comparison", idx, _stem("novelty_ptable", f"{name}_vs_{other}"),
                f"Per-element novelty — {name} vs {other}",
                f"Share of the {name} frames containing each element that lie outside the coverage radius of "
                f"{other}.",
                lambda pen=pen: ptable_heatmap({s: d.get("novelty") for s, d in pen.items()}, log=False,
                                               cmap=SHARE_CMAP, vmin=0.0, vmax=1.0, fmt="{:.2f}",
                                               colorbar_label="novel frames / frames with the element (share)")))
    return plans


def _umap_plan(umap: Mapping, name: str | None, idx: int | None, colours: Mapping[str, str],
               groups: list[str] | None) -> FigurePlan:
    n = len(umap.get("x") or [])
    dense = n >= charts.DENSITY_MIN_POINTS
    caption = (f"UMAP of the descriptor sample (n_neighbors = {umap.get('n_neighbors', '?')}, min_dist = "
               f"{umap.get('min_dist', '?')}, seed = {umap.get('seed', '?')}); "
               + (f"{n:,} points drawn as densities (hexagonal bins, logarithmic shading; other datasets in grey)."
                  if dense else "one colour per dataset, as in every figure of this report."))
    title = f"Chemical-space map — {name}" if name else "Chemical-space map — all datasets"
    return FigurePlan("chemical_space", idx, _stem("chemical_space_umap", name), title, caption,
                      lambda: charts.grouped_scatter(umap["x"], umap["y"], groups, xlabel="UMAP 1 (arb. units)",
                                                     ylabel="UMAP 2 (arb. units)", colours=colours))


def _set_name(al: Mapping, key: str, width: int = 26) -> str:
    """Panel title of an evaluation set: its key and name, wrapped so that two panels' titles never overlap."""
    import textwrap

    nm = dig(al, "sets", key, "name")
    if not nm or str(nm).lower() in ("in distribution", "out of distribution"):
        return key.upper()
    return "\n".join(textwrap.wrap(f"{key.upper()}: {nm}", width, break_on_hyphens=False)[:3])


def _set_key(label) -> str:
    """Legend group of a gap-vs-collapse point: its evaluation set ("ID" / "OOD"), else its label as given."""
    text = str(label or "")
    return text.upper() if text.lower() in ("id", "ood") else text


def _line_styles(curves: list[dict]) -> dict[str, str]:
    """Legend entries of the line styles of ID (solid) and OOD (dashed) curves, for the styles present."""
    styles = {}
    if any(not c["dashed"] for c in curves):
        styles["solid"] = "ID set"
    if any(c["dashed"] for c in curves):
        styles["dashed"] = "OOD set"
    return styles


def alignment_plans(al: Mapping) -> list[FigurePlan]:
    plans: list[FigurePlan] = []
    models = [str(m) for m in al.get("models") or []]
    for metric, m in (al.get("metrics") or {}).items():
        if not isinstance(m, Mapping) or not models:
            continue
        panels = {_set_name(al, s): m[s] for s in ("id", "ood") if m.get(s)}
        if not panels:
            continue
        label = ac.metric_label(metric)
        k = f" (k = {m['k']})" if m.get("k") is not None else ""
        scale = ac.metric_scale(metric, m.get("higher_is_more_aligned"))
        plans.append(FigurePlan(
            "alignment", None, f"alignment_{slugify(metric)}", f"{label}{k}: in vs out of distribution",
            f"{label} between every pair of models" + (f" ({scale})" if scale else "")
            + ("; row = source model, column = target model." if ac.is_directed(metric) else ".")
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
        metric = ac.metric_label(sweep.get("metric", "alignment"))
        curves = [{"label": c["label"] + (f" ({c['set'].upper()})" if c.get("set") else ""), "x": sweep["k"],
                   "y": c["values"], "dashed": str(c.get("set", "")).lower() == "ood", "group": c["label"],
                   "emphasis": str(c["label"]).startswith("mean")} for c in sweep["curves"]]
        n_sets = [dig(al, "sets", key, "n") for key in ("id", "ood")]
        n_min = min((int(n) for n in n_sets if isinstance(n, (int, float)) and n > 0), default=None)
        k_local = None if n_min is None else MAX_K_OVER_N * n_min
        beyond = k_local is not None and max(sweep["k"]) > k_local
        plans.append(FigurePlan(
            "alignment", None, "alignment_k_sweep", f"{metric} against k",
            "Alignment as the neighbourhood size k grows (dashed: OOD set)."
            + (f" Shaded: k/n above {MAX_K_OVER_N:g} (k > {k_local:g} on the smaller set of {n_min:,} structures),"
               " where a neighbourhood covers more than a tenth of the set: the scores are no longer local, their"
               " chance level is high, and the reference code's unbiased CKNNA is not bounded by 1 there."
               if beyond else ""),
            lambda curves=curves, metric=metric, k_local=(k_local if beyond else None): charts.curves_chart(
                curves, xlabel="neighbours k (count)", ylabel=f"{metric} (unitless)", log_x=True,
                line_styles=_line_styles(curves), shade_from=k_local)))
    ivs = al.get("id_vs_scale")
    if isinstance(ivs, Mapping) and ivs.get("curves"):
        curves = [{"label": c["label"] + (f" ({c['set'].upper()})" if c.get("set") else ""), "x": c["scale"],
                   "y": c["id"], "dashed": str(c.get("set", "")).lower() == "ood", "group": c["label"]}
                  for c in ivs["curves"]]
        plans.append(FigurePlan(
            "alignment", None, "alignment_id_vs_scale", "Intrinsic dimension against scale",
            f"Estimator: {ivs.get('estimator', 'not stated')} (dashed: OOD set).",
            lambda curves=curves, ivs=ivs: charts.curves_chart(
                curves, xlabel=ivs.get("scale_label", "scale (neighbours k)"), ylabel="intrinsic dimension (count)",
                log_x=True, line_styles=_line_styles(curves))))
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
            lambda: charts.grouped_scatter([p["x"] for p in pts], [p["y"] for p in pts],
                                           [_set_key(p.get("label")) for p in pts],
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


def joint_groups(doc: Mapping, labels: list, names: list[str], reference: str | None) -> list[str]:
    """The dataset of each point of the joint map, by display name.

    The audit labels points with dataset names, which two datasets may share; its points come dataset by
    dataset (in the order of ``doc["datasets"]``, then the reference), at most ``max_per_dataset`` each, so
    runs of one label are split by the datasets' sample sizes when names repeat.
    """
    datasets = [ds for ds in doc.get("datasets") or [] if isinstance(ds, Mapping)]
    raw = [str(ds.get("name")) for ds in datasets]
    ref_raw = dig(doc, "parameters", "reference")
    if len(set(raw)) == len(raw):
        mapping = dict(zip(raw, names))
        if ref_raw is not None and str(ref_raw) not in mapping:
            mapping[str(ref_raw)] = reference or str(ref_raw)
        return [mapping.get(str(g), str(g)) for g in labels]
    cap = dig(doc, "chemical_space", "umap", "max_per_dataset") or len(labels)
    sizes = [min(int(dig(ds, "coverage", "chemical_space", "sample", "size", default=0) or 0), int(cap))
             for ds in datasets]
    out, pos = [], 0
    for size, nm, rn in zip(sizes, names, raw):
        run = [str(g) for g in labels[pos:pos + size]]
        if any(g != rn for g in run):
            return [str(g) for g in labels]  # not the layout described: keep the labels as they are
        out += [nm] * size
        pos += size
    rest = [str(g) for g in labels[pos:]]
    return out + [reference or g for g in rest]


def joint_umap_plans(doc: Mapping, names: list[str], colours: Mapping[str, str],
                     reference: str | None) -> list[FigurePlan]:
    """The joint chemical-space map of all datasets (``doc["chemical_space"]["umap"]``), when present."""
    joint = dig(doc, "chemical_space", "umap")
    if isinstance(joint, Mapping) and not_applicable_reason(joint) is None and joint.get("x"):
        groups = joint_groups(doc, list(joint.get("datasets") or []), names, reference)
        return [_umap_plan(joint, None, None, colours, groups)]
    return []


def unique_names(plans: list[FigurePlan]) -> list[FigurePlan]:
    """Make the file stems of ``plans`` unique in place (a numeric suffix on collision); returns ``plans``."""
    seen: dict[str, int] = {}
    for p in plans:
        n = seen.get(p.name, 0)
        seen[p.name] = n + 1
        if n:
            p.name = f"{p.name}_{n + 1}"
    return plans


def plan_figures(doc, *, reference_path: str | None = None, set_paths: Mapping | None = None) -> list[FigurePlan]:
    """All figures the document supports: those of every registered report section, in page order.

    Parameters
    ----------
    doc : dict or Report
        Audit document, named as :func:`~monoculture.reports.writer.write_report` names it (datasets by
        :func:`view.display_names`, the reference by ``reference_path``, alignment sets by ``set_paths``,
        colours in that order); or the :class:`~monoculture.reports.sections.Report` the writer built, planned
        as it is (the two keyword arguments are then not read).
    reference_path : str, optional
        Path of the reference as the user gave it (names the reference by its file stem).
    set_paths : mapping of str to list of str, optional
        ``{alignment set key: paths}``; names each set by its file stems.

    Returns
    -------
    list of FigurePlan
        File stems are unique (a numeric suffix is added on collision). The context figure (dataset sizes
        beside the cards) is among them when the document holds a dataset.
    """
    from .sections import Report, registered

    report = doc if isinstance(doc, Report) else Report.build(doc, reference_path=reference_path, set_paths=set_paths)
    plans: list[FigurePlan] = []
    for section in registered():
        if section.figures is not None:
            plans += section.figures(report)
    return unique_names(plans)
