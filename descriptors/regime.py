"""Thermodynamic-regime features: the numbers the regime analyzer bins.

Temperature, pressure, forces and energy per atom are columns of the frame table; the one learned feature
is the volumetric strain of a frame relative to the minimum-energy frame of the same reduced composition
(its *reference*), which tells a compressed or expanded snapshot from an equilibrium one.
"""
from __future__ import annotations

from math import gcd

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..datasets.frames import hill_formula
from .base import FrameDescriptor

__all__ = ["RegimeDescriptor", "reduced_formula_keys"]

FEATURES = (
    "temperature_K", "pressure_GPa", "fmax_eV_A", "frms_eV_A", "energy_per_atom_eV",
    "volume_per_atom_A3", "volume_strain",
)

_SEP = "\x1f"


def reduced_formula_keys(batch: pa.Table, per_level_of_theory: bool) -> tuple[np.ndarray, list[str]]:
    """Reference key of every frame: reduced Hill formula, optionally with the level of theory.

    Work is per distinct cell formula (dictionary encoding), not per frame.

    Parameters
    ----------
    batch : pyarrow.Table
        Needs ``formula``, ``species``, ``species_counts`` (and ``level_of_theory``).
    per_level_of_theory : bool
        Append ``"|<level_of_theory>"`` to the key.

    Returns
    -------
    codes : numpy.ndarray, shape (n_frames,), int64
        Index into ``keys`` for each frame.
    keys : list of str
        E.g. ``"NaCl|PBE"``.
    """
    col = batch.column("formula")
    if per_level_of_theory:
        col = pc.binary_join_element_wise(col, batch.column("level_of_theory"), _SEP)
    enc = col.combine_chunks().dictionary_encode()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    lots = enc.dictionary.to_pylist()
    _, first = np.unique(codes, return_index=True)
    species = batch.column("species")
    counts = batch.column("species_counts")
    keys = [""] * len(lots)
    for code, row in zip(np.unique(codes), first):
        sp = species[int(row)].as_py()
        ct = counts[int(row)].as_py()
        g = 0
        for c in ct:
            g = gcd(g, c)
        key = hill_formula(sp, [c // g for c in ct])
        if per_level_of_theory:
            key += "|" + lots[code].split(_SEP, 1)[1]
        keys[code] = key
    return codes, keys


class RegimeDescriptor(FrameDescriptor):
    """Temperature, pressure, forces, energy and volume strain of each frame, with missing indicators.

    Features: ``temperature_K`` (K), ``pressure_GPa`` (GPa, compressed > 0), ``fmax_eV_A`` and
    ``frms_eV_A`` (eV/Å), ``energy_per_atom_eV`` (eV/atom), ``volume_per_atom_A3`` (Å^3/atom, periodic
    frames only) and ``volume_strain`` = ``V/V_ref - 1`` (dimensionless), where ``V_ref`` is the volume per
    atom of the lowest-energy-per-atom frame of the same reduced formula seen in ``fit``. The reference
    frame itself has strain 0.

    Unknown values (imputed value, indicator column appended after the seven features, see
    :attr:`~.base.FrameDescriptor.imputed_features`): no temperature: 0 K, ``temperature_missing``; no
    stress: pressure 0 GPa, ``pressure_missing``; no forces: 0 eV/Å for both, ``forces_missing``; no
    energy: 0 eV/atom, ``energy_missing``; no cell (molecules): 0 Å^3/atom, ``volume_missing``; no
    strain (no volume, or no reference because fit saw no periodic frame of the formula with an energy):
    0, ``volume_strain_missing``. Rows are never skipped.

    Parameters
    ----------
    per_level_of_theory : bool, default True
        Keep one reference per (reduced formula, level of theory): energies of different functionals are
        not comparable, so the minimum is taken within one level of theory.

    Attributes
    ----------
    reference_volume_per_atom_ : dict of str to float
        Reference volume per atom (Å^3) per key (``"NaCl|PBE"``, or ``"NaCl"``).
    reference_energy_per_atom_ : dict of str to float
        Energy per atom (eV) of each reference frame.
    feature_names_ : numpy.ndarray of str, shape (13,)
        The seven features, then the six indicators.
    n_features_out_ : int
    """

    name = "regime"
    dependencies = ()
    required_columns = (
        "id", "formula", "species", "species_counts", "level_of_theory", "n_atoms", "temperature_K",
        "pressure_GPa", "fmax_eV_A", "frms_eV_A", "energy_per_atom_eV", "volume_A3",
    )
    imputed_features = {
        "temperature_K": (0.0, "temperature_missing"),
        "pressure_GPa": (0.0, "pressure_missing"),
        "fmax_eV_A": (0.0, "forces_missing"),
        "frms_eV_A": (0.0, "forces_missing"),
        "energy_per_atom_eV": (0.0, "energy_missing"),
        "volume_per_atom_A3": (0.0, "volume_missing"),
        "volume_strain": (0.0, "volume_strain_missing"),
    }

    def __init__(self, per_level_of_theory: bool = True):
        self.per_level_of_theory = per_level_of_theory

    @staticmethod
    def _float(batch: pa.Table, name: str) -> np.ndarray:
        return batch.column(name).cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)

    def _volume_per_atom(self, batch: pa.Table) -> np.ndarray:
        return self._float(batch, "volume_A3") / batch.column("n_atoms").to_numpy().astype(np.float64)

    def _fit_batches(self, batches) -> None:
        ref_e: dict[str, float] = {}
        ref_v: dict[str, float] = {}
        for b in batches:
            if b.num_rows == 0:
                continue
            codes, keys = reduced_formula_keys(b, bool(self.per_level_of_theory))
            e = self._float(b, "energy_per_atom_eV")
            v = self._volume_per_atom(b)
            ok = np.isfinite(e) & np.isfinite(v)
            if not ok.any():
                continue
            idx = np.flatnonzero(ok)
            order = idx[np.lexsort((e[idx], codes[idx]))]  # by key, then energy (stable)
            first = order[np.r_[True, codes[order][1:] != codes[order][:-1]]]
            for row in first:
                key = keys[codes[row]]
                if key not in ref_e or e[row] < ref_e[key]:
                    ref_e[key] = float(e[row])
                    ref_v[key] = float(v[row])
        self.reference_energy_per_atom_ = dict(sorted(ref_e.items()))
        self.reference_volume_per_atom_ = dict(sorted(ref_v.items()))

    def _feature_names(self) -> list[str]:
        return list(FEATURES)

    def _transform_batch(self, batch: pa.Table):
        n = batch.num_rows
        out = np.full((n, len(FEATURES)), np.nan)
        for j, name in enumerate(FEATURES[:5]):
            out[:, j] = self._float(batch, name)
        v = self._volume_per_atom(batch)
        out[:, 5] = v
        if n:
            codes, keys = reduced_formula_keys(batch, bool(self.per_level_of_theory))
            ref = np.array([self.reference_volume_per_atom_.get(k, np.nan) for k in keys], dtype=np.float64)
            out[:, 6] = v / ref[codes] - 1.0
        return out, []
