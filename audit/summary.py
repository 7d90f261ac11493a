"""The basic per-dataset counts of the audit document (elements, level of theory, method, temperature).

:class:`BasicCounts` is an exact, mergeable accumulator over frame batches: ``update(batch)``,
``merge(other)``, ``result()``. Counting is vectorised over the flat ``species`` / ``species_counts``
list columns; no per-frame Python work.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ase.data import chemical_symbols

__all__ = ["BasicCounts"]

_NZ = 119


class BasicCounts:
    """Structures and atoms per element, frames per level of theory, per method and per temperature."""

    def __init__(self):
        self.n_frames = 0
        self.n_atoms = 0
        self.structures_per_z = np.zeros(_NZ, dtype=np.int64)
        self.atoms_per_z = np.zeros(_NZ, dtype=np.int64)
        self.level_of_theory: Counter = Counter()
        self.method: Counter = Counter()
        self.temperature: Counter = Counter()
        self.temperature_unknown = 0

    def update(self, batch: pa.Table) -> "BasicCounts":
        """Add the frames of one batch."""
        if batch.num_rows == 0:
            return self
        species = batch.column("species").combine_chunks()
        counts = batch.column("species_counts").combine_chunks()
        z = species.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
        c = counts.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
        self.structures_per_z += np.bincount(z, minlength=_NZ)
        self.atoms_per_z += np.bincount(z, weights=c, minlength=_NZ).astype(np.int64)
        self.n_frames += batch.num_rows
        self.n_atoms += int(c.sum())
        for name, counter in (("level_of_theory", self.level_of_theory), ("method", self.method)):
            vc = pc.value_counts(batch.column(name).combine_chunks())
            for item in vc.to_pylist():
                counter[item["values"]] += item["counts"]
        temp = batch.column("temperature_K").combine_chunks()
        self.temperature_unknown += temp.null_count
        vc = pc.value_counts(temp.drop_null())
        for item in vc.to_pylist():
            self.temperature[float(item["values"])] += item["counts"]
        return self

    def merge(self, other: "BasicCounts") -> "BasicCounts":
        """A new accumulator holding the counts of both."""
        out = BasicCounts()
        out.n_frames = self.n_frames + other.n_frames
        out.n_atoms = self.n_atoms + other.n_atoms
        out.structures_per_z = self.structures_per_z + other.structures_per_z
        out.atoms_per_z = self.atoms_per_z + other.atoms_per_z
        out.level_of_theory = self.level_of_theory + other.level_of_theory
        out.method = self.method + other.method
        out.temperature = self.temperature + other.temperature
        out.temperature_unknown = self.temperature_unknown + other.temperature_unknown
        return out

    @staticmethod
    def _per_element(arr: np.ndarray) -> dict[str, int]:
        return {chemical_symbols[z]: int(arr[z]) for z in np.flatnonzero(arr)}

    @staticmethod
    def _temperature_key(t: float) -> str:
        return str(int(t)) if float(t).is_integer() else repr(float(t))

    def result(self) -> dict:
        """The issue-2 keys of one ``datasets[i]`` entry (elements, level_of_theory, method, temperature_K)."""
        return {
            "n_frames": int(self.n_frames),
            "n_atoms": int(self.n_atoms),
            "elements": {
                "structures_per_element": self._per_element(self.structures_per_z),
                "atoms_per_element": self._per_element(self.atoms_per_z),
            },
            "level_of_theory": dict(sorted(self.level_of_theory.items())),
            "method": dict(sorted(self.method.items())),
            "temperature_K": {
                "values": {self._temperature_key(t): int(n) for t, n in sorted(self.temperature.items())},
                "unknown": int(self.temperature_unknown),
            },
        }
