"""Level-of-theory coverage: which functionals / +U / basis families label a dataset, overall and per element.

The monoculture index is ``dominant_share``: the share of frames carrying the most common
``level_of_theory`` label (``unknown`` counts as a label). 1.0 means one level of theory for everything.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._common import N_Z, SYMBOLS, list_column, merge_count_dicts, sorted_counts, string_codes

__all__ = ["LevelOfTheoryCoverage", "basis_family"]


def basis_family(basis: str | None) -> str:
    """Family of a basis set / pseudopotential label.

    Rules (first match, case-insensitive): null or ``unknown`` -> ``unknown``; ``PAW*`` -> ``PAW``;
    ``US*`` / ``GBRV*`` -> ``ultrasoft``; ``NC*`` / ``ONCV*`` / ``SG15*`` / ``PseudoDojo*`` ->
    ``norm-conserving``; ``PW*`` -> ``plane-wave``; ``def2-*`` -> ``def2``; ``cc-p*`` / ``aug-cc-p*`` ->
    ``Dunning cc``; ``6-31*`` / ``6-311*`` / ``3-21*`` -> ``Pople``; ``STO-*`` -> ``STO``; otherwise the label
    itself.
    """
    if basis is None or basis == "" or basis.lower() == "unknown":
        return "unknown"
    b = basis.lower()
    rules = (
        (("paw",), "PAW"), (("us", "gbrv"), "ultrasoft"), (("nc", "oncv", "sg15", "pseudodojo"), "norm-conserving"),
        (("pw",), "plane-wave"), (("def2",), "def2"), (("cc-p", "aug-cc-p"), "Dunning cc"),
        (("6-31", "3-21"), "Pople"), (("sto-",), "STO"),
    )
    for prefixes, family in rules:
        if b.startswith(prefixes):
            return family
    return basis


class LevelOfTheoryCoverage:
    """Accumulator of level-of-theory labels, +U flags and basis families, overall and per element.

    Attributes
    ----------
    n_frames_ : int
    counts_ : dict of str to int
        Frames per ``level_of_theory`` label.
    functional_counts_, basis_counts_ : dict of str to int
        Frames per ``functional`` / ``basis`` (null basis as ``unknown``).
    hubbard_ : numpy.ndarray, shape (3,), int64
        Frames with ``hubbard_u`` true, false, null.
    per_element_ : dict of str to numpy.ndarray, shape (119,), int64
        For each label, frames containing each Z.
    plus_u_element_ : numpy.ndarray, shape (119,), int64
        Frames with ``hubbard_u`` true containing each Z.
    structures_ : numpy.ndarray, shape (119,), int64
        Frames containing each Z.
    """

    name = "level_of_theory"

    def __init__(self):
        self.n_frames_ = 0
        self.counts_: dict[str, int] = {}
        self.functional_counts_: dict[str, int] = {}
        self.basis_counts_: dict[str, int] = {}
        self.hubbard_ = np.zeros(3, dtype=np.int64)
        self.per_element_: dict[str, np.ndarray] = {}
        self.plus_u_element_ = np.zeros(N_Z, dtype=np.int64)
        self.structures_ = np.zeros(N_Z, dtype=np.int64)

    @staticmethod
    def _count(codes: np.ndarray, labels: list[str]) -> dict[str, int]:
        c = np.bincount(codes, minlength=len(labels))
        return {lab: int(n) for lab, n in zip(labels, c) if n}

    def update(self, batch: pa.Table) -> "LevelOfTheoryCoverage":
        """Add a frame batch; returns self."""
        if batch.num_rows == 0:
            return self
        n = batch.num_rows
        self.n_frames_ += n
        codes, labels = string_codes(batch, "level_of_theory")
        self.counts_ = merge_count_dicts(self.counts_, self._count(codes, labels))
        self.functional_counts_ = merge_count_dicts(self.functional_counts_,
                                                    self._count(*string_codes(batch, "functional")))
        self.basis_counts_ = merge_count_dicts(self.basis_counts_, self._count(*string_codes(batch, "basis")))
        hu = batch.column("hubbard_u")
        n_true = int(pc.sum(pc.cast(pc.fill_null(hu, False), pa.int64())).as_py() or 0)
        n_null = int(hu.null_count)
        self.hubbard_ += np.array([n_true, n - n_true - n_null, n_null], dtype=np.int64)

        offsets, species = list_column(batch, "species", np.int64)
        lengths = np.diff(offsets)
        per = np.bincount(np.repeat(codes, lengths) * N_Z + species, minlength=len(labels) * N_Z)
        per = per.reshape(len(labels), N_Z)
        for i, lab in enumerate(labels):
            if lab in self.per_element_:
                self.per_element_[lab] = self.per_element_[lab] + per[i]
            else:
                self.per_element_[lab] = per[i].astype(np.int64)
        self.structures_ += per.sum(axis=0)
        hu_np = pc.fill_null(hu, False).to_numpy(zero_copy_only=False).astype(bool)
        self.plus_u_element_ += np.bincount(species[np.repeat(hu_np, lengths)], minlength=N_Z)[:N_Z]
        return self

    def merge(self, other: "LevelOfTheoryCoverage") -> "LevelOfTheoryCoverage":
        """Add another accumulator's counts into this one; returns self."""
        self.n_frames_ += other.n_frames_
        self.counts_ = merge_count_dicts(self.counts_, other.counts_)
        self.functional_counts_ = merge_count_dicts(self.functional_counts_, other.functional_counts_)
        self.basis_counts_ = merge_count_dicts(self.basis_counts_, other.basis_counts_)
        self.hubbard_ += other.hubbard_
        for lab, arr in other.per_element_.items():
            self.per_element_[lab] = self.per_element_.get(lab, np.zeros(N_Z, np.int64)) + arr
        self.plus_u_element_ += other.plus_u_element_
        self.structures_ += other.structures_
        return self

    def result(self) -> dict:
        """JSON-ready summary.

        Returns
        -------
        dict
            ``n_frames``; ``counts`` ``{label: frames}`` (descending count, then label); ``n_labels``;
            ``dominant`` (most common label; ties broken alphabetically; None when empty);
            ``dominant_share`` (float in [0, 1], the monoculture index; 0.0 when empty);
            ``known_share`` (share of frames whose label is not ``unknown``);
            ``functional_counts``; ``hubbard_u`` ``{"true", "false", "unknown"}`` frames;
            ``plus_u_share`` (frames with +U / all frames); ``basis_counts``; ``basis_family_counts``
            (see :func:`basis_family`);
            ``per_element``: ``{symbol: {"structures", "counts": {label: frames}, "dominant",
            "dominant_share", "plus_u_frames", "plus_u_share"}}`` in order of Z;
            ``only_plus_u``: elements whose every frame has +U; ``never_plus_u``: elements never seen with +U
            although the dataset has +U frames (empty list otherwise);
            ``single_label_elements``: ``{label: [symbols]}``, elements only ever seen with that one label
            (e.g. only ``PBE``).
        """
        n = self.n_frames_
        counts = sorted_counts(self.counts_)
        dominant = next(iter(counts), None)
        families: dict[str, int] = {}
        for b, c in self.basis_counts_.items():
            fam = basis_family(b)
            families[fam] = families.get(fam, 0) + c
        labels = sorted(self.per_element_)
        per_element = {}
        single: dict[str, list[str]] = {}
        for z in np.flatnonzero(self.structures_):
            s = int(self.structures_[z])
            el_counts = sorted_counts({lab: int(self.per_element_[lab][z]) for lab in labels
                                       if self.per_element_[lab][z] > 0})
            dom = next(iter(el_counts))
            per_element[SYMBOLS[z]] = {
                "structures": s,
                "counts": el_counts,
                "dominant": dom,
                "dominant_share": el_counts[dom] / s,
                "plus_u_frames": int(self.plus_u_element_[z]),
                "plus_u_share": int(self.plus_u_element_[z]) / s,
            }
            if len(el_counts) == 1:
                single.setdefault(dom, []).append(SYMBOLS[z])
        any_u = self.hubbard_[0] > 0
        return {
            "n_frames": int(n),
            "counts": counts,
            "n_labels": len(counts),
            "dominant": dominant,
            "dominant_share": (counts[dominant] / n) if n else 0.0,
            "known_share": ((n - self.counts_.get("unknown", 0)) / n) if n else 0.0,
            "functional_counts": sorted_counts(self.functional_counts_),
            "hubbard_u": {"true": int(self.hubbard_[0]), "false": int(self.hubbard_[1]),
                          "unknown": int(self.hubbard_[2])},
            "plus_u_share": (int(self.hubbard_[0]) / n) if n else 0.0,
            "basis_counts": sorted_counts(self.basis_counts_),
            "basis_family_counts": sorted_counts(families),
            "per_element": per_element,
            "only_plus_u": [el for el, d in per_element.items() if d["plus_u_frames"] == d["structures"]],
            "never_plus_u": [el for el, d in per_element.items() if d["plus_u_frames"] == 0] if any_u else [],
            "single_label_elements": {lab: single[lab] for lab in sorted(single)},
        }

    @staticmethod
    def to_frame(result: dict) -> pd.DataFrame:
        """Element x label frame counts of a :meth:`result` dict (index symbol, one column per label, plus
        ``plus_u_frames`` and ``dominant_share``)."""
        labels = list(result["counts"])
        rows = []
        for el, d in result["per_element"].items():
            row = {"element": el, **{lab: d["counts"].get(lab, 0) for lab in labels}}
            row.update(plus_u_frames=d["plus_u_frames"], dominant_share=d["dominant_share"])
            rows.append(row)
        return pd.DataFrame(rows, columns=["element", *labels, "plus_u_frames", "dominant_share"]).set_index("element")
