"""Information imbalance Delta(A -> B) (directed; supports the global verdict)."""
from ..imbalance import information_imbalance
from . import AlignmentMetric, Reference, Variant, register_metric

register_metric(AlignmentMetric(
    name="information_imbalance", label="information imbalance", function=information_imbalance,
    kind="directed pair", higher_is_more_aligned=False, scope="global", needs_k="ii_k", verdict_rank=2, order=50,
    description="row i, column j: Delta(model_i -> model_j), small when model_i's neighbourhoods predict model_j's; "
                "diagonal not computed",
    scale="0 = the source model's neighbourhoods predict the target's exactly, about 1 = unrelated",
    reference=Reference("dadapy MetricComparisons.return_inf_imb_two_selected_coords", "dadapy 0.3",
                        "Glielmo, Zeni, Cheng, Csányi & Laio (2022), PNAS Nexus 1, pgac039"),
    variants={
        "euclidean": Variant("euclidean", "information imbalance Delta(A -> B), Euclidean ranks on the rows as "
                                          "given, k source neighbours (Glielmo et al. 2022)", {},
                             "the paper's definition; dadapy MetricComparisons"),
    }))
