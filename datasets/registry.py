"""The reader registry: one table of formats, sniffed by extension, file-name pattern or content.

Modelled on ASE's ``ase.io.formats``: every format is one :class:`ReaderSpec` row naming the module that
parses it; the module is imported only when used. A reader module provides

``iter_records(path: pathlib.Path, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]``

and may provide ``detect_card(path, options) -> str | None`` (the dataset card it recognises),
``sniff(path, head: bytes) -> bool`` (content check used when the extension is ambiguous) and
``check(path, options)`` (raises :class:`InputError` when a file cannot be read at all with these options,
e.g. a table without the SMILES column; called once when a single file is opened).

Parquet and Arrow files are sniffed by their schema (``PAR1`` magic or suffix): a file of an unknown schema
raises :class:`UnknownFormatError` naming its columns and the known schemas. Atompack stores by their
``ATPK`` magic. A folder of ``.atp`` shards is ``atompack``; a Hugging Face dataset folder (README with
``configs:``, or nothing but parquet / Arrow shards) takes the format of its data files.

A compressed file (``.gz``, ``.bz2``, ``.xz``) is sniffed by the name and the content inside: its name
without the compression suffix and the first decompressed bytes. A folder that is not a folder of shards
(``.aselmdb``, QM9) is read file by file by the ``folder`` reader, each file through the reader its own
sniffing picks.
"""
from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

__all__ = ["ReaderSpec", "ReadOptions", "READERS", "get_reader", "sniff_format", "UnknownFormatError", "InputError",
           "COMPRESSIONS", "inner_name"]

#: File-name suffixes of the compressions read on the fly (``readers._common.open_maybe_compressed``).
COMPRESSIONS = (".gz", ".bz2", ".xz", ".lzma")


class UnknownFormatError(ValueError):
    """Raised when no reader recognises a file."""


class InputError(ValueError):
    """A file its reader cannot read at all with the given options (one line: file, what is wrong, the fix)."""


def inner_name(name: str) -> str:
    """File name without its compression suffix (``"a.extxyz.gz"`` -> ``"a.extxyz"``; others unchanged)."""
    lower = name.lower()
    for suffix in COMPRESSIONS:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class ReadOptions:
    """Options passed to every reader.

    Parameters
    ----------
    dataset : str or None
        Dataset name for the ``dataset`` column (default: the detected card name, else the file stem).
    level_of_theory : str or None
        Override of the level of theory (e.g. ``"PBE+U"`` or ``"wB97M-V/def2-TZVPD"``).
    energy_key, forces_key, stress_key : str
        Keys of energy (eV), forces (eV/Å) and stress (eV/Å^3, ASE sign) in ``atoms.info`` / ``atoms.arrays``
        for the ``ase`` reader (the calculator's results are used when the key is absent).
    smiles_column : str or None
        Column holding SMILES in a CSV / TSV table (default: the first column named ``smiles``,
        ``canonical_smiles`` or ``smi``, else the first whose name contains ``smiles``; any case).
    id_column : str or None
        Column holding the molecule id in a CSV / TSV table (default: the first named ``id``, ``name`` or
        ``mol_id``; else ids are ``<file name>:<line>``).
    file_format : str or None
        Reader of every file of a folder read by the ``folder`` reader (default: each file's sniffed one).
    config : str or None
        Configs of a Hugging Face dataset folder to read, by name, comma-separated (``compatible_pbe``);
        default: every config holding frames. Files and other folders ignore it.
    """

    dataset: str | None = None
    level_of_theory: str | None = None
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    smiles_column: str | None = None
    id_column: str | None = None
    file_format: str | None = None
    config: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReaderSpec:
    """One row of the registry.

    ``directories``: the reader reads a folder itself (shards of one container). ``unique_ids``: the ids it
    gives are unique across files (material / molecule ids of the source); otherwise the ``folder`` reader
    qualifies them with the file name.
    """

    name: str
    description: str
    module: str
    extensions: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    directories: bool = False
    unique_ids: bool = False

    def load(self) -> ModuleType:
        return importlib.import_module(f"monoculture.datasets.readers.{self.module}")


READERS: dict[str, ReaderSpec] = {
    spec.name: spec
    for spec in [
        ReaderSpec("mptrj", "MPTrj JSON {mp_id: {frame_id: {...}}} (plain or .gz / .bz2 / .xz)", "mptrj",
                   globs=("*mptrj*.json", "*MPtrj*.json"), unique_ids=True),
        ReaderSpec("aselmdb", "ASE LMDB (.aselmdb) of OMat24, sAlex, OMol25; a file or a folder of shards",
                   "aselmdb", extensions=(".aselmdb", ".lmdb"), directories=True, unique_ids=True),
        ReaderSpec("alexandria", "Alexandria {'entries': [ComputedStructureEntry]} (.json.bz2 / .json)",
                   "alexandria", globs=("*alexandria*.json",), unique_ids=True),
        ReaderSpec("qm9", "QM9 xyz (dsgdb9nsd_*.xyz): one molecule per file, a folder or a tar of them", "qm9",
                   globs=("dsgdb9nsd_*.xyz", "*qm9*.tar", "*qm9*.tar.bz2", "*dsgdb9nsd*.tar.bz2",
                          "*dsgdb9nsd*.tar"), directories=True, unique_ids=True),
        ReaderSpec("smiles", "SMILES tables: .smi, or .csv/.tsv with a SMILES column (RDKit)", "smiles",
                   extensions=(".smi", ".smiles", ".csv", ".tsv")),
        ReaderSpec("sdf", "SDF / MOL files (RDKit), 3D when present", "sdf", extensions=(".sdf", ".mol", ".sd")),
        ReaderSpec("ase", "anything ase.io reads: extxyz, xyz, traj, cif, POSCAR/CONTCAR (also .gz / .bz2 / .xz), "
                   "ASE .db", "ase",
                   extensions=(".extxyz", ".xyz", ".traj", ".cif", ".db", ".vasp", ".poscar", ".json"),
                   globs=("POSCAR*", "CONTCAR*", "*.vasp")),
        ReaderSpec("lemat", "LeMat-Bulk / LeMat-Traj parquet (LeMaterial on Hugging Face; also datasets' .arrow "
                   "cache): a file, a shard folder or a dataset folder (--config)", "lemat", directories=True, unique_ids=True),
        ReaderSpec("colabfit", "ColabFit Exchange parquet (co tables, 2025 export and colabfit-tools schemas; "
                   "OMat24 / OMol25 / sAlex mirrors): a file or a dataset folder (--config)", "colabfit",
                   directories=True, unique_ids=True),
        ReaderSpec("ase-parquet", "parquet / Arrow with ASE columns (numbers, positions, cell, pbc, energy, forces, "
                   "stress)", "ase_parquet", directories=True),
        ReaderSpec("atompack", "Atompack store (.atp, atompack-db): a file or a shard folder with manifest.json",
                   "atp", extensions=(".atp",), directories=True),
        ReaderSpec("folder", "a folder of files in any of these formats (CIF, POSCAR, xyz, MPTrj shards, SDF...), "
                   "each read by its own reader", "folder", directories=True),
    ]
}


def get_reader(name: str) -> ReaderSpec:
    """The registry row of a format name; ``UnknownFormatError`` lists the known names."""
    try:
        return READERS[name]
    except KeyError:
        raise UnknownFormatError(f"unknown format {name!r}; known formats: {', '.join(READERS)}") from None


def _head(path: Path, n: int = 4096) -> bytes:
    """First ``n`` bytes of a file, decompressed when its name ends in a compression suffix."""
    if inner_name(path.name) != path.name:
        from .readers._common import open_maybe_compressed

        try:
            with open_maybe_compressed(path) as fh:
                return fh.read(n)
        except Exception:  # noqa: BLE001 - a corrupt stream (OSError, EOFError, zlib / lzma errors)
            return b""  # is sniffed by its name only; its reader counts the failure
    with open(path, "rb") as fh:
        return fh.read(n)


def sniff_format(path: Path) -> str:
    """Name of the reader for ``path``: by file-name pattern, then by content, then by extension.

    A compressed file is sniffed by its name without the compression suffix and by its decompressed
    content. A folder is a folder of shards (``aselmdb``, ``qm9``) or else read file by file (``folder``).

    Raises
    ------
    UnknownFormatError
        When nothing recognises the file.
    """
    path = Path(path)
    if path.is_dir():
        return _sniff_directory(path)
    names = {path.name, inner_name(path.name)}
    for spec in READERS.values():
        if any(fnmatch.fnmatch(name, g) for g in spec.globs for name in names):
            return spec.name
    head = _head(path)
    inner = inner_name(path.name).lower()
    if inner == path.name.lower():  # columnar formats, by magic bytes and schema (never compressed)
        if head.startswith(b"PAR1") or inner.endswith((".parquet", ".arrow")):
            from .readers import _parquet

            return _parquet.file_format(path)
        if head.startswith(b"ATPK"):
            return "atompack"
    # Content rules (magic bytes and shapes), cheapest first.
    if inner.endswith(".json"):
        from .readers import mptrj

        if mptrj.sniff(path, head):
            return "mptrj"
        from .readers import alexandria

        if alexandria.sniff(path, head):
            return "alexandria"
        if path.name.lower().endswith(".json.bz2") and _head_raw(path, 3) == b"BZh":
            return "alexandria"  # Alexandria's own compression, whatever the first bytes say
    if inner.endswith(".xyz"):
        from .readers import qm9

        if qm9.sniff(path, head):
            return "qm9"
    if inner.endswith(".db") and head.startswith(b"SQLite format 3"):
        return "ase"
    suffix = Path(inner).suffix
    for spec in READERS.values():
        if suffix in spec.extensions:
            return spec.name
    raise UnknownFormatError(
        f"{path}: no reader recognises this file; pass --format with one of: {', '.join(READERS)}"
    )


def _head_raw(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _sniff_directory(path: Path) -> str:
    """``aselmdb`` for a folder holding ``.aselmdb`` shards, ``atompack`` for ``.atp`` shards, a parquet format
    for a dataset folder, ``qm9`` for QM9 xyz files, else ``folder``."""
    if any(path.rglob("*.aselmdb")):
        return "aselmdb"
    if any(path.rglob("*.atp")):
        return "atompack"
    from .readers import _parquet

    fmt = _parquet.folder_format(path)  # a Hugging Face dataset folder or a folder of parquet shards
    if fmt is not None:
        return fmt
    xyz = sorted(path.glob("*.xyz"))
    if xyz:
        from .readers import qm9

        if qm9.sniff(xyz[0], _head(xyz[0])):
            return "qm9"
    return "folder"
