"""A fixed-edge histogram accumulator: exact, mergeable counts of a scalar column."""
from __future__ import annotations

import numpy as np

__all__ = ["FixedHistogram"]


class FixedHistogram:
    """Counts of values in fixed bins, plus underflow, overflow, missing (NaN) and the exact min / max.

    Bins are half-open ``[edges[i], edges[i + 1])``; the last bin is half-open too, so a value equal to
    ``edges[-1]`` is overflow. Because the edges are fixed, two histograms of the same edges merge by adding
    counts, and any split of the data into batches gives the same result.

    Parameters
    ----------
    edges : sequence of float, shape (n_bins + 1,)
        Strictly increasing bin edges, in the unit of the column.
    """

    def __init__(self, edges):
        self.edges = np.asarray(edges, dtype=np.float64)
        if self.edges.ndim != 1 or self.edges.size < 2 or not np.all(np.diff(self.edges) > 0):
            raise ValueError(f"edges must be a strictly increasing 1-D sequence, got {edges!r}")
        self.counts = np.zeros(self.edges.size - 1, dtype=np.int64)
        self.underflow = 0
        self.overflow = 0
        self.missing = 0
        self.min = np.inf
        self.max = -np.inf

    def update(self, values: np.ndarray) -> "FixedHistogram":
        """Add values, shape (n,) float; NaN counts as missing."""
        v = np.asarray(values, dtype=np.float64)
        finite = ~np.isnan(v)
        self.missing += int(v.size - finite.sum())
        v = v[finite]
        if v.size == 0:
            return self
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))
        idx = np.searchsorted(self.edges, v, side="right") - 1
        n_bins = self.counts.size
        self.underflow += int((idx < 0).sum())
        self.overflow += int((idx >= n_bins).sum())
        inside = idx[(idx >= 0) & (idx < n_bins)]
        self.counts += np.bincount(inside, minlength=n_bins)
        return self

    def merge(self, other: "FixedHistogram") -> "FixedHistogram":
        """Add the counts of ``other`` (same edges) into this histogram; returns self."""
        if not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot merge histograms with different edges")
        self.counts += other.counts
        self.underflow += other.underflow
        self.overflow += other.overflow
        self.missing += other.missing
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        return self

    @property
    def n_values(self) -> int:
        """Number of non-missing values seen."""
        return int(self.counts.sum()) + self.underflow + self.overflow

    def result(self) -> dict:
        """JSON-ready dict: ``edges``, ``counts``, ``underflow``, ``overflow``, ``missing``, ``n``, ``min``,
        ``max`` (None when no value was seen)."""
        seen = self.n_values > 0
        return {
            "edges": [float(e) for e in self.edges],
            "counts": [int(c) for c in self.counts],
            "underflow": int(self.underflow),
            "overflow": int(self.overflow),
            "missing": int(self.missing),
            "n": self.n_values,
            "min": float(self.min) if seen else None,
            "max": float(self.max) if seen else None,
        }
