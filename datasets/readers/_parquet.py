"""Columnar machinery of the parquet readers (LeMat, ColabFit, ASE columns): files, Hugging Face folders,
schema detection, streaming by record batch, row-group shards and the Arrow -> frame-column helpers.

No format logic lives here beyond recognising a schema: each format module (``lemat``, ``colabfit``,
``ase_parquet``) provides ``COLUMNS`` (the columns it reads), ``DESCRIPTION``, ``matches(names) -> bool``,
``kind(names)`` (the schema's name, e.g. ``lemat-bulk``), optionally ``DICTIONARY`` (string columns read as
Arrow dictionaries), and ``convert(record_batch, rows, ctx, accounting, file) -> ArrayColumns | None``
(``rows``: the row numbers in the file; rows that cannot be frames are counted as skipped there).

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
import importlib
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..accounting import Accounting
from ..builder import ArrayColumns, raw_frames
from ..errors import InputError, UnknownFormatError
from ..options import ReadOptions, inner_name

__all__ = ["FORMATS", "DATA_SUFFIXES", "BUFFER_SIZE", "read_schema", "schema_format", "unknown_schema_message",
           "hf_configs", "data_files", "folder_format", "detect_kind", "shards", "iter_batches", "iter_records", "reader_functions", "optional_vectors",
           "check", "Context", "is_data_file", "file_format", "prefetched"]

#: Registry names of the parquet formats and their modules, in detection order (most specific first).
FORMATS = {"lemat": "lemat", "colabfit": "colabfit", "ase-parquet": "ase_parquet"}
DATA_SUFFIXES = (".parquet", ".arrow")
#: Bytes read ahead per column by the buffered parquet stream.
BUFFER_SIZE = 1 << 22
#: Record batches decoded ahead (in a background thread) of the one being converted.
PREFETCH = 2
_MAX_LISTED = 40


def _module(fmt: str):
    return importlib.import_module(f"monoculture.datasets.readers.{FORMATS[fmt]}")


def is_data_file(path: Path) -> bool:
    """A parquet or Arrow file (not hidden; not a ``cache-*.arrow`` left by ``datasets.Dataset.map``)."""
    name = path.name
    if name.startswith(".") or (name.startswith("cache-") and name.endswith(".arrow")):
        return False
    return path.suffix.lower() in DATA_SUFFIXES


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
    for fmt in FORMATS:
        if _module(fmt).matches(names):
            return fmt
    return None


def detect_kind(names) -> str | None:
    """The schema's own name (``lemat-bulk``, ``lemat-traj``, ``colabfit``, ``ase-columns``) or None."""
    fmt = schema_format(names)
    return _module(fmt).kind(set(names)) if fmt else None


def unknown_schema_message(path: Path, names) -> str:
    """One line: the file, its columns, and the schemas the readers know."""
    names = list(names)
    shown = ", ".join(names[:_MAX_LISTED]) + (f", ... ({len(names)} columns)" if len(names) > _MAX_LISTED else "")
    known = "; ".join(f"{fmt} ({_module(fmt).DESCRIPTION})" for fmt in FORMATS)
    return f"{path}: parquet of an unknown schema (columns: {shown}); known schemas: {known}"


# -- Hugging Face folders --------------------------------------------------------------------------------
def _front_matter(readme: Path) -> dict:
    """The YAML front matter of a dataset card (``---`` ... ``---``), {} when absent or unreadable."""
    try:
        text = readme.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    m = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", text, re.S)
    if not m:
        return {}
    import yaml

    try:
        doc = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _glob(root: Path, pattern: str) -> list[Path]:
    """Files under ``root`` matching an HF ``data_files`` pattern (``co/*.parquet``, ``x/train-*``, ``**``)."""
    pattern = pattern.strip().lstrip("./")
    if not any(ch in pattern for ch in "*?["):
        p = root / pattern
        if p.is_dir():
            return sorted(f for f in p.rglob("*") if f.is_file() and is_data_file(f))
        return [p] if p.is_file() else []
    return sorted(f for f in root.glob(pattern) if f.is_file() and is_data_file(f))


def hf_configs(path: Path) -> dict[str, list[Path]]:
    """Configs of a dataset folder and their data files (sorted), in the order the card lists them.

    From ``README.md`` ``configs:`` when present; else each sub-folder holding data files is a config named
    after it, and data files at the top level form the config ``default``.
    """
    path = Path(path)
    card = _front_matter(path / "README.md") if (path / "README.md").is_file() else {}
    configs: dict[str, list[Path]] = {}
    entries = card.get("configs")
    if isinstance(entries, list):
        for entry in entries:
            if not isinstance(entry, dict) or "config_name" not in entry:
                continue
            spec = entry.get("data_files", [])
            patterns: list[str] = []
            for item in spec if isinstance(spec, list) else [spec]:
                if isinstance(item, str):
                    patterns.append(item)
                elif isinstance(item, dict):
                    p = item.get("path", [])
                    patterns.extend(p if isinstance(p, list) else [p])
            files = sorted({f for pat in patterns if isinstance(pat, str) for f in _glob(path, pat)})
            configs[str(entry["config_name"])] = files
        if configs:
            return configs
    top = sorted(f for f in path.iterdir() if f.is_file() and is_data_file(f))
    if top:
        configs["default"] = top
    for sub in sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")):
        files = sorted(f for f in sub.rglob("*") if f.is_file() and is_data_file(f)
                       and not any(part.startswith(".") for part in f.relative_to(path).parts))
        if files:
            configs[sub.name] = files
    return configs


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
    listed = readme.is_file() and isinstance(_front_matter(readme).get("configs"), list)
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
    """Yield one segment list (one :class:`~monoculture.datasets.builder.ArrayColumns`) per record batch.

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
    """:func:`iter_batches` one :class:`~monoculture.datasets.builder.RawFrame` at a time."""
    yield from raw_frames(iter_batches(path, options, accounting, shard, fmt=fmt))


# -- Arrow -> numpy helpers for the converters -----------------------------------------------------------
def np_valid(col: pa.Array) -> np.ndarray:
    """(n,) bool: the value is not null."""
    if col.null_count == 0:
        return np.ones(len(col), bool)
    return ~col.is_null().to_numpy(zero_copy_only=False)


def list_lengths(col: pa.Array) -> np.ndarray:
    """(n,) int64 lengths of a list column (0 for null)."""
    if pa.types.is_fixed_size_list(col.type):
        return np.where(np_valid(col), col.type.list_size, 0).astype(np.int64)
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        lengths = np.diff(col.offsets.to_numpy()).astype(np.int64)
        if col.null_count:
            lengths[~np_valid(col)] = 0
        return lengths
    return pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False).astype(np.int64)


def floats(arr: pa.Array) -> np.ndarray:
    """A numeric array as float64 numpy (nulls -> NaN)."""
    if not pa.types.is_floating(arr.type) or arr.type != pa.float64():
        arr = pc.cast(arr, pa.float64())
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def flat_values(col: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Flatten nested lists of a column completely: (leaf values, per-row leaf counts (n,) int64)."""
    valid_lengths = list_lengths(col)
    counts = valid_lengths.copy()
    arr = col.flatten()
    while pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        inner = list_lengths(arr)
        owners = np.repeat(np.arange(len(col)), counts)
        counts = np.bincount(owners, weights=inner, minlength=len(col)).astype(np.int64)
        arr = arr.flatten()
    return arr, counts


def optional_vectors(rb: pa.RecordBatch, name: str, width: int, expected: np.ndarray, absent="empty"
                     ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """:func:`vectors` of column ``name`` of ``rb``; without that column ``(values, no row valid, no row bad)``
    where ``values`` is an empty array, or None when ``absent`` is None (per-atom columns: no array at all)."""
    if name in rb.schema.names:
        return vectors(rb.column(name), width, expected)
    n = rb.num_rows
    return (None if absent is None else np.zeros(0)), np.zeros(n, bool), np.zeros(n, bool)


def vectors(col: pa.Array, width: int, expected: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A per-row array column (``list<list<double>>`` N x width, or flat N*width) as numbers.

    Returns (values (sum over valid rows of their leaf counts,) float64, valid (n,) bool, bad (n,) bool):
    ``bad`` marks a valid row whose leaf count is not ``width`` times ``expected`` (when given), or not a
    multiple of ``width``, or whose nested rows are not all of length ``width``.
    """
    valid = np_valid(col)
    if pa.types.is_list(col.type) and pa.types.is_list(col.type.value_type):  # the usual N x 3: offsets only
        inner = col.flatten()
        if inner.null_count == 0:
            ioff = inner.offsets.to_numpy()
            if len(inner) == 0 or (np.diff(ioff) == width).all():
                lengths = list_lengths(col)
                bad = valid & (lengths != expected) if expected is not None else np.zeros(len(col), bool)
                return floats(inner.flatten()), valid, bad
    leaves, counts = flat_values(col)
    bad = valid & (counts % width != 0)
    if expected is not None:
        bad |= valid & (counts != expected * width)
    arr = col.flatten()
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        inner = list_lengths(arr)
        if (inner != width).any():  # e.g. [[x, y, z, w], [x, y]]: six numbers, two wrong atoms
            owners = np.repeat(np.arange(len(col)), list_lengths(col))
            bad[owners[inner != width]] = True
    return floats(leaves), valid, bad


def strings(col: pa.Array | None, n: int, fn=None) -> list:
    """A string column as a list (None for null), each value through ``fn`` when given; a dictionary column
    is mapped once per distinct value."""
    if col is None:
        return [None] * n
    if pa.types.is_dictionary(col.type):
        values = col.dictionary.to_pylist()
        table = np.array([fn(v) if fn else v for v in values] + [None], dtype=object)
        return table[pc.fill_null(col.indices, len(values)).to_numpy(zero_copy_only=False)].tolist()
    values = col.to_pylist()
    if fn is None:
        return values
    mapped = {v: fn(v) for v in set(values)}
    return [mapped[v] for v in values]


def to_voigt(m9: np.ndarray) -> np.ndarray:
    """Row-major 3x3 tensors (k, 9) -> Voigt (xx, yy, zz, yz, xz, xy) (k, 6)."""
    return m9[:, [0, 4, 8, 5, 2, 1]]


def skip_rows(accounting: Accounting, file: str, rel: str, rows: np.ndarray, masks: list) -> np.ndarray:
    """Count rows as skipped for the first failing rule of ``masks`` ([(mask, reason, detail)]); returns
    the keep mask."""
    drop = np.zeros(len(rows), bool)
    for mask, reason, detail in masks:
        new = mask & ~drop
        for i in np.flatnonzero(new):
            accounting.skip(file, f"{rel}:{rows[i]}", reason, detail)
        drop |= new
    return ~drop


def new_columns(n: int) -> ArrayColumns:
    cb = ArrayColumns(stress_width=6, stress_factor=1.0)
    cb.temperature = [None] * n
    cb.charge = [None] * n
    cb.spin = [None] * n
    return cb


def fill_atoms(cb: ArrayColumns, lengths: np.ndarray, numbers: np.ndarray, positions: np.ndarray,
               forces: np.ndarray | None, has_forces: np.ndarray) -> None:
    """Set the per-atom buffers; ``forces`` holds values for the atoms of frames with forces only."""
    cb.lengths = np.ascontiguousarray(lengths, np.int64)
    cb.numbers = np.ascontiguousarray(numbers, np.int64)
    cb.positions = np.ascontiguousarray(positions, np.float64).ravel()
    n_atoms = int(lengths.sum())
    if has_forces.all():
        cb.forces = np.ascontiguousarray(forces, np.float64).ravel()
    else:
        full = np.full((n_atoms, 3), np.nan)
        if forces is not None and len(forces):
            full[np.repeat(has_forces, lengths)] = forces.reshape(-1, 3)
        cb.forces = full.ravel()
    cb.has_forces = has_forces.astype(np.int8)


def fill_stress(cb: ArrayColumns, voigt_gpa: np.ndarray, has_stress: np.ndarray) -> None:
    """Stress (n, 6) GPa, ASE sign (any value where ``has_stress`` is False)."""
    cb.stress = np.ascontiguousarray(np.where(has_stress[:, None], voigt_gpa, np.nan), np.float64).ravel()
    cb.has_stress = has_stress.astype(np.int8)


def keys(rel: str, rows: np.ndarray) -> pa.Array:
    """Record keys ``<file in the dataset>:<row>`` (string array)."""
    return pc.binary_join_element_wise(rel + ":", pc.cast(pa.array(rows, pa.int64()), pa.string()), "")


def text(col: pa.Array | None) -> pa.Array | None:
    """A column as a string array (None stays None)."""
    if col is None:
        return None
    return col if col.type == pa.string() else pc.cast(col, pa.string())


def ids(*candidates: pa.Array | None) -> pa.Array:
    """The first non-null value of each row among the candidate string columns (the last one has no null)."""
    cols = [text(c) for c in candidates if c is not None]
    if len(cols) == 1 or cols[0].null_count == 0:
        return cols[0]
    return pc.coalesce(*cols)


def path_text(path: Path) -> str:
    return str(Path(path).resolve()).lower()


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
