"""Turn a batch of parsed records into one validated frame table (:data:`~monoculture.datasets.frames.FRAME_SCHEMA`).

Readers only parse, in native units already converted to the frame table's units (eV, eV/Å, GPa, K, Å).
:class:`FrameBuilder` takes one input form, a *batch* (:meth:`FrameBuilder.build`): a list of segments,
each a :class:`~monoculture.datasets.records.ColumnBatch` of flat columns or a list of row tuples
(:data:`~monoculture.datasets.records.ROW_FIELDS` order), as
:class:`~monoculture.datasets.records.SegmentBatcher` gathers them for batch readers and
:func:`~monoculture.datasets.records.record_batches` for per-record readers (see
:mod:`monoculture.datasets.records`); records held in memory come as one batch of rows through
:func:`~monoculture.datasets.memory.frames_from_records`. Readers put a record that does not fit the flat
columns (ragged or mis-sized arrays, ``null`` inside an array, non-integer atomic numbers...) in a row, whose
conversion (:mod:`monoculture.datasets._convert`) follows the per-frame rules. Validation lives here, once,
for every format and segment kind: a frame with a non-finite energy, force, stress or position, an atomic
number outside 1..118, or no atoms is skipped with a reason and counted in the
:class:`~monoculture.datasets.accounting.Accounting`.

The output never depends on the segment kind a record came in (tested): rows are converted to numpy once
per batch, each column by one call when its values are regular, per frame with the same rules otherwise.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._convert import _Parts
from .accounting import Accounting
from .frames import FRAME_SCHEMA, METHODS, chemical_symbols
from .records import ColumnBatch, TheoryFill, level_of_theory_label

__all__ = ["FrameBuilder", "MAX_Z"]

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


class FrameBuilder:
    """Validate parsed records and emit them as :class:`pyarrow.Table` batches in ``FRAME_SCHEMA``.

    One way in: :meth:`build` validates one batch (a list of segments: row lists and
    :class:`~monoculture.datasets.records.ColumnBatch` columns, see :mod:`monoculture.datasets.records`)
    and emits it as one table. Readers hand it their batches through
    :meth:`Dataset.batches <monoculture.datasets.reading.Dataset.batches>`; records held in memory
    (:class:`~monoculture.datasets.records.RawFrame` objects) go through
    :func:`~monoculture.datasets.memory.frames_from_records`, which builds them as one batch of rows.
    It derives every column (fmax, frms, pressure, volume, species, formula) once per batch with
    vectorised numpy, so the per-frame cost of the builder stays well below the cost of parsing the
    source (``benchmarks/scale.py`` measures it).
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
    theory : TheoryFill, optional
        Completes ``functional`` / ``hubbard_u`` / ``basis`` of the valid frames of each batch.
    """

    def __init__(self, dataset: str, file: str, accounting: Accounting, *, theory: TheoryFill | None = None):
        self.dataset = dataset
        self.file = str(file)
        self.accounting = accounting
        self.theory = theory
        self._label_cache: dict[tuple, str] = {}

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


