"""Arrow -> numpy helpers of the columnar converters (LeMat, ColabFit, ASE parquet columns, Atompack).

Each turns one Arrow column (or record batch) into the flat numpy arrays of
:class:`~monoculture.datasets.records.ArrayColumns`, with nulls marked and shapes checked: per-frame
lengths, float64 values (nulls -> NaN), (N, width) vectors, Voigt stresses, the frame ids and keys, and the
skips of rows that cannot be frames. The file-level machinery (schemas, Hugging Face folders, streaming,
shards) is :mod:`._parquet`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..accounting import Accounting
from ..records import ArrayColumns

__all__ = ["np_valid", "list_lengths", "floats", "flat_values", "optional_vectors", "vectors", "strings", "to_voigt",
           "skip_rows", "new_columns", "fill_atoms", "fill_stress", "keys", "text", "ids", "path_text"]


def np_valid(col: pa.Array) -> np.ndarray:
    """(n,) bool: the value is not null."""
    if col.null_count == 0:
        return np.ones(len(col), bool)
    return ~col.is_null().to_numpy(zero_copy_only=False)


def list_lengths(col: pa.Array) -> np.ndarray:
    """(n,) int64 lengths of a list column (0 for null)."""
    if pa.types.is_fixed_size_list(col.type):
        return np.where(np_valid(col), col.type.list_size, 0).astype(np.int64)
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        lengths = np.diff(col.offsets.to_numpy()).astype(np.int64)
        if col.null_count:
            lengths[~np_valid(col)] = 0
        return lengths
    return pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False).astype(np.int64)


def floats(arr: pa.Array) -> np.ndarray:
    """A numeric array as float64 numpy (nulls -> NaN)."""
    if not pa.types.is_floating(arr.type) or arr.type != pa.float64():
        arr = pc.cast(arr, pa.float64())
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def flat_values(col: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Flatten nested lists of a column completely: (leaf values, per-row leaf counts (n,) int64)."""
    valid_lengths = list_lengths(col)
    counts = valid_lengths.copy()
    arr = col.flatten()
    while pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        inner = list_lengths(arr)
        owners = np.repeat(np.arange(len(col)), counts)
        counts = np.bincount(owners, weights=inner, minlength=len(col)).astype(np.int64)
        arr = arr.flatten()
    return arr, counts


def optional_vectors(rb: pa.RecordBatch, name: str, width: int, expected: np.ndarray, absent="empty"
                     ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """:func:`vectors` of column ``name`` of ``rb``; without that column ``(values, no row valid, no row bad)``
    where ``values`` is an empty array, or None when ``absent`` is None (per-atom columns: no array at all)."""
    if name in rb.schema.names:
        return vectors(rb.column(name), width, expected)
    n = rb.num_rows
    return (None if absent is None else np.zeros(0)), np.zeros(n, bool), np.zeros(n, bool)


def vectors(col: pa.Array, width: int, expected: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A per-row array column (``list<list<double>>`` N x width, or flat N*width) as numbers.

    Returns (values (sum over valid rows of their leaf counts,) float64, valid (n,) bool, bad (n,) bool):
    ``bad`` marks a valid row whose leaf count is not ``width`` times ``expected`` (when given), or not a
    multiple of ``width``, or whose nested rows are not all of length ``width``.
    """
    valid = np_valid(col)
    if pa.types.is_list(col.type) and pa.types.is_list(col.type.value_type):  # the usual N x 3: offsets only
        inner = col.flatten()
        if inner.null_count == 0:
            ioff = inner.offsets.to_numpy()
            if len(inner) == 0 or (np.diff(ioff) == width).all():
                lengths = list_lengths(col)
                bad = valid & (lengths != expected) if expected is not None else np.zeros(len(col), bool)
                return floats(inner.flatten()), valid, bad
    leaves, counts = flat_values(col)
    bad = valid & (counts % width != 0)
    if expected is not None:
        bad |= valid & (counts != expected * width)
    arr = col.flatten()
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        inner = list_lengths(arr)
        if (inner != width).any():  # e.g. [[x, y, z, w], [x, y]]: six numbers, two wrong atoms
            owners = np.repeat(np.arange(len(col)), list_lengths(col))
            bad[owners[inner != width]] = True
    return floats(leaves), valid, bad


def strings(col: pa.Array | None, n: int, fn=None) -> list:
    """A string column as a list (None for null), each value through ``fn`` when given; a dictionary column
    is mapped once per distinct value."""
    if col is None:
        return [None] * n
    if pa.types.is_dictionary(col.type):
        values = col.dictionary.to_pylist()
        table = np.array([fn(v) if fn else v for v in values] + [None], dtype=object)
        return table[pc.fill_null(col.indices, len(values)).to_numpy(zero_copy_only=False)].tolist()
    values = col.to_pylist()
    if fn is None:
        return values
    mapped = {v: fn(v) for v in set(values)}
    return [mapped[v] for v in values]


def to_voigt(m9: np.ndarray) -> np.ndarray:
    """Row-major 3x3 tensors (k, 9) -> Voigt (xx, yy, zz, yz, xz, xy) (k, 6)."""
    return m9[:, [0, 4, 8, 5, 2, 1]]


def skip_rows(accounting: Accounting, file: str, rel: str, rows: np.ndarray, masks: list) -> np.ndarray:
    """Count rows as skipped for the first failing rule of ``masks`` ([(mask, reason, detail)], ``mask``
    (n,) bool, ``detail`` one text for every row or a sequence of n texts, one per row), each row at most
    once; returns the keep mask (n,) bool."""
    drop = np.zeros(len(rows), bool)
    for mask, reason, detail in masks:
        new = mask & ~drop
        for i in np.flatnonzero(new):
            accounting.skip(file, f"{rel}:{rows[i]}", reason, detail if isinstance(detail, str) else detail[i])
        drop |= new
    return ~drop


def filtered(rb, accounting: Accounting, file: str, rel: str, rows: np.ndarray, masks: list):
    """``None`` when no row of the record batch ``rb`` fails a rule of ``masks``; otherwise the rows that pass,
    as ``(batch, rows)`` (the failing ones counted as skipped by :func:`skip_rows`)."""
    if not np.logical_or.reduce([m for m, _, _ in masks]).any():
        return None
    keep = skip_rows(accounting, file, rel, rows, masks)
    return rb.filter(pa.array(keep)), rows[keep]


def new_columns(n: int) -> ArrayColumns:
    cb = ArrayColumns(stress_width=6, stress_factor=1.0)
    cb.temperature = [None] * n
    cb.charge = [None] * n
    cb.spin = [None] * n
    return cb


def fill_atoms(cb: ArrayColumns, lengths: np.ndarray, numbers: np.ndarray, positions: np.ndarray,
               forces: np.ndarray | None, has_forces: np.ndarray) -> None:
    """Set the per-atom buffers; ``forces`` holds values for the atoms of frames with forces only."""
    cb.lengths = np.ascontiguousarray(lengths, np.int64)
    cb.numbers = np.ascontiguousarray(numbers, np.int64)
    cb.positions = np.ascontiguousarray(positions, np.float64).ravel()
    n_atoms = int(lengths.sum())
    if has_forces.all():
        cb.forces = np.ascontiguousarray(forces, np.float64).ravel()
    else:
        full = np.full((n_atoms, 3), np.nan)
        if forces is not None and len(forces):
            full[np.repeat(has_forces, lengths)] = forces.reshape(-1, 3)
        cb.forces = full.ravel()
    cb.has_forces = has_forces.astype(np.int8)


def fill_stress(cb: ArrayColumns, voigt_gpa: np.ndarray, has_stress: np.ndarray) -> None:
    """Stress (n, 6) GPa, ASE sign (any value where ``has_stress`` is False)."""
    cb.stress = np.ascontiguousarray(np.where(has_stress[:, None], voigt_gpa, np.nan), np.float64).ravel()
    cb.has_stress = has_stress.astype(np.int8)


def keys(rel: str, rows: np.ndarray) -> pa.Array:
    """Record keys ``<file in the dataset>:<row>`` (string array)."""
    return pc.binary_join_element_wise(rel + ":", pc.cast(pa.array(rows, pa.int64()), pa.string()), "")


def text(col: pa.Array | None) -> pa.Array | None:
    """A column as a string array (None stays None)."""
    if col is None:
        return None
    return col if col.type == pa.string() else pc.cast(col, pa.string())


def ids(*candidates: pa.Array | None) -> pa.Array:
    """The first non-null value of each row among the candidate string columns (the last one has no null)."""
    cols = [text(c) for c in candidates if c is not None]
    if len(cols) == 1 or cols[0].null_count == 0:
        return cols[0]
    return pc.coalesce(*cols)


def path_text(path: Path) -> str:
    return str(Path(path).resolve()).lower()
