"""Mutual k-NN: the share of k nearest neighbours two models agree on (supports the local verdict)."""
from ..metrics import mutual_knn
from . import AlignmentMetric, Variant, register_metric
from ._references import PLATONIC_REP, platonic

register_metric(AlignmentMetric(
    name="mutual_knn", label="mutual k-NN", function=mutual_knn, kind="pair", higher_is_more_aligned=True,
    scope="local", reference=platonic("mutual_knn"), needs_k="k", uses_cache=True, verdict_rank=1, order=20,
    description="symmetric; diagonal 1 by definition",
    scale="share of shared nearest neighbours: 1 = identical neighbourhoods, about k/n for unrelated data",
    variants={
        "cosine": Variant("cosine", "share of the k nearest neighbours (cosine similarity, self excluded) shared "
                                    "by both models", {"metric": "cosine"},
                          f"{PLATONIC_REP}: AlignmentMetrics.mutual_knn(topk=k) on F.normalize'd rows"),
        "euclidean": Variant("euclidean", "share of the k nearest neighbours (Euclidean distance on the rows as "
                                          "given) shared", {"metric": "euclidean"}),
    }))
