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
