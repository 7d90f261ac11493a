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
from .frames import FRAME_SCHEMA, METHODS, hill_formula, pressure_from_voigt

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
    """Accumulate :class:`RawFrame` records and emit :class:`pyarrow.Table` batches.

    Parameters
    ----------
    dataset : str
        Value of the ``dataset`` column.
    file : str
        File name used in ``source`` and in skip messages.
    accounting : Accounting
        Where read / skipped counts go.
    batch_size : int
        Frames per emitted batch.
    """

    _SCALARS = (
        "energy_eV", "energy_per_atom_eV", "fmax_eV_A", "frms_eV_A", "pressure_GPa", "volume_A3",
        "temperature_K",
    )

    def __init__(self, dataset: str, file: str, accounting: Accounting, batch_size: int = 4096):
        self.dataset = dataset
        self.file = str(file)
        self.accounting = accounting
        self.batch_size = int(batch_size)
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._cols: dict[str, list] = {name: [] for name in FRAME_SCHEMA.names}
        self._numbers: list[np.ndarray] = []
        self._positions: list[np.ndarray | None] = []
        self._forces: list[np.ndarray | None] = []

    def __len__(self) -> int:
        return self._n

    def add(self, raw: RawFrame) -> pa.Table | None:
        """Validate and add one record; returns a full batch when ``batch_size`` is reached, else None."""
        reason = self._validate_and_fill(raw)
        if reason is not None:
            self.accounting.skip(self.file, raw.key, *reason)
            return None
        self.accounting.add_read()
        if self._n >= self.batch_size:
            return self.flush()
        return None

    def flush(self) -> pa.Table | None:
        """Emit what has been added since the last batch (None when empty)."""
        if self._n == 0:
            return None
        table = self._to_table()
        self._reset()
        return table

    # -- internals -------------------------------------------------------------------------------------
    def _validate_and_fill(self, raw: RawFrame) -> tuple[str, str] | None:
        numbers = np.asarray(raw.numbers)
        if numbers.ndim != 1 or numbers.size == 0:
            return ("no_atoms", "structure has no atoms")
        if not np.issubdtype(numbers.dtype, np.integer):
            return ("unknown_element", f"atomic numbers are not integers: {numbers[:5]!r}")
        if numbers.min() < 1 or numbers.max() > MAX_Z:
            bad = numbers[(numbers < 1) | (numbers > MAX_Z)][0]
            return ("unknown_element", f"atomic number {int(bad)} is not an element")
        n = int(numbers.size)
        positions = None
        if raw.positions is not None:
            positions = np.asarray(raw.positions, dtype=np.float64)
            if positions.shape != (n, 3):
                return ("bad_positions", f"positions shape {positions.shape}, expected ({n}, 3)")
            if not np.isfinite(positions).all():
                return ("nan_positions", "non-finite atomic positions")
        pbc = np.zeros(3, bool) if raw.pbc is None else np.broadcast_to(np.asarray(raw.pbc, bool), (3,))
        cell = np.zeros((3, 3)) if raw.cell is None else np.asarray(raw.cell, dtype=np.float64).reshape(3, 3)
        if not np.isfinite(cell).all():
            return ("bad_cell", "non-finite cell")
        volume = None
        if pbc.all():
            det = float(abs(np.linalg.det(cell)))
            if det <= 1e-8:
                return ("bad_cell", "periodic structure with a singular cell")
            volume = det
        energy = raw.energy_eV
        if energy is not None:
            energy = float(energy)
            if not np.isfinite(energy):
                return ("nan_energy", f"energy is {energy}")
        forces = None
        fmax = frms = None
        if raw.forces is not None:
            forces = np.asarray(raw.forces, dtype=np.float64)
            if forces.shape != (n, 3):
                return ("bad_forces", f"forces shape {forces.shape}, expected ({n}, 3)")
            if not np.isfinite(forces).all():
                return ("nan_forces", "non-finite forces")
            norms = np.sqrt(np.einsum("ij,ij->i", forces, forces))
            fmax = float(norms.max())
            frms = float(np.sqrt(np.mean(norms * norms)))
        stress = None
        pressure = None
        if raw.stress_GPa is not None:
            stress = np.asarray(raw.stress_GPa, dtype=np.float64).reshape(-1)
            if stress.shape != (6,):
                return ("bad_stress", f"stress has {stress.size} components, expected 6 (Voigt)")
            if not np.isfinite(stress).all():
                return ("nan_stress", "non-finite stress")
            pressure = pressure_from_voigt(stress)
        temperature = raw.temperature_K
        if temperature is not None:
            temperature = float(temperature)
            if not np.isfinite(temperature) or temperature < 0:
                return ("bad_temperature", f"temperature {temperature} K")
        method = raw.method if raw.method in METHODS else "unknown"
        species, counts = np.unique(numbers, return_counts=True)

        c = self._cols
        c["id"].append(str(raw.id))
        c["dataset"].append(self.dataset)
        c["source"].append(f"{self.file}::{raw.key}")
        c["subset"].append(raw.subset)
        c["n_atoms"].append(n)
        c["cell"].append(cell.reshape(9))
        c["pbc"].append(pbc)
        c["species"].append(species)
        c["species_counts"].append(counts)
        c["formula"].append(hill_formula(species, counts))
        c["energy_eV"].append(energy)
        c["energy_per_atom_eV"].append(None if energy is None else energy / n)
        c["fmax_eV_A"].append(fmax)
        c["frms_eV_A"].append(frms)
        c["stress_GPa"].append(stress)
        c["pressure_GPa"].append(pressure)
        c["volume_A3"].append(volume)
        c["temperature_K"].append(temperature)
        c["method"].append(method)
        functional = raw.functional or "unknown"
        c["level_of_theory"].append(level_of_theory_label(functional, raw.hubbard_u, raw.basis))
        c["functional"].append(functional)
        c["hubbard_u"].append(raw.hubbard_u)
        c["basis"].append(raw.basis)
        c["charge"].append(None if raw.charge is None else int(raw.charge))
        c["spin"].append(None if raw.spin is None else int(raw.spin))
        c["smiles"].append(raw.smiles)
        self._numbers.append(numbers.astype(np.uint8))
        self._positions.append(positions)
        self._forces.append(forces)
        self._n += 1
        return None

    @staticmethod
    def _vec3_lists(arrays: list[np.ndarray | None], lengths: np.ndarray) -> pa.Array:
        valid = np.array([a is not None for a in arrays])
        sizes = np.where(valid, lengths, 0)
        offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
        np.cumsum(sizes, out=offsets[1:])
        present = [a for a in arrays if a is not None]
        flat = np.concatenate(present).reshape(-1) if present else np.zeros(0)
        values = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float64()), 3)
        mask = None if valid.all() else pa.array(~valid)
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, mask=mask)

    @staticmethod
    def _fixed(rows: list, width: int, typ: pa.DataType) -> pa.Array:
        valid = np.array([r is not None for r in rows])
        filler = np.zeros(width, dtype=bool if typ == pa.bool_() else np.float64)
        flat = np.concatenate([np.asarray(r) if r is not None else filler for r in rows])
        arr = pa.FixedSizeListArray.from_arrays(pa.array(flat, typ), width)
        if not valid.all():
            arr = pa.FixedSizeListArray.from_arrays(pa.array(flat, typ), width, mask=pa.array(~valid))
        return arr

    @staticmethod
    def _lists(rows: list[np.ndarray], typ: pa.DataType) -> pa.Array:
        offsets = np.zeros(len(rows) + 1, dtype=np.int32)
        np.cumsum([len(r) for r in rows], out=offsets[1:])
        flat = np.concatenate(rows) if rows else np.zeros(0)
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat, typ))

    def _to_table(self) -> pa.Table:
        c = self._cols
        lengths = np.asarray(c["n_atoms"], dtype=np.int64)
        arrays = {}
        for f in FRAME_SCHEMA:
            name = f.name
            if name == "numbers":
                arrays[name] = self._lists(self._numbers, pa.uint8())
            elif name == "positions":
                arrays[name] = self._vec3_lists(self._positions, lengths)
            elif name == "forces":
                arrays[name] = self._vec3_lists(self._forces, lengths)
            elif name == "cell":
                arrays[name] = self._fixed(c[name], 9, pa.float64())
            elif name == "pbc":
                arrays[name] = self._fixed(c[name], 3, pa.bool_())
            elif name == "stress_GPa":
                arrays[name] = self._fixed(c[name], 6, pa.float64())
            elif name == "species":
                arrays[name] = self._lists(c[name], pa.uint8())
            elif name == "species_counts":
                arrays[name] = self._lists(c[name], pa.int32())
            else:
                arrays[name] = pa.array(c[name], f.type)
        return pa.Table.from_arrays([arrays[n] for n in FRAME_SCHEMA.names], schema=FRAME_SCHEMA)
