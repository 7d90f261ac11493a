"""Volume strain of every periodic frame relative to its composition's minimum-energy frame, mergeably.

``volume_strain = V/N / (V/N)_ref - 1`` where ``(V/N)_ref`` is the volume per atom (Å^3/atom) of the frame
with the lowest energy per atom of the same reduced composition (and level of theory: energies of different
functionals are not comparable). The reference is only known once every frame was seen, so the accumulator
keeps, per composition,

* the reference candidate: (lowest energy per atom, its volume per atom), ties broken by the smaller volume
  (exact and order independent, so ``merge`` equals one pass), and
* a histogram of ``ln(V/N)`` with fine bins of width :data:`LOG_VOLUME_BIN` (0.001, i.e. 0.1 % in volume),

and :meth:`result` shifts each composition's fine histogram by ``ln((V/N)_ref)`` and re-bins it on
:data:`~.regimes.VOLUME_STRAIN_EDGES`. Counts are exact except for frames whose strain lies within 0.05 %
(half a fine bin) of a coarse edge, which go to the bin of their fine bin's centre. Memory grows with the
number of (composition, fine bin) pairs seen, not with the number of frames.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from .histogram import FixedHistogram
from .regimes import VOLUME_STRAIN_EDGES

__all__ = ["VolumeStrainCoverage", "LOG_VOLUME_BIN", "composition_keys"]

#: Width of the fine ln(volume per atom) bins.
LOG_VOLUME_BIN = 1e-3

_MIX = np.uint64(0x9E3779B97F4A7C15)


def composition_keys(batch: pa.Table) -> np.ndarray:
    """64-bit key of each frame's reduced composition and level of theory, shape (n,) uint64.

    The reduced composition divides the species counts by their greatest common divisor, so a supercell
    shares its key with its primitive cell.
    """
    species = batch.column("species").combine_chunks()
    counts = batch.column("species_counts").combine_chunks()
    offsets = species.offsets.to_numpy().astype(np.int64)
    offsets = offsets - offsets[0]
    z = species.flatten().to_numpy(zero_copy_only=False).astype(np.uint64)
    c = counts.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    n = batch.num_rows
    lengths = np.diff(offsets)
    frame = np.repeat(np.arange(n), lengths)
    g = np.gcd.reduceat(c, offsets[:-1]) if c.size else np.zeros(n, dtype=np.int64)
    g = np.where(lengths > 0, g, 1)
    reduced = (c // g[frame]).astype(np.uint64)
    with np.errstate(over="ignore"):
        atom_hash = (z * np.uint64(1_000_003) + reduced + np.uint64(7)) * _MIX
        atom_hash ^= atom_hash >> np.uint64(29)
        key = np.zeros(n, dtype=np.uint64)
        np.add.at(key, frame, atom_hash)  # order-free sum of per-species hashes (wraps mod 2^64)
    lot = batch.column("level_of_theory").to_pylist()
    lot_hash = np.array([hash_label(s) for s in lot], dtype=np.uint64)
    with np.errstate(over="ignore"):
        return key * np.uint64(31) + lot_hash


def hash_label(text: str) -> int:
    """Stable 64-bit FNV-1a hash of a string (Python's ``hash`` is salted per process)."""
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class VolumeStrainCoverage:
    """Mergeable accumulator of the volume-strain histogram (see the module docstring)."""

    def __init__(self):
        self.reference_: dict[int, tuple[float, float]] = {}  # key -> (energy per atom eV, volume per atom Å^3)
        self.fine_: dict[int, Counter] = {}
        self.missing_ = 0

    def update(self, batch: pa.Table) -> "VolumeStrainCoverage":
        """Add the periodic frames with an energy and a volume; others count as missing."""
        if batch.num_rows == 0:
            return self
        vol = batch.column("volume_A3").to_numpy(zero_copy_only=False).astype(float)
        e = batch.column("energy_per_atom_eV").to_numpy(zero_copy_only=False).astype(float)
        n_atoms = batch.column("n_atoms").to_numpy().astype(float)
        ok = np.isfinite(vol) & np.isfinite(e) & (vol > 0)
        self.missing_ += int((~ok).sum())
        if not ok.any():
            return self
        keys = composition_keys(batch)[ok]
        vpa = vol[ok] / n_atoms[ok]
        e = e[ok]
        bins = np.floor(np.log(vpa) / LOG_VOLUME_BIN).astype(np.int64)
        order = np.lexsort((vpa, e, keys))  # per key: lowest energy first, then smallest volume
        k_sorted = keys[order]
        first = np.ones(k_sorted.size, dtype=bool)
        first[1:] = k_sorted[1:] != k_sorted[:-1]
        for i in order[first]:
            self._offer(int(keys[i]), float(e[i]), float(vpa[i]))
        pairs, counts = np.unique(np.stack([keys, bins.astype(np.uint64)], axis=1), axis=0, return_counts=True)
        for (k, b), c in zip(pairs.tolist(), counts.tolist()):
            self.fine_.setdefault(int(k), Counter())[int(np.int64(np.uint64(b)))] += int(c)
        return self

    def _offer(self, key: int, e: float, vpa: float) -> None:
        cur = self.reference_.get(key)
        if cur is None or (e, vpa) < cur:
            self.reference_[key] = (e, vpa)

    def merge(self, other: "VolumeStrainCoverage") -> "VolumeStrainCoverage":
        """Add another accumulator's frames; returns self."""
        for key, (e, vpa) in other.reference_.items():
            self._offer(key, e, vpa)
        for key, counter in other.fine_.items():
            self.fine_.setdefault(key, Counter()).update(counter)
        self.missing_ += other.missing_
        return self

    def histogram(self) -> FixedHistogram:
        """The strain histogram on :data:`VOLUME_STRAIN_EDGES` (frames without a volume or energy: missing)."""
        hist = FixedHistogram(VOLUME_STRAIN_EDGES)
        n_bins = hist.counts.size
        for key in sorted(self.fine_):
            counter = self.fine_[key]
            ln_ref = np.log(self.reference_[key][1])
            b = np.fromiter(counter.keys(), dtype=np.int64, count=len(counter))
            c = np.fromiter(counter.values(), dtype=np.int64, count=len(counter))
            strain = np.exp((b + 0.5) * LOG_VOLUME_BIN - ln_ref) - 1.0
            idx = np.searchsorted(hist.edges, strain, side="right") - 1
            hist.underflow += int(c[idx < 0].sum())
            hist.overflow += int(c[idx >= n_bins].sum())
            inside = (idx >= 0) & (idx < n_bins)
            np.add.at(hist.counts, idx[inside], c[inside])
            hist.min = min(hist.min, float(strain.min()))
            hist.max = max(hist.max, float(strain.max()))
        hist.missing += self.missing_
        return hist

    def result(self) -> dict:
        """Histogram dict (``edges``, ``counts``, ...) plus ``n_compositions`` and the rule, or
        ``{"not_applicable": reason}`` when no periodic frame had an energy."""
        if not self.fine_:
            return {"not_applicable": "no periodic frame with both an energy and a cell volume"}
        out = self.histogram().result()
        out["n_compositions"] = len(self.fine_)
        out["rule"] = ("V/N over V/N of the lowest-energy frame of the same reduced composition and level of "
                       f"theory, minus 1; fine ln(V/N) bins of {LOG_VOLUME_BIN:g}")
        return out
