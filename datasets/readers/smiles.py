"""SMILES reader: ``.smi`` / ``.smiles`` line files and ``.csv`` / ``.tsv`` tables with a SMILES column.

A SMILES string has no geometry, so every frame has ``positions`` null, no cell and ``pbc`` all False. What
the frame table gets:

* ``numbers``: atoms of the molecule with every hydrogen made explicit (``Chem.AddHs``), so ``n_atoms`` and
  ``formula`` count the hydrogens a SMILES leaves implicit.
* ``charge``: total formal charge (e); ``spin``: multiplicity = radical electrons + 1 (high-spin guess).
* ``smiles``: the string exactly as written in the file; ``method`` ``unknown``; no energy.

``.smi`` lines are ``SMILES [name]`` (whitespace separated); blank lines and ``#`` comments are ignored, and
a first line whose first word is ``smiles`` is taken as a header. Tables are streamed row by row with the
:mod:`csv` module; the SMILES column is ``ReadOptions.smiles_column`` (``--smiles-column``) or the first column
named ``smiles``, ``canonical_smiles`` or ``smi``, else the first whose name contains ``smiles`` (any case:
PubChem's ``IsomericSMILES``); the id column is ``ReadOptions.id_column`` (``--id-column``) or the first named
``id``, ``name`` or ``mol_id``. A table without its SMILES column is one failed record naming the file, its
columns and the option (and, opened on its own, an error at open: :func:`check`).

A string RDKit rejects is skipped as ``invalid_smiles`` with RDKit's own message as detail (RDKit's logging
is captured, not printed); an undecodable line or row is counted as failed.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

from ..accounting import Accounting
from ..errors import InputError
from ..options import ReaderSpec, ReadOptions, inner_name
from ..records import RawFrame
from ._common import open_maybe_compressed

__all__ = ["READER", "iter_records", "check", "mol_from_smiles", "molecule_frame", "composition", "rdkit_messages",
           "SMILES_COLUMNS", "ID_COLUMNS"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("smiles", "SMILES tables: .smi, or .csv/.tsv with a SMILES column (RDKit)", __name__,
                    extensions=(".smi", ".smiles", ".csv", ".tsv"), options=("smiles_column", "id_column"), order=40)

#: Column names (lower case) recognised as holding SMILES, in order of preference.
SMILES_COLUMNS = ("smiles", "canonical_smiles", "smi")
#: Column names (lower case) recognised as holding a molecule id.
ID_COLUMNS = ("id", "name", "mol_id")

_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ", re.MULTILINE)


def rdkit_messages(capture, limit: int = 200) -> str:
    """Text of an ``rdBase.CaptureErrorLog``: no timestamps, lines joined by ``; ``, cut to ``limit`` characters.

    RDKit echoes the offending input, which may hold bytes that are not UTF-8; such a log is replaced by a
    placeholder rather than raising.
    """
    try:
        text = capture.messages
    except UnicodeDecodeError:
        return "RDKit error message with bytes that are not UTF-8"
    lines = [ln.strip() for ln in _TIMESTAMP.sub("", text).splitlines() if ln.strip()]
    return "; ".join(lines)[:limit]


def mol_from_smiles(smiles: str):
    """Parse and sanitize a SMILES string with RDKit's logging silenced.

    Parameters
    ----------
    smiles : str
        The SMILES string.

    Returns
    -------
    tuple
        ``(mol, None)`` on success, ``(None, reason)`` when RDKit rejects the string; ``reason`` is RDKit's
        error message (syntax error, valence problem...).
    """
    from rdkit import Chem, rdBase

    if "\x00" in smiles:
        return None, "SMILES contains a NUL character"
    with rdBase.BlockLogs(), rdBase.CaptureErrorLog() as capture:
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None, rdkit_messages(capture) or "RDKit could not parse the SMILES"
    return mol, None


def composition(mol) -> tuple[list[int], int]:
    """Atomic numbers with every hydrogen explicit, and the number of radical electrons.

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        Sanitized molecule.

    Returns
    -------
    numbers : list of int
        Z of the graph's atoms, then one 1 per implicit hydrogen: the atoms ``Chem.AddHs(mol)`` would have,
        in the same order, without building that molecule.
    radicals : int
        Unpaired electrons summed over atoms.
    """
    numbers, n_h, radicals = [], 0, 0
    for i in range(mol.GetNumAtoms()):
        atom = mol.GetAtomWithIdx(i)
        numbers.append(atom.GetAtomicNum())
        n_h += atom.GetTotalNumHs()
        radicals += atom.GetNumRadicalElectrons()
    return numbers + [1] * n_h, radicals


def molecule_frame(mol, frame_id: str, key: str, smiles: str | None) -> RawFrame:
    """A :class:`RawFrame` without geometry for an RDKit molecule (hydrogens made explicit).

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        Sanitized molecule.
    frame_id, key : str
        Frame id and record key (see :class:`RawFrame`).
    smiles : str or None
        Value of the ``smiles`` column.

    Returns
    -------
    RawFrame
        ``charge`` is the total formal charge (e), ``spin`` the multiplicity radical electrons + 1.
    """
    from rdkit import Chem

    numbers, radicals = composition(mol)
    return RawFrame(
        id=frame_id,
        key=key,
        numbers=numbers,
        pbc=(False, False, False),
        method="unknown",
        charge=Chem.GetFormalCharge(mol),
        spin=radicals + 1,
        smiles=smiles,
    )


def _frame_or_skip(smiles: str, name: str | None, key: str, default_id: str, file: str,
                   accounting: Accounting) -> RawFrame | None:
    if not smiles:
        accounting.skip(file, key, "invalid_smiles", "empty SMILES")
        return None
    mol, reason = mol_from_smiles(smiles)
    if mol is None:
        accounting.skip(file, key, "invalid_smiles", f"{smiles[:80]!r}: {reason}")
        return None
    return molecule_frame(mol, name or default_id, key, smiles)


def _iter_smi(path: Path, accounting: Accounting) -> Iterator[RawFrame]:
    file = str(path)
    seen_content = False
    lineno = 0
    with open_maybe_compressed(path) as fh:
        try:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError as exc:
                    accounting.fail(file, f"line {lineno}", "undecodable_line", str(exc)[:200])
                    seen_content = True
                    continue
                if not line or line.startswith("#"):
                    continue
                parts = line.split(None, 1)
                if not seen_content and parts[0].lower() in SMILES_COLUMNS:
                    seen_content = True  # a header line, not a record
                    continue
                seen_content = True
                name = parts[1].strip() if len(parts) > 1 else None
                frame = _frame_or_skip(parts[0], name, f"line {lineno}", f"{path.name}:{lineno}", file,
                                       accounting)
                if frame is not None:
                    yield frame
        except (OSError, EOFError) as exc:
            accounting.fail(file, f"after line {lineno}", "truncated_or_corrupt_file", str(exc)[:200])


def _pick_column(header: list[str], wanted: str | None, names: tuple[str, ...], contains: str | None = None
                 ) -> int | None:
    """Index of the column ``wanted`` (exact name, else any case), else of the first of ``names`` (any case),
    else of the first whose name contains ``contains`` (any case); None when there is none."""
    lowered = [h.strip().lower() for h in header]
    if wanted is not None:
        if wanted in header:
            return header.index(wanted)
        return lowered.index(wanted.strip().lower()) if wanted.strip().lower() in lowered else None
    for name in names:
        if name in lowered:
            return lowered.index(name)
    if contains is not None:
        return next((i for i, h in enumerate(lowered) if contains in h), None)
    return None


def _columns(header: list[str], options: ReadOptions, file: str) -> tuple[int, int | None]:
    """(SMILES column, id column) of a table header.

    Raises
    ------
    InputError
        When the SMILES column (or the asked-for id column) is not in the header: the message names the
        file, the columns it has and the option that picks one.
    """
    smiles_col = _pick_column(header, options.smiles_column, SMILES_COLUMNS, contains="smiles")
    have = ", ".join(repr(h[:40]) for h in header[:20]) + (", ..." if len(header) > 20 else "") or "none"
    if smiles_col is None:
        what = (f"no column {options.smiles_column!r}" if options.smiles_column
                else "no SMILES column (none named like 'smiles')")
        raise InputError(f"{file}: {what}; its columns are {have}; pass --smiles-column NAME")
    id_col = _pick_column(header, options.id_column, ID_COLUMNS)
    if id_col is None and options.id_column is not None:
        raise InputError(f"{file}: no column {options.id_column!r}; its columns are {have}; pass --id-column NAME")
    return smiles_col, id_col


def _open_table(raw, tsv: bool):
    """(csv reader, first row) of a binary stream; the first row is None for an empty file."""
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
    first = text.readline()
    delimiter = "\t" if tsv or ("\t" in first and "," not in first) else ","
    rows = csv.reader(_chain(first, text), delimiter=delimiter)
    return rows, next(rows, None)


def _is_table(path: Path) -> tuple[bool, bool]:
    """(is a CSV / TSV table, is TSV), by the name without compression suffix."""
    name = inner_name(path.name).lower()
    return name.endswith((".csv", ".tsv")), name.endswith(".tsv")


def check(path: Path, options: ReadOptions) -> None:
    """Raise :class:`InputError` when ``path`` is a table whose header lacks the SMILES (or asked-for id) column.

    Parameters
    ----------
    path : Path
        The file; ``.smi`` files and unreadable headers pass (the reading counts what goes wrong).
    options : ReadOptions
        ``smiles_column`` / ``id_column``.
    """
    path = Path(path)
    table, tsv = _is_table(path)
    if not table:
        return
    try:
        with open_maybe_compressed(path) as raw:
            _, header = _open_table(raw, tsv)
    except (OSError, EOFError, ValueError, csv.Error):  # unreadable: counted when read
        return
    if header is not None:
        _columns(header, options, str(path))


def _iter_table(path: Path, tsv: bool, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]:
    file = str(path)
    with open_maybe_compressed(path) as raw:
        try:
            try:
                rows, header = _open_table(raw, tsv)
            except csv.Error as exc:
                accounting.fail(file, "header", "bad_header", str(exc)[:200])
                return
            if header is None:
                return
            try:
                smiles_col, id_col = _columns(header, options, file)
            except InputError as exc:
                accounting.fail(file, "header", "no_smiles_column", str(exc).removeprefix(f"{file}: ")[:300])
                return
            yield from _table_rows(rows, smiles_col, id_col, path, accounting)
        except (OSError, EOFError) as exc:
            accounting.fail(file, "rest of file", "truncated_or_corrupt_file", str(exc)[:200])


def _chain(first: str, rest) -> Iterator[str]:
    yield first
    yield from rest


def _is_utf8(text: str) -> bool:
    """False when ``text`` holds undecodable bytes (surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _table_rows(rows, smiles_col: int, id_col: int | None, path: Path,
                accounting: Accounting) -> Iterator[RawFrame]:
    file = str(path)
    last_error_line = -1
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            if rows.line_num == last_error_line:  # the reader no longer advances: give up on the file
                accounting.fail(file, f"after line {rows.line_num}", "truncated_or_corrupt_file", str(exc)[:200])
                return
            last_error_line = rows.line_num
            accounting.fail(file, f"line {rows.line_num}", "bad_row", str(exc)[:200])
            continue
        key = f"line {rows.line_num}"
        if not row or all(not cell.strip() for cell in row):
            continue
        if smiles_col >= len(row):
            accounting.fail(file, key, "short_row", f"{len(row)} fields, SMILES is field {smiles_col + 1}")
            continue
        smiles = row[smiles_col].strip()
        name = row[id_col].strip() if id_col is not None and id_col < len(row) else None
        if not _is_utf8(smiles) or (name is not None and not _is_utf8(name)):
            accounting.fail(file, key, "undecodable_row", "bytes that are not UTF-8")
            continue
        frame = _frame_or_skip(smiles, name, key, f"{path.name}:{rows.line_num}", file, accounting)
        if frame is not None:
            yield frame


def iter_records(path: Path, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]:
    """Yield one :class:`RawFrame` (no geometry) per SMILES of a ``.smi`` file or a CSV / TSV table.

    Parameters
    ----------
    path : Path
        ``.smi`` / ``.smiles`` (one SMILES per line) or ``.csv`` / ``.tsv`` with a header row.
    options : ReadOptions
        ``smiles_column`` / ``id_column`` name the SMILES and id columns of a table.
    accounting : Accounting
        Receives invalid SMILES (skipped) and unreadable lines (failed).
    """
    path = Path(path)
    table, tsv = _is_table(path)
    if table:
        yield from _iter_table(path, tsv, options, accounting)
    else:
        yield from _iter_smi(path, accounting)
