"""References shared by several metric records (not a metric module: the registry skips ``_`` names)."""
from . import Reference

#: Reference code the defaults of the neighbourhood metrics transcribe (repository, file, commit read).
PLATONIC_REP = "platonic-rep (github.com/minyoungg/platonic-rep, metrics.py at commit 07ef02a)"
PLATONIC_REP_PAPER = "Huh, Cheung, Wang & Isola (2024), The Platonic Representation Hypothesis, ICML, arXiv 2405.07987"


def platonic(function: str) -> Reference:
    """A :class:`Reference` to one function of platonic-rep's ``AlignmentMetrics``."""
    return Reference(f"platonic-rep metrics.py, AlignmentMetrics.{function}", "commit 07ef02a", PLATONIC_REP_PAPER)
