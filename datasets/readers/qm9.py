"""QM9 reader: the ``dsgdb9nsd_NNNNNN.xyz`` files of Ramakrishnan et al. (2014), one molecule per file.

A path is one such file, a folder of them (read in sorted name order) or a tar archive of them
(``.tar``, ``.tar.bz2``, ``.tar.gz``, ``.tar.xz``; streamed member by member in archive order). A file is::

    n_atoms
    gdb N  A B C  mu alpha  homo lumo gap  r2 zpve  U0 U H G  Cv
    El  x y z  q                      (n_atoms lines: symbol, position in Å, Mulliken charge in e)
    harmonic frequencies (cm^-1)
    SMILES_GDB17  SMILES_relaxed
    InChI_GDB17  InChI_relaxed

Fields are tab or space separated; numbers may carry Mathematica exponents (``1.2*^-5`` = 1.2e-5).
Energies (zpve, U0, U, H, G) are in Hartree. What the frame table gets:

* ``energy_eV`` = U0 (internal energy at 0 K, Hartree) x ``ase.units.Hartree`` (eV per Hartree).
* ``positions`` (Å), no cell, ``pbc`` all False; ``charge`` 0, ``spin`` 1 (every QM9 molecule is a neutral
  singlet); ``method`` ``relax`` (B3LYP-optimised geometries); ``id`` ``gdb_N`` from the tag line.
* ``smiles``: the SMILES of the relaxed geometry (second SMILES of the file).
* Level of theory from the ``qm9`` card (B3LYP/6-31G(2df,p)).

A file that does not follow the layout (bad count line, missing lines, unparsable number) is counted as
failed with the reason and the file name; a broken archive counts one failed record for its unread rest.
"""
from __future__ import annotations

import lzma
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from ase.units import Hartree

from ..accounting import Accounting
from ..options import ReaderSpec, ReadOptions
from ..records import RawFrame
from ._common import open_maybe_compressed, symbols_to_numbers

__all__ = ["READER", "sniff_directory",
           "iter_records", "detect_card", "sniff", "parse_qm9_xyz", "QM9FormatError", "qm9_float",
           "TAR_SUFFIXES"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("qm9", "QM9 xyz (dsgdb9nsd_*.xyz): one molecule per file, a folder or a tar of them", __name__,
                    globs=("dsgdb9nsd_*.xyz", "*qm9*.tar", "*qm9*.tar.bz2", "*dsgdb9nsd*.tar.bz2", "*dsgdb9nsd*.tar"),
                    sniff_extensions=(".xyz",), directories=True, unique_ids=True, cards=("qm9",), order=110)

#: File-name endings read as tar archives.
TAR_SUFFIXES = (".tar", ".tar.bz2", ".tbz2", ".tar.gz", ".tgz", ".tar.xz", ".txz")
#: Index of U0 among the whitespace-separated fields of the tag line (``gdb`` is field 0).
_U0_FIELD = 12
_N_TAG_FIELDS = 17
#: A QM9 file is about 1-2 kB; a bigger archive member is not one.
_MAX_MEMBER_BYTES = 1 << 20


class QM9FormatError(ValueError):
    """A file that does not follow the QM9 xyz layout."""


def qm9_float(text: str) -> float:
    """Parse a QM9 number, accepting Mathematica exponents (``"2.1*^-6"`` -> 2.1e-06)."""
    return float(text.replace("*^", "e"))


def _fields(line: str, what: str, minimum: int) -> list[str]:
    fields = line.split()
    if len(fields) < minimum:
        raise QM9FormatError(f"{what}: {len(fields)} fields, expected at least {minimum}")
    return fields


def parse_qm9_xyz(text: str, key: str) -> RawFrame:
    """Parse the text of one QM9 xyz file.

    Parameters
    ----------
    text : str
        File contents.
    key : str
        Record key (the file or member name).

    Returns
    -------
    RawFrame
        ``energy_eV`` = U0 in eV, ``positions`` in Å.

    Raises
    ------
    QM9FormatError
        When the layout is not QM9's (wrong count, missing lines, bad numbers).
    """
    lines = text.splitlines()
    if not lines:
        raise QM9FormatError("empty file")
    try:
        n_atoms = int(lines[0].strip())
    except ValueError:
        raise QM9FormatError(f"first line {lines[0][:40]!r} is not an atom count") from None
    if n_atoms < 1:
        raise QM9FormatError(f"atom count {n_atoms}")
    if len(lines) < n_atoms + 5:
        raise QM9FormatError(f"{len(lines)} lines, a QM9 file with {n_atoms} atoms has {n_atoms + 5}")
    tag = _fields(lines[1], "tag line", _N_TAG_FIELDS)
    if tag[0] != "gdb":
        raise QM9FormatError(f"tag line starts with {tag[0][:20]!r}, not 'gdb'")
    try:
        index = int(tag[1])
        u0_hartree = qm9_float(tag[_U0_FIELD])
        symbols, positions = [], []
        for i, line in enumerate(lines[2 : 2 + n_atoms]):
            atom = _fields(line, f"atom line {i + 1}", 4)
            symbols.append(atom[0])
            positions.append([qm9_float(v) for v in atom[1:4]])
    except QM9FormatError:
        raise
    except ValueError as exc:
        raise QM9FormatError(f"not a number: {exc}") from None
    smiles = lines[n_atoms + 3].split()
    if not smiles:
        raise QM9FormatError("SMILES line is empty")
    return RawFrame(
        id=f"gdb_{index}",
        key=key,
        numbers=symbols_to_numbers(symbols),
        positions=positions,
        pbc=(False, False, False),
        energy_eV=u0_hartree * Hartree,
        method="relax",
        charge=0,
        spin=1,
        smiles=smiles[1] if len(smiles) > 1 else smiles[0],
    )


def sniff(path: Path, head: bytes) -> bool:
    """True when ``head`` looks like a QM9 file: an integer line, then a line starting ``gdb``."""
    lines = head.split(b"\n", 2)
    if len(lines) < 2:
        return False
    return lines[0].strip().isdigit() and lines[1].split(None, 1)[:1] == [b"gdb"]


def detect_card(path: Path, options: ReadOptions) -> str:
    return "qm9"


def _is_tar(path: Path) -> bool:
    return path.name.lower().endswith(TAR_SUFFIXES)


def _record(data: bytes, file: str, key: str, accounting: Accounting) -> RawFrame | None:
    try:
        return parse_qm9_xyz(data.decode("utf-8"), key)
    except UnicodeDecodeError as exc:
        accounting.fail(file, key, "undecodable_file", str(exc)[:200])
    except QM9FormatError as exc:
        accounting.fail(file, key, "malformed_qm9_file", str(exc)[:200])
    return None


def _iter_files(files: list[Path], accounting: Accounting) -> Iterator[RawFrame]:
    for f in files:
        try:
            with open_maybe_compressed(f) as fh:
                data = fh.read()
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            accounting.fail(str(f), f.name, "unreadable_file", str(exc)[:200])
            continue
        frame = _record(data, str(f), f.name, accounting)
        if frame is not None:
            yield frame


def _iter_tar(path: Path, accounting: Accounting) -> Iterator[RawFrame]:
    file = str(path)
    last = "start of archive"
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                last = member.name
                if member.size > _MAX_MEMBER_BYTES:
                    accounting.fail(file, member.name, "malformed_qm9_file", f"member of {member.size} bytes")
                    continue
                handle = archive.extractfile(member)
                frame = _record(handle.read() if handle else b"", file, member.name, accounting)
                if frame is not None:
                    yield frame
    except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
        accounting.fail(file, f"after {last}", "truncated_or_corrupt_archive",
                        f"{type(exc).__name__}: {str(exc)[:160]}")


def iter_records(path: Path, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]:
    """Yield one :class:`RawFrame` per QM9 molecule of a file, a folder of files or a tar archive.

    Parameters
    ----------
    path : Path
        ``dsgdb9nsd_*.xyz``, a folder of them, or a ``.tar`` / ``.tar.bz2`` (``.gz``, ``.xz``) of them.
    options : ReadOptions
        Unused (QM9 has one layout).
    accounting : Accounting
        Receives malformed files and broken archives (failed).
    """
    path = Path(path)
    if path.is_dir():
        yield from _iter_files(sorted(p for p in path.glob("*.xyz") if p.is_file()), accounting)
    elif _is_tar(path):
        yield from _iter_tar(path, accounting)
    else:
        yield from _iter_files([path], accounting)


def sniff_directory(path: Path) -> bool:
    """A folder whose first ``.xyz`` file (by name) is a QM9 file."""
    xyz = sorted(Path(path).glob("*.xyz"))
    if not xyz:
        return False
    with open(xyz[0], "rb") as fh:
        return sniff(xyz[0], fh.read(4096))
