"""Turn parsed records into validated frame batches (:data:`~monoculture.datasets.frames.FRAME_SCHEMA`).

Readers only parse, in native units already converted to the frame table's units (eV, eV/Å, GPa, K, Å).
They hand over records in one of three forms:

* :class:`RawFrame` objects, one at a time (:meth:`FrameBuilder.add`);
* *rows*: plain tuples of the same fields in :data:`ROW_FIELDS` order (no per-record object);
* :class:`ColumnBatch`: frames already in flat columns (``array.array`` buffers of numbers, positions,
  forces... with per-frame lengths), which fast readers fill while each parsed record is still in the CPU
  cache; nothing per atom survives the record as a Python object.

A batch may mix rows and column batches (:meth:`FrameBuilder.build`): readers put a record that does not
fit the flat columns (ragged or mis-sized arrays, ``null`` inside an array, non-integer atomic numbers...)
in a row, whose conversion follows the per-frame rules. Validation lives here, once, for every format and
form: a frame with a non-finite energy, force, stress or position, an atomic number outside 1..118, or no
atoms is skipped with a reason and counted in the :class:`~monoculture.datasets.accounting.Accounting`.

Rows are converted to numpy once per batch: the per-atom values of all frames (nested or flat Python lists,
as a JSON parser returns them) are chained and converted by one call per column. When a batch holds
anything irregular (numpy arrays, scalars, ragged or mis-sized lists...) that column falls back to a
per-frame conversion with the same rules, so the output never depends on which path ran.
"""
from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from functools import cache
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .accounting import Accounting
from .frames import FRAME_SCHEMA, METHODS, chemical_symbols

__all__ = ["RawFrame", "ColumnBatch", "ArrayColumns", "SegmentBatcher", "FrameBuilder", "raw_frames", "level_of_theory_label", "MAX_Z", "ROW_FIELDS", "TheoryFill"]

#: Largest atomic number accepted (oganesson).
MAX_Z = 118


@cache
def _symbols() -> pa.Array:
    """Element symbols by Z as an Arrow string array, built on first use: converting a Python list with
    ``pa.array`` imports pandas (about 0.15 s), which ``monoculture formats`` and sniffing never need."""
    return pa.array(chemical_symbols[: MAX_Z + 1], pa.string())


# Hill order as ranks by Z: alphabetical by symbol; with carbon present, C first, then H, then alphabetical.
_ALPHA_RANK = np.argsort(np.argsort(np.array(chemical_symbols[: MAX_Z + 1], dtype=object)))
_HILL_RANK_WITH_C = _ALPHA_RANK + 2
_HILL_RANK_WITH_C[6], _HILL_RANK_WITH_C[1] = 0, 1


def raw_frames(batches) -> Iterator["RawFrame"]:
    """One :class:`RawFrame` per row of a reader's segment batches (lists of :class:`ColumnBatch` or of row
    tuples): the per-record form of a batch reader, for callers that want records."""
    for segments in batches:
        for seg in segments:
            for row in (seg.rows() if isinstance(seg, ColumnBatch) else seg):
                yield RawFrame(*row)


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


class ColumnBatch:
    """Frames in flat columns, as fast readers fill them (n frames, N atoms in all).

    Readers append to the buffers directly (``array.array`` ``extend`` from the parsed lists, which
    checks every value is a number) and to the per-frame lists, and hand the batch to
    :meth:`FrameBuilder.build`; use :meth:`mark` / :meth:`rollback` to undo a partly appended record.
    Every frame has positions; absent values are filled as documented.

    Attributes
    ----------
    ids, keys : list of str, (n,)
        Frame id and record key (see :class:`RawFrame`).
    lengths : array('q'), (n,)
        Atoms per frame.
    numbers : array('q'), (N,)
        Atomic numbers Z.
    positions : array('d'), (3 N,)
        Cartesian positions (Å), x y z per atom.
    cell : array('d'), (9 n,)
        Cell rows a, b, c (Å); zeros for a frame without a cell.
    pbc : array('b'), (3 n,)
        Periodic flags (any non-zero is periodic).
    energy : list, (n,)
        Total energy (eV) as read: float, int or None.
    forces : array('d'), (3 N,)
        Forces (eV/Å) per atom; any value (NaN) for atoms of frames without forces.
    has_forces : array('b'), (n,)
    stress : array('d'), (stress_width n,)
        Stress per frame: Voigt (xx, yy, zz, yz, xz, xy) when ``stress_width`` is 6, a row-major 3x3
        tensor (whose upper triangle is used) when it is 9; any value (NaN) for frames without stress.
        The builder multiplies by ``stress_factor`` to get GPa with ASE sign (positive = tensile).
    has_stress : array('b'), (n,)
    temperature : list, (n,)
        Temperature (K) or None.
    method, subset, charge, spin : lists, (n,)
        As in :class:`RawFrame`; ``functional``, ``hubbard_u``, ``basis`` and ``smiles`` are None.
    """

    __slots__ = ("ids", "keys", "lengths", "numbers", "positions", "cell", "pbc", "energy", "forces", "has_forces",
                 "stress", "has_stress", "stress_width", "stress_factor", "temperature", "method", "subset",
                 "charge", "spin")

    _BUFFERS = ("lengths", "numbers", "positions", "cell", "pbc", "forces", "has_forces", "stress", "has_stress")
    _LISTS = ("ids", "keys", "energy", "temperature", "method", "subset", "charge", "spin")

    def __init__(self, stress_width: int = 6, stress_factor: float = 1.0):
        if stress_width not in (6, 9):
            raise ValueError("stress_width must be 6 (Voigt) or 9 (3x3)")
        self.stress_width = stress_width
        self.stress_factor = float(stress_factor)
        for name, code in zip(self._BUFFERS, "qqddbdbdb"):
            setattr(self, name, array(code))
        for name in self._LISTS:
            setattr(self, name, [])

    def __len__(self) -> int:
        return len(self.ids)

    def mark(self) -> tuple[int, ...]:
        """Current sizes of every buffer and list (for :meth:`rollback`)."""
        return (len(self.lengths), len(self.numbers), len(self.positions), len(self.cell), len(self.pbc),
                len(self.forces), len(self.has_forces), len(self.stress), len(self.has_stress), len(self.ids),
                len(self.keys), len(self.energy), len(self.temperature), len(self.method), len(self.subset),
                len(self.charge), len(self.spin))

    def rollback(self, mark: tuple[int, ...]) -> None:
        """Drop whatever was appended since ``mark``."""
        for name, size in zip(self._BUFFERS + self._LISTS, mark):
            del getattr(self, name)[size:]

    def take(self, k: int) -> "ColumnBatch":
        """Remove the first ``k`` frames and return them as a new batch (the rest stays in ``self``)."""
        out = ColumnBatch(self.stress_width, self.stress_factor)
        atoms = sum(self.lengths[:k])
        cut = {"lengths": k, "numbers": atoms, "positions": 3 * atoms, "cell": 9 * k, "pbc": 3 * k,
               "forces": 3 * atoms, "has_forces": k, "stress": self.stress_width * k, "has_stress": k}
        for name in self._BUFFERS:
            buf = getattr(self, name)
            setattr(out, name, buf[: cut[name]])
            del buf[: cut[name]]
        for name in self._LISTS:
            values = getattr(self, name)
            setattr(out, name, values[:k])
            del values[:k]
        return out

    def rows(self) -> list[tuple]:
        """The frames as row tuples (:data:`ROW_FIELDS` order), e.g. for per-record readers; the builder
        gives the same table for these rows as for the batch itself."""
        out = []
        a = 0
        w, factor = self.stress_width, self.stress_factor
        for i in range(len(self)):
            k = self.lengths[i]
            stress = None
            if self.has_stress[i]:
                s = [v * factor for v in self.stress[w * i: w * i + w]]
                stress = [s[0], s[4], s[8], s[5], s[2], s[1]] if w == 9 else s
            out.append((
                self.ids[i], self.keys[i], self.numbers[a: a + k].tolist(), self.positions[3 * a: 3 * (a + k)].tolist(),
                self.cell[9 * i: 9 * i + 9].tolist(), [bool(x) for x in self.pbc[3 * i: 3 * i + 3]], self.energy[i],
                self.forces[3 * a: 3 * (a + k)].tolist() if self.has_forces[i] else None, stress, self.temperature[i],
                self.method[i], self.subset[i], None, None, None, self.charge[i], self.spin[i], None,
            ))
            a += k
        return out


class ArrayColumns(ColumnBatch):
    """A :class:`ColumnBatch` whose buffers are numpy arrays filled whole (e.g. from Arrow columns), with a
    level of theory per frame.

    Columnar readers (parquet, Atompack) set every buffer at once, with the dtypes of
    :class:`ColumnBatch` (``lengths`` and ``numbers`` int64; ``positions``, ``cell``, ``forces``,
    ``stress`` float64; ``pbc``, ``has_forces``, ``has_stress`` int8; all C-contiguous and flat), and the
    lists ``functional`` (str or None: the card fills None), ``hubbard_u`` (bool or None) and ``basis``;
    ``ids`` and ``keys`` may be Arrow string arrays (no null) instead of lists.
    ``forces`` holds 3 values per atom of every frame (any value for frames without forces).
    """

    __slots__ = ("functional", "hubbard_u", "basis")
    _LISTS = ColumnBatch._LISTS + ("functional", "hubbard_u", "basis")
    _DTYPES = {"lengths": np.int64, "numbers": np.int64, "positions": np.float64, "cell": np.float64,
               "pbc": np.int8, "forces": np.float64, "has_forces": np.int8, "stress": np.float64,
               "has_stress": np.int8}

    def __init__(self, stress_width: int = 6, stress_factor: float = 1.0):
        super().__init__(stress_width, stress_factor)
        for name, dtype in self._DTYPES.items():
            setattr(self, name, np.zeros(0, dtype))
        self.functional, self.hubbard_u, self.basis = [], [], []

    def take(self, k: int) -> "ArrayColumns":
        """Remove the first ``k`` frames and return them as a new batch (the rest stays in ``self``)."""
        out = ArrayColumns(self.stress_width, self.stress_factor)
        atoms = int(np.sum(self.lengths[:k]))
        cut = {"lengths": k, "numbers": atoms, "positions": 3 * atoms, "cell": 9 * k, "pbc": 3 * k,
               "forces": 3 * atoms, "has_forces": k, "stress": self.stress_width * k, "has_stress": k}
        for name in self._BUFFERS:
            buf = getattr(self, name)
            setattr(out, name, np.ascontiguousarray(buf[: cut[name]]))
            setattr(self, name, np.ascontiguousarray(buf[cut[name]:]))
        for name in self._LISTS:  # lists, or Arrow string arrays for ids / keys
            values = getattr(self, name)
            setattr(out, name, values[:k])
            setattr(self, name, values[k:])
        return out

    def mark(self) -> tuple[int, ...]:  # pragma: no cover - filled whole, never rolled back
        raise NotImplementedError("ArrayColumns are filled whole")

    def rows(self) -> list[tuple]:
        ids, keys = self.ids, self.keys
        self.ids, self.keys = _pylist(ids), _pylist(keys)
        try:
            rows = super().rows()
        finally:
            self.ids, self.keys = ids, keys
        return [r[:12] + (f, u, b) + r[15:] for r, f, u, b in zip(rows, self.functional, self.hubbard_u, self.basis)]


def _pylist(values) -> list:
    return values.to_pylist() if isinstance(values, (pa.Array, pa.ChunkedArray)) else values


class SegmentBatcher:
    """Gathers one batch of ``batch_size`` records as segments (row lists and :class:`ColumnBatch`), in
    reading order, for :meth:`FrameBuilder.build`.

    A reader appends a row with :meth:`add_row`, or fills :meth:`columns` and reports how many frames it
    added with :meth:`added`; after each, :meth:`ready` yields every complete batch (a column segment that
    overshoots is split, so batches hold exactly ``batch_size`` records like per-record reading), and
    :meth:`rest` returns the last, partial one.
    """

    def __init__(self, batch_size: int, new_columns: Callable[[], ColumnBatch]):
        self.batch_size = int(batch_size)
        self._new_columns = new_columns
        self._segments: list = []
        self._count = 0

    @property
    def pending(self) -> int:
        """Records gathered for the current batch."""
        return self._count

    def columns(self) -> ColumnBatch:
        """The column segment to append to (the last segment, or a new one after rows)."""
        if not self._segments or not isinstance(self._segments[-1], ColumnBatch):
            self._segments.append(self._new_columns())
        return self._segments[-1]

    def added(self, k: int) -> None:
        """``k`` frames were appended to :meth:`columns`."""
        self._count += k

    def add_row(self, row: tuple) -> None:
        if not self._segments or isinstance(self._segments[-1], ColumnBatch):
            self._segments.append([])
        self._segments[-1].append(row)
        self._count += 1

    def ready(self):
        """Yield the complete batches (lists of segments) gathered so far."""
        while self._count >= self.batch_size:
            extra = self._count - self.batch_size
            if extra:  # only a column segment grows by more than one record at a time
                last = self._segments[-1]
                batch = self._segments[:-1] + [last.take(len(last) - extra)]
                self._segments = [last]
            else:
                batch, self._segments = self._segments, []
            self._count = extra
            yield batch

    def rest(self) -> list | None:
        """The last, partial batch (None when empty)."""
        batch, self._segments, self._count = self._segments, [], 0
        return batch if any(len(seg) for seg in batch) else None


def _view(buf: array, dtype, width: int = 1) -> np.ndarray:
    """A numpy view (no copy) of an ``array.array`` buffer, shape (len / width, width) or (len,)."""
    arr = np.frombuffer(buf, dtype=dtype) if len(buf) else np.zeros(0, dtype=dtype)
    return arr.reshape(-1, width) if width > 1 else arr


class _Parts:
    """A batch converted to numpy, before validation (the common form of rows and column batches).

    n frames; ``lengths`` (n,) int64 is -1 for atomic numbers that are not 1-D; positions and forces hold
    rows only for frames that have them (``has_*``); ``*_ok`` False marks a value of the wrong shape;
    ``stress_size`` is the number of stress components read (-1: not numbers); ``energy_raw`` and
    ``temperature_raw`` are the values as read (for messages); ``head(i)`` the first Z of frame i.
    """

    __slots__ = ("n", "ids", "keys", "numbers", "lengths", "int_like", "head", "positions", "has_pos", "pos_ok",
                 "cell", "cell_ok", "pbc", "energy", "has_energy", "energy_raw", "forces", "has_forces",
                 "forces_ok", "stress", "has_stress", "stress_size", "temperature", "has_t", "temperature_raw",
                 "method", "subset", "functional", "hubbard_u", "basis", "charge", "spin", "smiles")

    @classmethod
    def from_rows(cls, ids, keys, numbers_col, positions_col, cell_col, pbc_col, energy_col, forces_col,
                  stress_col, temperature_col, method_col, subset_col, functional_col, hubbard_col, basis_col,
                  charge_col, spin_col, smiles_col) -> "_Parts":
        p = cls()
        p.n = len(ids)
        p.ids, p.keys = ids, keys
        p.numbers, p.lengths, p.int_like, p.head = _numbers(numbers_col)
        lengths = np.maximum(p.lengths, 0)
        p.positions, p.has_pos, p.pos_ok = _vectors(positions_col, lengths, 3)
        p.pbc = _pbc(pbc_col)
        p.cell, p.cell_ok = _cells(cell_col)
        p.energy, p.has_energy = _scalars(energy_col)
        p.energy_raw = energy_col
        p.forces, p.has_forces, p.forces_ok = _vectors(forces_col, lengths, 3)
        p.stress, p.has_stress, p.stress_size = _stress(stress_col)
        p.temperature, p.has_t = _scalars(temperature_col)
        p.temperature_raw = temperature_col
        p.method, p.subset, p.functional, p.hubbard_u = method_col, subset_col, functional_col, hubbard_col
        p.basis, p.charge, p.spin, p.smiles = basis_col, charge_col, spin_col, smiles_col
        return p

    @classmethod
    def from_columns(cls, cb: ColumnBatch) -> "_Parts":
        p = cls()
        n = p.n = len(cb)
        ones = np.ones(n, bool)
        p.ids, p.keys = cb.ids, cb.keys
        lengths = _view(cb.lengths, np.int64)
        numbers = _view(cb.numbers, np.int64)
        starts = np.concatenate(([0], np.cumsum(lengths)))
        p.numbers, p.lengths, p.int_like = numbers, lengths, ones
        p.head = lambda i: numbers[starts[i]: starts[i] + min(8, lengths[i])].tolist()
        p.positions, p.has_pos, p.pos_ok = _view(cb.positions, np.float64, 3), ones, ones
        p.pbc = _view(cb.pbc, np.int8, 3).astype(bool)
        p.cell, p.cell_ok = _view(cb.cell, np.float64, 9).reshape(n, 3, 3), ones
        p.energy, p.has_energy = _scalars(cb.energy)
        p.energy_raw = cb.energy
        has_f = _view(cb.has_forces, np.int8).astype(bool)
        forces = _view(cb.forces, np.float64, 3)
        p.forces = forces if has_f.all() else forces[np.repeat(has_f, lengths)]
        p.has_forces, p.forces_ok = has_f, ones
        stress = _view(cb.stress, np.float64, cb.stress_width)
        if cb.stress_width == 9:  # 3x3 row-major -> Voigt (xx, yy, zz, yz, xz, xy)
            stress = stress[:, [0, 4, 8, 5, 2, 1]]
        p.has_stress = _view(cb.has_stress, np.int8).astype(bool)
        p.stress = np.where(p.has_stress[:, None], stress * cb.stress_factor, np.nan)
        p.stress_size = np.full(n, 6, dtype=np.int64)
        p.temperature, p.has_t = _scalars(cb.temperature)
        p.temperature_raw = cb.temperature
        p.method, p.subset, p.charge, p.spin = cb.method, cb.subset, cb.charge, cb.spin
        p.functional = p.hubbard_u = p.basis = p.smiles = [None] * n
        if isinstance(cb, ArrayColumns):
            p.functional, p.hubbard_u, p.basis = cb.functional, cb.hubbard_u, cb.basis
        return p

    @classmethod
    def concat(cls, parts: list["_Parts"]) -> "_Parts":
        if len(parts) == 1:
            return parts[0]
        p = cls()
        p.n = sum(q.n for q in parts)
        starts = np.cumsum([0] + [q.n for q in parts])
        for q in parts:
            q.ids, q.keys = _pylist(q.ids), _pylist(q.keys)
        for name in ("ids", "keys", "energy_raw", "temperature_raw", "method", "subset", "functional", "hubbard_u",
                     "basis", "charge", "spin", "smiles"):
            setattr(p, name, list(chain.from_iterable(getattr(q, name) for q in parts)))
        for name in ("lengths", "int_like", "positions", "has_pos", "pos_ok", "cell", "cell_ok", "pbc", "energy",
                     "has_energy", "forces", "has_forces", "forces_ok", "stress", "has_stress", "stress_size",
                     "temperature", "has_t"):
            setattr(p, name, np.concatenate([getattr(q, name) for q in parts]))
        numbers = [q.numbers for q in parts]
        if len({a.dtype for a in numbers}) > 1 and all(a.dtype.kind in "iub" for a in numbers):
            numbers = [a.astype(np.int64) for a in numbers]
        p.numbers = np.concatenate(numbers)
        heads = [q.head for q in parts]

        def head(i):
            k = int(np.searchsorted(starts, i, side="right")) - 1
            return heads[k](i - int(starts[k]))

        p.head = head
        return p


class FrameBuilder:
    """Validate parsed records and emit them as :class:`pyarrow.Table` batches in ``FRAME_SCHEMA``.

    Three ways in: :meth:`add` queues one :class:`RawFrame` (a batch is emitted every ``batch_size``
    records, and by :meth:`flush`); :meth:`build_rows` turns a whole batch of row tuples (fields in
    :data:`ROW_FIELDS` order) into one table; :meth:`build` does the same for a batch made of row lists
    and :class:`ColumnBatch` segments, in order. All validate and derive every column (fmax, frms,
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
        return self.build([rows])

    def build(self, segments: Sequence) -> pa.Table | None:
        """Validate one batch given as consecutive segments, each a list of rows or a :class:`ColumnBatch`,
        and emit it as one table (frames in segment order); None when no frame is valid."""
        parts = []
        for seg in segments:
            if isinstance(seg, ColumnBatch):
                if len(seg):
                    parts.append(_Parts.from_columns(seg))
            elif len(seg):
                parts.append(_Parts.from_rows(*zip(*seg, strict=True)))
        if not parts:
            return None
        return self._finish(_Parts.concat(parts))

    # -- internals -------------------------------------------------------------------------------------
    @staticmethod
    def _formulas(sp_z: np.ndarray, counts: np.ndarray, sp_off: np.ndarray) -> pa.Array:
        """Hill formula of each frame (:func:`~monoculture.datasets.frames.hill_formula`) from its distinct Z
        ``sp_z`` and ``counts`` (frame i: sp_off[i]:sp_off[i+1]), built for the whole batch at once: the
        species are put in Hill order with one sort, each becomes a symbol + count token, and Arrow joins
        the tokens of each frame."""
        n = len(sp_off) - 1
        if not len(sp_z):
            return pa.array([""] * n, pa.string())
        frame = np.repeat(np.arange(n), np.diff(sp_off))
        has_carbon = np.zeros(n, bool)
        has_carbon[frame[sp_z == 6]] = True
        rank = np.where(has_carbon[frame], _HILL_RANK_WITH_C[sp_z], _ALPHA_RANK[sp_z])
        order = np.argsort(frame * 256 + rank, kind="stable")
        z, c = sp_z[order], counts[order]
        count_text = pc.if_else(pa.array(c == 1), "", pc.cast(pa.array(c.astype(np.int64)), pa.string()))
        tokens = pc.binary_join_element_wise(_symbols().take(pa.array(z.astype(np.int64))), count_text, "")
        return pc.binary_join(pa.ListArray.from_arrays(pa.array(sp_off.astype(np.int32)), tokens), "")

    def _labels(self, functionals: list, hubbard_u: list, basis: list) -> list[str]:
        try:
            if len(set(functionals)) == 1 and len(set(basis)) == 1:  # the usual batch: one functional
                f, b = functionals[0], basis[0]
                by_u = {u: level_of_theory_label(f, u, b) for u in set(hubbard_u)}
                return list(map(by_u.__getitem__, hubbard_u))
        except TypeError:  # an unhashable value from some reader
            pass
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

    def _finish(self, p: _Parts) -> pa.Table | None:
        n = p.n
        reason = np.full(n, -1, dtype=np.int64)  # index into _REASONS; -1 = valid
        detail: dict[int, str] = {}

        def flag(mask, code, text=None):
            new = mask & (reason < 0)
            reason[new] = code
            if text is not None:
                for i in np.flatnonzero(new):
                    detail[int(i)] = text(int(i))

        numbers = p.numbers
        flag(p.lengths <= 0, 0, lambda i: "structure has no atoms")
        lengths = np.maximum(p.lengths, 0)
        frame_of_atom = np.repeat(np.arange(n), lengths)
        bad_z = np.zeros(n, bool)
        if numbers.size:
            bad_atoms = (numbers < 1) | (numbers > MAX_Z)
            bad_z[frame_of_atom[bad_atoms]] = True
        bad_z |= ~p.int_like & (lengths > 0)
        flag(bad_z, 1, lambda i: f"atomic numbers {p.head(i)} include a non-element")

        positions, has_pos = p.positions, p.has_pos
        flag(~p.pos_ok, 2, lambda i: f"positions do not have shape ({lengths[i]}, 3)")
        nonfinite_pos = np.zeros(n, bool)
        finite_pos = _finite_rows(positions)
        if not finite_pos.all():
            nonfinite_pos[frame_of_atom[np.repeat(has_pos, lengths)][~finite_pos]] = True
        flag(nonfinite_pos, 3, lambda i: "non-finite atomic positions")

        pbc, cell = p.pbc, p.cell
        flag(~p.cell_ok | ~np.isfinite(cell).all(axis=(1, 2)), 4, lambda i: "cell is not a finite 3x3 matrix")
        periodic = pbc.all(axis=1)
        det = np.abs(np.linalg.det(np.where(np.isfinite(cell), cell, 0.0)))
        flag(periodic & (det <= 1e-8), 4, lambda i: "periodic structure with a singular cell")
        volume = np.where(periodic, det, np.nan)

        energy, has_energy = p.energy, p.has_energy
        flag(has_energy & ~np.isfinite(energy), 5, lambda i: f"energy is {p.energy_raw[i]}")

        forces, has_forces = p.forces, p.has_forces
        flag(~p.forces_ok, 6, lambda i: f"forces do not have shape ({lengths[i]}, 3)")
        f_frames = frame_of_atom if has_forces.all() else frame_of_atom[np.repeat(has_forces, lengths)]
        nonfinite_f = np.zeros(n, bool)
        finite_f = _finite_rows(forces)
        if not finite_f.all():
            nonfinite_f[f_frames[~finite_f]] = True
        flag(nonfinite_f, 7, lambda i: "non-finite forces")
        f2 = forces * forces
        norms2 = f2[:, 0] + f2[:, 1] + f2[:, 2] if forces.shape[1] == 3 else f2.sum(axis=1)
        # max norm per frame: the atoms of the frames with forces are contiguous, in frame order
        f_len = np.where(has_forces, lengths, 0)
        fmax = np.zeros(n)
        sums = np.zeros(n)
        with_atoms = np.flatnonzero(f_len > 0)
        if len(with_atoms):
            starts = (np.cumsum(f_len) - f_len)[with_atoms]
            finite_n = np.isfinite(norms2)
            if finite_n.all():
                norms, squares = np.sqrt(norms2), norms2
            else:
                norms = np.where(finite_n, np.sqrt(np.abs(norms2)), np.inf)
                squares = np.where(finite_n, norms2, 0.0)
            fmax[with_atoms] = np.maximum(np.maximum.reduceat(norms, starts), 0.0)
            sums[with_atoms] = np.add.reduceat(squares, starts)
        fmax = np.where(has_forces, fmax, np.nan)
        frms = np.where(has_forces, np.sqrt(sums / np.maximum(lengths, 1)), np.nan)

        stress, has_stress, stress_size = p.stress, p.has_stress, p.stress_size
        flag(stress_size != 6, 8, lambda i: (f"stress has {stress_size[i]} components, expected 6 (Voigt)"
                                             if stress_size[i] >= 0 else "stress is not an array of numbers"))
        flag(has_stress & ~np.isfinite(stress).all(axis=1), 9, lambda i: "non-finite stress")
        pressure = -(stress[:, 0] + stress[:, 1] + stress[:, 2]) / 3.0

        temperature, has_t = p.temperature, p.has_t
        flag(has_t & ~(np.isfinite(temperature) & (temperature >= 0)), 10,
             lambda i: f"temperature {p.temperature_raw[i]} K")

        keys = p.keys
        for i in np.flatnonzero(reason >= 0):
            key = keys[i]
            self.accounting.skip(self.file, key if type(key) is str else str(key), _REASONS[reason[i]],
                                 detail.get(int(i), ""))
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
        every = n_valid == n
        atom_keep = None if every else valid[frame_of_atom]
        lens = lengths[keep]
        offsets = np.zeros(n_valid + 1, dtype=np.int32)
        np.cumsum(lens, out=offsets[1:])
        z = (numbers if every else numbers[atom_keep]).astype(np.uint8)

        def vec3_lists(flat_all, present_all):
            present = present_all[keep]
            # flat_all holds the atoms of the frames with values only; with every frame kept, all of them
            flat = flat_all if every else flat_all[atom_keep[np.repeat(present_all, lengths)]]
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

        def strings(col):
            values = pick(col)
            if values.count(None) == len(values):
                return pa.nulls(len(values), pa.string())
            return pa.array(values, pa.string())

        # species / counts per frame from (frame, Z) pairs
        frame_local = np.repeat(np.arange(n_valid), lens)
        upair, ucount = _pair_counts(frame_local, z, n_valid)
        sp_z = (upair % 256).astype(np.uint8)
        sp_off = np.zeros(n_valid + 1, dtype=np.int32)
        np.cumsum(np.bincount(upair // 256, minlength=n_valid), out=sp_off[1:])
        formulas = self._formulas(sp_z, ucount, sp_off)

        functionals, hubbard_u, basis = pick(p.functional), pick(p.hubbard_u), pick(p.basis)
        if self.theory is not None:
            functionals, hubbard_u, basis = self.theory(functionals, hubbard_u, basis, z, offsets)
        if None in functionals or "" in functionals:
            functionals = [f or "unknown" for f in functionals]
        e = energy[keep]
        he = has_energy[keep]
        hf = has_forces[keep]
        hs = has_stress[keep]
        vol = volume[keep]
        prefix = self.file + "::"
        arrays = {
            "id": _text(p.ids, pick, keep, every),
            "dataset": pa.repeat(pa.scalar(self.dataset, pa.string()), n_valid),
            "source": pc.binary_join_element_wise(prefix, _text(keys, pick, keep, every), ""),
            "subset": strings(p.subset),
            "n_atoms": pa.array(lens, pa.int32()),
            "numbers": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(z, pa.uint8())),
            "positions": vec3_lists(positions, has_pos),
            "cell": fixed(cell[keep], 9, pa.float64()),
            "pbc": fixed(pbc[keep], 3, pa.bool_()),
            "forces": vec3_lists(forces, has_forces),
            "species": pa.ListArray.from_arrays(pa.array(sp_off, pa.int32()), pa.array(sp_z, pa.uint8())),
            "species_counts": pa.ListArray.from_arrays(pa.array(sp_off, pa.int32()),
                                                       pa.array(ucount.astype(np.int32), pa.int32())),
            "formula": formulas,
            "energy_eV": nullable(e, he),
            "energy_per_atom_eV": nullable(e / np.maximum(lens, 1), he),
            "fmax_eV_A": nullable(fmax[keep], hf),
            "frms_eV_A": nullable(frms[keep], hf),
            "stress_GPa": fixed(np.nan_to_num(stress[keep]), 6, pa.float64(), hs),
            "pressure_GPa": nullable(pressure[keep], hs),
            "volume_A3": nullable(vol, np.isfinite(vol)),
            "temperature_K": nullable(temperature[keep], has_t[keep]),
            "method": _methods(pick(p.method)),
            "level_of_theory": pa.array(self._labels(functionals, hubbard_u, basis), pa.string()),
            "functional": pa.array(functionals, pa.string()),
            "hubbard_u": pa.array(hubbard_u, pa.bool_()),
            "basis": pa.array(basis, pa.string()),
            "charge": ints16(p.charge),
            "spin": ints16(p.spin),
            "smiles": strings(p.smiles),
        }
        return pa.Table.from_arrays([arrays[name] for name in FRAME_SCHEMA.names], schema=FRAME_SCHEMA)


def _text(col, pick, keep: np.ndarray, every: bool) -> pa.Array:
    """A per-frame string column of the valid frames: from an Arrow string array (columnar readers hand
    ``ids`` / ``keys`` over as one) or from a list (:func:`_string_array`)."""
    if isinstance(col, (pa.Array, pa.ChunkedArray)):
        col = col if every else col.take(pa.array(keep))
        return col if col.type == pa.string() else pc.cast(col, pa.string())
    return _string_array(pick(col))


def _pair_counts(frame: np.ndarray, z: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(frame * 256 + z, return_counts=True)`` (distinct (frame, Z) pairs, sorted, and their
    counts) by one sort of 32-bit keys when they fit (about twice as fast)."""
    key = (frame.astype(np.int32) << 8) | z if n < (1 << 23) else frame.astype(np.int64) * 256 + z
    key.sort()
    if not len(key):
        return key.astype(np.int64), np.zeros(0, np.int64)
    first = np.empty(len(key), bool)
    first[0] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return key[starts].astype(np.int64), np.diff(np.append(starts, len(key)))


def _finite_rows(a: np.ndarray) -> np.ndarray:
    """(m,) bool: every value of row i of ``a`` (m, k) is finite. A finite sum of every value proves it
    for all rows in one pass without a temporary (a NaN or inf makes the sum non-finite; so may an overflow
    of finite values, which the exact per-value check then clears)."""
    if a.size == 0 or np.isfinite(a.sum()):
        return np.ones(len(a), bool)
    return np.isfinite(a).all(axis=1)


def _methods(values: list) -> pa.Array:
    """The method column: values outside :data:`~monoculture.datasets.frames.METHODS` become ``unknown``."""
    try:
        known = set(values) <= _METHOD_SET
    except TypeError:  # an unhashable value from some reader
        known = False
    if not known:
        values = [m if m in METHODS else "unknown" for m in values]
    return pa.array(values, pa.string())


_METHOD_SET = frozenset(METHODS)


def _string_array(values: list) -> pa.Array:
    """Strings of a column, ``str()`` of anything that is not already a string."""
    if set(map(type, values)) != {str}:
        values = [v if type(v) is str else f"{v}" for v in values]
    return pa.array(values, pa.string())


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
    if isinstance(col, (list, tuple)) and col.count(None) == n:  # e.g. no temperature in the whole batch
        return np.full(n, np.nan), np.zeros(n, bool)
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
