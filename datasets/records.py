"""The records readers hand to :class:`~monoculture.datasets.builder.FrameBuilder`, and how they are batched.

A reader parses its source into frame-table units (eV, eV/Å, GPa, K, Å) and hands over *batches*: the one
input form of :meth:`FrameBuilder.build <monoculture.datasets.builder.FrameBuilder.build>`. A batch is a
list of *segments*, in reading order, each either

* a :class:`ColumnBatch` (or :class:`ArrayColumns`): frames already in flat columns, which fast readers fill
  while each parsed record is still in the CPU cache (nothing per atom survives as a Python object); or
* a list of *rows*: tuples of the :class:`RawFrame` fields in :data:`ROW_FIELDS` order, for records that do
  not fit the flat columns (ragged or mis-sized arrays, ``null`` inside an array...).

:class:`SegmentBatcher` gathers segments into batches of ``batch_size`` records for batch readers
(``iter_batches``); :func:`record_batches` does the same for per-record readers (``iter_records``, which
yield :class:`RawFrame` objects) and for in-memory records, and :func:`raw_frames` goes back from batches to
records.
"""
from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["RawFrame", "ROW_FIELDS", "ColumnBatch", "ArrayColumns", "SegmentBatcher", "raw_frames",
           "record_batches", "as_row", "level_of_theory_label", "TheoryFill"]


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
#: (see the module docstring).
ROW_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RawFrame))
_AS_ROW = attrgetter(*ROW_FIELDS)

#: ``fill(functional, hubbard_u, basis, numbers, offsets) -> (functional, hubbard_u, basis)``: completes the
#: level of theory of the valid frames of a batch (lists of length n; ``numbers`` (atoms,) uint8 Z of those
#: frames, ``offsets`` (n + 1,) int32 into it). :class:`~monoculture.datasets.reading.Dataset` passes one
#: that applies an override or the dataset card.
TheoryFill = Callable[[list, list, list, np.ndarray, np.ndarray], tuple[list, list, list]]


class ColumnBatch:
    """Frames in flat columns, as fast readers fill them (n frames, N atoms in all).

    Readers append to the buffers directly (``array.array`` ``extend`` from the parsed lists, which
    checks every value is a number) and to the per-frame lists, and hand the batch to
    :meth:`~monoculture.datasets.builder.FrameBuilder.build`; use :meth:`mark` / :meth:`rollback` to undo a
    partly appended record.
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
    reading order, for :meth:`~monoculture.datasets.builder.FrameBuilder.build`.

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


def as_row(raw: "RawFrame") -> tuple:
    """The row of a record: its fields in :data:`ROW_FIELDS` order."""
    return _AS_ROW(raw)


def record_batches(records: Iterable["RawFrame"], batch_size: int) -> Iterator[list]:
    """Batches (one-segment lists of rows) of ``batch_size`` records, the last one partial: the per-record
    form of a reader (or a list of in-memory records) turned into the builder's one input form."""
    rows: list[tuple] = []
    for raw in records:
        rows.append(_AS_ROW(raw))
        if len(rows) >= batch_size:
            yield [rows]
            rows = []
    if rows:
        yield [rows]
