import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm, to_rgba
from matplotlib.patches import Rectangle

from monoculture.reports.ptable import element_position, ptable_heatmap
from monoculture.reports.style import MISSING_COLOUR


def test_positions_are_the_usual_table():
    assert element_position(1) == (1, 1)
    assert element_position(2) == (1, 18)
    assert element_position(8) == (2, 16)  # O
    assert element_position(26) == (4, 8)  # Fe
    assert element_position(79) == (6, 11)  # Au
    assert element_position(58) == (8.5, 4)  # Ce, lanthanide row
    assert element_position(92) == (9.5, 6)  # U, actinide row
    assert len({element_position(z) for z in range(1, 119)}) == 118


def test_colours_follow_log_scale_and_missing_is_grey():
    fig = ptable_heatmap({"Fe": 100, "O": 1, "Si": 10}, log=True, colorbar_label="frames")
    ax = fig.axes[0]
    cells = {(round(p.get_x() + 0.47, 2), round(p.get_y() + 0.47, 2)): p.get_facecolor()
             for p in ax.patches if isinstance(p, Rectangle)}
    assert len(cells) == 118
    norm = LogNorm(1, 100)
    cmap = colormaps["viridis"]
    assert np.allclose(cells[(8, 4)], cmap(norm(100)))  # Fe: top of the scale
    assert np.allclose(cells[(16, 2)], cmap(norm(1)))  # O: bottom
    assert np.allclose(cells[(14, 3)], cmap(norm(10)))  # Si: middle (log)
    assert np.allclose(cells[(1, 1)], to_rgba(MISSING_COLOUR))  # H absent
    assert fig.axes[1].get_xlabel() == "frames"  # colour bar carries the label
