"""Open a dataset (one file or a folder of shards) and stream it as frame batches.

>>> from monoculture.datasets import open_dataset
>>> ds = open_dataset("MPtrj_2022.9_full.json")           # doctest: +SKIP
>>> for batch in ds.batches():                              # doctest: +SKIP
...     ...                                                 # pyarrow.Table in FRAME_SCHEMA
>>> ds.accounting.to_dict()                                 # doctest: +SKIP
{'read': ..., 'skipped': ..., 'failed': ..., ...}
"""
from __future__ import annotations

import gc
import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from .accounting import Accounting
from .builder import FrameBuilder
from .cards import DatasetCard, get_card, parse_level_of_theory
from .errors import DatasetOpenError, InputError
from .options import ReaderSpec, ReadOptions
from .records import record_batches
from .registry import get_reader, sniff_format
from .theory import mp_hubbard_u_mask

__all__ = ["Dataset", "open_dataset", "read_frames", "DatasetOpenError", "gc_paused"]


class Dataset:
    """One dataset: a file or folder, its reader, its card, and the accounting of its records.

    Parameters
    ----------
    path : str or Path
        A file (plain or ``.gz`` / ``.bz2`` / ``.xz``), a folder of shards (``.aselmdb``, QM9 ``.xyz``), or any
        other folder, read file by file (``folder`` reader: CIF, POSCAR, xyz, MPTrj shards, SDF...).
    format : str, optional
        Reader name (``monoculture formats`` lists them); sniffed when omitted. On a folder, a reader that
        does not read folders itself is used for every file of it.
    dataset_card : str, optional
        Card name that overrides the detected one.
    level_of_theory : str, optional
        Level-of-theory label that overrides card and file (``"PBE+U"``, ``"wB97M-V/def2-TZVPD"``).
    name : str, optional
        Value of the ``dataset`` column (default: card name, else file stem).
    batch_size : int
        Frames per batch.
    options : ReadOptions, optional
        Reader options (key names for the ``ase`` reader, SMILES and id columns of a table...).
    quiet : bool
        Do not log skipped records as warnings (they are still counted).
    progress : bool or None
        Progress bar on stderr; default: only when stderr is a terminal.

    Raises
    ------
    DatasetOpenError
        A missing path, or a file its reader cannot read with these options (a table without its SMILES
        column: the message names the file, its columns and the option).
    UnknownFormatError
        A file no reader recognises.
    """

    def __init__(self, path, format: str | None = None, dataset_card: str | None = None,
                 level_of_theory: str | None = None, name: str | None = None, batch_size: int = 4096,
                 options: ReadOptions | None = None, quiet: bool = False, progress: bool | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise DatasetOpenError(f"{self.path}: no such file or folder")
        self.options = options or ReadOptions()
        self.format = format or sniff_format(self.path)
        self.spec: ReaderSpec = get_reader(self.format)
        if self.path.is_dir() and not self.spec.directories:  # --format X on a folder: every file read by X
            self.options = replace(self.options, file_format=self.format)
            self.format, self.spec = "folder", get_reader("folder")
        self._module = self.spec.load()
        check = getattr(self._module, "check", None)
        if check is not None and (not self.path.is_dir() or self.spec.directories):
            try:
                check(self.path, self.options)
            except InputError as exc:
                raise DatasetOpenError(str(exc)) from None
        card_name = dataset_card
        if card_name is None and hasattr(self._module, "detect_card"):
            card_name = self._module.detect_card(self.path, self.options)
        self.card: DatasetCard | None = get_card(card_name) if card_name else None
        self.level_of_theory_override = level_of_theory
        self._override = parse_level_of_theory(level_of_theory) if level_of_theory else None
        self.name = name or self.options.dataset or (self.card.name if self.card else _stem(self.path))
        self.batch_size = int(batch_size)
        self._logged: set = set()  # issues already printed: a second pass over the data prints nothing again
        self.accounting = Accounting(quiet=quiet, logged=self._logged)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.files: list[str] = []

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, format={self.format!r}, card={self.card.name if self.card else None!r})"

    def __fspath__(self) -> str:
        """The dataset's path: an open dataset stands wherever a path of one is accepted (``os.PathLike``)."""
        return str(self.path)

    def __getstate__(self) -> dict:
        """Picklable (Dask ships datasets to workers): the reader module is imported again on unpickling."""
        state = dict(self.__dict__)
        state.pop("_module", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._module = self.spec.load()

    # -- level of theory -------------------------------------------------------------------------------
    def _fill_theory(self, functional: list, hubbard_u: list, basis: list, numbers: np.ndarray,
                     offsets: np.ndarray) -> tuple[list, list, list]:
        """Level of theory of the valid frames of a batch: override > what the file says > card.

        ``functional`` / ``hubbard_u`` / ``basis``: lists (n,) as read; ``numbers`` (atoms,) Z of these
        frames, frame ``i`` being ``numbers[offsets[i]:offsets[i + 1]]``. The card's Hubbard U rule is
        evaluated per frame (vectorised for the Materials Project rule).
        """
        n = len(functional)
        if self._override is not None:
            f, u, b = self._override
            return [f] * n, [u] * n, [b] * n
        card = self.card
        if card is None or None not in functional:  # the file says it for every frame (or nothing can)
            return functional, hubbard_u, basis
        missing = [i for i, f in enumerate(functional) if f is None]
        if card.hubbard_u == "mp":
            u_all = mp_hubbard_u_mask(numbers, offsets).tolist()
        elif card.hubbard_u == "none":
            u_all = [False] * n
        elif card.hubbard_u == "all":
            u_all = [True] * n
        else:
            u_all = [None] * n
        if len(missing) == n:
            return [card.functional] * n, u_all, [card.basis] * n
        functional, hubbard_u, basis = list(functional), list(hubbard_u), list(basis)
        for i in missing:
            functional[i], hubbard_u[i], basis[i] = card.functional, u_all[i], card.basis
        return functional, hubbard_u, basis

    # -- streaming -------------------------------------------------------------------------------------
    def shards(self, n: int) -> list:
        """Independent work units covering the dataset once (picklable), for up to ``n`` workers.

        Formats that cannot be split return ``[None]`` (the whole dataset). Pass each unit to
        :meth:`batches` (``shard=``); accounting of the units merges to that of one whole pass.
        """
        fn = getattr(self._module, "shards", None)
        if fn is None:
            return [None]
        if "options" in inspect.signature(fn).parameters:  # readers whose units depend on options (--config)
            return fn(self.path, n, options=self.options)
        return fn(self.path, n)

    def batches(self, shard=None) -> Iterator[pa.Table]:
        """Yield frame batches (``pyarrow.Table`` in ``FRAME_SCHEMA``); counts go to ``self.accounting``.

        Each call re-reads the data (or the given ``shard`` of it) with fresh accounting. Readers that
        have ``iter_batches`` hand over whole batches (segments of row tuples and flat
        :class:`~monoculture.datasets.records.ColumnBatch` columns, no per-record object); the records
        (:class:`~monoculture.datasets.records.RawFrame`) of the others are gathered into batches of rows
        (:func:`~monoculture.datasets.records.record_batches`). Either way a batch holds ``batch_size``
        records before validation and goes to the builder's one input, ``FrameBuilder.build``.
        """
        self.accounting = Accounting(quiet=self.accounting.quiet, logged=self._logged)
        file_label = str(self.path)
        self.files = [file_label]
        builder = FrameBuilder(self.name, file_label, self.accounting, theory=self._fill_theory)
        bar = _progress(self.progress, str(self.path.name))
        args = (self.path, self.options, self.accounting) + (() if shard is None else (shard,))
        read_batches = getattr(self._module, "iter_batches", None)
        if read_batches is not None:
            batches = read_batches(*args, batch_size=self.batch_size)
        else:  # a per-record reader: its records gathered into the builder's one input form, batches of rows
            batches = record_batches(self._module.iter_records(*args), self.batch_size)
        try:
            while True:
                with gc_paused():
                    segments = next(batches, None)
                    if segments is None:
                        break
                    n_records = sum(len(seg) for seg in segments)
                    table = builder.build(segments)
                    del segments  # freed while the collector is paused
                if bar is not None:
                    bar.update(n_records)
                if table is not None:
                    yield table
        finally:
            if bar is not None:
                bar.close()


@contextmanager
def gc_paused():
    """Pause CPython's cyclic garbage collector inside the block (restored after, also on error).

    Producing a batch allocates hundreds of thousands of short-lived containers (the parsed JSON of every
    record) and holds a batch's worth of them until the batch is built; none of them forms a reference
    cycle, so they are all freed by reference counting, but each collector pass still walks every live
    one. Pausing it only while a batch is produced (never while the caller holds the batch) removes that
    cost without changing what is freed: cyclic garbage waits at most one batch.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _stem(path: Path) -> str:
    name = path.name
    if path.is_dir():
        return name
    for suffix in (".bz2", ".gz", ".xz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return Path(name).stem or name


def _progress(enabled: bool, label: str):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(desc=label, unit=" frames", file=sys.stderr, leave=False, dynamic_ncols=True)


def open_dataset(path, **kwargs) -> Dataset:
    """Open one dataset; keyword arguments as in :class:`Dataset`.

    ``path`` may also be an already open :class:`Dataset` (or an in-memory
    :class:`~monoculture.datasets.memory.MemoryDataset`), which is returned unchanged: it keeps the format,
    card and options it was opened with, and the keyword arguments are not used.
    """
    if isinstance(path, Dataset):
        return path
    return Dataset(path, **kwargs)


def read_frames(path, **kwargs) -> pa.Table:
    """Read a whole (small) dataset into one table. Use :meth:`Dataset.batches` for large data."""
    from .frames import concat_batches

    return concat_batches(open_dataset(path, **kwargs).batches())
