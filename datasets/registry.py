"""The reader registry: one table of formats, sniffed by extension, file-name pattern or content.

Modelled on ASE's ``ase.io.formats``: every format is one :class:`ReaderSpec` row naming the module that
parses it; the module is imported only when used. A reader module provides

``iter_records(path: pathlib.Path, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]``

and may provide ``detect_card(path, options) -> str | None`` (the dataset card it recognises) and
``sniff(path, head: bytes) -> bool`` (content check used when the extension is ambiguous).
"""
from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

__all__ = ["ReaderSpec", "ReadOptions", "READERS", "get_reader", "sniff_format", "UnknownFormatError"]


class UnknownFormatError(ValueError):
    """Raised when no reader recognises a file."""


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
        Column holding SMILES in a CSV table (default: the first column named like ``smiles``).
    """

    dataset: str | None = None
    level_of_theory: str | None = None
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    smiles_column: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReaderSpec:
    """One row of the registry."""

    name: str
    description: str
    module: str
    extensions: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    directories: bool = False

    def load(self) -> ModuleType:
        return importlib.import_module(f"monoculture.datasets.readers.{self.module}")


READERS: dict[str, ReaderSpec] = {
    spec.name: spec
    for spec in [
        ReaderSpec("mptrj", "MPTrj JSON {mp_id: {frame_id: {...}}} (plain or gzip)", "mptrj",
                   globs=("*mptrj*.json", "*mptrj*.json.gz", "*MPtrj*.json", "*MPtrj*.json.gz")),
        ReaderSpec("aselmdb", "ASE LMDB (.aselmdb) of OMat24, sAlex, OMol25; a file or a folder of shards",
                   "aselmdb", extensions=(".aselmdb", ".lmdb"), directories=True),
        ReaderSpec("alexandria", "Alexandria {'entries': [ComputedStructureEntry]} (.json.bz2 / .json)",
                   "alexandria", globs=("*alexandria*.json.bz2", "*alexandria*.json", "*alexandria*.json.gz")),
        ReaderSpec("qm9", "QM9 xyz (dsgdb9nsd_*.xyz): one molecule per file, a folder or a tar of them", "qm9",
                   globs=("dsgdb9nsd_*.xyz", "*qm9*.tar", "*qm9*.tar.bz2", "*dsgdb9nsd*.tar.bz2",
                          "*dsgdb9nsd*.tar"), directories=True),
        ReaderSpec("smiles", "SMILES tables: .smi, or .csv/.tsv with a SMILES column (RDKit)", "smiles",
                   extensions=(".smi", ".smiles", ".csv", ".tsv")),
        ReaderSpec("sdf", "SDF / MOL files (RDKit), 3D when present", "sdf", extensions=(".sdf", ".mol", ".sd")),
        ReaderSpec("ase", "anything ase.io reads: extxyz, xyz, traj, cif, POSCAR/CONTCAR, ASE .db", "ase",
                   extensions=(".extxyz", ".xyz", ".traj", ".cif", ".db", ".vasp", ".poscar", ".json"),
                   globs=("POSCAR*", "CONTCAR*", "*.vasp")),
    ]
}


def get_reader(name: str) -> ReaderSpec:
    """The registry row of a format name; ``UnknownFormatError`` lists the known names."""
    try:
        return READERS[name]
    except KeyError:
        raise UnknownFormatError(f"unknown format {name!r}; known formats: {', '.join(READERS)}") from None


def _head(path: Path, n: int = 4096) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def sniff_format(path: Path) -> str:
    """Name of the reader for ``path``: by file-name pattern, then by content, then by extension.

    Raises
    ------
    UnknownFormatError
        When nothing recognises the file.
    """
    path = Path(path)
    if path.is_dir():
        return _sniff_directory(path)
    name = path.name
    for spec in READERS.values():
        if any(fnmatch.fnmatch(name, g) for g in spec.globs):
            return spec.name
    head = _head(path)
    # Content rules (magic bytes and shapes), cheapest first.
    if head[:3] == b"BZh" and name.endswith(".json.bz2"):
        return "alexandria"
    if name.endswith((".json", ".json.gz")):
        from .readers import mptrj

        if mptrj.sniff(path, head):
            return "mptrj"
        from .readers import alexandria

        if alexandria.sniff(path, head):
            return "alexandria"
    if name.endswith(".xyz"):
        from .readers import qm9

        if qm9.sniff(path, head):
            return "qm9"
    if name.endswith(".db") and head.startswith(b"SQLite format 3"):
        return "ase"
    suffix = "".join(path.suffixes[-1:]).lower()
    for spec in READERS.values():
        if suffix in spec.extensions:
            return spec.name
    raise UnknownFormatError(
        f"{path}: no reader recognises this file; pass --format with one of: {', '.join(READERS)}"
    )


def _sniff_directory(path: Path) -> str:
    if any(path.rglob("*.aselmdb")):
        return "aselmdb"
    xyz = sorted(path.glob("*.xyz"))
    if xyz:
        from .readers import qm9

        if qm9.sniff(xyz[0], _head(xyz[0])):
            return "qm9"
    raise UnknownFormatError(f"{path}: folder holds no .aselmdb shards or QM9 .xyz files; pass --format")
