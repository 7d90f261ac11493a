"""Figures of the representation-alignment section: paired ID / OOD heatmaps, grouped bars with intervals,
and the family-tree dendrogram. Plain data in, :class:`matplotlib.figure.Figure` out.

Metric names on figures come from the alignment metric registry (:func:`metric_label`, :func:`is_directed`),
where every metric's labels are defined once."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..audit.alignment.metric_registry import get_metric
from .charts import labelled_heatmap
from .style import SHARE_CMAP, category_colour, new_figure

__all__ = ["paired_heatmaps", "grouped_bars", "dendrogram_chart", "metric_label", "metric_scale", "is_directed"]


def metric_label(name: str, *, short: bool = True) -> str:
    """Figure label of an alignment metric from its registry record (the name itself if not registered).

    Parameters
    ----------
    name : str
        Metric key of the ``alignment.metrics`` block, e.g. ``"cka"``.
    short : bool
        The short label used on axes and titles (``"CKA"``) rather than the one in sentences (``"linear CKA"``).
    """
    try:
        m = get_metric(str(name))
    except ValueError:
        return str(name)
    return m.short_label if short else m.label


def metric_scale(name: str, higher_is_more_aligned: bool | None = None) -> str:
    """What the metric's values mean, for a caption: its registry record's ``scale``, else only the direction.

    Parameters
    ----------
    name : str
        Metric key of the ``alignment.metrics`` block.
    higher_is_more_aligned : bool, optional
        Direction from the JSON, used when the metric is not registered or states no scale.
    """
    try:
        scale = get_metric(str(name)).scale
    except ValueError:
        scale = ""
    if scale:
        return scale
    if higher_is_more_aligned is None:
        return ""
    return "higher = more alike" if higher_is_more_aligned else "lower = more alike"


def is_directed(name: str) -> bool:
    """Whether entry (i, j) of the metric's matrix is ``metric(model_i -> model_j)`` (row = source model)."""
    try:
        return get_metric(str(name)).directed
    except ValueError:
        return False


def paired_heatmaps(models: Sequence[str], panels: Mapping[str, Sequence[Sequence[float]]], *, colorbar_label: str,
                    title: str | None = None, cmap: str = SHARE_CMAP):
    """One model x model heatmap per panel (e.g. ``{"ID: OMat24": m1, "OOD: OMol25": m2}``), one shared scale.

    Parameters
    ----------
    models : sequence of str
        Row and column labels.
    panels : mapping of str to matrix
        Panel title to square matrix (None = not computed).
    colorbar_label : str
        Name of the metric (unitless scores say so).
    title : str, optional
    cmap : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    mats = {k: np.array([[np.nan if v is None else float(v) for v in r] for r in m], dtype=float)
            for k, m in panels.items()}
    for k, m in mats.items():
        if m.shape != (len(models), len(models)):
            raise ValueError(f"panel {k!r} has shape {m.shape}, expected {len(models)} x {len(models)}")
    finite = np.concatenate([m[np.isfinite(m)] for m in mats.values()]) if mats else np.array([])
    lo = float(min(0.0, finite.min())) if finite.size else 0.0
    hi = float(max(1.0, finite.max())) if finite.size else 1.0
    side = min(4.2, max(2.4, 0.35 * len(models) + 1.3))
    fig = Figure(figsize=(side * len(mats) + 0.9, side), layout="constrained")
    axes = fig.subplots(1, len(mats), squeeze=False)[0]
    for i, (ax, (name, m)) in enumerate(zip(axes, mats.items())):
        labelled_heatmap(m, models, models, xlabel="model", ylabel="model" if i == 0 else "",
                         colorbar_label=colorbar_label, title=name, cmap=cmap, vmin=lo, vmax=hi, ax=ax, fig=fig,
                         colorbar=i == len(mats) - 1, fmt="{:.2f}")
        if i > 0:
            ax.set_yticklabels([])
    if title:
        fig.suptitle(title)
    return fig


def grouped_bars(values: Mapping[str, Mapping[str, float | None]], *, ylabel: str, xlabel: str = "model",
                 intervals: Mapping[str, Mapping[str, Sequence[float]]] | None = None, title: str | None = None,
                 width_in: float = 6.5):
    """Bars per item (x) and group (colour), e.g. intrinsic dimension per model on the ID and OOD sets.

    Parameters
    ----------
    values : mapping of str to mapping of str to float
        ``{item: {group: value}}``; missing or None values leave a gap.
    ylabel, xlabel : str
        Axis labels with units.
    intervals : mapping, optional
        ``{item: {group: (low, high)}}`` drawn as error bars.
    title : str, optional
    width_in : float

    Returns
    -------
    matplotlib.figure.Figure
    """
    items = list(values)
    groups = list(dict.fromkeys(g for v in values.values() for g in v))
    fig, ax = new_figure(width_in, 3.2)
    w = 0.8 / max(1, len(groups))
    for j, g in enumerate(groups):
        xs, ys, lo, hi = [], [], [], []
        for i, it in enumerate(items):
            v = values[it].get(g)
            if v is None:
                continue
            xs.append(i + (j - (len(groups) - 1) / 2) * w)
            ys.append(float(v))
            iv = (intervals or {}).get(it, {}).get(g)
            lo.append(max(0.0, float(v) - iv[0]) if iv else 0.0)
            hi.append(max(0.0, iv[1] - float(v)) if iv else 0.0)
        ax.bar(xs, ys, width=w, color=category_colour(j), label=g,
               yerr=np.vstack([lo, hi]) if intervals else None, capsize=2)
    ax.set_xticks(np.arange(len(items)), items, rotation=30 if len(items) > 4 else 0,
                  ha="right" if len(items) > 4 else "center")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(groups) > 1:
        ax.legend(frameon=False, fontsize=7)
    if title:
        ax.set_title(title)
    return fig


def dendrogram_chart(linkage: Sequence[Sequence[float]], labels: Sequence[str], *, distance_label: str,
                     title: str | None = None):
    """Dendrogram of a scipy linkage matrix (rows ``[i, j, distance, count]``), leaves labelled.

    Parameters
    ----------
    linkage : sequence of 4-sequences, shape (n - 1, 4)
    labels : sequence of str, length n
    distance_label : str
        Axis label of the merge distance (e.g. ``"1 - CKNNA"``).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from scipy.cluster.hierarchy import dendrogram

    Z = np.asarray(linkage, dtype=float)
    if Z.ndim != 2 or Z.shape != (len(labels) - 1, 4):
        raise ValueError(f"linkage must have shape ({len(labels) - 1}, 4) for {len(labels)} labels, got {Z.shape}")
    fig, ax = new_figure(6.5, max(2.0, 0.3 * len(labels) + 1.0))
    dendrogram(Z, labels=[str(s) for s in labels], orientation="right", ax=ax, color_threshold=0,
               above_threshold_color=category_colour(0))
    ax.set_xlabel(distance_label)
    ax.set_ylabel("model")
    if title:
        ax.set_title(title)
    return fig
