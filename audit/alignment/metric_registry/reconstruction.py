"""Global and local feature reconstruction errors (directed; point estimates per set)."""
from ..reconstruction import feature_reconstruction_error
from . import AlignmentMetric, Reference, Variant, register_metric

_PAPER = "Goscinski, Fraux, Imbalzano & Ceriotti (2021), Mach. Learn.: Sci. Technol. 2, 025028"
_DESCRIPTION = ("row i, column j: error of reconstructing model_j from model_i on a held-out half (0 = exact linear "
                "reconstruction, about 1 = none); diagonal not computed; point estimates, no intervals")
_SCALE = ("0 = exact linear reconstruction, about 1 = none; above 1 when the held-out half lies outside what "
          "the fitted half spans (e.g. far outliers)")

register_metric(AlignmentMetric(
    name="gfre", label="global feature reconstruction error", short_label="GFRE",
    function=feature_reconstruction_error, kind="directed pair", higher_is_more_aligned=False,
    scope="reconstruction", intervals=False, order=70, description=_DESCRIPTION, scale=_SCALE,
    reference=Reference("skmatter.metrics.global_reconstruction_error, re-implemented", "scikit-matter 0.2", _PAPER),
    variants={"skmatter": Variant(
        "skmatter", "global feature reconstruction error: ridge (2-fold CV over relative singular-value cutoffs) "
                    "from A to B on a half split, both standardised to unit total variance (Goscinski et al. 2021)",
        {"local": False}, "skmatter.metrics.global_reconstruction_error defaults, re-implemented (scikit-matter is "
                          "not installable here)")}))

register_metric(AlignmentMetric(
    name="lfre", label="local feature reconstruction error", short_label="LFRE",
    function=feature_reconstruction_error, kind="directed pair", higher_is_more_aligned=False,
    scope="reconstruction", intervals=False, order=80,
    description=_DESCRIPTION + "; LFRE uses the 15 nearest training structures of each test structure", scale=_SCALE,
    reference=Reference("skmatter.metrics.local_reconstruction_error, re-implemented", "scikit-matter 0.2", _PAPER),
    variants={"skmatter": Variant(
        "skmatter", "local feature reconstruction error: the same regression fitted on the k nearest training "
                    "points of each test point (Goscinski et al. 2021)", {"local": True},
        "skmatter.metrics.local_reconstruction_error defaults, re-implemented")}))
