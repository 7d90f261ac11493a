"""Folder reader: a folder of structure files (CIF, POSCAR, xyz, MPTrj JSON shards, SDF, SMILES...) is one dataset.

Every file below the folder (sub-folders too; names starting with ``.`` are ignored) is read, in sorted path
order, through the reader its own sniffing picks (:func:`~monoculture.datasets.registry.sniff_format`:
name, compression, content), or through ``ReadOptions.file_format`` when one is forced (``--format``). So a
folder may mix formats (CIF and POSCAR files, plain and compressed). What the accounting gets:

* the records of every file, as its reader counts them (a broken file is counted as failed by its reader,
  with its path and why; an error the reader does not handle counts one failed record ``reader_error``
  for the rest of that file), and the next file is read;
* one skipped record ``unrecognised_file`` per file that no reader recognises.

Keys are ``<path in the folder>::<key in the file>``, so ``source`` names the file. Ids of readers whose ids
are not unique across files (``ReaderSpec.unique_ids`` False: ASE formats, SDF, SMILES) are qualified with
the path in the folder: ``sub/POSCAR:0``, ``mols.sdf:aspirin``; MPTrj, Alexandria, QM9 and ``.aselmdb`` ids
are kept. Batches hold ``batch_size`` records across file boundaries.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..accounting import Accounting
from ..errors import UnknownFormatError
from ..options import ReaderSpec, ReadOptions
from ..records import ColumnBatch, RawFrame, raw_frames, record_batches
from ..registry import READERS, get_reader, sniff_format

__all__ = ["READER", "list_files", "file_readers", "detect_card", "shards", "iter_batches", "iter_records"]

#: This reader's registry row (collected by :mod:`monoculture.datasets.registry`).
READER = ReaderSpec("folder", "a folder of files in any of these formats (CIF, POSCAR, xyz, MPTrj shards, SDF...), "
                    "each read by its own reader", __name__, directories=True, options=("file_format",), order=1000)


def list_files(path: Path) -> list[Path]:
    """The files below ``path`` in sorted order of their path in the folder; hidden files and folders skipped.

    Parameters
    ----------
    path : Path
        The folder (symbolic links to folders are not followed).
    """
    path = Path(path)
    out = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out.extend(Path(root) / f for f in files if not f.startswith("."))
    return sorted((f for f in out if f.is_file()), key=lambda f: f.relative_to(path).as_posix())


def file_readers(path: Path, options: ReadOptions, files: list[Path] | None = None
                 ) -> list[tuple[Path, ReaderSpec | None, str]]:
    """Each file (default: :func:`list_files`) with the registry row that reads it (None, and why, when none does)."""
    forced = get_reader(options.file_format) if options.file_format else None
    out = []
    for f in list_files(path) if files is None else files:
        if forced is not None:
            out.append((f, forced, ""))
            continue
        try:
            out.append((f, READERS[sniff_format(f)], ""))
        except UnknownFormatError:
            out.append((f, None, "no reader recognises this file (--format forces one)"))
        except OSError as exc:
            out.append((f, None, f"cannot be opened ({type(exc).__name__}: {str(exc)[:120]})"))
    return out


def detect_card(path: Path, options: ReadOptions) -> str | None:
    """The card every recognised file's reader detects, when they all agree; else None (mixed or no card)."""
    cards = set()
    for f, spec, _ in file_readers(path, options):
        if spec is None:
            continue
        detect = getattr(spec.load(), "detect_card", None)
        cards.add(detect(f, options) if detect is not None else None)
        if len(cards) > 1:
            return None
    return cards.pop() if cards else None


def shards(path: Path, n: int) -> list:
    """Up to ``n`` work units: tuples of consecutive file paths (``[None]``, the whole folder, for n <= 1)."""
    files = [str(f) for f in list_files(path)]
    if n <= 1 or len(files) <= 1:
        return [None]
    k = min(n, len(files))
    bounds = [i * len(files) // k for i in range(k + 1)]
    return [tuple(files[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _qualify(row_id: str, name: str, rel: str) -> str:
    """``<rel>:<id>``; an id that already starts with ``<file name>:`` gets ``rel`` in place of the name."""
    return rel + row_id[len(name):] if row_id.startswith(name + ":") else f"{rel}:{row_id}"


def _relabel(seg, rel: str, name: str, qualify: bool):
    """A segment (row list or :class:`ColumnBatch`) with keys ``<rel>::<key>`` and, if asked, qualified ids."""
    if isinstance(seg, ColumnBatch):
        seg.keys = [f"{rel}::{k}" for k in seg.keys]
        if qualify:
            seg.ids = [_qualify(str(i), name, rel) for i in seg.ids]
        return seg
    return [((_qualify(str(r[0]), name, rel) if qualify else r[0]), f"{rel}::{r[1]}") + tuple(r[2:]) for r in seg]


def _file_segments(f: Path, spec: ReaderSpec, options: ReadOptions, accounting: Accounting,
                   batch_size: int) -> Iterator:
    """Segments of one file as its reader gives them (whole batches, or rows gathered ``batch_size`` at a time)."""
    module = spec.load()
    read_batches = getattr(module, "iter_batches", None)
    if read_batches is not None:
        for segments in read_batches(f, options, accounting, batch_size=batch_size):
            yield from segments
        return
    for batch in record_batches(module.iter_records(f, options, accounting), batch_size):
        yield from batch  # one segment: a list of at most batch_size rows


def _segments(path: Path, files: list[tuple[Path, ReaderSpec | None, str]], options: ReadOptions,
              accounting: Accounting, batch_size: int) -> Iterator:
    for f, spec, why in files:
        rel = f.relative_to(path).as_posix() if f.is_relative_to(path) else f.name
        if spec is None:
            accounting.skip(str(f), "file", "unrecognised_file", why)
            continue
        qualify = not spec.unique_ids
        try:
            for seg in _file_segments(f, spec, options, accounting, batch_size):
                yield _relabel(seg, rel, f.name, qualify)
        except Exception as exc:  # noqa: BLE001 - one file's reader error must not end the folder
            accounting.fail(str(f), "rest of file", "reader_error",
                            f"{spec.name}: {type(exc).__name__}: {str(exc)[:160]}")


def _rebatch(segments: Iterator, batch_size: int) -> Iterator[list]:
    """Batches of exactly ``batch_size`` records (the last one smaller) from segments of any size."""
    batch, count = [], 0
    for seg in segments:
        while len(seg):
            room = batch_size - count
            if len(seg) > room:
                if isinstance(seg, ColumnBatch):
                    head = seg.take(room)
                else:
                    head, seg = seg[:room], seg[room:]
            else:
                head, seg = seg, ()
            if isinstance(head, list) and batch and isinstance(batch[-1], list):
                batch[-1].extend(head)  # rows of consecutive small files make one segment
            else:
                batch.append(list(head) if isinstance(head, list) else head)
            count += len(head)
            if count == batch_size:
                yield batch
                batch, count = [], 0
    if count:
        yield batch


def iter_batches(path: Path, options: ReadOptions, accounting: Accounting, shard=None,
                 batch_size: int = 4096) -> Iterator[list]:
    """Yield batches of ``batch_size`` records of every file, each a list of segments for
    :meth:`~monoculture.datasets.builder.FrameBuilder.build`.

    Parameters
    ----------
    path : Path
        The folder.
    options : ReadOptions
        Passed to every file's reader; ``file_format`` forces one reader for every file.
    accounting : Accounting
        Receives every file's counts, and the unrecognised files (skipped).
    shard : tuple of str, optional
        Files to read (from :func:`shards`); None reads them all.
    batch_size : int
        Records per batch.
    """
    path = Path(path)
    files = file_readers(path, options, None if shard is None else [Path(f) for f in shard])
    yield from _rebatch(_segments(path, files, options, accounting, batch_size), batch_size)


def iter_records(path: Path, options: ReadOptions, accounting: Accounting, shard=None) -> Iterator[RawFrame]:
    """:func:`iter_batches` one :class:`RawFrame` at a time."""
    yield from raw_frames(iter_batches(path, options, accounting, shard))
