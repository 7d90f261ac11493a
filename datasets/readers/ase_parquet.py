"""Parquet with ASE-style columns (community mirrors of MPtrj, Alexandria...): ``numbers``, ``positions``,
optional ``cell``, ``pbc``, ``energy``, ``forces``, ``stress``, ``id``, ``charge``, ``spin``.

Units are ASE's: positions and cell in Å (cell **rows** a, b, c; a 3 x 3 nested list or 9 numbers; null or
absent for a molecule), energy eV, forces eV/Å, stress eV/Å^3 with ASE sign (positive = tensile), as a 3 x 3
tensor or 6 Voigt numbers (xx, yy, zz, yz, xz, xy) -> ``stress_GPa`` x 160.21766208. The energy, forces and
stress column names follow ``ReadOptions.energy_key`` / ``forces_key`` / ``stress_key`` (``--format
ase-parquet`` with the ``ase`` reader's keys). ``pbc`` is a list of three flags or one flag; without it a
frame is periodic along every non-zero cell vector. ``id`` = the ``id`` column, else ``<file>:<row>``. No
level of theory is recorded: it comes from ``--level-of-theory`` or ``--dataset-card``.
"""
from __future__ import annotations



import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..accounting import Accounting
from ..frames import EV_PER_A3_TO_GPA
from ..options import ReaderSpec, ReadOptions
from ..records import ArrayColumns
from . import _arrow_columns as A
from . import _parquet as P

__all__ = ["READER", "sniff", "sniff_directory",
           "FORMAT", "COLUMNS", "DESCRIPTION", "matches", "columns_for", "convert", "check", "shards",
           "iter_batches", "iter_records"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("ase-parquet", "parquet / Arrow with ASE columns (numbers, positions, cell, pbc, energy, "
                    "forces, stress)", __name__, magic=(b"PAR1",), sniff_extensions=P.DATA_SUFFIXES, directories=True,
                    options=("config",), order=100)

FORMAT = "ase-parquet"
DESCRIPTION = "ASE columns: numbers, positions (+ cell, pbc, energy, forces, stress, id)"
COLUMNS = ["id", "numbers", "positions", "cell", "pbc", "energy", "forces", "stress", "charge", "spin"]


def matches(names) -> bool:
    return {"numbers", "positions"} <= set(names)


def columns_for(names, options: ReadOptions) -> list[str]:
    """The columns read from a file with these column names (energy / forces / stress keys of ``options``)."""
    wanted = ["id", "numbers", "positions", "cell", "pbc", options.energy_key, options.forces_key,
              options.stress_key, "charge", "spin"]
    names = set(names)
    return list(dict.fromkeys(c for c in wanted if c in names))


def _ints(rb: pa.RecordBatch, name: str, names: set, n: int) -> list:
    if name not in names or not pa.types.is_integer(rb.column(name).type):
        return [None] * n
    return rb.column(name).to_pylist()


def convert(rb: pa.RecordBatch, rows: np.ndarray, ctx: P.Context, accounting: Accounting, file: str
            ) -> ArrayColumns | None:
    """One record batch as frame columns; rows that cannot be frames are counted as skipped."""
    opts = ctx.options
    n = rb.num_rows
    names = set(rb.schema.names)
    z_col = rb.column("numbers")
    lengths = A.list_lengths(z_col)
    pos, pos_valid, pos_bad = A.vectors(rb.column("positions"), 3, lengths)
    cell, cell_valid, cell_bad = A.optional_vectors(rb, "cell", 3, np.full(n, 3))
    forces, f_valid, f_bad = A.optional_vectors(rb, opts.forces_key, 3, lengths, absent=None)
    s_counts = np.zeros(n, np.int64)
    if opts.stress_key in names:
        s_col = rb.column(opts.stress_key)
        s_valid = A.np_valid(s_col)
        leaves, s_counts = A.flat_values(s_col)
        stress = A.floats(leaves)
        s_bad = s_valid & (s_counts != 6) & (s_counts != 9)
    else:
        stress, s_valid, s_bad = np.zeros(0), np.zeros(n, bool), np.zeros(n, bool)
    checks = [(lengths == 0, "no_atoms", "numbers is null or empty"),
              (~pos_valid, "bad_positions", "positions is null"),
              (pos_bad, "bad_positions", "positions is not n_atoms x 3"),
              (cell_bad, "bad_cell", "cell is not 3 x 3"),
              (f_bad, "bad_forces", f"{opts.forces_key} is not n_atoms x 3"),
              (s_bad, "bad_stress", f"{opts.stress_key} is neither 3 x 3 nor 6 Voigt numbers")]
    passing = A.filtered(rb, accounting, file, ctx.rel, rows, checks)
    if passing is not None:  # convert the rows that pass the checks (none: nothing to convert)
        return convert(*passing, ctx, accounting, file) if passing[1].size else None

    numbers = pc.fill_null(z_col.flatten(), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    cb = A.new_columns(n)
    A.fill_atoms(cb, lengths, numbers, pos, forces, f_valid)
    cells = np.zeros((n, 9))
    cells[cell_valid] = cell.reshape(-1, 9)
    cb.cell = cells.ravel()
    pbc = np.linalg.norm(cells.reshape(n, 3, 3), axis=2) > 1e-10
    if "pbc" in names:
        col = rb.column("pbc")
        if pa.types.is_boolean(col.type):
            ok = A.np_valid(col)
            pbc[ok] = np.repeat(col.to_numpy(zero_copy_only=False)[ok].astype(bool)[:, None], 3, axis=1)
        else:
            ok = A.np_valid(col) & (A.list_lengths(col) == 3)
            if ok.any():
                pbc[ok] = A.floats(col.filter(pa.array(ok)).flatten()).reshape(-1, 3) != 0
    cb.pbc = pbc.astype(np.int8).ravel()
    voigt = np.full((n, 6), np.nan)
    if s_valid.any():
        counts = s_counts[s_valid]
        starts = np.concatenate(([0], np.cumsum(counts)))[:-1]
        six = counts == 6
        rows6 = np.flatnonzero(s_valid)[six]
        rows9 = np.flatnonzero(s_valid)[~six]
        if len(rows6):
            voigt[rows6] = stress[starts[six][:, None] + np.arange(6)]
        if len(rows9):
            voigt[rows9] = A.to_voigt(stress[starts[~six][:, None] + np.arange(9)])
    A.fill_stress(cb, voigt * EV_PER_A3_TO_GPA, s_valid)
    cb.energy = rb.column(opts.energy_key).to_pylist() if opts.energy_key in names else [None] * n
    cb.functional = [None] * n
    cb.hubbard_u = [None] * n
    cb.basis = [None] * n
    cb.keys = A.keys(ctx.rel, rows)
    cb.ids = A.ids(rb.column("id") if "id" in names else None, cb.keys)
    cb.charge = _ints(rb, "charge", names, n)
    cb.spin = _ints(rb, "spin", names, n)
    cb.method = ["unknown"] * n
    cb.subset = [ctx.subset] * n
    return cb


#: The reader-module functions the registry calls, bound to this format.
check, shards, iter_batches, iter_records, sniff, sniff_directory = P.reader_functions(FORMAT)

