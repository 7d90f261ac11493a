"""Colours, matplotlib settings and figure saving shared by every report figure.

Palettes are colour-blind safe: Okabe-Ito for categories, viridis for counts, cividis for shares.
"""
from __future__ import annotations

import base64
import io
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["dataset_colours", "log_colorbar_ticks", "OKABE_ITO", "COUNT_CMAP", "SHARE_CMAP", "MISSING_COLOUR", "RC", "figure_context", "new_figure",
           "category_colour", "SavedFigure", "save_figure", "text_colour_for"]

#: Okabe & Ito (2008) colour-blind-safe categorical colours (black dropped, it is used for text).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
COUNT_CMAP = "viridis"
SHARE_CMAP = "cividis"
MISSING_COLOUR = "#d9d9d9"

RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "svg.fonttype": "none",
    "svg.hashsalt": "monoculture",
    "axes.prop_cycle": matplotlib.cycler(color=list(OKABE_ITO)),
}


@contextmanager
def figure_context():
    """Context in which the report's rc settings apply."""
    with matplotlib.rc_context(RC):
        yield


def new_figure(width_in: float = 7.0, height_in: float = 3.5):
    """A new figure and axes (not registered with pyplot's global figure list)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    return fig, fig.add_subplot()


def category_colour(i: int) -> str:
    """The i-th Okabe-Ito colour (cycled)."""
    return OKABE_ITO[i % len(OKABE_ITO)]


def dataset_colours(names) -> dict[str, str]:
    """One Okabe-Ito colour per dataset name, in the order given (the same colour in every figure)."""
    out: dict[str, str] = {}
    for name in names:
        if name is not None and str(name) not in out:
            out[str(name)] = category_colour(len(out))
    return out


def text_colour_for(rgba) -> str:
    """Black or white, whichever reads better on the background ``rgba``."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


@dataclass
class SavedFigure:
    """One figure written as PNG and SVG, and its SVG as a ``data:`` URI for the HTML page."""

    png: Path
    svg: Path
    data_uri: str
    #: display size in CSS pixels (96 per inch)
    width_px: int
    height_px: int


def save_figure(fig, stem: Path) -> SavedFigure:
    """Write ``stem.png`` and ``stem.svg`` and return their paths and an SVG data URI.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    stem : Path
        Path without suffix (already checked to lie inside the report folder).

    Returns
    -------
    SavedFigure
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    with figure_context():
        fig.savefig(png, format="png", metadata={"Software": None})
        fig.set_layout_engine("none")  # keep the layout just computed: the SVG needs no second solve
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    data = buf.getvalue()
    svg.write_bytes(data)
    w, h = fig.get_size_inches() * 96  # CSS pixels at the figure's physical size
    uri = "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")
    plt.close(fig)
    return SavedFigure(png=png, svg=svg, data_uri=uri, width_px=int(round(w)), height_px=int(round(h)))


def log_colorbar_ticks(cbar) -> None:
    """Label a logarithmic colour bar in plain numbers (1-2-5 steps over a short range, fewer over a long one;
    no ``3 x 10^0`` minor labels), so that the labels of a short horizontal bar never overlap."""
    import numpy as np
    from matplotlib.ticker import FixedLocator, NullFormatter, StrMethodFormatter

    lo, hi = cbar.norm.vmin, cbar.norm.vmax
    decades = np.log10(hi) - np.log10(lo)
    # few enough labels not to overlap: 1-2-5 over up to two decades, 1-3 up to three, powers of ten beyond
    mantissas = (1, 2, 5) if decades <= 2 else ((1, 3) if decades <= 3 else (1,))
    ticks = [m * 10.0 ** e for e in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
             for m in mantissas if lo <= m * 10.0 ** e <= hi]
    if len(ticks) < 2:
        ticks = sorted({lo, hi} | set(ticks))
    axis = cbar.ax.yaxis if cbar.orientation == "vertical" else cbar.ax.xaxis
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(StrMethodFormatter("{x:g}"))
    axis.set_minor_formatter(NullFormatter())
