"""The frame table: the one columnar representation every analyzer reads.

A *frame* is one structure (a crystal, a snapshot of a trajectory, a molecule). Readers produce frames in
batches; every batch is a :class:`pyarrow.Table` with the schema :data:`FRAME_SCHEMA`. Columns:

=====================  =====================================  =============================================
column                 type                                   meaning (units)
=====================  =====================================  =============================================
``id``                 string                                 unique id within the dataset (``mp-1/0``...)
``dataset``            string                                 dataset name (card name or file stem)
``source``             string                                 ``file::record key`` where the frame came from
``subset``             string, nullable                       sub-collection (OMat24 ``rattled-1000``...)
``n_atoms``            int32                                  number of atoms (explicit H included)
``numbers``            list<uint8>                            atomic numbers Z, one per atom
``positions``          list<fixed_size_list<float64, 3>>      Cartesian positions (Å), null without 3D
``cell``               fixed_size_list<float64, 9>            cell rows a, b, c flattened (Å); zeros if none
``pbc``                fixed_size_list<bool, 3>               periodic boundary flags
``forces``             list<fixed_size_list<float64, 3>>      forces (eV/Å), nullable
``species``            list<uint8>                            distinct Z, ascending
``species_counts``     list<int32>                            atoms of each Z in ``species``
``formula``            string                                 Hill formula of the cell contents
``energy_eV``          float64, nullable                      total energy (eV)
``energy_per_atom_eV`` float64, nullable                      ``energy_eV / n_atoms`` (eV/atom)
``fmax_eV_A``          float64, nullable                      max over atoms of the force norm (eV/Å)
``frms_eV_A``          float64, nullable                      root mean square of force norms (eV/Å)
``stress_GPa``         fixed_size_list<float64, 6>, nullable  Voigt (xx, yy, zz, yz, xz, xy) in GPa, ASE
                                                              sign: positive = tensile
``pressure_GPa``       float64, nullable                      ``-trace(stress)/3`` (GPa): compressed > 0
``volume_A3``          float64, nullable                      cell volume (Å^3); null if not periodic
``temperature_K``      float64, nullable                      temperature (K) of MD / rattling, if known
``method``             string                                 relax / static / md / rattled / unknown
``level_of_theory``    string                                 label: ``PBE``, ``PBE+U``, ``r2SCAN``,
                                                              ``wB97M-V/def2-TZVPD``..., or ``unknown``
``functional``         string                                 functional alone (``PBE``), or ``unknown``
``hubbard_u``          bool, nullable                         +U applied (null: unknown / not applicable)
``basis``              string, nullable                       basis set or pseudopotential family
``charge``             int16, nullable                        total charge (e)
``spin``               int16, nullable                        spin multiplicity 2S+1
``smiles``             string, nullable                       SMILES, when the source has one
=====================  =====================================  =============================================

Per-atom arrays stay in the table, so descriptor calculators can work on numpy arrays without building a
pymatgen object per frame: see :func:`atoms_arrays` and :func:`to_ase_atoms`.

Unit conversions used by the readers live here, each with a test:

* VASP / MPTrj stress: kBar, positive = compressive -> GPa, ASE sign: ``stress_GPa = -0.1 * s_kbar``.
* ASE stress: eV/Å^3, positive = tensile -> GPa: ``stress_GPa = s * 160.21766208``.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from ase.data import chemical_symbols

__all__ = [
    "FRAME_SCHEMA",
    "METHODS",
    "EV_PER_A3_TO_GPA",
    "KBAR_TO_GPA",
    "stress_vasp_kbar_to_ase_gpa",
    "stress_ase_ev_a3_to_gpa",
    "voigt_from_matrix",
    "pressure_from_voigt",
    "hill_formula",
    "atoms_arrays",
    "AtomsArrays",
    "to_ase_atoms",
    "iter_ase_atoms",
    "concat_batches",
    "empty_batch",
]

#: 1 eV/Å^3 in GPa (CODATA 2014 value of e, as ASE's ``units.GPa``).
EV_PER_A3_TO_GPA = 160.21766208
#: 1 kBar in GPa.
KBAR_TO_GPA = 0.1
#: Allowed values of the ``method`` column.
METHODS = ("relax", "static", "md", "rattled", "unknown")

_VEC3 = pa.list_(pa.float64(), 3)

FRAME_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("subset", pa.string()),
        pa.field("n_atoms", pa.int32(), nullable=False),
        pa.field("numbers", pa.list_(pa.uint8()), nullable=False),
        pa.field("positions", pa.list_(_VEC3)),
        pa.field("cell", pa.list_(pa.float64(), 9), nullable=False),
        pa.field("pbc", pa.list_(pa.bool_(), 3), nullable=False),
        pa.field("forces", pa.list_(_VEC3)),
        pa.field("species", pa.list_(pa.uint8()), nullable=False),
        pa.field("species_counts", pa.list_(pa.int32()), nullable=False),
        pa.field("formula", pa.string(), nullable=False),
        pa.field("energy_eV", pa.float64()),
        pa.field("energy_per_atom_eV", pa.float64()),
        pa.field("fmax_eV_A", pa.float64()),
        pa.field("frms_eV_A", pa.float64()),
        pa.field("stress_GPa", pa.list_(pa.float64(), 6)),
        pa.field("pressure_GPa", pa.float64()),
        pa.field("volume_A3", pa.float64()),
        pa.field("temperature_K", pa.float64()),
        pa.field("method", pa.string(), nullable=False),
        pa.field("level_of_theory", pa.string(), nullable=False),
        pa.field("functional", pa.string(), nullable=False),
        pa.field("hubbard_u", pa.bool_()),
        pa.field("basis", pa.string()),
        pa.field("charge", pa.int16()),
        pa.field("spin", pa.int16()),
        pa.field("smiles", pa.string()),
    ]
)


def stress_vasp_kbar_to_ase_gpa(stress_kbar: Any) -> np.ndarray:
    """Convert a VASP stress (kBar, positive = compressive) to ASE sign in GPa.

    Parameters
    ----------
    stress_kbar : array-like, shape (3, 3) or (6,)
        Stress as written by VASP / stored in MPTrj.

    Returns
    -------
    numpy.ndarray, shape (6,)
        Voigt stress (xx, yy, zz, yz, xz, xy) in GPa, positive = tensile.
    """
    arr = np.asarray(stress_kbar, dtype=np.float64)
    voigt = voigt_from_matrix(arr) if arr.shape == (3, 3) else arr.reshape(6)
    return -KBAR_TO_GPA * voigt


def stress_ase_ev_a3_to_gpa(stress: Any) -> np.ndarray:
    """Convert an ASE stress (eV/Å^3, positive = tensile) to GPa, same sign.

    Parameters
    ----------
    stress : array-like, shape (3, 3) or (6,)

    Returns
    -------
    numpy.ndarray, shape (6,)
        Voigt stress (xx, yy, zz, yz, xz, xy) in GPa.
    """
    arr = np.asarray(stress, dtype=np.float64)
    voigt = voigt_from_matrix(arr) if arr.shape == (3, 3) else arr.reshape(6)
    return voigt * EV_PER_A3_TO_GPA


def voigt_from_matrix(m: np.ndarray) -> np.ndarray:
    """(3, 3) symmetric tensor -> Voigt (xx, yy, zz, yz, xz, xy), shape (6,)."""
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (3, 3):
        raise ValueError(f"expected a (3, 3) stress tensor, got shape {m.shape}")
    return np.array([m[0, 0], m[1, 1], m[2, 2], m[1, 2], m[0, 2], m[0, 1]], dtype=np.float64)


def pressure_from_voigt(voigt_gpa: np.ndarray) -> float:
    """Pressure (GPa) from an ASE-sign Voigt stress: ``-(xx + yy + zz) / 3``; compressed cell > 0."""
    v = np.asarray(voigt_gpa, dtype=np.float64)
    return float(-(v[0] + v[1] + v[2]) / 3.0)


def hill_formula(species: Iterable[int], counts: Iterable[int]) -> str:
    """Hill-order formula (C first, then H, then alphabetical; alphabetical without C)."""
    pairs = {chemical_symbols[int(z)]: int(c) for z, c in zip(species, counts)}
    if "C" in pairs:
        order = ["C"] + (["H"] if "H" in pairs else []) + sorted(s for s in pairs if s not in ("C", "H"))
    else:
        order = sorted(pairs)
    return "".join(s + (str(pairs[s]) if pairs[s] != 1 else "") for s in order)


class AtomsArrays:
    """Flat numpy views of the per-atom columns of a batch.

    Attributes
    ----------
    offsets : numpy.ndarray, shape (n_frames + 1,), int64
        Atoms of frame ``i`` are ``offsets[i]:offsets[i + 1]``.
    numbers : numpy.ndarray, shape (n_atoms_total,), uint8
    positions : numpy.ndarray or None, shape (n_atoms_total, 3), Å
        None when no frame of the batch has positions; rows of frames without positions are NaN.
    cells : numpy.ndarray, shape (n_frames, 3, 3), Å
    pbc : numpy.ndarray, shape (n_frames, 3), bool
    has_positions : numpy.ndarray, shape (n_frames,), bool
    """

    __slots__ = ("offsets", "numbers", "positions", "cells", "pbc", "has_positions")

    def __init__(self, offsets, numbers, positions, cells, pbc, has_positions):
        self.offsets = offsets
        self.numbers = numbers
        self.positions = positions
        self.cells = cells
        self.pbc = pbc
        self.has_positions = has_positions

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def frame(self, i: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
        """(numbers, positions or None, cell (3, 3), pbc (3,)) of frame ``i``."""
        a, b = self.offsets[i], self.offsets[i + 1]
        pos = self.positions[a:b] if (self.positions is not None and self.has_positions[i]) else None
        return self.numbers[a:b], pos, self.cells[i], self.pbc[i]


def atoms_arrays(batch: pa.Table) -> AtomsArrays:
    """Extract the per-atom columns of a frame batch as flat numpy arrays (no per-frame Python objects)."""
    numbers_col = batch.column("numbers").combine_chunks()
    offsets = numbers_col.offsets.to_numpy().astype(np.int64)
    offsets = offsets - offsets[0]
    numbers = numbers_col.flatten().to_numpy(zero_copy_only=False).astype(np.uint8, copy=False)
    n_total = len(numbers)
    pos_col = batch.column("positions").combine_chunks()
    has_pos = pos_col.is_valid().to_numpy(zero_copy_only=False).astype(bool)
    if has_pos.any():
        positions = np.full((n_total, 3), np.nan)
        if has_pos.all():
            flat = pos_col.flatten().flatten().to_numpy(zero_copy_only=False)
            positions[:] = flat.reshape(-1, 3)
        else:
            for i in np.flatnonzero(has_pos):
                positions[offsets[i] : offsets[i + 1]] = np.asarray(
                    pos_col[int(i)].values.flatten().to_numpy(zero_copy_only=False)
                ).reshape(-1, 3)
    else:
        positions = None
    cells = batch.column("cell").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, 3, 3)
    pbc = batch.column("pbc").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, 3)
    return AtomsArrays(offsets, numbers, positions, cells, pbc.astype(bool), has_pos)


def to_ase_atoms(batch: pa.Table, i: int):
    """Frame ``i`` of a batch as an :class:`ase.Atoms` (energy/forces/stress on a SinglePointCalculator).

    Raises ``ValueError`` for a frame without 3D positions (a SMILES-only frame).
    """
    return next(iter_ase_atoms(batch.slice(i, 1)))


def iter_ase_atoms(batch: pa.Table) -> Iterator[Any]:
    """Yield every frame of a batch as :class:`ase.Atoms`; ``atoms.info`` holds id, dataset, charge, spin.

    Frames without positions raise ``ValueError`` naming the id.
    """
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    arr = atoms_arrays(batch)
    cols = batch.select(["id", "dataset", "energy_eV", "stress_GPa", "charge", "spin", "forces"]).to_pydict()
    for i in range(len(arr)):
        numbers, pos, cell, pbc = arr.frame(i)
        if pos is None:
            raise ValueError(f"frame {cols['id'][i]!r} has no 3D positions")
        atoms = Atoms(numbers=numbers.astype(int), positions=pos, cell=cell, pbc=pbc)
        atoms.info.update(id=cols["id"][i], dataset=cols["dataset"][i])
        if cols["charge"][i] is not None:
            atoms.info["charge"] = cols["charge"][i]
        if cols["spin"][i] is not None:
            atoms.info["spin"] = cols["spin"][i]
        results = {}
        if cols["energy_eV"][i] is not None:
            results["energy"] = cols["energy_eV"][i]
        if cols["forces"][i] is not None:
            results["forces"] = np.asarray(cols["forces"][i], dtype=float)
        if cols["stress_GPa"][i] is not None:
            results["stress"] = np.asarray(cols["stress_GPa"][i]) / EV_PER_A3_TO_GPA
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        yield atoms


def empty_batch() -> pa.Table:
    """A frame table with no rows."""
    return FRAME_SCHEMA.empty_table()


def concat_batches(batches: Iterable[pa.Table]) -> pa.Table:
    """Concatenate frame batches into one table (the schema of :data:`FRAME_SCHEMA`)."""
    tables = list(batches)
    if not tables:
        return empty_batch()
    return pa.concat_tables(tables)
