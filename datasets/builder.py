"""Turn parsed records into validated frame batches (:data:`~monoculture.datasets.frames.FRAME_SCHEMA`).

Readers only parse: they yield :class:`RawFrame` objects, or whole batches of *rows* (plain tuples of the
same fields in :data:`ROW_FIELDS` order, which skip the per-record object), in native units already
converted to the frame table's units (eV, eV/Å, GPa, K, Å). Validation lives here, once, for every format:
a frame with a non-finite energy, force, stress or position, an atomic number outside 1..118, or no atoms is
skipped with a reason and counted in the :class:`~monoculture.datasets.accounting.Accounting`.

Conversion to numpy is per batch: the per-atom values of all frames of a batch (nested or flat Python
lists, as a JSON parser returns them) are chained and converted by one ``numpy.array`` call per column.
When a batch holds anything irregular (numpy arrays, scalars, ragged or mis-sized lists, non-integer atomic
numbers...) that column falls back to a per-frame conversion with the same rules, so the output never
depends on which path ran.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa

from .accounting import Accounting
from .frames import FRAME_SCHEMA, METHODS, hill_formula

__all__ = ["RawFrame", "FrameBuilder", "level_of_theory_label", "MAX_Z", "ROW_FIELDS", "TheoryFill"]

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


#: Field order of a *row*, the tuple form of a :class:`RawFrame` that fast readers build directly
#: (see :meth:`FrameBuilder.build_rows`).
ROW_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RawFrame))
_AS_ROW = attrgetter(*ROW_FIELDS)
_NONE = type(None)

#: ``fill(functional, hubbard_u, basis, numbers, offsets) -> (functional, hubbard_u, basis)``: completes the
#: level of theory of the valid frames of a batch (lists of length n; ``numbers`` (atoms,) uint8 Z of those
#: frames, ``offsets`` (n + 1,) int32 into it). :class:`~monoculture.datasets.reading.Dataset` passes one
#: that applies an override or the dataset card.
TheoryFill = Callable[[list, list, list, np.ndarray, np.ndarray], tuple[list, list, list]]


class FrameBuilder:
    """Validate parsed records and emit them as :class:`pyarrow.Table` batches in ``FRAME_SCHEMA``.

    Two ways in: :meth:`add` queues one :class:`RawFrame` (a batch is emitted every ``batch_size``
    records, and by :meth:`flush`), and :meth:`build_rows` turns a whole batch of row tuples (fields in
    :data:`ROW_FIELDS` order) into one table at once. Both validate and derive every column (fmax, frms,
    pressure, volume, species, formula) once per batch with vectorised numpy, so the per-frame cost of
    the builder stays well below the cost of parsing the source (``benchmarks/scale.py`` measures it).
    Rejected records are counted as skipped in the accounting, with the first failing rule as the
    reason, in this order: ``no_atoms``, ``unknown_element``, ``bad_positions``, ``nan_positions``,
    ``bad_cell``, ``nan_energy``, ``bad_forces``, ``nan_forces``, ``bad_stress``, ``nan_stress``,
    ``bad_temperature``.

    Parameters
    ----------
    dataset : str
        Value of the ``dataset`` column.
    file : str
        File name used in ``source`` and in skip messages.
    accounting : Accounting
        Where read / skipped counts go (``read`` is counted when a batch is validated).
    batch_size : int
        Records per batch for :meth:`add` (before validation; a batch is smaller by the records it rejects).
    theory : TheoryFill, optional
        Completes ``functional`` / ``hubbard_u`` / ``basis`` of the valid frames of each batch.
    """

    def __init__(self, dataset: str, file: str, accounting: Accounting, batch_size: int = 4096,
                 theory: TheoryFill | None = None):
        self.dataset = dataset
        self.file = str(file)
        self.accounting = accounting
        self.batch_size = int(batch_size)
        self.theory = theory
        self._formula_cache: dict[bytes, str] = {}
        self._label_cache: dict[tuple, str] = {}
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
        records, self._records = self._records, []
        return self.build_rows(list(map(_AS_ROW, records)))

    def build_rows(self, rows: Sequence[tuple]) -> pa.Table | None:
        """Validate a batch of rows (tuples of the :class:`RawFrame` fields in :data:`ROW_FIELDS` order)
        and emit it as one table; None when no row is valid. Skips are counted as for :meth:`add`."""
        if not rows:
            return None
        return self._build(*zip(*rows, strict=True))

    # -- internals -------------------------------------------------------------------------------------
    def _formulas(self, sp_z: np.ndarray, counts: np.ndarray, sp_off: np.ndarray) -> list[str]:
        """Hill formula of each frame from its distinct Z ``sp_z`` and ``counts`` (frame i: sp_off[i]:sp_off[i+1])."""
        code = (sp_z.astype(np.int64) << 32) | counts.astype(np.int64)
        blob = code.tobytes()
        bounds = (sp_off.astype(np.int64) * 8).tolist()
        keys = [blob[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        cache = self._formula_cache
        out = list(map(cache.get, keys))
        for i, f in enumerate(out):
            if f is None:
                a, b = sp_off[i], sp_off[i + 1]
                f = out[i] = hill_formula(sp_z[a:b], counts[a:b])
                if len(cache) < 100_000:
                    cache[keys[i]] = f
        return out

    def _labels(self, functionals: list, hubbard_u: list, basis: list) -> list[str]:
        cache = self._label_cache
        out = []
        for key in zip(functionals, hubbard_u, basis):
            try:
                label = cache.get(key)
            except TypeError:  # an unhashable value from some reader
                label = level_of_theory_label(*key)
            if label is None:
                label = cache[key] = level_of_theory_label(*key)
            out.append(label)
        return out

    def _build(self, ids, keys, numbers_col, positions_col, cell_col, pbc_col, energy_col, forces_col, stress_col,
               temperature_col, method_col, subset_col, functional_col, hubbard_col, basis_col, charge_col, spin_col,
               smiles_col) -> pa.Table | None:
        n = len(ids)
        reason = np.full(n, -1, dtype=np.int64)  # index into _REASONS; -1 = valid
        detail: dict[int, str] = {}

        def flag(mask, code, text=None):
            new = mask & (reason < 0)
            reason[new] = code
            if text is not None:
                for i in np.flatnonzero(new):
                    detail[int(i)] = text(int(i))

        numbers, lengths, int_like, head = _numbers(numbers_col)
        flag(lengths <= 0, 0, lambda i: "structure has no atoms")
        lengths = np.maximum(lengths, 0)
        frame_of_atom = np.repeat(np.arange(n), lengths)
        bad_z = np.zeros(n, bool)
        if numbers.size:
            bad_atoms = (numbers < 1) | (numbers > MAX_Z)
            bad_z[frame_of_atom[bad_atoms]] = True
        bad_z |= ~int_like & (lengths > 0)
        flag(bad_z, 1, lambda i: f"atomic numbers {head(i)} include a non-element")

        positions, has_pos, pos_ok = _vectors(positions_col, lengths, 3)
        flag(~pos_ok, 2, lambda i: f"positions do not have shape ({lengths[i]}, 3)")
        atom_has_pos = np.repeat(has_pos, lengths)
        nonfinite_pos = np.zeros(n, bool)
        nonfinite_pos[frame_of_atom[atom_has_pos][~np.isfinite(positions).all(axis=1)]] = True
        flag(nonfinite_pos, 3, lambda i: "non-finite atomic positions")

        pbc = _pbc(pbc_col)
        cell, cell_ok = _cells(cell_col)
        flag(~cell_ok | ~np.isfinite(cell).all(axis=(1, 2)), 4, lambda i: "cell is not a finite 3x3 matrix")
        periodic = pbc.all(axis=1)
        det = np.abs(np.linalg.det(np.where(np.isfinite(cell), cell, 0.0)))
        flag(periodic & (det <= 1e-8), 4, lambda i: "periodic structure with a singular cell")
        volume = np.where(periodic, det, np.nan)

        energy, has_energy = _scalars(energy_col)
        flag(has_energy & ~np.isfinite(energy), 5, lambda i: f"energy is {energy_col[i]}")

        forces, has_forces, forces_ok = _vectors(forces_col, lengths, 3)
        flag(~forces_ok, 6, lambda i: f"forces do not have shape ({lengths[i]}, 3)")
        f_frames = frame_of_atom[np.repeat(has_forces, lengths)]
        nonfinite_f = np.zeros(n, bool)
        nonfinite_f[f_frames[~np.isfinite(forces).all(axis=1)]] = True
        flag(nonfinite_f, 7, lambda i: "non-finite forces")
        norms2 = np.einsum("ij,ij->i", forces, forces)
        fmax = np.zeros(n)
        np.maximum.at(fmax, f_frames, np.where(np.isfinite(norms2), np.sqrt(np.abs(norms2)), np.inf))
        fmax = np.where(has_forces, fmax, np.nan)
        sums = np.bincount(f_frames, weights=np.where(np.isfinite(norms2), norms2, 0.0), minlength=n)
        frms = np.where(has_forces, np.sqrt(sums / np.maximum(lengths, 1)), np.nan)

        stress, has_stress, stress_size = _stress(stress_col)
        flag(stress_size != 6, 8, lambda i: (f"stress has {stress_size[i]} components, expected 6 (Voigt)"
                                             if stress_size[i] >= 0 else "stress is not an array of numbers"))
        flag(has_stress & ~np.isfinite(stress).all(axis=1), 9, lambda i: "non-finite stress")
        pressure = -(stress[:, 0] + stress[:, 1] + stress[:, 2]) / 3.0

        temperature, has_t = _scalars(temperature_col)
        flag(has_t & ~(np.isfinite(temperature) & (temperature >= 0)), 10,
             lambda i: f"temperature {temperature_col[i]} K")

        for i in np.flatnonzero(reason >= 0):
            self.accounting.skip(self.file, keys[i], _REASONS[reason[i]], detail.get(int(i), ""))
        valid = reason < 0
        n_valid = int(valid.sum())
        self.accounting.add_read(n_valid)
        if n_valid == 0:
            return None

        keep = np.flatnonzero(valid)
        if n_valid == n:
            def pick(col):
                return list(col)
        else:
            keep_list = keep.tolist()

            def pick(col):
                return [col[i] for i in keep_list]
        atom_keep = valid[frame_of_atom]
        lens = lengths[keep]
        offsets = np.zeros(n_valid + 1, dtype=np.int32)
        np.cumsum(lens, out=offsets[1:])
        z = numbers[atom_keep].astype(np.uint8)

        def vec3_lists(flat_all, present_all):
            present = present_all[keep]
            flat = flat_all[atom_keep[np.repeat(present_all, lengths)]]
            offs = np.zeros(n_valid + 1, dtype=np.int32)
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

        def ints16(col):
            values = pick(col)
            if values.count(None) == len(values):
                return pa.nulls(len(values), pa.int16())
            return pa.array([None if v is None else int(v) for v in values], pa.int16())

        # species / counts per frame from (frame, Z) pairs
        frame_local = np.repeat(np.arange(n_valid), lens)
        upair, ucount = np.unique(frame_local.astype(np.int64) * 256 + z, return_counts=True)
        sp_z = (upair % 256).astype(np.uint8)
        sp_off = np.zeros(n_valid + 1, dtype=np.int32)
        np.cumsum(np.bincount(upair // 256, minlength=n_valid), out=sp_off[1:])
        formulas = self._formulas(sp_z, ucount, sp_off)

        functionals, hubbard_u, basis = pick(functional_col), pick(hubbard_col), pick(basis_col)
        if self.theory is not None:
            functionals, hubbard_u, basis = self.theory(functionals, hubbard_u, basis, z, offsets)
        functionals = [f or "unknown" for f in functionals]
        e = energy[keep]
        he = has_energy[keep]
        hf = has_forces[keep]
        hs = has_stress[keep]
        vol = volume[keep]
        prefix = self.file + "::"
        arrays = {
            "id": pa.array([str(v) for v in pick(ids)], pa.string()),
            "dataset": pa.array([self.dataset] * n_valid, pa.string()),
            "source": pa.array([prefix + (k if type(k) is str else f"{k}") for k in pick(keys)], pa.string()),
            "subset": pa.array(pick(subset_col), pa.string()),
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
            "method": pa.array([m if m in METHODS else "unknown" for m in pick(method_col)], pa.string()),
            "level_of_theory": pa.array(self._labels(functionals, hubbard_u, basis), pa.string()),
            "functional": pa.array(functionals, pa.string()),
            "hubbard_u": pa.array(hubbard_u, pa.bool_()),
            "basis": pa.array(basis, pa.string()),
            "charge": ints16(charge_col),
            "spin": ints16(spin_col),
            "smiles": pa.array(pick(smiles_col), pa.string()),
        }
        return pa.Table.from_arrays([arrays[name] for name in FRAME_SCHEMA.names], schema=FRAME_SCHEMA)


_REASONS = ("no_atoms", "unknown_element", "bad_positions", "nan_positions", "bad_cell", "nan_energy", "bad_forces",
            "nan_forces", "bad_stress", "nan_stress", "bad_temperature")


# -- per-batch conversion of one column (fast path, then per-frame fallback with the same rules) ------------
def _present(col: Sequence, types: set) -> tuple[np.ndarray, list]:
    """(present (n,) bool, the non-None values) of a column whose value types are ``types``."""
    if _NONE not in types:
        return np.ones(len(col), bool), col
    return np.fromiter((v is not None for v in col), bool, len(col)), [v for v in col if v is not None]


def _numbers(col: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[int], list]]:
    """Atomic numbers of a batch.

    Returns (numbers (sum of lengths,) int64 when integer, lengths (n,) int64 with -1 for a value that
    is not 1-D, int_like (n,) bool, head(i) -> the first 8 numbers of frame i as a list).
    """
    n = len(col)
    if set(map(type, col)) == {list}:
        try:
            flat = np.array(list(chain.from_iterable(col)))
        except (ValueError, TypeError, OverflowError):
            flat = None
        if flat is not None and flat.ndim == 1 and flat.dtype == np.int64:
            lengths = np.fromiter(map(len, col), np.int64, n)
            starts = np.concatenate(([0], np.cumsum(lengths)))

            def head(i):
                return flat[starts[i]: starts[i] + min(8, lengths[i])].tolist()

            return flat, lengths, np.ones(n, bool), head
    arrays = [np.asarray(v) for v in col]
    lengths = np.fromiter((a.size if a.ndim == 1 else -1 for a in arrays), np.int64, n)
    int_like = np.fromiter((np.issubdtype(a.dtype, np.integer) for a in arrays), bool, n)
    # values that are not 1-D have no atoms (no_atoms); non-numeric ones are zeros here (unknown_element)
    parts = [a if a.dtype.kind in "iufb" else np.zeros(a.size, np.int64) for a in arrays if a.ndim == 1]
    flat = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    if flat.dtype.kind in "iu":
        flat = flat.astype(np.int64, copy=False)
    return flat, lengths, int_like, lambda i: arrays[i][:8].tolist()


def _vectors(col: Sequence, lengths: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-atom vectors of a batch (nested (n_i, width) or flat (n_i * width) lists or arrays, or None).

    Returns (flat (sum of n_i over present frames, width) float64, present (n,) bool, shape_ok (n,) bool);
    a frame whose value has the wrong size, or cannot be converted, gets NaN rows and ``shape_ok`` False.
    """
    n = len(col)
    types = set(map(type, col))
    if types <= {list, _NONE}:
        present, values = _present(col, types)
        want = lengths[present]
        try:
            arr = np.array(list(chain.from_iterable(values)), dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            arr = None
        if arr is not None:
            sizes = np.fromiter(map(len, values), np.int64, len(values))
            if arr.ndim == 2 and arr.shape[1] == width and np.array_equal(sizes, want):
                return arr, present, np.ones(n, bool)
            if arr.ndim == 1 and np.array_equal(sizes, want * width):
                return arr.reshape(-1, width), present, np.ones(n, bool)
    present = np.fromiter((v is not None for v in col), bool, n)
    out = np.empty((int(lengths[present].sum()), width), dtype=np.float64)
    ok = np.ones(n, dtype=bool)
    pos = 0
    for i in np.flatnonzero(present):
        m = int(lengths[i])
        try:
            arr = np.asarray(col[i], dtype=np.float64)
        except (ValueError, TypeError):  # ragged or not numeric
            arr = None
        if arr is None or arr.size != m * width:
            ok[i] = False
            arr = np.full((m, width), np.nan)
        out[pos: pos + m] = arr.reshape(m, width)
        pos += m
    return out, present, ok


def _pbc(col: Sequence) -> np.ndarray:
    """Periodic flags (n, 3) bool; None -> not periodic, a scalar applies to all three directions."""
    n = len(col)
    pbc = np.zeros((n, 3), dtype=bool)
    types = set(map(type, col))
    if types <= {list, _NONE}:
        present, values = _present(col, types)
        if not values:
            return pbc
        try:
            arr = np.array(values, dtype=bool)
        except (ValueError, TypeError):
            arr = None
        if arr is not None and arr.shape == (len(values), 3):
            pbc[present] = arr
            return pbc
    for i, v in enumerate(col):
        if v is not None:
            pbc[i] = np.broadcast_to(np.asarray(v, dtype=bool), (3,))
    return pbc


def _cells(col: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Cells (n, 3, 3) float64 in Å (zeros for None) and ok (n,) bool: False when a value is not 9 numbers."""
    n = len(col)
    cell = np.zeros((n, 3, 3), dtype=np.float64)
    ok = np.ones(n, bool)
    types = set(map(type, col))
    if types <= {list, _NONE}:
        present, values = _present(col, types)
        if not values:
            return cell, ok
        try:
            arr = np.array(values, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            arr = None
        if arr is not None and arr.shape[1:] in ((3, 3), (9,)):
            cell[present] = arr.reshape(-1, 3, 3)
            return cell, ok
    for i, v in enumerate(col):
        if v is not None:
            try:
                c = np.asarray(v, dtype=np.float64)
            except (ValueError, TypeError):
                c = None
            if c is not None and c.size == 9:
                cell[i] = c.reshape(3, 3)
            else:
                ok[i] = False
    return cell, ok


def _stress(col: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voigt stresses (n, 6) GPa (NaN where absent), present (n,) bool, and the number of components of
    each present value (n,) int64 (6 when absent; -1 when it cannot be converted to numbers)."""
    n = len(col)
    stress = np.full((n, 6), np.nan)
    size = np.full(n, 6, dtype=np.int64)
    types = set(map(type, col))
    if types <= {list, np.ndarray, _NONE}:
        present, values = _present(col, types)
        if not values:
            return stress, present, size
        try:
            arr = np.array(values, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            arr = None
        if arr is not None and arr.shape == (len(values), 6):
            stress[present] = arr
            return stress, present, size
    present = np.fromiter((v is not None for v in col), bool, n)
    for i in np.flatnonzero(present):
        try:
            s = np.asarray(col[i], dtype=np.float64).ravel()
        except (ValueError, TypeError):
            size[i] = -1
            continue
        size[i] = s.size
        if s.size == 6:
            stress[i] = s
    return stress, present, size


def _scalars(col: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame numbers (n,) float64 (NaN where None) and present (n,) bool."""
    n = len(col)
    types = set(map(type, col))
    if types <= {float, int, _NONE}:
        try:
            values = np.array(col, dtype=np.float64)
        except OverflowError:
            values = None
        if values is not None and values.shape == (n,):
            present = np.ones(n, bool) if _NONE not in types else np.fromiter((v is not None for v in col), bool, n)
            return values, present
    values = np.array([np.nan if v is None else float(v) for v in col], dtype=np.float64)
    return values, np.fromiter((v is not None for v in col), bool, n)
