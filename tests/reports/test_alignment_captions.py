"""Captions of the alignment heatmaps state what each metric's values mean, from the metric registry."""
from __future__ import annotations

from monoculture.reports.alignment_charts import metric_scale
from monoculture.reports.figures import alignment_plans


def _doc(metric: str, higher: bool) -> dict:
    m = [[1.0, 0.5], [0.5, 1.0]]
    return {"models": ["a", "b"], "sets": {"id": {"name": "ID"}, "ood": {"name": "OOD"}},
            "metrics": {metric: {"id": m, "ood": m, "higher_is_more_aligned": higher}}}


def _caption(metric: str, higher: bool) -> str:
    (plan,) = alignment_plans(_doc(metric, higher))
    return plan.caption


def test_unbounded_and_per_model_metrics_are_not_called_zero_to_one():
    # TwoNN is a dimension and GFRE can exceed 1: neither may be captioned "0 = equivalent, 1 = unrelated"
    twonn, gfre = _caption("twonn", False), _caption("gfre", False)
    assert "1 = unrelated" not in twonn and "concatenated" in twonn
    assert "above 1" in gfre and "exact linear reconstruction" in gfre
    assert "0 = the source model's neighbourhoods predict" in _caption("information_imbalance", False)
    assert "about k/n for unrelated data" in _caption("mutual_knn", True)
    assert "0 = independent" in _caption("dcor", True)


def test_every_registered_matrix_metric_states_its_scale():
    from monoculture.audit.alignment.metric_registry import metrics

    for metric in metrics():
        assert metric.scale, f"{metric.name} states no scale for its figure caption"


def test_a_plugin_metric_without_scale_gets_only_its_direction():
    assert metric_scale("not_registered_metric", False) == "lower = more alike"
    assert metric_scale("not_registered_metric", True) == "higher = more alike"
    assert "(lower = more alike)" in _caption("not_registered_metric", False)


def test_k_sweep_pairs_share_a_colour_and_a_long_legend_leaves_the_axes():
    from monoculture.reports.charts import curves_chart

    curves = []
    for p in range(12):
        for s in ("id", "ood"):
            curves.append({"label": f"pair {p} ({s})", "x": [5, 10, 25], "y": [0.1 * p, 0.2, 0.3],
                           "dashed": s == "ood", "group": f"pair {p}"})
    curves.append({"label": "mean over model pairs (id)", "x": [5, 10, 25], "y": [0.2, 0.2, 0.2],
                   "group": "mean over model pairs", "emphasis": True, "dashed": False})
    fig = curves_chart(curves, xlabel="k", ylabel="CKNNA", line_styles={"solid": "ID set", "dashed": "OOD set"})
    lines = fig.axes[0].get_lines()
    # the ID and OOD curves of one pair: one colour and marker, two line styles
    for a, b in zip(lines[0:24:2], lines[1:24:2]):
        assert a.get_color() == b.get_color() and a.get_marker() == b.get_marker()
        assert a.get_linestyle() != b.get_linestyle()
    # 12 pairs, 8 colours: colour and marker together still tell every pair apart
    assert len({(ln.get_color(), ln.get_marker()) for ln in lines[:24]}) == 12
    assert lines[-1].get_color() == "black" and lines[-1].get_linewidth() > lines[0].get_linewidth()
    # 12 pairs + the mean + two line styles: the legend sits beside the axes, one entry per pair
    assert not fig.axes[0].get_legend() and len(fig.legends) == 1
    assert len(fig.legends[0].get_texts()) == 15


def test_gap_against_collapse_points_are_coloured_by_set():
    pts = [{"label": "id", "x": float(i), "y": 0.5} for i in range(5)] + \
          [{"label": "ood", "x": 10.0 + i, "y": 0.3} for i in range(5)]
    al = {"models": ["a", "b"], "gap_vs_collapse": {"points": pts, "spearman_rho": -0.5, "x_label": "gap",
                                                     "y_label": "agreement"}}
    (plan,) = [p for p in alignment_plans(al) if p.name == "alignment_gap_vs_collapse"]
    fig = plan.draw()
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["ID", "OOD"]


def test_k_sweep_shades_and_explains_non_local_neighbourhoods():
    sweep = {"metric": "cknna", "k": [5, 10, 25, 50],
             "curves": [{"label": "a vs b", "set": s, "values": [0.5, 0.6, 0.9, 1.3]} for s in ("id", "ood")]}
    al = {"models": ["a", "b"], "sets": {"id": {"n": 143}, "ood": {"n": 148}}, "k_sweep": sweep}
    (plan,) = [p for p in alignment_plans(al) if p.name == "alignment_k_sweep"]
    assert "k > 14.3 on the smaller set of 143 structures" in plan.caption and "not bounded by 1" in plan.caption
    fig = plan.draw()
    assert len(fig.axes[0].patches) == 1  # the shaded span
    # every k local (k/n <= 0.1): no shading, no note
    al["sets"] = {"id": {"n": 5000}, "ood": {"n": 5000}}
    (plan,) = [p for p in alignment_plans(al) if p.name == "alignment_k_sweep"]
    assert "Shaded" not in plan.caption and not plan.draw().axes[0].patches
