"""Element coverage: which elements, element pairs and arities a dataset contains, and how evenly.

All state is integer counts indexed by atomic number, so updates are vectorised bincounts and merging is
addition (exact, associative, commutative).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ._common import (
    MAX_TABLE_Z,
    N_Z,
    SYMBOLS,
    TECH_RELEVANT_Z,
    hill_numbers,
    list_column,
)

__all__ = ["ElementCoverage", "COVERAGE_THRESHOLDS", "pair_counts"]

#: "At least N structures" thresholds of the periodic-table coverage fractions.
COVERAGE_THRESHOLDS = (1, 10, 100)


def pair_counts(offsets: np.ndarray, species: np.ndarray) -> np.ndarray:
    """Element-pair co-occurrence counts of a batch.

    Parameters
    ----------
    offsets : numpy.ndarray, shape (n_frames + 1,), int64
        Offsets of the ``species`` list column.
    species : numpy.ndarray, shape (n_species_entries,), int64
        Distinct atomic numbers of each frame, ascending within a frame.

    Returns
    -------
    numpy.ndarray, shape (119, 119), int64
        ``m[a, b]`` (``a < b``) = number of frames containing both Z = a and Z = b; upper triangle only.
    """
    out = np.zeros(N_Z * N_Z, dtype=np.int64)
    arity = np.diff(offsets)
    for k in np.unique(arity[arity >= 2]):
        starts = offsets[:-1][arity == k]
        block = species[starts[:, None] + np.arange(k)]  # (n_frames_k, k), ascending
        i, j = np.triu_indices(int(k), 1)
        flat = block[:, i] * N_Z + block[:, j]
        out += np.bincount(flat.ravel(), minlength=N_Z * N_Z)
    return out.reshape(N_Z, N_Z)


class ElementCoverage:
    """Accumulator of element counts, pair co-occurrence and arity over frame batches.

    Attributes
    ----------
    n_frames_ : int
    n_atoms_ : int
    structures_ : numpy.ndarray, shape (119,), int64
        Frames containing each Z.
    atoms_ : numpy.ndarray, shape (119,), int64
        Atoms of each Z.
    pairs_ : numpy.ndarray, shape (119, 119), int64
        Upper-triangular pair co-occurrence (frames containing both).
    arity_ : numpy.ndarray, shape (n,), int64
        ``arity_[k]`` = frames with ``k`` distinct elements (grows as needed).
    """

    name = "elements"

    def __init__(self):
        self.n_frames_ = 0
        self.n_atoms_ = 0
        self.structures_ = np.zeros(N_Z, dtype=np.int64)
        self.atoms_ = np.zeros(N_Z, dtype=np.int64)
        self.pairs_ = np.zeros((N_Z, N_Z), dtype=np.int64)
        self.arity_ = np.zeros(1, dtype=np.int64)

    def update(self, batch: pa.Table) -> "ElementCoverage":
        """Add a frame batch (:data:`~monoculture.datasets.frames.FRAME_SCHEMA`); returns self."""
        if batch.num_rows == 0:
            return self
        offsets, species = list_column(batch, "species", np.int64)
        _, counts = list_column(batch, "species_counts", np.int64)
        self.n_frames_ += batch.num_rows
        self.n_atoms_ += int(counts.sum())
        self.structures_ += np.bincount(species, minlength=N_Z)[:N_Z]
        self.atoms_ += np.bincount(species, weights=counts, minlength=N_Z)[:N_Z].astype(np.int64)
        self.pairs_ += pair_counts(offsets, species)
        self._add_arity(np.bincount(np.diff(offsets)).astype(np.int64))
        return self

    def _add_arity(self, hist: np.ndarray) -> None:
        if hist.size > self.arity_.size:
            self.arity_ = np.concatenate([self.arity_, np.zeros(hist.size - self.arity_.size, np.int64)])
        self.arity_[: hist.size] += hist

    def merge(self, other: "ElementCoverage") -> "ElementCoverage":
        """Add another accumulator's counts into this one; returns self."""
        self.n_frames_ += other.n_frames_
        self.n_atoms_ += other.n_atoms_
        self.structures_ += other.structures_
        self.atoms_ += other.atoms_
        self.pairs_ += other.pairs_
        self._add_arity(other.arity_)
        return self

    # -- results ---------------------------------------------------------------------------------------
    def result(self) -> dict:
        """JSON-ready summary.

        Returns
        -------
        dict
            ``n_frames``, ``n_atoms``;
            ``structures_per_element`` / ``atoms_per_element``: ``{symbol: count}`` for every element seen,
            in order of Z;
            ``present`` / ``missing``: symbols of Z = 1..94 seen / not seen (order of Z);
            ``tech_relevant``: ``{"elements": [...], "present": [...], "missing": [...], "share_present"}``
            over :data:`~monoculture.audit.coverage._common.TECH_RELEVANT`;
            ``table_coverage``: ``{"min_structures_1": share, "min_structures_10": ..., "min_structures_100":
            ...}``, share of Z = 1..94 with at least N structures;
            ``pairs``: ``{"n_pairs_seen", "n_pairs_possible" (= C(94, 2) = 4371), "share_of_possible",
            "n_pairs_possible_among_present" (C(n_present, 2)), "share_among_present", "counts":
            {"A-B": frames}}`` (``A-B`` in order of Z; pairs with Z > 94 are counted too);
            ``arity``: ``{"1": frames, "2": ...}`` (number of distinct elements per frame);
            ``arity_names``: ``{"unary": ..., "binary": ..., "ternary": ..., "quaternary": ...,
            "quinary_or_more": ...}``;
            ``diversity``: ``{"by_structures": {...}, "by_atoms": {...}}``, each from
            :func:`~monoculture.audit.coverage._common.hill_numbers` over the universe Z = 1..94.
        """
        s, a = self.structures_, self.atoms_
        seen_z = np.flatnonzero(s)
        table = np.arange(1, MAX_TABLE_Z + 1)
        present = [SYMBOLS[z] for z in table if s[z] > 0]
        missing = [SYMBOLS[z] for z in table if s[z] == 0]
        tech = list(TECH_RELEVANT_Z)
        tech_present = [SYMBOLS[z] for z in tech if s[z] > 0]
        pair_idx = np.argwhere(self.pairs_ > 0)
        n_present = len(present)
        possible = MAX_TABLE_Z * (MAX_TABLE_Z - 1) // 2
        possible_present = n_present * (n_present - 1) // 2
        in_table = [(i, j) for i, j in pair_idx if j <= MAX_TABLE_Z]
        arity = {str(k): int(c) for k, c in enumerate(self.arity_) if c > 0}
        names = {"unary": 1, "binary": 2, "ternary": 3, "quaternary": 4}
        arity_names = {n: int(self.arity_[k]) if k < self.arity_.size else 0 for n, k in names.items()}
        arity_names["quinary_or_more"] = int(self.arity_[5:].sum())
        return {
            "n_frames": int(self.n_frames_),
            "n_atoms": int(self.n_atoms_),
            "structures_per_element": {SYMBOLS[z]: int(s[z]) for z in seen_z},
            "atoms_per_element": {SYMBOLS[z]: int(a[z]) for z in seen_z},
            "present": present,
            "missing": missing,
            "n_present": n_present,
            "n_missing": len(missing),
            "tech_relevant": {
                "elements": [SYMBOLS[z] for z in tech],
                "present": tech_present,
                "missing": [SYMBOLS[z] for z in tech if s[z] == 0],
                "share_present": len(tech_present) / len(tech),
            },
            "table_coverage": {
                f"min_structures_{n}": float((s[1 : MAX_TABLE_Z + 1] >= n).sum() / MAX_TABLE_Z)
                for n in (1, 10, 100)
            },
            "pairs": {
                "n_pairs_seen": len(in_table),
                "n_pairs_possible": possible,
                "share_of_possible": len(in_table) / possible,
                "n_pairs_possible_among_present": possible_present,
                "share_among_present": (len(in_table) / possible_present) if possible_present else 0.0,
                "counts": {f"{SYMBOLS[i]}-{SYMBOLS[j]}": int(self.pairs_[i, j]) for i, j in pair_idx},
            },
            "arity": arity,
            "arity_names": arity_names,
            "diversity": {
                "universe": "Z = 1..94",
                "by_structures": hill_numbers(s[1 : MAX_TABLE_Z + 1]),
                "by_atoms": hill_numbers(a[1 : MAX_TABLE_Z + 1]),
            },
        }

    def pair_matrix(self) -> pd.DataFrame:
        """Symmetric co-occurrence matrix of the elements seen, as a DataFrame (symbols as index/columns)."""
        z = np.flatnonzero(self.structures_)
        m = self.pairs_ + self.pairs_.T
        m[np.arange(N_Z), np.arange(N_Z)] = self.structures_
        names = [SYMBOLS[i] for i in z]
        return pd.DataFrame(m[np.ix_(z, z)], index=names, columns=names)

    @staticmethod
    def to_frame(result: dict) -> pd.DataFrame:
        """Per-element table of a :meth:`result` dict: index symbol; columns Z, structures, atoms,
        share_of_frames, tech_relevant."""
        from ._common import TECH_RELEVANT

        rows = []
        n = max(result["n_frames"], 1)
        for sym, c in result["structures_per_element"].items():
            rows.append({"element": sym, "Z": SYMBOLS.index(sym), "structures": c,
                         "atoms": result["atoms_per_element"][sym], "share_of_frames": c / n,
                         "tech_relevant": sym in TECH_RELEVANT})
        cols = ["element", "Z", "structures", "atoms", "share_of_frames", "tech_relevant"]
        return pd.DataFrame(rows, columns=cols).set_index("element")
