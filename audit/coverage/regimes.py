"""Thermodynamic-regime coverage: temperature, pressure, forces, energy, volume and method of the frames.

Every histogram has fixed, documented edges (below), so results are exact and mergeable. Frames without a
value (no temperature recorded, no forces, no stress, not periodic) are counted as ``missing`` /
``unknown``, never dropped silently.

Near-equilibrium threshold
--------------------------
A frame is *near equilibrium* when ``fmax_eV_A < 0.05`` eV/Å (:data:`NEAR_EQUILIBRIUM_FMAX_EV_A`). 0.05 eV/Å
is the force-convergence criterion most relaxations in the field stop at (the ``fmax=0.05`` of ASE
optimizers used by MLIP relaxation benchmarks, ``EDIFFG = -0.05`` in many VASP workflows), so frames below
it are what a relaxation database calls "relaxed"; anything above was not at a local minimum.
``fmax >= 1 eV/Å`` (:data:`STRONGLY_DISTORTED_FMAX_EV_A`) is reported separately as *strongly distorted*
(typical of rattled / high-temperature AIMD snapshots).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from monoculture.datasets.frames import METHODS

from ._common import N_Z, SYMBOLS, float_column, list_column, merge_count_dicts, string_codes
from .histogram import FixedHistogram

__all__ = [
    "RegimeCoverage",
    "TEMPERATURE_EDGES_K",
    "PRESSURE_EDGES_GPA",
    "FMAX_EDGES_EV_A",
    "ENERGY_PER_ATOM_EDGES_EV",
    "VOLUME_PER_ATOM_EDGES_A3",
    "VOLUME_STRAIN_EDGES",
    "GRID_TEMPERATURE_EDGES_K",
    "GRID_PRESSURE_EDGES_GPA",
    "NEAR_EQUILIBRIUM_FMAX_EV_A",
    "STRONGLY_DISTORTED_FMAX_EV_A",
    "temperature_class",
    "pressure_class",
]

#: Temperature histogram edges (K); ``[0, 1)`` is "0 K".
TEMPERATURE_EDGES_K = (0.0, 1.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 800.0, 1000.0, 1500.0, 2000.0,
                       3000.0, 5000.0)
#: Pressure histogram edges (GPa; compressed > 0); ``[-0.1, 0.1)`` is "ambient".
PRESSURE_EDGES_GPA = (-50.0, -20.0, -10.0, -5.0, -2.0, -1.0, -0.1, 0.1, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0,
                      100.0, 200.0, 500.0)
#: fmax histogram edges (eV/Å).
FMAX_EDGES_EV_A = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: Energy-per-atom histogram edges (eV/atom): 0.5 eV bins from -20 to 5.
ENERGY_PER_ATOM_EDGES_EV = tuple(float(x) for x in np.arange(-20.0, 5.001, 0.5))
#: Volume-per-atom histogram edges (Å^3/atom), periodic frames only.
VOLUME_PER_ATOM_EDGES_A3 = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 75.0, 100.0, 200.0)
#: Volume-strain histogram edges (dimensionless ``V / V_ref - 1``), used when a ``volume_strain`` column exists.
VOLUME_STRAIN_EDGES = (-0.5, -0.3, -0.2, -0.15, -0.1, -0.05, -0.02, -0.01, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2,
                       0.3, 0.5)
#: Coarse temperature classes of the T x P grid (K): 0 K, 1-300, 300-600, 600-1000, 1000-2000, >= 2000.
GRID_TEMPERATURE_EDGES_K = (0.0, 1.0, 300.0, 600.0, 1000.0, 2000.0, np.inf)
#: Coarse pressure classes of the T x P grid (GPa): < -1 (tension), -1..1 (ambient), 1-10, 10-50, >= 50.
GRID_PRESSURE_EDGES_GPA = (-np.inf, -1.0, 1.0, 10.0, 50.0, np.inf)
#: fmax below which a frame is near equilibrium (eV/Å); see the module docstring.
NEAR_EQUILIBRIUM_FMAX_EV_A = 0.05
#: fmax at or above which a frame is strongly distorted (eV/Å).
STRONGLY_DISTORTED_FMAX_EV_A = 1.0

_T_NAMES = ("0 K", "1-300 K", "300-600 K", "600-1000 K", "1000-2000 K", ">=2000 K", "unknown")
_P_NAMES = ("< -1 GPa", "-1..1 GPa", "1-10 GPa", "10-50 GPa", ">=50 GPa", "unknown")
_EQ_NAMES = ("near_equilibrium", "far_from_equilibrium", "no_forces")


def _classes(values: np.ndarray, edges) -> np.ndarray:
    """Class index of each value for ``edges`` (half-open bins); NaN -> ``len(edges) - 1`` (unknown)."""
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right") - 1
    idx = np.clip(idx, 0, len(edges) - 2)
    idx[np.isnan(values)] = len(edges) - 1
    return idx.astype(np.int64)


def temperature_class(t_K: np.ndarray) -> np.ndarray:
    """Coarse temperature class (index into the grid rows, last = unknown) of each value (K), shape (n,)."""
    return _classes(np.asarray(t_K, dtype=np.float64), GRID_TEMPERATURE_EDGES_K)


def pressure_class(p_GPa: np.ndarray) -> np.ndarray:
    """Coarse pressure class (index into the grid columns, last = unknown) of each value (GPa), shape (n,)."""
    return _classes(np.asarray(p_GPa, dtype=np.float64), GRID_PRESSURE_EDGES_GPA)


def equilibrium_class(fmax_eV_A: np.ndarray) -> np.ndarray:
    """0 near equilibrium (fmax < 0.05 eV/Å), 1 far from it, 2 no forces; shape (n,)."""
    f = np.asarray(fmax_eV_A, dtype=np.float64)
    out = np.where(f < NEAR_EQUILIBRIUM_FMAX_EV_A, 0, 1)
    out[np.isnan(f)] = 2
    return out.astype(np.int64)


class RegimeCoverage:
    """Accumulator of regime histograms, the temperature x pressure grid and method counts.

    Attributes
    ----------
    hists_ : dict of str to FixedHistogram
        ``temperature_K``, ``pressure_GPa``, ``fmax_eV_A``, ``energy_per_atom_eV``, ``volume_per_atom_A3``,
        ``volume_strain``.
    grid_ : numpy.ndarray, shape (7, 6), int64
        Frames per (temperature class, pressure class), last row / column = unknown.
    equilibrium_ : numpy.ndarray, shape (3,), int64
        Near-equilibrium, far-from-equilibrium, no-forces frames.
    strongly_distorted_ : int
    methods_ : dict of str to int
    element_t_, element_p_, element_eq_ : numpy.ndarray, shape (119, 7) / (119, 6) / (119, 3), int64
        Frames containing each Z per temperature class / pressure class / equilibrium class.
    """

    name = "regimes"

    def __init__(self):
        self.n_frames_ = 0
        self.hists_ = {
            "temperature_K": FixedHistogram(TEMPERATURE_EDGES_K),
            "pressure_GPa": FixedHistogram(PRESSURE_EDGES_GPA),
            "fmax_eV_A": FixedHistogram(FMAX_EDGES_EV_A),
            "energy_per_atom_eV": FixedHistogram(ENERGY_PER_ATOM_EDGES_EV),
            "volume_per_atom_A3": FixedHistogram(VOLUME_PER_ATOM_EDGES_A3),
            "volume_strain": FixedHistogram(VOLUME_STRAIN_EDGES),
        }
        self.grid_ = np.zeros((len(_T_NAMES), len(_P_NAMES)), dtype=np.int64)
        self.equilibrium_ = np.zeros(3, dtype=np.int64)
        self.strongly_distorted_ = 0
        self.methods_: dict[str, int] = {}
        self.element_t_ = np.zeros((N_Z, len(_T_NAMES)), dtype=np.int64)
        self.element_p_ = np.zeros((N_Z, len(_P_NAMES)), dtype=np.int64)
        self.element_eq_ = np.zeros((N_Z, 3), dtype=np.int64)

    def update(self, batch: pa.Table) -> "RegimeCoverage":
        """Add a frame batch; returns self. An optional ``volume_strain`` column (float, V/V_ref - 1) is used
        when present."""
        n = batch.num_rows
        if n == 0:
            return self
        self.n_frames_ += n
        t = float_column(batch, "temperature_K")
        p = float_column(batch, "pressure_GPa")
        f = float_column(batch, "fmax_eV_A")
        vol = float_column(batch, "volume_A3")
        n_atoms = batch.column("n_atoms").to_numpy().astype(np.float64)
        self.hists_["temperature_K"].update(t)
        self.hists_["pressure_GPa"].update(p)
        self.hists_["fmax_eV_A"].update(f)
        self.hists_["energy_per_atom_eV"].update(float_column(batch, "energy_per_atom_eV"))
        self.hists_["volume_per_atom_A3"].update(vol / n_atoms)
        self.hists_["volume_strain"].update(float_column(batch, "volume_strain"))
        tc, pc_, eq = temperature_class(t), pressure_class(p), equilibrium_class(f)
        n_p = len(_P_NAMES)
        self.grid_ += np.bincount(tc * n_p + pc_, minlength=self.grid_.size).reshape(self.grid_.shape)
        self.equilibrium_ += np.bincount(eq, minlength=3)
        self.strongly_distorted_ += int((f >= STRONGLY_DISTORTED_FMAX_EV_A).sum())
        codes, labels = string_codes(batch, "method")
        c = np.bincount(codes, minlength=len(labels))
        self.methods_ = merge_count_dicts(self.methods_, {lab: int(k) for lab, k in zip(labels, c) if k})
        offsets, species = list_column(batch, "species", np.int64)
        lengths = np.diff(offsets)
        for arr, cls in ((self.element_t_, tc), (self.element_p_, pc_), (self.element_eq_, eq)):
            k = arr.shape[1]
            arr += np.bincount(species * k + np.repeat(cls, lengths), minlength=arr.size).reshape(arr.shape)
        return self

    def merge(self, other: "RegimeCoverage") -> "RegimeCoverage":
        """Add another accumulator's counts into this one; returns self."""
        self.n_frames_ += other.n_frames_
        for k, h in self.hists_.items():
            h.merge(other.hists_[k])
        self.grid_ += other.grid_
        self.equilibrium_ += other.equilibrium_
        self.strongly_distorted_ += other.strongly_distorted_
        self.methods_ = merge_count_dicts(self.methods_, other.methods_)
        self.element_t_ += other.element_t_
        self.element_p_ += other.element_p_
        self.element_eq_ += other.element_eq_
        return self

    def result(self) -> dict:
        """JSON-ready summary.

        Returns
        -------
        dict
            ``n_frames``;
            ``histograms``: ``{name: FixedHistogram.result()}`` for ``temperature_K``, ``pressure_GPa``,
            ``fmax_eV_A``, ``energy_per_atom_eV``, ``volume_per_atom_A3`` (``missing`` = frames without
            temperature / stress / forces / energy / periodic cell);
            ``volume_strain``: a histogram dict, or ``{"not_applicable": reason}`` when no frame had a
            ``volume_strain`` value;
            ``unknown_temperature``, ``no_forces``, ``no_stress`` (frames);
            ``equilibrium``: ``{"threshold_fmax_eV_A": 0.05, "near_equilibrium", "far_from_equilibrium",
            "no_forces", "strongly_distorted" (fmax >= 1 eV/Å), "near_equilibrium_share",
            "far_from_equilibrium_share"}`` (shares over frames with forces; None when no frame has forces);
            ``grid``: ``{"temperature_classes": [...], "pressure_classes": [...], "counts": [[...]]}``
            (rows = temperature classes, columns = pressure classes, last of each = unknown),
            ``empty_cells`` (names ``"T x P"`` of known-known cells with no frame), ``n_empty_cells``,
            ``n_cells`` (known-known cells: 30);
            ``methods``: frames per method, every one of ``relax static md rattled unknown`` present
            (others the readers produce are added);
            ``per_element``: ``{symbol: {"temperature": {class: frames}, "pressure": {...},
            "equilibrium": {...}}}`` with zero classes left out.
        """
        h = {k: v.result() for k, v in self.hists_.items() if k != "volume_strain"}
        vs = self.hists_["volume_strain"]
        volume_strain = vs.result() if vs.n_values else {
            "not_applicable": "no volume_strain values (needs a reference volume per material; the frame "
                              "table has none unless a reader adds a volume_strain column)"}
        n_forces = int(self.equilibrium_[0] + self.equilibrium_[1])
        empty = [f"{tn} x {pn}" for i, tn in enumerate(_T_NAMES[:-1]) for j, pn in enumerate(_P_NAMES[:-1])
                 if self.grid_[i, j] == 0]
        methods = {m: 0 for m in METHODS}
        methods = merge_count_dicts(methods, self.methods_)
        per_element = {}
        for z in np.flatnonzero(self.element_eq_.sum(axis=1)):
            per_element[SYMBOLS[z]] = {
                "temperature": {nm: int(c) for nm, c in zip(_T_NAMES, self.element_t_[z]) if c},
                "pressure": {nm: int(c) for nm, c in zip(_P_NAMES, self.element_p_[z]) if c},
                "equilibrium": {nm: int(c) for nm, c in zip(_EQ_NAMES, self.element_eq_[z]) if c},
            }
        return {
            "n_frames": int(self.n_frames_),
            "histograms": h,
            "volume_strain": volume_strain,
            "unknown_temperature": h["temperature_K"]["missing"],
            "no_forces": int(self.equilibrium_[2]),
            "no_stress": h["pressure_GPa"]["missing"],
            "equilibrium": {
                "threshold_fmax_eV_A": NEAR_EQUILIBRIUM_FMAX_EV_A,
                "strongly_distorted_fmax_eV_A": STRONGLY_DISTORTED_FMAX_EV_A,
                "near_equilibrium": int(self.equilibrium_[0]),
                "far_from_equilibrium": int(self.equilibrium_[1]),
                "no_forces": int(self.equilibrium_[2]),
                "strongly_distorted": int(self.strongly_distorted_),
                "near_equilibrium_share": (int(self.equilibrium_[0]) / n_forces) if n_forces else None,
                "far_from_equilibrium_share": (int(self.equilibrium_[1]) / n_forces) if n_forces else None,
            },
            "grid": {
                "temperature_classes": list(_T_NAMES),
                "pressure_classes": list(_P_NAMES),
                "counts": [[int(c) for c in row] for row in self.grid_],
                "empty_cells": empty,
                "n_empty_cells": len(empty),
                "n_cells": (len(_T_NAMES) - 1) * (len(_P_NAMES) - 1),
            },
            "methods": methods,
            "per_element": per_element,
        }

    @staticmethod
    def to_frame(result: dict) -> pd.DataFrame:
        """The temperature x pressure grid of a :meth:`result` dict as a DataFrame (rows T, columns P)."""
        g = result["grid"]
        return pd.DataFrame(g["counts"], index=g["temperature_classes"], columns=g["pressure_classes"])
