"""Per-batch conversion of the builder's input (rows and flat columns) to numpy, before validation.

:class:`_Parts` is the common form of a batch whichever segments it came in: :meth:`_Parts.from_rows`
converts a list of row tuples (each column by one call when its values are regular, nested or flat Python
lists as a JSON parser returns them; per frame, with the same rules, when anything is irregular: numpy
arrays, scalars, ragged or mis-sized lists), :meth:`_Parts.from_columns` views a
:class:`~monoculture.datasets.records.ColumnBatch` without copying, and :meth:`_Parts.concat` joins the
segments of one batch. :class:`~monoculture.datasets.builder.FrameBuilder` validates the result.
"""
from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from itertools import chain

import numpy as np

from .records import ArrayColumns, ColumnBatch, _pylist

_NONE = type(None)

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
