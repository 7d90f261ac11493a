"""The reader registry: every format is one :class:`ReaderSpec`, sniffed by file name, magic bytes or content.

Modelled on ASE's ``ase.io.formats``: a format is declared by its reader module, in one line,
``READER = ReaderSpec(name, description, __name__, extensions=..., globs=..., magic=..., order=...)`` (see
:class:`~monoculture.datasets.options.ReaderSpec` for every field: its sniffing, its options, the cards it
detects and any card it adds). The registry collects the bundled readers (every public module of
:mod:`monoculture.datasets.readers`, found by listing the package, in the ``order`` their specs declare) and
then those of other installed packages, declared in the entry-point group :data:`ENTRY_POINT_GROUP`::

    # pyproject.toml of a package adding a format
    [project.entry-points."monoculture.readers"]
    myformat = "my_package.my_reader"          # a module with READER = ReaderSpec(...)
    # or   myformat = "my_package.my_reader:READER"

A reader module provides

``iter_records(path: pathlib.Path, options: ReadOptions, accounting: Accounting) -> Iterator[RawFrame]``
(or ``iter_batches``) and may provide ``detect_card(path, options) -> str | None`` (the dataset card it
recognises), ``sniff(path, head: bytes) -> bool`` (content check, asked when the file starts with one of the
spec's ``magic`` or its name ends with one of its ``sniff_extensions``), ``sniff_directory(path) -> bool``
(a folder it reads as one dataset) and ``check(path, options)`` (raises :class:`InputError` when a file
cannot be read at all with these options, e.g. a table without the SMILES column; called once when a
single file is opened).

How a file is sniffed (:func:`sniff_format`), each step over the readers in registry order: file-name
patterns (``globs``); content (``magic`` on an uncompressed file, ``sniff_extensions`` on the name without
its compression suffix, then the module's ``sniff``); file-name ``extensions``. A compressed file (``.gz``,
``.bz2``, ``.xz``) is sniffed by its name without the compression suffix and its first decompressed bytes.
A folder is read by the first folder reader whose ``sniff_directory`` accepts it, else file by file by the
``folder`` reader, each file through the reader its own sniffing picks. Parquet and Arrow files are sniffed
by their schema: one of an unknown schema raises :class:`UnknownFormatError` naming its columns and the
known schemas.

The registry is imported by the ``folder`` reader only; the other readers import
:mod:`~monoculture.datasets.options` and :mod:`~monoculture.datasets.errors`, and the registry imports
reader modules by name (``importlib``) when it is first used, so there is no import cycle.
"""
from __future__ import annotations

import fnmatch
import importlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

from . import readers as _bundled
from .errors import InputError, UnknownFormatError
from .plugins import load_entry_points, public_module_names
from .options import BUNDLED_PACKAGE, COMPRESSIONS, ReaderSpec, ReadOptions, inner_name

__all__ = ["ReaderSpec", "ReadOptions", "READERS", "ReaderRegistry", "get_reader", "sniff_format",
           "UnknownFormatError", "InputError", "COMPRESSIONS", "inner_name", "ENTRY_POINT_GROUP", "FALLBACK_FOLDER",
           "bundled_modules"]

#: Entry-point group through which other packages add readers.
ENTRY_POINT_GROUP = "monoculture.readers"
#: Reader of a folder no folder reader claims: every file read by its own sniffed reader.
FALLBACK_FOLDER = "folder"

_log = logging.getLogger("monoculture")


def bundled_modules() -> list[str]:
    """Names of the bundled reader modules: the public modules of :mod:`monoculture.datasets.readers`
    (sorted by name; the registry orders their specs by ``ReaderSpec.order``)."""
    return public_module_names(_bundled)


class ReaderRegistry(Mapping):
    """Format name -> :class:`ReaderSpec`, in detection order: the bundled readers, then the entry points.

    Collected on first use (importing each bundled reader module, about 0.05 s, and every entry point of
    :data:`ENTRY_POINT_GROUP`). An entry point that cannot be loaded, is not a ``ReaderSpec`` (or a module
    with ``READER``), or reuses a taken name is skipped with a warning and listed in :attr:`problems`:
    another package's broken plugin never stops monoculture from reading the formats it knows.
    """

    def __init__(self, group: str = ENTRY_POINT_GROUP):
        self.group = group
        self._specs: dict[str, ReaderSpec] | None = None
        self.problems: list[str] = []

    def _table(self) -> dict[str, ReaderSpec]:
        if self._specs is None:
            self._specs = self._collect()
        return self._specs

    def _collect(self) -> dict[str, ReaderSpec]:
        self.problems = []
        specs: dict[str, ReaderSpec] = {}
        bundled = [importlib.import_module(f"{BUNDLED_PACKAGE}.{name}").READER for name in bundled_modules()]
        for spec in sorted(bundled, key=lambda s: (s.order, s.name)):
            if spec.name in specs:
                raise RuntimeError(f"two bundled readers declare format {spec.name!r}: {specs[spec.name].module_path} "
                                   f"and {spec.module_path}")
            specs[spec.name] = spec
        for ep, obj in load_entry_points(self.group, self._problem):  # one that cannot be loaded: a problem
            spec = getattr(obj, "READER", None) if isinstance(obj, ModuleType) else obj
            if not isinstance(spec, ReaderSpec):
                self._problem(f"reader entry point {ep.name} = {ep.value}: not a ReaderSpec "
                              f"(or a module with READER = ReaderSpec(...))")
            elif spec.name in specs:
                self._problem(f"reader entry point {ep.name} = {ep.value}: format {spec.name!r} is already "
                              f"registered by {specs[spec.name].module_path}")
            else:
                specs[spec.name] = spec
        return specs

    def _problem(self, message: str) -> None:
        self.problems.append(message)
        _log.warning(message)

    def reload(self) -> None:
        """Collect the readers again on next use (after installing a package or changing ``sys.path``)."""
        self._specs = None

    def register(self, spec: ReaderSpec) -> None:
        """Add a reader at run time (the entry-point group is the way for an installed package)."""
        if not isinstance(spec, ReaderSpec):
            raise TypeError(f"expected a ReaderSpec, got {type(spec).__name__}")
        table = self._table()
        if spec.name in table:
            raise ValueError(f"format {spec.name!r} is already registered by {table[spec.name].module_path}")
        table[spec.name] = spec

    def __getitem__(self, name: str) -> ReaderSpec:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __repr__(self) -> str:
        return f"ReaderRegistry({', '.join(self._table())})"


#: Every reader, by format name (a read-only mapping, collected on first use).
READERS = ReaderRegistry()


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

    Parameters
    ----------
    path : str or Path
        A file (plain or compressed) or a folder.

    Returns
    -------
    str
        A format name of :data:`READERS`.

    Raises
    ------
    UnknownFormatError
        When nothing recognises the file (or a parquet file has a schema no reader knows).
    """
    path = Path(path)
    if path.is_dir():
        return _sniff_directory(path)
    specs = list(READERS.values())
    names = {path.name, inner_name(path.name)}
    for spec in specs:
        if any(fnmatch.fnmatch(name, g) for g in spec.globs for name in names):
            return spec.name
    head = _head(path)
    inner = inner_name(path.name).lower()
    compressed = inner != path.name.lower()
    for spec in specs:
        by_magic = not compressed and any(head.startswith(m) for m in spec.magic)
        if not (by_magic or (spec.sniff_extensions and inner.endswith(spec.sniff_extensions))):
            continue
        sniff = getattr(spec.load(), "sniff", None)
        if (sniff is None and by_magic) or (sniff is not None and sniff(path, head)):
            return spec.name
    suffix = Path(inner).suffix
    for spec in specs:
        if suffix in spec.extensions:
            return spec.name
    raise UnknownFormatError(
        f"{path}: no reader recognises this file; pass --format with one of: {', '.join(READERS)}"
    )


def _sniff_directory(path: Path) -> str:
    """The first folder reader whose ``sniff_directory`` accepts ``path`` (shards of ``.aselmdb`` or ``.atp``,
    a Hugging Face dataset folder, QM9 xyz files...), else :data:`FALLBACK_FOLDER`."""
    for spec in READERS.values():
        if not spec.directories or spec.name == FALLBACK_FOLDER:
            continue
        sniff = getattr(spec.load(), "sniff_directory", None)
        if sniff is not None and sniff(path):
            return spec.name
    return FALLBACK_FOLDER
