"""Calibrations turned into what the alignment document shows: matrices, calibrated replicates, the k/n
warning and the verdict on calibrated scores. Overview: :mod:`.calibration`."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .calibration_scores import _EPS_DEN, Calibration

__all__ = ["MAX_K_OVER_N", "calibration_matrices", "calibrated_replicates", "k_over_n_warning", "settle_verdict",
           "NOT_ESTABLISHED"]

# -- helpers for the audit document -----------------------------------------------------------------------
#: Neighbourhood share above which a k-NN metric is no longer local (issue 26; arXiv 2602.14486).
MAX_K_OVER_N = 0.1


def calibration_matrices(results: Mapping[tuple, Calibration], n_models: int, directed: bool = False) -> dict:
    """``{"raw", "null_mean", "tau", "p_value", "calibrated"}`` as n_models x n_models lists (None where
    not computed, e.g. the diagonal), mirrored for symmetric metrics; JSON-ready."""
    fields = ("raw", "null_mean", "tau", "p_value", "calibrated")
    mats = {f: [[None] * n_models for _ in range(n_models)] for f in fields}
    for (i, j), c in results.items():
        for f in fields:
            v = float(getattr(c, f))
            v = v if np.isfinite(v) else None
            mats[f][i][j] = v
            if not directed:
                mats[f][j][i] = v
    return mats


def calibrated_replicates(replicates: np.ndarray, cal: Calibration) -> np.ndarray:
    """Raw resampling replicates mapped through a calibration's fixed ``tau``:
    ``clip((s - tau) / (s_max - tau), 0, 1)`` in the metric's direction (s_max = 1, or 0 for metrics lower
    when more aligned). Gives calibrated scores intervals from the same replicates as the raw ones."""
    sign = 1.0 if cal.higher_is_more_aligned else -1.0
    best = 1.0 if cal.higher_is_more_aligned else 0.0
    den = max(sign * (best - cal.tau), _EPS_DEN)
    return np.clip(sign * (np.asarray(replicates, dtype=np.float64) - cal.tau) / den, 0.0, 1.0)


def k_over_n_warning(labels: Sequence[str], k: int, n_by_set: Mapping[str, int], *,
                     limit: float = MAX_K_OVER_N, local_verdict: bool = True) -> str | None:
    """The sentence ``align`` adds to its warnings when ``k / n`` exceeds ``limit`` in a set, else None.

    ``local_verdict``: add that the local verdict is taken from the k-sweep at ``k/n <= limit`` (for the
    metrics behind it, CKNNA and mutual k-NN).
    """
    over = {key: n for key, n in n_by_set.items() if n > 0 and k / n > limit}
    if not over:
        return None
    where = ", ".join(f"{k}/{n} = {k / n:.2f} on the {key.upper()} set" for key, n in over.items())
    text = (f"k/n is above {limit:g} for {' and '.join(labels)} ({where}): each neighbourhood covers a large "
            f"share of the set, so these scores are no longer local and their chance level is high")
    return text + (f"; the local verdict is taken from the k-sweep at k/n <= {limit:g}." if local_verdict else ".")


NOT_ESTABLISHED = "not established"
_DIRECTIONAL = ("higher in distribution", "higher out of distribution")


def settle_verdict(raw_word: str, calibrated_word: str, sweep_differences: Sequence[float] = ()) -> tuple[str, list]:
    """The verdict to report, stated on calibrated scores, and why it is not established if it is not.

    Parameters
    ----------
    raw_word, calibrated_word : str
        Direction words of the raw and the calibrated ID - OOD interval ("higher in distribution", "higher
        out of distribution", "no detectable difference", "not determined").
    sweep_differences : sequence of float
        Calibrated ID - OOD differences (mean over pairs) at every k of the k-sweep with k/n <= 0.1.

    Returns
    -------
    (verdict, reasons)
        ``calibrated_word`` when it agrees with ``raw_word`` and, if directional, keeps its sign over the
        sweep; else ``"not established"`` with the reasons in words.
    """
    if calibrated_word == "not determined":
        return calibrated_word, []
    reasons = []
    if calibrated_word != raw_word:
        reasons.append(f"raw scores give '{raw_word}' but scores calibrated against chance give '{calibrated_word}'")
    signs = {float(np.sign(d)) for d in sweep_differences if d is not None and np.isfinite(d) and d != 0}
    if calibrated_word in _DIRECTIONAL and len(signs) > 1:
        reasons.append("the calibrated ID − OOD difference changes sign across the k-sweep at k/n <= "
                       f"{MAX_K_OVER_N:g}")
    return (NOT_ESTABLISHED, reasons) if reasons else (calibrated_word, [])
