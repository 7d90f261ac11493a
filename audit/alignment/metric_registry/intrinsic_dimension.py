"""Per-model intrinsic dimension: TwoNN (the study's estimator; jointly on concatenated pairs too) and MLE.

Both are "per model" records: ``function(X) -> float`` (NaN where the estimator is undefined, e.g. fewer
than 4 distinct rows), lower = less information kept (``higher_is_more_aligned`` is False, as in the JSON).
"""
import numpy as np

from ..intrinsic_dim import mle_id, twonn
from . import AlignmentMetric, Reference, register_metric


def twonn_dimension(X) -> float:
    """TwoNN dimension of ``X`` (shape (n, d)), 10% largest ratios discarded; NaN where undefined."""
    try:
        return twonn(X).dimension
    except ValueError:
        return float("nan")


def mle_dimension(X, k: int = 50) -> float:
    """Levina-Bickel MLE dimension of ``X`` with ``k`` capped below its distinct rows; NaN below 4 of them."""
    n_distinct = np.unique(X, axis=0).shape[0]
    if n_distinct < 4:
        return float("nan")
    return mle_id(X, k=max(2, min(k, n_distinct - 1))).dimension


register_metric(AlignmentMetric(
    name="twonn", label="joint TwoNN dimension", short_label="TwoNN dimension", function=twonn_dimension,
    kind="per model", higher_is_more_aligned=False, scope="dimension", intervals=False, order=60,
    description="diagonal: TwoNN dimension of each model; off-diagonal: TwoNN dimension of the two normalised "
                "embeddings concatenated (close to the larger diagonal value when one is a function of the other, to "
                "the sum when they are unrelated)",
    scale="diagonal: each model's dimension; off-diagonal: the two models' embeddings concatenated (the larger "
          "diagonal value when one is a function of the other, the sum when unrelated)",
    reference=Reference("dadapy IdEstimation.compute_id_2NN", "dadapy 0.3",
                        "Facco, d'Errico, Rodriguez & Laio (2017), Sci. Rep. 7, 12140")))

register_metric(AlignmentMetric(
    name="mle", label="MLE intrinsic dimension", short_label="MLE dimension", function=mle_dimension,
    kind="per model", higher_is_more_aligned=False, scope="dimension", needs_k="mle_k", intervals=False, order=90,
    description="Levina-Bickel maximum-likelihood dimension (MacKay-Ghahramani average), cross-check of TwoNN",
    scale="dimension of each model's embeddings",
    reference=Reference("skdim.id.MLE", "scikit-dimension 0.3",
                        "Levina & Bickel (2004), NeurIPS 17; MacKay & Ghahramani (2005)")))
