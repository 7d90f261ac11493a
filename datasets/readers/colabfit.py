"""ColabFit Exchange ``co`` tables (configuration-property rows), as mirrored on Hugging Face
(``colabfit/*``: OMat24, OMol25, sAlex, Alexandria...), in the 2025 export schema and in the current
colabfit-tools schema (``metadata``, ``has_forces``, ``has_stress``). See ``../shared/FORMATS.md`` section 3.

Frame table: ``numbers`` = ``atomic_numbers``; ``positions`` (Å); ``cell`` = ``cell`` rows a, b, c (zeros
for a molecule); ``pbc`` from ``dimension_types`` (the source's periodicity; ``pbc`` is derived from the cell
since 2025-03 and is used only when ``dimension_types`` is absent); ``energy_eV`` = ``energy`` (total);
``forces`` = ``atomic_forces`` (eV/Å; null, or ``has_forces`` False, stays null); ``stress_GPa`` =
160.21766208 x Voigt(``cauchy_stress``) (eV/Å^3 with the source's sign, ASE sign for ASE-made sets), divided
by the cell volume first when ``cauchy_stress_volume_normalized`` (the stored value is a virial, eV);
``functional`` / ``hubbard_u`` / ``basis`` from ``method`` (``DFT-PBE`` -> PBE, ``DFT-PBE+U`` -> PBE+U,
``DFT-wB97M-V`` -> wB97M-V; ``+U`` unknown otherwise); ``id`` = ``property_id`` (else ``configuration_id``);
``charge``, ``spin`` (multiplicity) and ``temperature_K`` from the metadata JSON columns when they hold
``charge``, ``spin`` / ``spin_multiplicity``, ``temperature`` / ``temperature_K``. ``multiplicity`` is the
number of duplicates of a row in the dataset, **not** a spin multiplicity: it is not read.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..accounting import Accounting
from ..frames import EV_PER_A3_TO_GPA
from ..options import ReaderSpec, ReadOptions
from ..records import ArrayColumns
from . import _arrow_columns as A
from . import _parquet as P

__all__ = ["READER", "sniff", "sniff_directory",
           "FORMAT", "COLUMNS", "DESCRIPTION", "matches", "convert", "parse_method", "detect_card", "check",
           "shards", "iter_batches", "iter_records", "CARD_HINTS"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("colabfit", "ColabFit Exchange parquet (co tables, 2025 export and colabfit-tools schemas; "
                    "OMat24 / OMol25 / sAlex mirrors): a file or a dataset folder (--config)", __name__,
                    magic=(b"PAR1",), sniff_extensions=P.DATA_SUFFIXES, directories=True, unique_ids=True,
                    options=("config",), cards=("colabfit-omat24", "colabfit-omol25", "colabfit-salex"), order=90)

FORMAT = "colabfit"
DESCRIPTION = "ColabFit co table: atomic_numbers, positions, cell, property_id or configuration_id"
METADATA = ("configuration_metadata", "property_metadata", "metadata")
COLUMNS = ["property_id", "configuration_id", "atomic_numbers", "positions", "cell", "pbc", "dimension_types",
           "energy", "atomic_forces", "cauchy_stress", "cauchy_stress_volume_normalized", "method", "has_forces",
           "has_stress", *METADATA]
#: Dataset card by a word of the path or of ``ds.parquet``'s name (lower case), first match wins.
CARD_HINTS = (("omat", "colabfit-omat24"), ("omol", "colabfit-omol25"), ("salex", "colabfit-salex"))


def matches(names) -> bool:
    names = set(names)
    return {"atomic_numbers", "positions"} <= names and bool({"property_id", "configuration_id"} & names)


def parse_method(method: str | None) -> tuple[str | None, bool | None, str | None]:
    """(functional, hubbard_u, basis) of a ColabFit ``method``: ``DFT-PBE+U`` -> (PBE, True, None),
    ``DFT-wB97M-V`` -> (wB97M-V, None, None), ``DFT-B3LYP/6-31G*`` -> (B3LYP, None, 6-31G*); None -> all None
    (the card fills them)."""
    if not method or not method.strip():
        return None, None, None
    text = method.strip()
    if text.upper().startswith("DFT-") or text.upper().startswith("DFT_"):
        text = text[4:]
    functional, _, basis = text.partition("/")
    hubbard = None
    if functional.upper().endswith("+U"):
        functional, hubbard = functional[:-2], True
    return functional.strip() or None, hubbard, basis.strip() or None


def _metadata(rb: pa.RecordBatch, names: set, n: int) -> tuple[list, list, list]:
    """(charge, spin, temperature_K) per row from the metadata JSON columns (None where absent)."""
    charge, spin, temperature = [None] * n, [None] * n, [None] * n
    for col_name in METADATA:
        if col_name not in names:
            continue
        col = rb.column(col_name)
        if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
            continue
        hint = pc.fill_null(pc.or_(pc.or_(pc.match_substring(col, "charge"), pc.match_substring(col, "spin")),
                                   pc.match_substring(col, "temperature")), False)
        rows = np.flatnonzero(hint.to_numpy(zero_copy_only=False))
        if not len(rows):
            continue
        texts = col.take(pa.array(rows)).to_pylist()
        for i, text in zip(rows.tolist(), texts):
            try:
                doc = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(doc, dict):
                continue
            for key in ("charge",):
                if isinstance(doc.get(key), (int, float)) and charge[i] is None:
                    charge[i] = int(doc[key])
            for key in ("spin", "spin_multiplicity"):
                if isinstance(doc.get(key), (int, float)) and spin[i] is None:
                    spin[i] = int(doc[key])
            for key in ("temperature_K", "temperature"):
                if isinstance(doc.get(key), (int, float)) and temperature[i] is None:
                    temperature[i] = float(doc[key])
    return charge, spin, temperature


def _flags(rb: pa.RecordBatch, name: str, names: set, n: int) -> np.ndarray:
    """A bool column as (n,) bool, True where null or absent."""
    if name not in names:
        return np.ones(n, bool)
    return pc.fill_null(rb.column(name), True).to_numpy(zero_copy_only=False).astype(bool)


def convert(rb: pa.RecordBatch, rows: np.ndarray, ctx: P.Context, accounting: Accounting, file: str
            ) -> ArrayColumns | None:
    """One record batch as frame columns; rows that cannot be frames are counted as skipped."""
    n = rb.num_rows
    names = set(rb.schema.names)
    z_col = rb.column("atomic_numbers")
    lengths = A.list_lengths(z_col)
    pos, pos_valid, pos_bad = A.vectors(rb.column("positions"), 3, lengths)
    cell, cell_valid, cell_bad = A.optional_vectors(rb, "cell", 3, np.full(n, 3))
    forces, f_valid, f_bad = A.optional_vectors(rb, "atomic_forces", 3, lengths, absent=None)
    stress, s_valid, s_bad = A.optional_vectors(rb, "cauchy_stress", 3, np.full(n, 3))
    checks = [(lengths == 0, "no_atoms", "atomic_numbers is null or empty"),
              (~pos_valid, "bad_positions", "positions is null"),
              (pos_bad, "bad_positions", "positions is not nsites x 3"),
              (cell_bad, "bad_cell", "cell is not 3 x 3"),
              (f_bad, "bad_forces", "atomic_forces is not nsites x 3"),
              (s_bad, "bad_stress", "cauchy_stress is not 3 x 3")]
    passing = A.filtered(rb, accounting, file, ctx.rel, rows, checks)
    if passing is not None:  # convert the rows that pass the checks (none: nothing to convert)
        return convert(*passing, ctx, accounting, file) if passing[1].size else None

    numbers = pc.fill_null(z_col.flatten(), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    has_forces = f_valid & _flags(rb, "has_forces", names, n)
    if forces is not None and not np.array_equal(has_forces, f_valid):  # present but flagged absent: drop them
        forces = forces.reshape(-1, 3)[np.repeat(has_forces[f_valid], lengths[f_valid])]
    cb = A.new_columns(n)
    A.fill_atoms(cb, lengths, numbers, pos, forces, has_forces)
    cells = np.zeros((n, 9))
    cells[cell_valid] = cell.reshape(-1, 9)
    cb.cell = cells.ravel()
    m = cells.reshape(n, 3, 3)
    pbc = np.linalg.norm(m, axis=2) > 1e-10  # colabfit-tools' rule, when nothing else says
    if "pbc" in names:
        col = rb.column("pbc")
        ok = A.np_valid(col) & (A.list_lengths(col) == 3) if not pa.types.is_boolean(col.type) else A.np_valid(col)
        if pa.types.is_boolean(col.type):
            pbc[ok] = np.repeat(col.to_numpy(zero_copy_only=False)[ok][:, None], 3, axis=1)
        elif ok.any():
            pbc[ok] = A.floats(col.filter(pa.array(ok)).flatten()).reshape(-1, 3) != 0
    if "dimension_types" in names:
        col = rb.column("dimension_types")
        ok = A.np_valid(col) & (A.list_lengths(col) == 3)
        if ok.any():
            pbc[ok] = A.floats(col.filter(pa.array(ok)).flatten()).reshape(-1, 3) != 0
    cb.pbc = pbc.astype(np.int8).ravel()
    has_stress = s_valid & _flags(rb, "has_stress", names, n)
    voigt = np.full((n, 6), np.nan)
    if s_valid.any():
        voigt[s_valid] = A.to_voigt(stress.reshape(-1, 9))
        if "cauchy_stress_volume_normalized" in names:
            virial = pc.fill_null(rb.column("cauchy_stress_volume_normalized"), False).to_numpy(
                zero_copy_only=False).astype(bool)
            volume = np.abs(np.linalg.det(m))
            virial &= has_stress
            has_stress &= ~(virial & (volume <= 1e-8))  # a virial without a cell volume: no stress
            voigt[virial] /= np.where(volume[virial] > 1e-8, volume[virial], np.nan)[:, None]
    A.fill_stress(cb, voigt * EV_PER_A3_TO_GPA, has_stress)
    cb.energy = rb.column("energy").to_pylist() if "energy" in names else [None] * n
    methods = A.strings(rb.column("method") if "method" in names else None, n)
    parsed = {m: parse_method(m) for m in set(methods)}
    theory = [parsed[m] for m in methods]
    cb.functional = [t[0] for t in theory]
    cb.hubbard_u = [t[1] for t in theory]
    cb.basis = [t[2] for t in theory]
    cb.keys = A.keys(ctx.rel, rows)
    cb.ids = A.ids(*(rb.column(c) for c in ("property_id", "configuration_id") if c in names), cb.keys)
    cb.charge, cb.spin, cb.temperature = _metadata(rb, names, n)
    cb.method = ["unknown"] * n
    cb.subset = [ctx.subset] * n
    return cb


def _ds_name(path: Path) -> str:
    """The ``name`` of the ColabFit dataset row (``ds.parquet`` next to ``co/``), '' when absent."""
    path = Path(path)
    for folder in ([path] if path.is_dir() else []) + [path.parent, path.parent.parent]:
        ds = folder / "ds.parquet"
        if ds.is_file():
            try:
                import pyarrow.parquet as pq

                t = pq.read_table(ds, columns=["name"])
                return " ".join(str(x) for x in t.column("name").to_pylist())
            except Exception:  # noqa: BLE001 - a card hint only
                return ""
    return ""


def detect_card(path: Path, options: ReadOptions) -> str | None:
    """``colabfit-omat24`` / ``colabfit-omol25`` / ``colabfit-salex`` from the path or the ``ds.parquet`` name."""
    text = (A.path_text(path) + " " + _ds_name(path)).lower()
    for word, card in CARD_HINTS:
        if word in text:
            return card
    return None


#: The reader-module functions the registry calls, bound to this format.
check, shards, iter_batches, iter_records, sniff, sniff_directory = P.reader_functions(FORMAT)

