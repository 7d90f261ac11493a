"""Centred kernel alignment (supports the global verdict)."""
from ..metrics import cka
from . import AlignmentMetric, Reference, Variant, register_metric

register_metric(AlignmentMetric(
    name="cka", label="linear CKA", short_label="CKA", function=cka, kind="pair", higher_is_more_aligned=True,
    scope="global", verdict_rank=1, order=30, description="symmetric; diagonal 1 by definition",
    scale="1 = the same linear kernel up to rotation and scale, near 0 = unrelated",
    reference=Reference("dense Gram-matrix formula; platonic-rep AlignmentMetrics.cka", "commit 07ef02a",
                        "Kornblith, Norouzi, Lee & Hinton (2019), ICML, arXiv 1905.00414"),
    variants={
        "linear": Variant("linear", "linear CKA, biased HSIC (Kornblith et al. 2019)",
                          {"kernel": "linear", "unbiased": False},
                          "dense Gram-matrix formula; platonic-rep AlignmentMetrics.cka(kernel_metric='ip') on "
                          "unnormalised rows"),
        "linear-unbiased": Variant("linear-unbiased", "linear CKA, unbiased HSIC (Song et al. 2012)",
                                   {"kernel": "linear", "unbiased": True}),
        "rbf": Variant("rbf", "RBF CKA, median-heuristic bandwidth per space, biased HSIC",
                       {"kernel": "rbf", "unbiased": False}),
    }))
