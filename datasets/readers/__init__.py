"""The bundled readers: one module per format, each declaring itself with ``READER = ReaderSpec(...)``.

:data:`BUNDLED` lists their modules in detection order (the registry asks them in this order: the first
match wins). Readers of other packages come through the ``monoculture.readers`` entry-point group (see
:mod:`monoculture.datasets.registry`).

The three parquet readers share one schema lookup (:func:`parquet_format`), cached per file (path,
modification time and size), so that sniffing a file reads its schema once, not once per parquet reader.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

__all__ = ["BUNDLED", "parquet_format", "parquet_folder_format"]

#: Modules of the bundled readers, in detection order.
BUNDLED = ("mptrj", "aselmdb", "alexandria", "smiles", "sdf", "ase", "atp", "lemat", "colabfit", "ase_parquet",
           "qm9", "folder")


def _stamp(path: Path) -> tuple:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def parquet_format(path: Path) -> str:
    """The parquet format (``lemat``, ``colabfit``, ``ase-parquet``) of a parquet / Arrow file by its schema.

    Raises :class:`~monoculture.datasets.errors.UnknownFormatError` (one line: the columns and the known
    schemas) when no parquet reader knows the schema.
    """
    return _parquet_format(_stamp(Path(path)))


@lru_cache(maxsize=16)
def _parquet_format(stamp: tuple) -> str:
    from . import _parquet

    return _parquet.file_format(Path(stamp[0]))


def parquet_folder_format(path: Path) -> str | None:
    """The parquet format of a Hugging Face dataset folder or folder of parquet shards, None when not one.

    Not cached: a folder's modification time does not change when a file deeper in it does.
    """
    from . import _parquet

    return _parquet.folder_format(Path(path))
