"""Periodic-table heatmap drawn with plain matplotlib (no pymatviz dependency)."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ase.data import chemical_symbols
from matplotlib import colormaps
from matplotlib.colors import LogNorm, Normalize
from matplotlib.patches import Rectangle

from .style import COUNT_CMAP, MISSING_COLOUR, log_colorbar_ticks, new_figure, text_colour_for

__all__ = ["element_position", "ptable_heatmap", "MAX_Z"]

#: Heaviest element drawn (oganesson).
MAX_Z = 118
_F_ROW_GAP = 0.5


def element_position(z: int) -> tuple[float, int]:
    """Row (1 = top; lanthanides / actinides on rows 8.5 / 9.5) and column (1-18) of element ``z``.

    Parameters
    ----------
    z : int
        Atomic number, 1..118.

    Returns
    -------
    (float, int)
    """
    if not 1 <= z <= MAX_Z:
        raise ValueError(f"atomic number must be 1..{MAX_Z}, got {z}")
    if z == 1:
        return 1, 1
    if z == 2:
        return 1, 18
    starts = ((3, 2), (11, 3), (19, 4), (37, 5), (55, 6), (87, 7))
    ends = {2: 10, 3: 18, 4: 36, 5: 54, 6: 86, 7: 118}
    for first, period in starts:
        if first <= z <= ends[period]:
            k = z - first  # 0-based position within the period
            if period in (2, 3):
                return period, k + 1 if k < 2 else k + 11
            if period in (4, 5):
                return period, k + 1
            f_first = 57 if period == 6 else 89
            if z < f_first:
                return period, k + 1
            if z < f_first + 15:  # lanthanides / actinides
                return 7 + _F_ROW_GAP + (period - 5), 3 + (z - f_first)
            return period, z - f_first - 15 + 4
    raise AssertionError(z)


def ptable_heatmap(values: Mapping[str, float], *, log: bool = True, cmap: str = COUNT_CMAP,
                   colorbar_label: str = "value", title: str | None = None, vmin: float | None = None,
                   vmax: float | None = None, fmt: str = "{:.3g}", width_in: float = 7.5):
    """Heatmap of one number per element on the periodic table.

    Elements absent from ``values`` (or with value 0 on a log scale, or None) are drawn grey and labelled
    with their symbol only.

    Parameters
    ----------
    values : mapping of str to float
        ``{symbol: value}``; unknown symbols are ignored.
    log : bool
        Logarithmic colour scale (values <= 0 count as missing).
    cmap : str
        Matplotlib colormap name.
    colorbar_label : str
        Colour-bar label, with its unit.
    title : str, optional
    vmin, vmax : float, optional
        Colour-scale limits (default: the data range; at least 1..10 on a log scale).
    fmt : str
        Format of the number printed under each symbol.
    width_in : float
        Figure width in inches (height follows the table's aspect ratio).

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = {s: float(v) for s, v in values.items()
            if s in chemical_symbols[1:MAX_Z + 1] and v is not None and np.isfinite(float(v))
            and (float(v) > 0 or not log)}
    arr = np.array(list(data.values()), dtype=float)
    lo = vmin if vmin is not None else (arr.min() if arr.size else (1.0 if log else 0.0))
    hi = vmax if vmax is not None else (arr.max() if arr.size else (10.0 if log else 1.0))
    if log:
        lo = max(lo, 1e-12)
        hi = max(hi, lo * 10)
        norm = LogNorm(vmin=lo, vmax=hi)
    else:
        hi = hi if hi > lo else lo + 1.0
        norm = Normalize(vmin=lo, vmax=hi)
    colours = colormaps[cmap]
    fig, ax = new_figure(width_in, width_in * 0.52)
    for z in range(1, MAX_Z + 1):
        sym = chemical_symbols[z]
        row, col = element_position(z)
        value = data.get(sym)
        face = colours(norm(value)) if value is not None else MISSING_COLOUR
        ax.add_patch(Rectangle((col - 0.47, row - 0.47), 0.94, 0.94, facecolor=face,
                               edgecolor="white", linewidth=0.5))
        ink = text_colour_for(face if value is not None else (0.85, 0.85, 0.85)) if value is not None else "#666666"
        ax.text(col, row - (0.14 if value is not None else 0), sym, ha="center", va="center", fontsize=7.5,
                color=ink, fontweight="bold" if value is not None else "normal")
        if value is not None:
            ax.text(col, row + 0.26, fmt.format(value), ha="center", va="center", fontsize=5.5, color=ink)
    ax.set_xlim(0.4, 18.6)
    ax.set_ylim(10.1, 0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    mappable = _mappable(norm, cmap)
    cbar = fig.colorbar(mappable, ax=ax, orientation="horizontal", fraction=0.05, pad=0.02, shrink=0.6)
    cbar.set_label(colorbar_label)
    if log:
        log_colorbar_ticks(cbar)
    ax.text(3.0, 0.75, "grey: absent; Z > 94 drawn, not counted", fontsize=7, color="#666666", ha="left", va="center")
    if title:
        ax.set_title(title)
    return fig


def _mappable(norm, cmap):
    from matplotlib.cm import ScalarMappable

    sm = ScalarMappable(norm=norm, cmap=cmap)
    sm.set_array([])
    return sm
