"""Generic report charts: bars, histograms, labelled heatmaps, grouped scatter, curves.

Each function takes plain data (lists, dicts) and returns a :class:`matplotlib.figure.Figure`; the caller
saves it. Axis labels are arguments so that every caller states units.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm, Normalize
from matplotlib.ticker import StrMethodFormatter

from .style import COUNT_CMAP, MISSING_COLOUR, category_colour, log_colorbar_ticks, new_figure, text_colour_for

__all__ = ["bar_chart", "histogram_chart", "labelled_heatmap", "grouped_scatter", "density_map", "curves_chart",
           "format_edge", "DENSITY_MIN_POINTS"]

#: From this many points on, a map is drawn as hexagonal-bin densities instead of overplotted markers.
DENSITY_MIN_POINTS = 1500
#: A panel of a density map with fewer points than this shows them as markers.
SPARSE_PANEL_POINTS = 200


def bar_chart(counts: Mapping[str, float], *, xlabel: str, ylabel: str, title: str | None = None,
              horizontal: bool | None = None, errors: Mapping[str, Sequence[float]] | None = None,
              width_in: float = 6.5, colour: str | None = None):
    """Bars of ``{label: value}`` in the given order.

    Parameters
    ----------
    counts : mapping of str to float
    xlabel, ylabel : str
        Axis labels with units (for horizontal bars ``xlabel`` is the value axis).
    title : str, optional
    horizontal : bool, optional
        Default: horizontal when there are more than 6 bars or a label is longer than 12 characters.
    errors : mapping of str to (low, high), optional
        Interval per label, drawn as error bars.
    width_in : float
    colour : str, optional
        Bar colour (the dataset's colour across the report; default the first Okabe-Ito colour).

    Returns
    -------
    matplotlib.figure.Figure
    """
    labels = [str(k) for k in counts]
    vals = np.array([float(v) for v in counts.values()])
    if horizontal is None:
        horizontal = len(labels) > 6 or any(len(s) > 12 for s in labels)
    height = max(1.8, 0.28 * len(labels) + 1.0) if horizontal else 3.0
    fig, ax = new_figure(width_in, height)
    colours = [colour or category_colour(0)] * len(labels)
    pos = np.arange(len(labels))
    err = None
    if errors:
        lo = np.array([vals[i] - errors[k][0] if k in errors else 0.0 for i, k in enumerate(counts)])
        hi = np.array([errors[k][1] - vals[i] if k in errors else 0.0 for i, k in enumerate(counts)])
        err = np.vstack([np.clip(lo, 0, None), np.clip(hi, 0, None)])
    if horizontal:
        ax.barh(pos, vals, color=colours, xerr=err, capsize=2)
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    else:
        ax.bar(pos, vals, color=colours, yerr=err, capsize=2)
        ax.set_xticks(pos, labels)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    for i, v in enumerate(vals):
        txt = f"{v:.3g}" if not float(v).is_integer() else f"{int(v)}"
        if horizontal:
            ax.annotate(txt, (v, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        else:
            ax.annotate(txt, (i, v), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
    if title:
        ax.set_title(title)
    return fig


def format_edge(x: float) -> str:
    """Short label of a bin edge (``0.05``, ``1e+03``, ``-inf``)."""
    if not np.isfinite(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:g}"


def histogram_chart(edges: Sequence[float], counts: Sequence[int], *, xlabel: str, ylabel: str = "frames",
                    title: str | None = None, categorical: bool | None = None, log_y: bool = False,
                    note: str | None = None, width_in: float = 6.5, colour: str | None = None):
    """Histogram from fixed edges and counts.

    Parameters
    ----------
    edges : sequence of float, length n + 1
    counts : sequence of int, length n
    xlabel, ylabel : str
        Axis labels with units.
    title : str, optional
    categorical : bool, optional
        Draw equal-width bars labelled ``[lo, hi)`` (default: when the bins have unequal widths).
    log_y : bool
        Logarithmic count axis.
    note : str, optional
        Small text in the upper right corner (e.g. frames outside the range or without a value).
    width_in : float
    colour : str, optional
        Bar colour (the dataset's colour across the report).

    Returns
    -------
    matplotlib.figure.Figure
    """
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    if edges.size != counts.size + 1:
        raise ValueError(f"edges must have len(counts) + 1 = {counts.size + 1} entries, got {edges.size}")
    widths = np.diff(edges)
    if categorical is None:
        categorical = not np.allclose(widths, widths[0])
    fig, ax = new_figure(width_in, 2.8)
    if categorical:
        pos = np.arange(counts.size)
        ax.bar(pos, counts, width=0.9, color=colour or category_colour(0))
        labels = [f"{format_edge(a)}–{format_edge(b)}" for a, b in zip(edges[:-1], edges[1:])]
        ax.set_xticks(pos, labels, rotation=45, ha="right", fontsize=7)
    else:
        ax.bar(edges[:-1], counts, width=widths, align="edge", color=colour or category_colour(0), edgecolor="white",
               linewidth=0.4)
    if log_y and counts.max() > 0:
        ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if note:
        ax.text(0.99, 0.97, note, transform=ax.transAxes, ha="right", va="top", fontsize=7, color="#444444")
    if title:
        ax.set_title(title)
    return fig


def labelled_heatmap(matrix, row_labels: Sequence[str], col_labels: Sequence[str], *, xlabel: str, ylabel: str,
                     colorbar_label: str, title: str | None = None, log: bool = False, cmap: str = COUNT_CMAP,
                     vmin: float | None = None, vmax: float | None = None, annotate: bool | None = None,
                     fmt: str = "{:.3g}", empty_label: str | None = None, ax=None, fig=None, colorbar: bool = True,
                     width_in: float | None = None):
    """Heatmap of a matrix with labelled rows and columns; cells that are None / NaN (or 0 on a log scale) are
    grey and, when ``empty_label`` is given, marked with it.

    Parameters
    ----------
    matrix : array-like, shape (n_rows, n_cols)
    row_labels, col_labels : sequence of str
    xlabel, ylabel, colorbar_label : str
        Labels (with units).
    title : str, optional
    log : bool
        Logarithmic colour scale.
    cmap : str
    vmin, vmax : float, optional
    annotate : bool, optional
        Print each value in its cell (default: when there are at most 400 cells).
    fmt : str
    empty_label : str, optional
    ax, fig : matplotlib axes / figure, optional
        Draw into an existing axes (for panels); both or neither.
    colorbar : bool
    width_in : float, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    m = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix], dtype=float)
    if m.ndim != 2 or m.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix shape {m.shape} does not match {len(row_labels)} x {len(col_labels)} labels")
    shown = np.where(np.isfinite(m) & ((m > 0) if log else True), m, np.nan)
    finite = shown[np.isfinite(shown)]
    lo = vmin if vmin is not None else (finite.min() if finite.size else (1.0 if log else 0.0))
    hi = vmax if vmax is not None else (finite.max() if finite.size else lo + 1.0)
    if log:
        lo = max(lo, 1e-12)
        norm = LogNorm(vmin=lo, vmax=max(hi, lo * 10))
    else:
        norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0)
    if ax is None:
        w = width_in or min(7.5, max(3.5, 0.32 * len(col_labels) + 2.2))
        h = min(9.0, max(2.2, 0.3 * len(row_labels) + 1.4))
        fig, ax = new_figure(w, h)
    colours = colormaps[cmap].with_extremes(bad=MISSING_COLOUR)
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=colours, norm=norm, aspect="auto", interpolation="nearest")
    tilt = len(col_labels) > 4 or max((len(str(c)) for c in col_labels), default=0) * len(col_labels) > 24
    ax.set_xticks(np.arange(len(col_labels)), [str(c) for c in col_labels], rotation=45 if tilt else 0,
                  ha="right" if tilt else "center", rotation_mode="anchor" if tilt else "default")
    ax.set_yticks(np.arange(len(row_labels)), [str(r) for r in row_labels])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.spines[:].set_visible(False)
    if annotate is None:
        annotate = m.size <= 225
    small = 8 if m.size <= 64 else (7 if m.size <= 144 else 6)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if np.isfinite(shown[i, j]):
                if annotate:
                    ink = text_colour_for(colours(norm(shown[i, j])))
                    ax.text(j, i, fmt.format(m[i, j]), ha="center", va="center", fontsize=small, color=ink)
            elif empty_label:
                ax.text(j, i, empty_label, ha="center", va="center", fontsize=small, color="#555555")
    if colorbar:
        cbar = fig.colorbar(im, ax=ax, label=colorbar_label, shrink=1.0, fraction=0.05, pad=0.02, aspect=30)
        if log:
            log_colorbar_ticks(cbar)
    if title:
        ax.set_title(title)
    return fig


def grouped_scatter(x: Sequence[float], y: Sequence[float], groups: Sequence[str] | None, *, xlabel: str,
                    ylabel: str, title: str | None = None, note: str | None = None, width_in: float = 6.0,
                    height_in: float = 4.5,
                    colours: Mapping[str, str] | None = None):
    """Scatter plot coloured by group (Okabe-Ito, one legend entry per group).

    Parameters
    ----------
    x, y : sequence of float
    groups : sequence of str, optional
        Group of each point (e.g. dataset name); None = one group.
    xlabel, ylabel : str
        Axis labels with units.
    title : str, optional
    note : str, optional
        Text in the upper left corner (e.g. a correlation and its interval); kept by the density map.
    width_in, height_in : float
    colours : mapping of str to str, optional
        Colour of each group (the dataset's colour across the report); default Okabe-Ito in order.

    Returns
    -------
    matplotlib.figure.Figure
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    if x.size >= DENSITY_MIN_POINTS:
        return density_map(x, y, groups, xlabel=xlabel, ylabel=ylabel, title=title, colours=colours, note=note)
    groups = [str(g) for g in groups] if groups is not None else [""] * x.size
    fig, ax = new_figure(width_in, height_in)
    order = list(dict.fromkeys(groups))
    size = 6 if x.size > 2000 else (12 if x.size > 200 else 24)
    markers = "os^Dv<>P"
    for i, g in enumerate(order):
        sel = np.array([gg == g for gg in groups])
        colour = (colours or {}).get(g, category_colour(i))
        ax.scatter(x[sel], y[sel], s=size, color=colour, marker=markers[i % len(markers)],
                   alpha=0.75, linewidths=0, label=g if g else None)
    if any(order):
        ax.legend(frameon=False, fontsize=7, markerscale=1.5, loc="best")
    if note:
        _note(ax, note)
    ax.set_xlabel(_wrapped(xlabel, width_in))
    ax.set_ylabel(_wrapped(ylabel, height_in))
    if title:
        ax.set_title(title)
    return fig


def _note(ax, note: str) -> None:
    """``note`` in a white box in the upper left corner of ``ax``."""
    ax.text(0.02, 0.98, note, transform=ax.transAxes, ha="left", va="top", fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "#bbbbbb", "boxstyle": "round,pad=0.3"})


def _wrapped(label: str, length_in: float) -> str:
    """An axis label broken into lines that fit along an axis of ``length_in`` inches (about 9 characters per
    inch at the report's font size), so that a long label is never cut off."""
    import textwrap

    width = max(20, int(9 * length_in))
    return "\n".join(textwrap.wrap(label, width)) if len(label) > width else label


def density_map(x: Sequence[float], y: Sequence[float], groups: Sequence[str] | None, *, xlabel: str,
                ylabel: str, title: str | None = None, colours: Mapping[str, str] | None = None,
                gridsize: int | None = None, panel_in: float = 3.4, note: str | None = None):
    """Hexagonal-bin density of a large 2-D sample, one panel per group on shared axes.

    Overplotted markers hide where most points are; a density map shows it. Each panel shades its group's
    counts per hexagon (logarithmic scale, white to the group's colour) over the other groups' points in light
    grey, so that groups can be compared region by region.

    Parameters
    ----------
    x, y : sequence of float, shape (n,)
    groups : sequence of str, optional
        Group of each point; None = one group.
    xlabel, ylabel : str
        Axis labels with units.
    title : str, optional
    colours : mapping of str to str, optional
        Colour of each group.
    gridsize : int, optional
        Hexagons across (default from the data: about sqrt(n) / 2, between 15 and 60).
    panel_in : float
        Width of one panel (inches).
    note : str, optional
        Text in the upper left corner of the first panel (as :func:`grouped_scatter` draws it).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    groups = np.array([str(g) for g in groups] if groups is not None else [""] * x.size)
    order = list(dict.fromkeys(groups.tolist()))
    ncol = min(3, len(order))
    nrow = -(-len(order) // ncol)
    fig = Figure(figsize=(panel_in * ncol + 0.9, panel_in * 0.9 * nrow + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False)).ravel()
    extent = (np.nanmin(x), np.nanmax(x), np.nanmin(y), np.nanmax(y))
    for i, (ax, g) in enumerate(zip(axes, order)):
        sel = groups == g
        n = int(sel.sum())
        gs = gridsize or int(np.clip(np.sqrt(n), 20, 60))
        colour = (colours or {}).get(g, category_colour(i))
        cmap = LinearSegmentedColormap.from_list(f"density_{i}", ["#f4f4f4", colour])
        if (~sel).any():
            ax.scatter(x[~sel], y[~sel], s=2, color="#c8c8c8", linewidths=0, rasterized=True)
        if n < SPARSE_PANEL_POINTS:  # too few points for densities: markers in the group's colour
            ax.scatter(x[sel], y[sel], s=10, color=colour, linewidths=0)
        else:
            hb = ax.hexbin(x[sel], y[sel], gridsize=gs, extent=extent, cmap=cmap, bins="log", mincnt=1,
                           linewidths=0.1, edgecolors="face")
            cb = fig.colorbar(hb, ax=ax, shrink=1.0, fraction=0.06, pad=0.02, aspect=25)
            cb.set_label("points per hexagon (count)", fontsize=7)
            cb.ax.tick_params(labelsize=7)
            log_colorbar_ticks(cb)
        ax.set_title(f"{g} ({n:,} points)" if g else f"{n:,} points", fontsize=9, color="#222222")
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[len(order):]:
        ax.set_visible(False)
    for ax in axes[: len(order)]:
        ax.set_xlabel(xlabel)
    for r in range(nrow):
        axes[r * ncol].set_ylabel(ylabel)
    if note:
        _note(axes[0], note)
    if title:
        fig.suptitle(title)
    return fig


def curves_chart(curves: Sequence[Mapping], *, xlabel: str, ylabel: str, title: str | None = None,
                 log_x: bool = False, width_in: float = 6.0, height_in: float = 3.5,
                 line_styles: Mapping[str, str] | None = None, shade_from: float | None = None):
    """Line plot of several curves ``{"label", "x", "y", "dashed" (optional), "group" (optional)}``; None values
    break a line.

    Curves of one ``group`` (e.g. one model pair on the ID and the OOD set) share a colour and marker and one
    legend entry; ``line_styles`` then names what solid and dashed lines mean. Curves with ``"emphasis": True``
    (e.g. the mean over model pairs) are drawn thick and black. A legend of more than eight
    entries goes to the right of the axes, so that it never hides the curves.

    Parameters
    ----------
    curves : sequence of mapping
    xlabel, ylabel : str
        Axis labels with units.
    title : str, optional
    log_x : bool
    width_in, height_in : float
    line_styles : mapping of str to str, optional
        ``{"solid": "ID", "dashed": "OOD"}``: legend entries for the two line styles (with ``group``).
    shade_from : float, optional
        Shade the x range above this value (e.g. neighbourhoods that are no longer local).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    groups = list(dict.fromkeys(str(c.get("group", c["label"])) for c in curves))
    grouped = any("group" in c for c in curves)
    n_entries = (len(groups) + len(line_styles or {})) if grouped else len(curves)
    outside = n_entries > 8
    ncols = max(1, -(-n_entries // 20)) if outside else (2 if n_entries > 6 else 1)
    fig, ax = new_figure(width_in + (2.4 * ncols if outside else 0.0), height_in)
    markers = "os^Dv<>P"
    handles, seen = [], set()
    plain = [g for g in groups if not any(c.get("emphasis") and str(c.get("group", c["label"])) == g
                                          for c in curves)]
    for i, c in enumerate(curves):
        g = str(c.get("group", c["label"]))
        j = (plain.index(g) if g in plain else 0) if grouped else i
        # colour and marker cycle at different periods: 8 colours x 8 markers tell 64 curves apart
        style = {"color": "black", "marker": "o", "linewidth": 2.2} if c.get("emphasis") else {
            "color": category_colour(j), "marker": markers[(j // 8) % len(markers)], "linewidth": 1.2}
        y = np.array([np.nan if v is None else float(v) for v in c["y"]], dtype=float)
        ax.plot(np.asarray(c["x"], dtype=float), y, markersize=3.5, linestyle="--" if c.get("dashed") else "-",
                **style)
        if not grouped or g not in seen:
            handles.append(Line2D([], [], markersize=3.5, label=g if grouped else str(c["label"]),
                                  linestyle="--" if (c.get("dashed") and not grouped) else "-", **style))
            seen.add(g)
    if grouped and line_styles:
        for style, name in line_styles.items():
            handles.append(Line2D([], [], color="#555555", linestyle="--" if style == "dashed" else "-", label=name))
    if log_x:
        from matplotlib.ticker import LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    if shade_from is not None:
        lo, hi = ax.get_xlim()
        ax.axvspan(shade_from, hi, color="#e6e6e6", zorder=0, linewidth=0)
        ax.set_xlim(lo, hi)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(handles) > 1:
        if outside:
            fig.legend(handles=handles, frameon=False, fontsize=7, loc="outside right upper", ncols=ncols)
        else:
            ax.legend(handles=handles, frameon=False, fontsize=7, loc="best", ncols=ncols)
    if title:
        ax.set_title(title)
    return fig
