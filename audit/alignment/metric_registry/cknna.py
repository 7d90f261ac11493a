"""CKNNA: centred kernel alignment restricted to mutual k-nearest neighbours (the study's local metric)."""
from ..metrics import CKNNA_VARIANTS, cknna
from . import AlignmentMetric, Variant, register_metric
from ._references import PLATONIC_REP, platonic

register_metric(AlignmentMetric(
    name="cknna", label="CKNNA", function=cknna, kind="pair", higher_is_more_aligned=True, scope="local",
    reference=platonic("cknna"), needs_k="k", uses_cache=True, verdict_rank=0, order=10,
    description="symmetric; diagonal 1 by definition",
    scale="1 = the same neighbourhood kernels, 0 = no shared neighbourhood structure",
    variants={
        "unbiased": Variant(
            "unbiased", "CKNNA on L2-normalised rows (cosine kernels), k-NN sets without self, unbiased HSIC "
                        "(Song et al. 2012) scaled by 1/(n(n-3)), denominator + 1e-6",
            dict(CKNNA_VARIANTS["unbiased"]),
            f"{PLATONIC_REP}: AlignmentMetrics.cknna(topk=k, unbiased=True) on F.normalize'd rows"),
        "biased": Variant(
            "biased", "CKNNA on L2-normalised rows, top-k of the kernel with the diagonal (self + k - 1 others), "
                      "biased HSIC tr(AHBH) unscaled, denominator + 1e-6",
            dict(CKNNA_VARIANTS["biased"]),
            f"{PLATONIC_REP}: AlignmentMetrics.cknna(topk=k, unbiased=False) on F.normalize'd rows"),
        "biased-no-self": Variant(
            "biased-no-self", "CKNNA on L2-normalised rows, k-NN sets without self, biased HSIC, no epsilon "
                              "(monoculture's default before issue 20)", dict(CKNNA_VARIANTS["biased-no-self"])),
    }))
