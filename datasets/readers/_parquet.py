"""Columnar machinery of the parquet readers (LeMat, ColabFit, ASE columns): files, Hugging Face folders,
schema detection, streaming by record batch and row-group shards. Which files form which config of a
folder is :mod:`._hf_folder`; the Arrow -> frame-column helpers the converters use are :mod:`._arrow_columns`.

No format logic lives here beyond recognising a schema: each format module (``lemat``, ``colabfit``,
``ase_parquet``; found in the reader registry by :func:`formats`) provides ``FORMAT`` (its registry name),
``COLUMNS`` (the columns it reads), ``DESCRIPTION``, ``matches(names) -> bool``, optionally ``DICTIONARY``
(string columns read as Arrow dictionaries), and ``convert(record_batch, rows, ctx, accounting, file) ->
ArrayColumns | None`` (``rows``: the row numbers in the file; rows that cannot be frames are counted as
skipped there).

What is one dataset
-------------------
* a ``.parquet`` file, or an Arrow file of a Hugging Face ``datasets`` cache (``.arrow``, IPC stream or file);
* a Hugging Face dataset folder: ``README.md`` whose YAML front matter lists ``configs:`` (``config_name``,
  ``data_files`` as a glob, a list of globs, or ``{split, path}`` entries, optional ``default: true``), or,
  without such a README, sub-folders of data files (each sub-folder a config; files at the top level are
  the config ``default``). Configs whose files have no known schema (ColabFit ``ds.parquet``, ``cs/``,
  ``co_cs_map/``) are metadata, never frames. ``ReadOptions.config`` selects configs by name (comma-separated);
  without it every frame config is read.

Reading streams ``pyarrow.parquet.ParquetFile.iter_batches`` (only the needed columns, a buffered stream of
:data:`BUFFER_SIZE` bytes), so memory depends on the batch size, not on the shard size. Dask work units are
``(file, config, relative path, first row group, stop row group)`` tuples.
"""
from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..accounting import Accounting
from ..errors import InputError, UnknownFormatError
from ..options import ReadOptions, inner_name
from ..records import raw_frames
from ._hf_folder import DATA_SUFFIXES, front_matter, hf_configs, is_data_file

__all__ = ["formats", "DATA_SUFFIXES", "BUFFER_SIZE", "read_schema", "schema_format", "unknown_schema_message",
           "hf_configs", "data_files", "folder_format", "shards", "iter_batches", "iter_records",
           "reader_functions", "check", "Context", "is_data_file", "file_format", "prefetched"]

#: Bytes read ahead per column by the buffered parquet stream.
BUFFER_SIZE = 1 << 22
#: Record batches decoded ahead (in a background thread) of the one being converted.
PREFETCH = 2
_MAX_LISTED = 40


def formats() -> dict[str, ModuleType]:
    """Registry name -> module of every parquet format, in the registry's detection order
    (``ReaderSpec.order``: most specific schema first). A parquet format is a reader whose module declares
    ``FORMAT`` = its registry name and provides ``matches`` and ``convert`` (the protocol above); a reader
    module that cannot be imported is left out (the registry reports it)."""
    from ..registry import READERS  # here, not at the top: the registry imports the reader modules

    out = {}
    for spec in READERS.values():
        try:
            module = spec.load()
        except Exception:  # noqa: BLE001 - a broken plugin module: not a parquet format
            continue
        if getattr(module, "FORMAT", None) == spec.name and callable(getattr(module, "matches", None)) \
                and callable(getattr(module, "convert", None)):
            out[spec.name] = module
    return out


def _module(fmt: str) -> ModuleType:
    """The module of the parquet format ``fmt`` (a registry name)."""
    return formats()[fmt]


# -- schemas ---------------------------------------------------------------------------------------------
def read_schema(path: Path) -> pa.Schema:
    """The Arrow schema of a parquet or Arrow (IPC file or stream) file; reads the footer or the head only."""
    path = Path(path)
    if path.suffix.lower() == ".arrow":
        with pa.memory_map(str(path)) as src:
            try:
                return pa.ipc.open_file(src).schema
            except pa.ArrowInvalid:
                src.seek(0)
                return pa.ipc.open_stream(src).schema
    return pq.read_schema(path)


def schema_format(names) -> str | None:
    """The registry name of the parquet format whose columns ``names`` has (None when none)."""
    names = set(names)
    for fmt, module in formats().items():
        if module.matches(names):
            return fmt
    return None


def unknown_schema_message(path: Path, names) -> str:
    """One line: the file, its columns, and the schemas the readers know."""
    names = list(names)
    shown = ", ".join(names[:_MAX_LISTED]) + (f", ... ({len(names)} columns)" if len(names) > _MAX_LISTED else "")
    known = "; ".join(f"{fmt} ({module.DESCRIPTION})" for fmt, module in formats().items())
    return f"{path}: parquet of an unknown schema (columns: {shown}); known schemas: {known}"


def _file_format(f: Path) -> str | None:
    try:
        return schema_format(read_schema(f).names)
    except (OSError, pa.ArrowException):
        return None


def frame_configs(path: Path) -> dict[str, tuple[list[Path], str | None]]:
    """Every config with its files and the format of its first file (None: not a frame table)."""
    return {name: (files, _file_format(files[0]) if files else None) for name, files in hf_configs(path).items()}


def _selected(path: Path, options: ReadOptions) -> list[tuple[str, list[Path], str]]:
    """(config, files, format) of the configs to read; InputError for a config the folder does not have."""
    configs = frame_configs(path)
    frames = {name: (files, fmt) for name, (files, fmt) in configs.items() if fmt is not None}
    if options.config:
        wanted = [c.strip() for c in options.config.split(",") if c.strip()]
        missing = [c for c in wanted if c not in configs]
        if missing:
            raise InputError(f"{path}: no config {', '.join(map(repr, missing))}; configs with frames: "
                             f"{', '.join(frames) or 'none'} (--config NAME[,NAME])")
        not_frames = [c for c in wanted if c not in frames]
        if not_frames:
            raise InputError(f"{path}: config {', '.join(map(repr, not_frames))} holds no frame table (metadata); "
                             f"configs with frames: {', '.join(frames) or 'none'}")
        return [(c, *frames[c]) for c in wanted]
    return [(name, files, fmt) for name, (files, fmt) in frames.items()]


def folder_format(path: Path) -> str | None:
    """The parquet format of a dataset folder, or None when it is not one.

    A folder is a dataset folder when its README lists ``configs:``, or when every visible file in it is a
    data file (``.parquet``, ``.arrow``), a README, a ``.json`` manifest, or a lock / ``cache-*`` file of a
    ``datasets`` cache. Raises
    :class:`UnknownFormatError` for such a folder none of whose data files has a known schema.
    """
    path = Path(path)
    readme = path / "README.md"
    listed = readme.is_file() and isinstance(front_matter(readme).get("configs"), list)
    if not listed:
        files = [f for f in path.rglob("*") if f.is_file()
                 and not any(p.startswith(".") for p in f.relative_to(path).parts)]
        if not files or not any(is_data_file(f) for f in files):
            return None
        if not all(is_data_file(f) or f.suffix.lower() in (".md", ".json", ".lock") or f.name.startswith("cache-")
                   for f in files):
            return None
    configs = frame_configs(path)
    for files, fmt in configs.values():
        if fmt is not None:
            return fmt
    first = next((files[0] for files, _ in configs.values() if files), None)
    if first is None:
        return None
    try:
        names = read_schema(first).names
    except (OSError, pa.ArrowException) as exc:
        raise UnknownFormatError(f"{first}: cannot read the parquet schema ({type(exc).__name__}: {exc})") from None
    raise UnknownFormatError(unknown_schema_message(first, names))


@dataclass(frozen=True)
class Context:
    """What a converter needs besides the batch: the file label, its config and the read options."""

    rel: str
    config: str | None
    options: ReadOptions
    subset: str | None


def data_files(path: Path, options: ReadOptions) -> list[tuple[Path, str | None, str]]:
    """(file, config, path relative to the dataset) of every data file to read, in reading order."""
    path = Path(path)
    if not path.is_dir():
        return [(path, None, path.name)]
    out = []
    for config, files, _fmt in _selected(path, options):
        out.extend((f, config, f.relative_to(path).as_posix()) for f in files)
    return out


def check(path: Path, options: ReadOptions, fmt: str) -> None:
    """InputError when a file lacks the columns of ``fmt`` or a folder lacks the configs asked for."""
    path = Path(path)
    if path.is_dir():
        _selected(path, options)
        return
    try:
        names = read_schema(path).names
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable parquet / Arrow file ({type(exc).__name__}: {str(exc)[:160]})") \
            from None
    if not _module(fmt).matches(set(names)):
        raise InputError(unknown_schema_message(path, names).replace("parquet of an unknown schema",
                                                                     f"not a {fmt} table"))


# -- shards and streaming --------------------------------------------------------------------------------
def _row_groups(f: Path) -> int:
    if f.suffix.lower() == ".arrow":
        return 0
    try:
        return pq.ParquetFile(f).metadata.num_row_groups
    except (OSError, pa.ArrowException):
        return 0


def shards(path: Path, n: int, options: ReadOptions | None = None) -> list:
    """Work units for ``n`` workers: ``(file, config, rel, first_row_group, stop_row_group)`` tuples
    (row groups None = the whole file). Whole files when there are at least ``n``, else each file's row
    groups are cut into contiguous ranges."""
    options = options or ReadOptions()
    files = data_files(path, options)
    if n <= 1 or len(files) >= n:
        return [(str(f), c, rel, None, None) for f, c, rel in files]
    per_file = -(-n // len(files))
    out = []
    for f, c, rel in files:
        groups = _row_groups(f)
        if groups < 2:
            out.append((str(f), c, rel, None, None))
            continue
        bounds = np.linspace(0, groups, min(per_file, groups) + 1).astype(int)
        out.extend((str(f), c, rel, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a)
    return out


def _record_batches(f: Path, columns: list[str], batch_size: int, groups: tuple | None,
                    dictionary: tuple = ()) -> Iterator[pa.RecordBatch]:
    if f.suffix.lower() == ".arrow":
        with pa.memory_map(str(f)) as src:
            try:
                reader = pa.ipc.open_file(src)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            except pa.ArrowInvalid:
                src.seek(0)
                batches = pa.ipc.open_stream(src)
            for b in batches:
                b = b.select(columns)
                for start in range(0, b.num_rows, batch_size):
                    yield b.slice(start, batch_size)
        return
    read_dictionary = [c for c in dictionary if c in columns] or None
    pf = pq.ParquetFile(f, buffer_size=BUFFER_SIZE, read_dictionary=read_dictionary)
    first, stop = (0, pf.metadata.num_row_groups) if groups is None else groups
    # One iterator per row group: a single iter_batches over many row groups keeps every decoded value of
    # a nested column (list<list<double>>: positions, forces) alive until the file is closed (pyarrow 26),
    # so memory would grow with the shard; per row group it stays one row group.
    for g in range(first, stop):
        yield from pf.iter_batches(batch_size=batch_size, row_groups=[g], columns=columns, use_threads=True)


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc


_END = object()


def prefetched(batches: Iterator, depth: int = PREFETCH) -> Iterator:
    """The items of ``batches``, produced ``depth`` ahead in a background thread.

    pyarrow decodes a record batch without holding the GIL, so the next batch is decoded while the caller
    converts the current one; at most ``depth`` + 1 batches are alive at once (memory stays bounded). An
    exception of the producer is raised in the caller; closing the generator stops the producer.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            item = _Failed(exc)
        else:
            item = _END
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    worker = threading.Thread(target=produce, name="parquet-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def iter_batches(path: Path, options: ReadOptions, accounting: Accounting, shard=None, batch_size: int = 4096,
                 fmt: str | None = None) -> Iterator[list]:
    """Yield one segment list (one :class:`~monoculture.datasets.records.ArrayColumns`) per record batch.

    Record batches are decoded :data:`PREFETCH` batches ahead in a background thread (:func:`prefetched`)
    while this thread converts the previous ones and the caller builds their frame tables (measured faster
    than converting in the background too: both halves hold the GIL).

    Parameters
    ----------
    path : Path
        A parquet / Arrow file or a dataset folder.
    options : ReadOptions
        ``config`` selects configs of a folder.
    accounting : Accounting
        Unreadable files and rows the converters reject count here (a file of another schema: one failed
        record ``schema_mismatch``).
    shard : tuple, optional
        One unit of :func:`shards`; None reads everything.
    batch_size : int
        Rows per record batch.
    fmt : str, optional
        The format every file must have (default: each file's detected one).
    """
    path = Path(path)
    if shard is None:
        units = [(f, c, rel, None) for f, c, rel in data_files(path, options)]
    else:
        units = [(Path(shard[0]), shard[1], shard[2], None if shard[3] is None else (shard[3], shard[4]))]
    multi = path.is_dir() and any(c not in (None, "default") for _, c, _, _ in units)
    for f, config, rel, groups in units:
        file = str(f)
        try:
            names = read_schema(f).names
        except (OSError, pa.ArrowException) as exc:
            accounting.fail(file, "*", "unreadable_container", f"{type(exc).__name__}: {str(exc)[:200]}")
            continue
        file_fmt = schema_format(names)
        if fmt is not None and _module(fmt).matches(set(names)):
            file_fmt = fmt
        if file_fmt is None or (fmt is not None and file_fmt != fmt):
            accounting.fail(file, "*", "schema_mismatch", unknown_schema_message(f, names)[len(file) + 2:][:300])
            continue
        module = _module(file_fmt)
        columns = [c for c in module.COLUMNS if c in set(names)]
        if file_fmt == "ase-parquet":
            columns = module.columns_for(names, options)
        ctx = Context(rel=rel, config=config, options=options, subset=config if multi else None)
        start = 0
        if groups is not None and groups[0] > 0:
            md = pq.ParquetFile(f).metadata
            start = sum(md.row_group(i).num_rows for i in range(groups[0]))
        batches = _record_batches(f, columns, batch_size, groups, getattr(module, "DICTIONARY", ()))
        try:
            for rb in (prefetched(batches) if PREFETCH else batches):
                n = rb.num_rows
                if n == 0:
                    continue
                rows = np.arange(start, start + n, dtype=np.int64)
                start += n
                cb = module.convert(rb, rows, ctx, accounting, file)
                if cb is not None and len(cb):
                    yield [cb]
        except (OSError, pa.ArrowException) as exc:
            accounting.fail(file, f"row {start}", "truncated_or_corrupt_container",
                            f"{type(exc).__name__}: {str(exc)[:200]}")


def iter_records(path: Path, options: ReadOptions, accounting: Accounting, shard=None, fmt: str | None = None):
    """:func:`iter_batches` one :class:`~monoculture.datasets.records.RawFrame` at a time."""
    yield from raw_frames(iter_batches(path, options, accounting, shard, fmt=fmt))


def file_format(path: Path) -> str:
    """The parquet format of a file by its schema; :class:`UnknownFormatError` (one line, with the columns
    and the known schemas) when no reader knows it."""
    try:
        names = read_schema(path).names
    except (OSError, pa.ArrowException) as exc:
        raise UnknownFormatError(f"{path}: cannot read the parquet / Arrow schema "
                                 f"({type(exc).__name__}: {str(exc)[:160]})") from None
    fmt = schema_format(names)
    if fmt is None:
        raise UnknownFormatError(unknown_schema_message(path, names))
    return fmt


def _stamp(path: Path) -> tuple:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def parquet_format(path: Path) -> str:
    """The parquet format (``lemat``, ``colabfit``, ``ase-parquet``) of a parquet / Arrow file by its schema.

    The three parquet readers share this one lookup, cached per file (path, modification time and size), so
    that sniffing a file reads its schema once, not once per parquet reader. Raises
    :class:`~monoculture.datasets.errors.UnknownFormatError` (one line: the columns and the known schemas)
    when no parquet reader knows the schema.
    """
    return _parquet_format(_stamp(Path(path)))


@functools.lru_cache(maxsize=16)
def _parquet_format(stamp: tuple) -> str:
    return file_format(Path(stamp[0]))


def reader_functions(fmt: str):
    """The reader-module functions (``check``, ``shards``, ``iter_batches``, ``iter_records``, ``sniff``,
    ``sniff_directory``) of format ``fmt``.

    Every parquet reader module exposes these six for the registry; they only bind ``fmt`` to the shared
    machinery here, so each module writes
    ``check, shards, iter_batches, iter_records, sniff, sniff_directory = reader_functions(FORMAT)``.
    """

    def check_fmt(path: Path, options: ReadOptions) -> None:
        check(path, options, fmt)

    def iter_batches_fmt(path: Path, options: ReadOptions, accounting: Accounting, shard=None,
                         batch_size: int = 4096) -> Iterator[list]:
        return iter_batches(path, options, accounting, shard, batch_size, fmt=fmt)

    def iter_records_fmt(path: Path, options: ReadOptions, accounting: Accounting, shard=None):
        return iter_records(path, options, accounting, shard, fmt=fmt)

    def sniff_fmt(path: Path, head: bytes) -> bool:
        """An uncompressed parquet / Arrow file of this schema (an unknown schema raises ``UnknownFormatError``)."""
        return inner_name(path.name) == path.name and parquet_format(path) == fmt

    def sniff_directory_fmt(path: Path) -> bool:
        """A Hugging Face dataset folder or folder of parquet shards of this schema."""
        return folder_format(Path(path)) == fmt

    return check_fmt, shards, iter_batches_fmt, iter_records_fmt, sniff_fmt, sniff_directory_fmt
