"""Turn parsed records into validated frame batches (:data:`~monoculture.datasets.frames.FRAME_SCHEMA`).

Readers only parse: they yield :class:`RawFrame` objects in native units already converted to the frame
table's units (eV, eV/Å, GPa, K, Å). Validation lives here, once, for every format: a frame with a
non-finite energy, force, stress or position, an atomic number outside 1..118, or no atoms is skipped with a
reason and counted in the :class:`~monoculture.datasets.accounting.Accounting`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .accounting import Accounting
from .frames import FRAME_SCHEMA, METHODS, hill_formula

__all__ = ["RawFrame", "FrameBuilder", "level_of_theory_label", "MAX_Z"]

#: Largest atomic number accepted (oganesson).
MAX_Z = 118


def level_of_theory_label(functional: str | None, hubbard_u: bool | None, basis: str | None = None) -> str:
    """Human label of a level of theory: ``PBE``, ``PBE+U``, ``wB97M-V/def2-TZVPD``; ``unknown`` if unknown.

    Plane-wave pseudopotential families are not part of the label (they are kept in ``basis``); Gaussian
    basis sets are, as chemists write them (``B3LYP/6-31G(2df,p)``).
    """
    if not functional or functional == "unknown":
        return "unknown"
    label = functional + ("+U" if hubbard_u else "")
    if basis and not basis.upper().startswith(("PAW", "PW", "NC", "US")):
        label += "/" + basis
    return label


@dataclass(slots=True)
class RawFrame:
    """One parsed record, in frame-table units (see :mod:`monoculture.datasets.frames`).

    ``numbers`` (n,), ``positions`` (n, 3) Å or None, ``cell`` (3, 3) Å or None, ``pbc`` (3,),
    ``energy_eV`` eV, ``forces`` (n, 3) eV/Å, ``stress_GPa`` Voigt (6,) GPa with ASE sign,
    ``temperature_K`` K, ``spin`` = multiplicity 2S+1.
    """

    id: str
    key: str
    numbers: Any
    positions: Any = None
    cell: Any = None
    pbc: Any = None
    energy_eV: float | None = None
    forces: Any = None
    stress_GPa: Any = None
    temperature_K: float | None = None
    method: str = "unknown"
    subset: str | None = None
    functional: str | None = None
    hubbard_u: bool | None = None
    basis: str | None = None
    charge: int | None = None
    spin: int | None = None
    smiles: str | None = None


class FrameBuilder:
    """Accumulate :class:`RawFrame` records and emit validated :class:`pyarrow.Table` batches.

    ``add`` only appends the record's fields to Python lists (no numpy per record); validation and every
    derived column (fmax, frms, pressure, volume, species, formula) are computed once per batch with
    vectorised numpy at :meth:`flush`. That keeps the per-frame cost of the builder below the cost of
    parsing the source (``benchmarks/scale.py`` measures it). Rejected records are counted as skipped in
    the accounting, with the first failing rule as the reason, in this order: ``no_atoms``,
    ``unknown_element``, ``bad_positions``, ``nan_positions``, ``bad_cell``, ``nan_energy``, ``bad_forces``,
    ``nan_forces``, ``bad_stress``, ``nan_stress``, ``bad_temperature``.

    Parameters
    ----------
    dataset : str
        Value of the ``dataset`` column.
    file : str
        File name used in ``source`` and in skip messages.
    accounting : Accounting
        Where read / skipped counts go (``read`` is counted when a batch is validated).
    batch_size : int
        Records per batch (before validation; a batch is smaller by the records it rejects).
    """

    def __init__(self, dataset: str, file: str, accounting: Accounting, batch_size: int = 4096):
        self.dataset = dataset
        self.file = str(file)
        self.accounting = accounting
        self.batch_size = int(batch_size)
        self._formula_cache: dict[bytes, str] = {}
        self._reset()

    def _reset(self) -> None:
        self._records: list[RawFrame] = []

    def __len__(self) -> int:
        return len(self._records)

    def add(self, raw: RawFrame) -> pa.Table | None:
        """Queue one record; returns a validated batch when ``batch_size`` records are queued, else None."""
        self._records.append(raw)
        if len(self._records) >= self.batch_size:
            return self.flush()
        return None

    def flush(self) -> pa.Table | None:
        """Validate the queued records and emit them as one batch (None when nothing valid is queued)."""
        if not self._records:
            return None
        records = self._records
        self._reset()
        return self._build(records)

    # -- internals -------------------------------------------------------------------------------------
    @staticmethod
    def _flat(values: list, lengths: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Concatenate per-frame (n_i, width) arrays / nested lists.

        Returns (flat (sum n_i, width), present (n,) bool, shape_ok (n,) bool); a frame whose array has
        the wrong size gets NaN rows and ``shape_ok`` False.
        """
        present = np.array([v is not None for v in values], dtype=bool)
        total = int(lengths[present].sum())
        out = np.empty((total, width), dtype=np.float64)
        ok = np.ones(len(values), dtype=bool)
        pos = 0
        for i in np.flatnonzero(present):
            arr = np.asarray(values[i], dtype=np.float64)
            n = int(lengths[i])
            if arr.size != n * width:
                ok[i] = False
                arr = np.full((n, width), np.nan)
            out[pos : pos + n] = arr.reshape(n, width)
            pos += n
        return out, present, ok

    def _formula(self, species: np.ndarray, counts: np.ndarray) -> str:
        key = species.tobytes() + counts.tobytes()
        f = self._formula_cache.get(key)
        if f is None:
            f = hill_formula(species, counts)
            if len(self._formula_cache) < 100_000:
                self._formula_cache[key] = f
        return f

    def _build(self, records: list[RawFrame]) -> pa.Table | None:
        n = len(records)
        numbers_list = [np.asarray(r.numbers) for r in records]
        lengths = np.fromiter((a.size if a.ndim == 1 else -1 for a in numbers_list), dtype=np.int64, count=n)
        reason = np.full(n, -1, dtype=np.int64)  # index into _REASONS; -1 = valid
        detail: dict[int, str] = {}

        def flag(mask, code, text=None):
            new = mask & (reason < 0)
            reason[new] = code
            if text is not None:
                for i in np.flatnonzero(new):
                    detail[int(i)] = text(int(i))

        flag(lengths <= 0, 0, lambda i: "structure has no atoms")
        lengths = np.maximum(lengths, 0)
        frame_of_atom = np.repeat(np.arange(n), lengths)
        numbers = (np.concatenate([a.ravel() for a in numbers_list]) if n else np.zeros(0))
        int_like = np.array([np.issubdtype(a.dtype, np.integer) for a in numbers_list])
        numbers = numbers.astype(np.int64, copy=False) if numbers.dtype.kind in "iu" else numbers
        bad_z = np.zeros(n, bool)
        if numbers.size:
            bad_atoms = (numbers < 1) | (numbers > MAX_Z)
            bad_z[frame_of_atom[bad_atoms]] = True
        bad_z |= ~int_like & (lengths > 0)
        flag(bad_z, 1, lambda i: f"atomic numbers {numbers_list[i][:8].tolist()} include a non-element")

        positions, has_pos, pos_ok = self._flat([r.positions for r in records], lengths, 3)
        flag(~pos_ok, 2, lambda i: f"positions do not have shape ({lengths[i]}, 3)")
        atom_has_pos = np.repeat(has_pos, lengths)
        nonfinite_pos = np.zeros(n, bool)
        bad = ~np.isfinite(positions).all(axis=1)
        nonfinite_pos[frame_of_atom[atom_has_pos][bad]] = True
        flag(nonfinite_pos, 3, lambda i: "non-finite atomic positions")

        pbc = np.zeros((n, 3), dtype=bool)
        cell = np.zeros((n, 3, 3), dtype=np.float64)
        cell_ok = np.ones(n, bool)
        for i, r in enumerate(records):
            if r.pbc is not None:
                pbc[i] = np.broadcast_to(np.asarray(r.pbc, dtype=bool), (3,))
            if r.cell is not None:
                c = np.asarray(r.cell, dtype=np.float64)
                if c.size == 9:
                    cell[i] = c.reshape(3, 3)
                else:
                    cell_ok[i] = False
        flag(~cell_ok | ~np.isfinite(cell).all(axis=(1, 2)), 4, lambda i: "cell is not a finite 3x3 matrix")
        periodic = pbc.all(axis=1)
        det = np.abs(np.linalg.det(np.where(np.isfinite(cell), cell, 0.0)))
        flag(periodic & (det <= 1e-8), 4, lambda i: "periodic structure with a singular cell")
        volume = np.where(periodic, det, np.nan)

        energy = np.array([np.nan if r.energy_eV is None else float(r.energy_eV) for r in records])
        has_energy = np.array([r.energy_eV is not None for r in records])
        flag(has_energy & ~np.isfinite(energy), 5, lambda i: f"energy is {records[i].energy_eV}")

        forces, has_forces, forces_ok = self._flat([r.forces for r in records], lengths, 3)
        flag(~forces_ok, 6, lambda i: f"forces do not have shape ({lengths[i]}, 3)")
        atom_has_f = np.repeat(has_forces, lengths)
        f_frames = frame_of_atom[atom_has_f]
        nonfinite_f = np.zeros(n, bool)
        nonfinite_f[f_frames[~np.isfinite(forces).all(axis=1)]] = True
        flag(nonfinite_f, 7, lambda i: "non-finite forces")
        norms2 = np.einsum("ij,ij->i", forces, forces)
        fmax = np.zeros(n)
        np.maximum.at(fmax, f_frames, np.where(np.isfinite(norms2), np.sqrt(np.abs(norms2)), np.inf))
        fmax = np.where(has_forces, fmax, np.nan)
        sums = np.bincount(f_frames, weights=np.where(np.isfinite(norms2), norms2, 0.0), minlength=n)
        frms = np.where(has_forces, np.sqrt(sums / np.maximum(lengths, 1)), np.nan)

        stress = np.full((n, 6), np.nan)
        has_stress = np.zeros(n, bool)
        for i, r in enumerate(records):
            if r.stress_GPa is not None:
                s = np.asarray(r.stress_GPa, dtype=np.float64).ravel()
                has_stress[i] = True
                if s.size == 6:
                    stress[i] = s
                else:
                    flag(np.arange(n) == i, 8, lambda j: f"stress has {s.size} components, expected 6 (Voigt)")
        flag(has_stress & ~np.isfinite(stress).all(axis=1), 9, lambda i: "non-finite stress")
        pressure = -(stress[:, 0] + stress[:, 1] + stress[:, 2]) / 3.0

        temperature = np.array([np.nan if r.temperature_K is None else float(r.temperature_K) for r in records])
        has_t = np.array([r.temperature_K is not None for r in records])
        flag(has_t & ~(np.isfinite(temperature) & (temperature >= 0)), 10,
             lambda i: f"temperature {records[i].temperature_K} K")

        for i in np.flatnonzero(reason >= 0):
            self.accounting.skip(self.file, records[i].key, _REASONS[reason[i]], detail.get(int(i), ""))
        valid = reason < 0
        n_valid = int(valid.sum())
        self.accounting.add_read(n_valid)
        if n_valid == 0:
            return None
        return self._to_table(records, valid, lengths, numbers, frame_of_atom, positions, has_pos, cell, pbc,
                              forces, has_forces, energy, has_energy, fmax, frms, stress, has_stress, pressure,
                              volume, temperature, has_t)

    def _to_table(self, records, valid, lengths, numbers, frame_of_atom, positions, has_pos, cell, pbc, forces,
                  has_forces, energy, has_energy, fmax, frms, stress, has_stress, pressure, volume, temperature,
                  has_t) -> pa.Table:
        keep = np.flatnonzero(valid)
        recs = [records[i] for i in keep]
        atom_keep = valid[frame_of_atom]
        lens = lengths[keep]
        offsets = np.zeros(len(keep) + 1, dtype=np.int32)
        np.cumsum(lens, out=offsets[1:])
        z = numbers[atom_keep].astype(np.uint8)

        def vec3_lists(flat_all, present_all):
            present = present_all[keep]
            atom_present = np.repeat(present_all, lengths)
            mask_atoms = atom_keep[atom_present]
            flat = flat_all[mask_atoms]
            offs = np.zeros(len(keep) + 1, dtype=np.int32)
            np.cumsum(np.where(present, lens, 0), out=offs[1:])
            values = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel(), pa.float64()), 3)
            return pa.ListArray.from_arrays(pa.array(offs, pa.int32()), values,
                                            mask=None if present.all() else pa.array(~present))

        def fixed(arr2d, width, typ, present=None):
            flat = pa.array(arr2d.ravel(), typ)
            mask = None if present is None or present.all() else pa.array(~present)
            return pa.FixedSizeListArray.from_arrays(flat, width, mask=mask)

        def nullable(values, present):
            return pa.array(values, pa.float64(), mask=~present)

        # species / counts per frame from (frame, Z) pairs
        frame_local = np.repeat(np.arange(len(keep)), lens)
        pair = frame_local.astype(np.int64) * 256 + z
        upair, ucount = np.unique(pair, return_counts=True)
        sp_frame = upair // 256
        sp_z = (upair % 256).astype(np.uint8)
        sp_off = np.zeros(len(keep) + 1, dtype=np.int32)
        np.cumsum(np.bincount(sp_frame, minlength=len(keep)), out=sp_off[1:])
        formulas = [self._formula(sp_z[sp_off[i]:sp_off[i + 1]], ucount[sp_off[i]:sp_off[i + 1]])
                    for i in range(len(keep))]

        e = energy[keep]
        he = has_energy[keep]
        hf = has_forces[keep]
        hs = has_stress[keep]
        vol = volume[keep]
        methods = [r.method if r.method in METHODS else "unknown" for r in recs]
        functionals = [r.functional or "unknown" for r in recs]
        arrays = {
            "id": pa.array([str(r.id) for r in recs], pa.string()),
            "dataset": pa.array([self.dataset] * len(keep), pa.string()),
            "source": pa.array([f"{self.file}::{r.key}" for r in recs], pa.string()),
            "subset": pa.array([r.subset for r in recs], pa.string()),
            "n_atoms": pa.array(lens, pa.int32()),
            "numbers": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(z, pa.uint8())),
            "positions": vec3_lists(positions, has_pos),
            "cell": fixed(cell[keep], 9, pa.float64()),
            "pbc": fixed(pbc[keep], 3, pa.bool_()),
            "forces": vec3_lists(forces, has_forces),
            "species": pa.ListArray.from_arrays(pa.array(sp_off, pa.int32()), pa.array(sp_z, pa.uint8())),
            "species_counts": pa.ListArray.from_arrays(pa.array(sp_off, pa.int32()),
                                                       pa.array(ucount.astype(np.int32), pa.int32())),
            "formula": pa.array(formulas, pa.string()),
            "energy_eV": nullable(e, he),
            "energy_per_atom_eV": nullable(e / np.maximum(lens, 1), he),
            "fmax_eV_A": nullable(fmax[keep], hf),
            "frms_eV_A": nullable(frms[keep], hf),
            "stress_GPa": fixed(np.nan_to_num(stress[keep]), 6, pa.float64(), hs),
            "pressure_GPa": nullable(pressure[keep], hs),
            "volume_A3": nullable(vol, np.isfinite(vol)),
            "temperature_K": nullable(temperature[keep], has_t[keep]),
            "method": pa.array(methods, pa.string()),
            "level_of_theory": pa.array(
                [level_of_theory_label(f, r.hubbard_u, r.basis) for f, r in zip(functionals, recs)], pa.string()),
            "functional": pa.array(functionals, pa.string()),
            "hubbard_u": pa.array([r.hubbard_u for r in recs], pa.bool_()),
            "basis": pa.array([r.basis for r in recs], pa.string()),
            "charge": pa.array([None if r.charge is None else int(r.charge) for r in recs], pa.int16()),
            "spin": pa.array([None if r.spin is None else int(r.spin) for r in recs], pa.int16()),
            "smiles": pa.array([r.smiles for r in recs], pa.string()),
        }
        return pa.Table.from_arrays([arrays[name] for name in FRAME_SCHEMA.names], schema=FRAME_SCHEMA)


_REASONS = ("no_atoms", "unknown_element", "bad_positions", "nan_positions", "bad_cell", "nan_energy", "bad_forces",
            "nan_forces", "bad_stress", "nan_stress", "bad_temperature")
