"""Distance correlation (the study's global metric: decides the global verdict)."""
from ..dependence import distance_correlation
from . import AlignmentMetric, Reference, Variant, register_metric

register_metric(AlignmentMetric(
    name="dcor", label="distance correlation", function=distance_correlation, kind="pair",
    higher_is_more_aligned=True, scope="global", verdict_rank=0, order=40,
    description="symmetric; diagonal 1 by definition",
    scale="0 = independent, 1 = related by a similarity transform",
    reference=Reference("dcor.distance_correlation", "dcor 0.6",
                        "Székely, Rizzo & Bakirov (2007), Ann. Statist. 35, 2769"),
    variants={
        "v-statistic": Variant("v-statistic", "distance correlation, double-centred Euclidean distances "
                                              "(V-statistic)", {"estimator": "biased"},
                               "dcor.distance_correlation (Szekely, Rizzo & Bakirov 2007)"),
        "u-statistic-squared": Variant("u-statistic-squared", "bias-corrected squared distance correlation "
                                                              "(U-centred, Szekely & Rizzo 2014)",
                                       {"estimator": "unbiased", "squared": True}, "dcor.u_distance_correlation_sqr"),
    }))
