"""Compare a dataset A with a reference B on the same descriptor: coverage, novelty, duplicates, gaps.

Radius rule (documented contract): ``r`` is the ``radius_quantile`` (default 0.95) quantile of B's
leave-one-out nearest-neighbour distances (each B point to the nearest *other* B point). With that ``r``,
B covers itself at 0.95 by construction, so ``coverage_of_b_by_a`` is read against 0.95: A covers B as well
as B covers itself when it reaches 0.95. When B has more than ``radius_sample`` (100,000) points, ``r`` is
estimated from a seeded subsample of that many B points searched against all of B.

* ``coverage_of_b_by_a``: share of B points with an A point within ``r`` (``<=``).
* ``novelty_of_a``: share of A points farther than ``r`` from every B point.
* duplicates: exact = A points with the same identity (:mod:`~monoculture.audit.coverage.identity`: same
  molecule, or same species and geometry) as a sampled B point; near = A points that are near-duplicates
  (:func:`~monoculture.audit.coverage.duplicates.near_duplicates`) of one of their 5 nearest B points.
  :meth:`~monoculture.audit.coverage.audit.CoverageAudit.compare` replaces the exact count by one over
  every frame of both datasets.

Both samples are standardised with the reference's column scaling
(:class:`~monoculture.audit.coverage.scaling.FeatureScaler` fitted on B) before any distance.
* ``uncovered_regions``: B points not covered by A, grouped by k-means (scikit-learn, ``random_state =
  seed``) into at most 10 regions (about one per 20 uncovered points), each with its size, top formulas and
  elements: "where the reference has points and this dataset has none".

k-NN via :func:`~monoculture.audit.neighbours.knn_query` (exact ``IndexFlatL2`` up to 1,000,000 indexed points,
IVF beyond). Inputs are reservoir samples (:class:`~monoculture.audit.coverage.reservoir.DescriptorSample`),
or plain arrays through :func:`compare_arrays`.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ._common import SYMBOLS
from .duplicates import near_duplicates
from ..neighbours import EXACT_MAX, knn_query as knn, knn_self_indexed as knn_self
from .reservoir import DescriptorSample
from .scaling import FeatureScaler

__all__ = ["compare_arrays", "compare_samples", "radius_from_reference"]


def radius_from_reference(xb: np.ndarray, quantile: float = 0.95, *, radius_sample: int = 100_000,
                          seed: int = 0, exact_max: int = EXACT_MAX) -> tuple[float, np.ndarray]:
    """Coverage radius from B's own nearest-neighbour distances.

    Returns
    -------
    r : float
        ``quantile`` of B's leave-one-out 1-NN distances (descriptor units).
    nn1 : numpy.ndarray, shape (m,)
        The 1-NN distances used (``m = min(n_B, radius_sample)``).
    """
    n = xb.shape[0]
    if n <= radius_sample:
        d, _, _ = knn_self(xb, 1, exact_max=exact_max, seed=seed)
        nn1 = d[:, 0]
    else:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(n, radius_sample, replace=False))
        d, i, _ = knn(xb, xb[rows], 2, exact_max=exact_max, seed=seed)
        is_self = i == rows[:, None]
        nn1 = np.where(is_self[:, 0], d[:, 1], d[:, 0])
    return float(np.quantile(nn1, quantile)), nn1


def compare_arrays(xa: np.ndarray, xb: np.ndarray, *, radius: float | None = None, radius_quantile: float = 0.95,
                   radius_sample: int = 100_000, seed: int = 0, exact_max: int = EXACT_MAX) -> dict:
    """Coverage of B by A and novelty of A, from descriptor arrays alone.

    Parameters
    ----------
    xa : numpy.ndarray, shape (n_A, d)
    xb : numpy.ndarray, shape (n_B, d)
    radius : float, optional
        Fixed radius (descriptor units); default from :func:`radius_from_reference`.
    radius_quantile, radius_sample, seed, exact_max
        See the module docstring.

    Returns
    -------
    dict
        ``n_a``, ``n_b``, ``radius``, ``radius_rule``, ``coverage_of_b_by_a``, ``novelty_of_a``,
        ``knn_index`` (A->B and B->A index descriptions), plus private arrays ``_b_covered`` (n_B,) bool,
        ``_a_novel`` (n_A,) bool, ``_a_to_b`` = (dist, idx) of shape (n_A, 5), ``_median_b_nn1``.
    """
    xa = np.asarray(xa, dtype=np.float32)
    xb = np.asarray(xb, dtype=np.float32)
    if xa.ndim != 2 or xb.ndim != 2 or xa.shape[1] != xb.shape[1]:
        raise ValueError(f"descriptor arrays must be (n, d) with the same d, got {xa.shape} and {xb.shape}")
    if radius is None:
        r, nn1 = radius_from_reference(xb, radius_quantile, radius_sample=radius_sample, seed=seed,
                                       exact_max=exact_max)
        rule = (f"quantile {radius_quantile} of B's leave-one-out 1-NN distances "
                f"({len(nn1)} B points{' (seeded subsample)' if len(nn1) < len(xb) else ''})")
        med = float(np.median(nn1))
    else:
        r, rule = float(radius), "given"
        med = float(np.median(radius_from_reference(xb, 0.5, radius_sample=radius_sample, seed=seed,
                                                    exact_max=exact_max)[1]))
    d_ab, i_ab, info_ab = knn(xb, xa, 5, exact_max=exact_max, seed=seed)
    d_ba, _, info_ba = knn(xa, xb, 1, exact_max=exact_max, seed=seed)
    b_covered = d_ba[:, 0] <= r
    a_novel = d_ab[:, 0] > r
    return {
        "n_a": int(xa.shape[0]), "n_b": int(xb.shape[0]), "radius": r, "radius_rule": rule,
        "coverage_of_b_by_a": float(b_covered.mean()), "novelty_of_a": float(a_novel.mean()),
        "knn_index": {"a_in_b": info_ab, "b_in_a": info_ba},
        "_b_covered": b_covered, "_a_novel": a_novel, "_a_to_b": (d_ab, i_ab), "_median_b_nn1": med,
    }


def _share_table(groups: list, flags: np.ndarray) -> dict:
    tot: Counter = Counter()
    hit: Counter = Counter()
    for g, f in zip(groups, flags):
        for key in (g if isinstance(g, tuple) else (g,)):
            tot[key] += 1
            hit[key] += int(f)
    return {str(k): {"n": tot[k], "novel": hit[k], "novelty": hit[k] / tot[k]} for k in sorted(tot, key=str)}


def _regions(b: DescriptorSample, uncovered: np.ndarray, seed: int, max_regions: int = 10) -> list[dict]:
    rows = np.flatnonzero(uncovered)
    if rows.size == 0:
        return []
    n_clusters = int(min(max_regions, max(1, rows.size // 20)))
    if n_clusters > 1:
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit_predict(
            b.X[rows].astype(np.float64))
    else:
        labels = np.zeros(rows.size, dtype=np.int64)
    regions = []
    for c in range(n_clusters):
        members = rows[labels == c]
        if members.size == 0:
            continue
        formulas = Counter(str(b.formulas[i]) for i in members)
        elements = Counter(SYMBOLS[z] for i in members for z in b.species[i])
        top_f = sorted(formulas.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        top_e = sorted(elements.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        regions.append({
            "n_b": int(members.size), "share_of_b": members.size / len(b),
            "top_formulas": {f: n for f, n in top_f}, "top_elements": {e: n for e, n in top_e},
            "example_ids": [str(b.ids[i]) for i in members[:3]],
        })
    regions.sort(key=lambda r: (-r["n_b"], r["example_ids"][0]))
    for i, r in enumerate(regions):
        r["region"] = i
    return regions


def compare_samples(a: DescriptorSample, b: DescriptorSample, *, radius: float | None = None,
                    radius_quantile: float = 0.95, seed: int = 0, exact_max: int = EXACT_MAX,
                    a_name: str | None = None, b_name: str | None = None,
                    scaler: FeatureScaler | None = None) -> dict:
    """Compare two reservoir samples (A = audited dataset, B = reference).

    ``scaler`` is the column scaling of both (default fitted on B's sample); ``radius`` is in scaled units.

    Returns
    -------
    dict
        ``a``, ``b`` (names), ``n_a``, ``n_b`` (sampled points), ``n_seen_a``, ``n_seen_b``, ``radius``,
        ``radius_rule``, ``coverage_of_b_by_a``, ``self_coverage_of_b`` (= ``radius_quantile``),
        ``novelty_of_a``, ``per_element_novelty`` ``{symbol: {"n", "novel", "novelty"}}`` (A frames
        containing the element), ``per_method_novelty`` and ``per_temperature_novelty`` (same layout, by
        ``method`` / coarse temperature class), ``duplicates`` (``exact``, ``near``, ``exact_share``,
        ``near_share``, ``exact_rule``, ``near_rule``, ``examples`` [[a_id, b_id]]), ``scaling``, ``uncovered_regions``
        (list, see the module docstring), ``knn_index``, ``note`` (samples, not full datasets).
    """
    name_b0 = b_name or (str(b.datasets[0]) if len(b) else "B")
    scaler = scaler if scaler is not None else FeatureScaler.fit(b.X, fitted_on=name_b0)
    res = compare_arrays(scaler.transform(a.X), scaler.transform(b.X), radius=radius,
                         radius_quantile=radius_quantile, seed=seed, exact_max=exact_max)
    d_ab, i_ab = res.pop("_a_to_b")
    a_novel = res.pop("_a_novel")
    b_covered = res.pop("_b_covered")
    res.pop("_median_b_nn1")
    exact = np.isin(a.identity, b.identity)
    near = near_duplicates(a, i_ab, d_ab, other=b)
    exact_examples = [[str(a.ids[i]), str(b.ids[np.flatnonzero(b.identity == a.identity[i])[0]])]
                      for i in np.flatnonzero(exact)[:5]]
    name_a = a_name or (str(a.datasets[0]) if len(a) else "A")
    name_b = b_name or (str(b.datasets[0]) if len(b) else "B")
    out = {
        "a": name_a, "b": name_b,
        "n_a": res["n_a"], "n_b": res["n_b"], "n_seen_a": int(a.n_seen), "n_seen_b": int(b.n_seen),
        "radius": res["radius"], "radius_rule": res["radius_rule"],
        "coverage_of_b_by_a": res["coverage_of_b_by_a"],
        "self_coverage_of_b": float(radius_quantile) if radius is None else None,
        "novelty_of_a": res["novelty_of_a"],
        "per_element_novelty": {SYMBOLS[int(k)]: v for k, v in sorted(
            ((int(z), v) for z, v in _share_table(a.species, a_novel).items()), key=lambda kv: kv[0])},
        "per_method_novelty": _share_table(list(a.methods), a_novel),
        "per_temperature_novelty": _share_table(list(a.temperature_classes), a_novel),
        "duplicates": {
            "exact": int(exact.sum()), "near": near["n"],
            "exact_share": float(exact.mean()) if len(a) else 0.0, "near_share": near["share"],
            "exact_rule": "A frames whose identity (same molecule, or same species and geometry) is that of a "
                          "sampled B frame",
            "near_rule": near["rule"], "exact_examples": exact_examples, "examples": near["examples"],
            "scope": "samples",
        },
        "scaling": scaler.describe(),
        "uncovered_regions": _regions(b, ~b_covered, seed),
        "knn_index": res["knn_index"],
        "note": "computed on the reservoir samples of both datasets (see n_a / n_b and n_seen_a / n_seen_b)",
    }
    return out
