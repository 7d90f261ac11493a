"""LeMat-Bulk and LeMat-Traj parquet (LeMaterial, Hugging Face ``LeMaterial/LeMat-Bulk``, ``LeMat-Traj``).

Columns (OPTIMADE names, see ``../shared/FORMATS.md`` sections 1-2): ``cartesian_site_positions`` (N x 3, Å),
``lattice_vectors`` (3 x 3, Å, **rows** a, b, c), ``species`` (OPTIMADE species list as JSON text),
``species_at_sites`` (species name per site), ``dimension_types``, ``energy`` (total, eV, uncorrected),
``forces`` (N x 3, eV/Å, nullable), ``stress_tensor`` (3 x 3, nullable, **kBar with VASP sign**: positive =
compressive), ``functional`` (``pbe``, ``pbesol``, ``scan``, ``r2scan``), ``immutable_id``; LeMat-Traj adds
``id`` (one per frame), ``relaxation_step``, ``relaxation_number``, ``energy_corrected``.

Frame table: ``numbers`` from ``species_at_sites`` through the ``species`` JSON (``name`` ->
``chemical_symbols``; a site of a species with several symbols or a concentration other than 1 is a
disordered site: the row is skipped as ``disordered_site``); ``cell`` = the rows as written; ``pbc`` =
``dimension_types`` != 0, row by row (a null or not three long value: periodic, LeMat's ``[1, 1, 1]``);
``stress_GPa = -0.1 x Voigt(stress_tensor)`` (GPa, ASE sign); nulls stay nulls; ``energy_eV`` = ``energy``
(``energy_corrected`` is not read); ``functional`` = PBE / PBEsol / SCAN / r2SCAN from the column,
``hubbard_u`` null (not recorded: ``pbe`` mixes GGA and GGA+U rows); ``method`` = ``relax``; ``id`` =
``immutable_id/functional`` (LeMat-Bulk: one material per functional) or ``id`` (LeMat-Traj); ``subset`` =
the config of a dataset folder read with several configs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from ase.data import atomic_numbers as _ASE_Z

from ..accounting import Accounting
from ..frames import KBAR_TO_GPA
from ..options import ReaderSpec, ReadOptions
from ..records import ArrayColumns
from . import _arrow_columns as A
from . import _parquet as P

__all__ = ["READER", "sniff", "sniff_directory",
           "FORMAT", "COLUMNS", "DESCRIPTION", "matches", "convert", "detect_card", "check", "shards",
           "iter_batches", "iter_records", "FUNCTIONALS"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("lemat", "LeMat-Bulk / LeMat-Traj parquet (LeMaterial on Hugging Face; also datasets' .arrow "
                    "cache): a file, a shard folder or a dataset folder (--config)", __name__, magic=(b"PAR1",),
                    sniff_extensions=P.DATA_SUFFIXES, directories=True, unique_ids=True, options=("config",),
                    cards=("lemat-bulk", "lemat-traj"), order=80)

FORMAT = "lemat"
DESCRIPTION = "LeMat-Bulk / LeMat-Traj: species_at_sites, cartesian_site_positions, lattice_vectors, species"
REQUIRED = frozenset({"species_at_sites", "cartesian_site_positions", "lattice_vectors", "species"})
#: String columns read as Arrow dictionaries (repeated along a trajectory / a config).
DICTIONARY = ("species", "functional")
COLUMNS = ["immutable_id", "id", "cartesian_site_positions", "lattice_vectors", "species", "species_at_sites",
           "dimension_types", "energy", "forces", "stress_tensor", "functional"]
#: ``functional`` column value -> frame-table functional.
FUNCTIONALS = {"pbe": "PBE", "pbesol": "PBEsol", "scan": "SCAN", "r2scan": "r2SCAN"}
_SPECIES_CACHE: dict[str, dict | str] = {}


def matches(names) -> bool:
    return REQUIRED <= set(names)


def _kind(names) -> str:
    """``lemat-traj`` for a schema with the relaxation columns, else ``lemat-bulk`` (the card's name)."""
    names = set(names)
    return "lemat-traj" if {"relaxation_step", "relaxation_number"} & names else "lemat-bulk"


def _species(text: str | None) -> tuple[dict | str | None, bool]:
    """(kind, plain) of an OPTIMADE species JSON text. ``kind``: ``{name: Z}``; a string saying why for a
    disordered species; None when the text is absent or not such JSON (names are then read as element
    symbols). ``plain``: every name is its own element symbol (the common case: read by symbol)."""
    if text is None:
        return None, True
    hit = _SPECIES_CACHE.get(text)
    if hit is not None:
        return hit
    try:
        entries = orjson.loads(text)
        out: dict | str = {}
        for sp in entries:
            symbols = sp.get("chemical_symbols") or []
            conc = sp.get("concentration") or [1]
            if len(symbols) != 1 or len(conc) != 1 or abs(float(conc[0]) - 1.0) > 1e-8:
                out = f"species {sp.get('name')!r}: symbols {symbols}, concentration {conc}"
                break
            out[sp["name"]] = _ASE_Z.get(symbols[0], 0) if symbols[0] != "X" else 0
    except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError, ValueError):
        return None, True
    plain = isinstance(out, dict) and all(z == _ASE_Z.get(name, -1) for name, z in out.items())
    if len(_SPECIES_CACHE) >= 200_000:
        _SPECIES_CACHE.clear()
    _SPECIES_CACHE[text] = hit = (out, plain)
    return hit


def _functional(value: str | None) -> str | None:
    """``pbe`` -> ``PBE`` ... (:data:`FUNCTIONALS`); other values as written; None stays None (card)."""
    return FUNCTIONALS.get(value.lower(), value) if value else None


#: (dictionary array, its parsed species): the batches of a row group carry equal dictionaries.
_LAST_DICTIONARY: tuple = (None, None)


def _parsed_dictionary(dictionary: pa.Array) -> list:
    """:func:`_species` of every entry of a ``species`` dictionary, and ``(None, True)`` for null."""
    global _LAST_DICTIONARY
    last, parsed = _LAST_DICTIONARY
    if last is not None and len(last) == len(dictionary) and last.equals(dictionary):
        return parsed
    parsed = [_species(t) for t in dictionary.to_pylist()] + [(None, True)]
    _LAST_DICTIONARY = (dictionary, parsed)
    return parsed


def _symbol_table() -> np.ndarray:
    """Z by the bytes of an element symbol of one or two characters (code ``b0 * 256 + b1``; 0 otherwise)."""
    table = np.zeros(1 << 16, np.int64)
    for symbol, z in _ASE_Z.items():
        raw = symbol.encode()
        if symbol != "X" and 1 <= len(raw) <= 2:
            table[raw[0] * 256 + (raw[1] if len(raw) == 2 else 0)] = z
    return table


_SYMBOL_Z = _symbol_table()


def _short_symbols(names: pa.Array) -> np.ndarray | None:
    """Z of every string of ``names`` read from the Arrow buffers when all are one or two bytes (element
    symbols), without a Python string per site; None otherwise."""
    if names.null_count or not pa.types.is_string(names.type) or len(names) == 0:
        return None
    _, off_buf, data_buf = names.buffers()
    offsets = np.frombuffer(off_buf, np.int32)[names.offset: names.offset + len(names) + 1]
    lens = np.diff(offsets)
    if lens.min() < 1 or lens.max() > 2:
        return None
    data = np.frombuffer(data_buf, np.uint8)
    starts = offsets[:-1]
    second = np.where(lens == 2, data[np.minimum(starts + 1, len(data) - 1)], 0)
    return _SYMBOL_Z[data[starts].astype(np.int64) * 256 + second]


def _numbers(rb: pa.RecordBatch, n: int, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """(numbers (sum lengths,) int64, disordered (n,) bool, details) from ``species_at_sites`` and ``species``."""
    names = rb.column("species_at_sites").flatten()
    numbers = _short_symbols(names)
    dict_names = idx = None
    if numbers is None:
        enc = pc.dictionary_encode(names)
        dict_names = enc.dictionary.to_pylist()
        by_symbol = np.array([(_ASE_Z.get(x, 0) if x != "X" else 0) for x in dict_names] + [0], np.int64)
        idx = pc.fill_null(enc.indices, len(dict_names)).to_numpy(zero_copy_only=False).astype(np.int64)
        numbers = by_symbol[idx]  # the last entry of by_symbol: a null site name
    disordered = np.zeros(n, bool)
    details = [""] * n
    species = rb.column("species")
    if not pa.types.is_dictionary(species.type):
        species = pc.dictionary_encode(species)
    parsed = _parsed_dictionary(species.dictionary)
    plain = np.fromiter((p[1] for p in parsed), bool, len(parsed))
    row_kind = pc.fill_null(species.indices, len(parsed) - 1).to_numpy(zero_copy_only=False).astype(np.int64)
    irregular = np.flatnonzero(~plain[row_kind])
    if not len(irregular):
        return numbers, disordered, details
    if dict_names is None:
        enc = pc.dictionary_encode(names)
        dict_names = enc.dictionary.to_pylist()
        idx = pc.fill_null(enc.indices, len(dict_names)).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)))
    for i in irregular:
        k = parsed[row_kind[i]][0]
        if isinstance(k, str):
            disordered[i], details[i] = True, k
            continue
        a, b = starts[i], starts[i + 1]
        numbers[a:b] = [k.get(dict_names[j], 0) if j < len(dict_names) else 0 for j in idx[a:b].tolist()]
    return numbers, disordered, details


def convert(rb: pa.RecordBatch, rows: np.ndarray, ctx: P.Context, accounting: Accounting, file: str
            ) -> ArrayColumns | None:
    """One record batch as frame columns; rows that cannot be frames are counted as skipped."""
    n = rb.num_rows
    names = set(rb.schema.names)
    sites = rb.column("species_at_sites")
    lengths = A.list_lengths(sites)
    pos, pos_valid, pos_bad = A.vectors(rb.column("cartesian_site_positions"), 3, lengths)
    cell, cell_valid, cell_bad = A.vectors(rb.column("lattice_vectors"), 3, np.full(n, 3))
    numbers, disordered, details = _numbers(rb, n, lengths)
    forces, f_valid, f_bad = A.optional_vectors(rb, "forces", 3, lengths, absent=None)
    stress, s_valid, s_bad = A.optional_vectors(rb, "stress_tensor", 3, np.full(n, 3))
    checks = [(disordered, "disordered_site", details),  # each failing row is counted once, for its first rule
              (lengths == 0, "no_atoms", "no species_at_sites"),
              (~pos_valid, "bad_positions", "cartesian_site_positions is null"),
              (pos_bad, "bad_positions", "cartesian_site_positions is not nsites x 3"),
              (cell_bad, "bad_cell", "lattice_vectors is not 3 x 3"),
              (f_bad, "bad_forces", "forces is not nsites x 3"),
              (s_bad, "bad_stress", "stress_tensor is not 3 x 3")]
    passing = A.filtered(rb, accounting, file, ctx.rel, rows, checks)
    if passing is not None:  # convert the rows that pass the checks (none: nothing to convert)
        return convert(*passing, ctx, accounting, file) if passing[1].size else None

    cb = A.new_columns(n)
    A.fill_atoms(cb, lengths, numbers, pos, forces, f_valid)
    full_cell = np.zeros((n, 9))
    full_cell[cell_valid] = cell.reshape(-1, 9)
    cb.cell = full_cell.ravel()
    pbc = np.ones((n, 3), np.int8)  # LeMat is always 3D: a row without three dimension_types is periodic
    if "dimension_types" in names:
        dims = rb.column("dimension_types")
        d_valid = A.np_valid(dims) & (A.list_lengths(dims) == 3)
        if d_valid.any():
            pbc[d_valid] = A.floats(dims.filter(pa.array(d_valid)).flatten()).reshape(-1, 3) != 0
    cb.pbc = pbc.ravel()
    voigt = np.full((n, 6), np.nan)
    if s_valid.any():
        voigt[s_valid] = -KBAR_TO_GPA * A.to_voigt(stress.reshape(-1, 9))  # kBar, VASP sign -> GPa, ASE sign
    A.fill_stress(cb, voigt, s_valid)
    cb.energy = rb.column("energy").to_pylist() if "energy" in names else [None] * n
    cb.functional = A.strings(rb.column("functional") if "functional" in names else None, n, _functional)
    cb.hubbard_u = [None] * n
    cb.basis = [None] * n
    cb.keys = A.keys(ctx.rel, rows)
    if "id" in names:  # LeMat-Traj: one id per frame
        cb.ids = A.ids(rb.column("id"), cb.keys)
    elif "immutable_id" in names:  # LeMat-Bulk: a material id per functional
        immutable = A.text(rb.column("immutable_id"))
        joined = pc.binary_join_element_wise(immutable, A.text(rb.column("functional")), "/") \
            if "functional" in names else None
        cb.ids = A.ids(joined, immutable, cb.keys)
    else:
        cb.ids = cb.keys
    cb.method = ["relax"] * n
    cb.subset = [ctx.subset] * n
    return cb


def detect_card(path: Path, options: ReadOptions) -> str | None:
    """``lemat-traj`` or ``lemat-bulk`` from the columns of the first data file."""
    for f, _c, _rel in P.data_files(path, options)[:1]:
        return _kind(P.read_schema(f).names)
    return None


#: The reader-module functions the registry calls, bound to this format.
check, shards, iter_batches, iter_records, sniff, sniff_directory = P.reader_functions(FORMAT)

