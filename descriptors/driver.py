"""One way from frames to vectors: the driver that both descriptors and model embeddings run through.

A *transformer* turns frame batches into output tables, one *chunk* per frame batch, in input order:
:class:`~monoculture.descriptors.runner.DescriptorTransformer` (hand-made descriptors: composition, SOAP...,
parts computed in worker processes) and :class:`~monoculture.descriptors.models.pipeline.ModelTransformer`
(pretrained models: graphs built in worker processes, batched forwards). :func:`drive` does the rest, once:

1. **streaming**: frame batches are pulled one at a time; the transformer pulls the batches it must compute
   lazily, so memory holds what it has in flight, whatever the dataset size;
2. **caching** (:class:`ChunkCache`): a chunk whose key (the transformer's :meth:`Transformer.chunk_key`) is
   in the cache folder is read back instead of computed, in its place in the output order; a computed chunk
   is stored atomically (temporary file + rename), so an interrupted run resumes where it stopped;
3. **writing** (:class:`OutputSink`): chunks are appended in input order to a temporary parquet file that is
   renamed when complete (or gathered in memory), with the transformer's schema metadata, rewritten at the end
   when the metadata holds the final counts;
4. **accounting**: rows written, structures embedded, structures skipped by reason (first 1,000 examples),
   chunks computed and read from the cache; a progress line on a terminal (:class:`Progress`).

:func:`process_pool` starts the worker processes of both transformers (fork server with preloaded modules,
one BLAS / OpenMP / torch thread each).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["Chunk", "Transformer", "ChunkCache", "OutputSink", "Progress", "DriveResult", "drive",
           "row_pieces", "own_buffers", "atomic_write", "atomic_write_table", "atomic_write_bytes", "process_pool",
           "limit_worker_threads", "MAX_SKIP_EXAMPLES"]

#: Skipped structures listed by id in :attr:`DriveResult.skipped` (all are counted).
MAX_SKIP_EXAMPLES = 1000


@dataclass
class Chunk:
    """The output of one frame batch.

    Attributes
    ----------
    table : pyarrow.Table
        Output rows (one per structure, or per atom).
    n_structures : int
        Structures with a vector in ``table``.
    skipped : list of (str, str)
        ``(id, reason)`` of the structures of this batch left out (or written as NaN rows).
    """

    table: pa.Table
    n_structures: int
    skipped: list = field(default_factory=list)


class Transformer(ABC):
    """Frame batches -> :class:`Chunk`, one per batch, in order; what :func:`drive` runs."""

    #: Output schema (with the file's metadata); chunk tables are written with it.
    schema: pa.Schema

    @abstractmethod
    def transform(self, batches: Iterator[pa.Table]) -> Iterator[Chunk]:
        """One chunk per batch of ``batches``, in order; pulls batches lazily. Closing the generator early must
        release what it holds (workers, shared memory)."""

    def chunk_key(self, index: int, batch: pa.Table) -> tuple[str, str | None]:
        """``(cache file name, validation token or None)`` of the ``index``-th batch (called only with a cache)."""
        raise NotImplementedError(f"{type(self).__name__} has no cache key")

    def from_cache(self, table: pa.Table) -> Chunk:
        """The chunk of a table read from the cache."""
        return Chunk(table, table.num_rows, [])

    def to_cache(self, chunk: Chunk) -> pa.Table:
        """The table stored in the cache for a computed chunk."""
        return chunk.table


def own_buffers(batch: pa.Table) -> pa.Table:
    """``batch`` with buffers of its own when it is a slice of a larger table.

    A pickled slice carries the whole parent table's buffers, so sending slices of a big table to workers
    multiplies the bytes through the pipes (``take`` copies only the rows of the slice).
    """
    if batch.num_rows and batch.get_total_buffer_size() > 1.5 * batch.nbytes:
        return batch.take(pa.array(np.arange(batch.num_rows)))
    return batch


def row_pieces(batch: pa.Table, size: int) -> list[pa.Table]:
    """``batch`` cut into consecutive zero-copy slices of at most ``size`` rows (the batch itself when it is no
    larger). A piece sent to a worker process goes through :func:`own_buffers` first: a pickled slice would
    carry the whole table."""
    n = batch.num_rows
    size = max(int(size), 1)
    if n <= size:
        return [batch]
    return [batch.slice(s, size) for s in range(0, n, size)]


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """Run ``write(tmp)`` on a temporary file beside ``path`` (the parent folder is created), then rename it to
    ``path``: a reader never sees a half-written file, and the temporary file is removed on any error or Ctrl-C.

    Parameters
    ----------
    path : path
        The file written.
    write : callable
        Called with the temporary file's path (str); writes the whole content there.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_table(path: str | os.PathLike, table: pa.Table) -> None:
    """Write ``table`` to ``path`` as parquet, whole or not at all (:func:`atomic_write`)."""
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path``, whole or not at all (:func:`atomic_write`)."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


#: Schema-metadata key of a cached chunk's validation token (the SHA-256 of its ids, for caches keyed by the
#: batch's position).
TOKEN_KEY = b"ids_sha256"


class ChunkCache:
    """A folder of cached chunks, one parquet file each.

    Parameters
    ----------
    folder : path
        Created if missing.
    columns : sequence of str, optional
        A cached file with other columns (an older layout) is ignored (recomputed).
    """

    def __init__(self, folder: str | os.PathLike, columns: Sequence[str] | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.columns = list(columns) if columns is not None else None

    def load(self, name: str, token: str | None = None) -> pa.Table | None:
        """The cached table ``name``, or None when it is missing, unreadable (a crashed writer on a non-atomic
        file system), of another token or of other columns. A token is checked and then dropped with the
        metadata."""
        path = self.folder / name
        if not path.exists():
            return None
        try:
            table = pq.read_table(path)
        except Exception:  # noqa: BLE001 - a corrupt cache file is recomputed
            return None
        if self.columns is not None and table.column_names != self.columns:
            return None
        if token is not None:
            if (table.schema.metadata or {}).get(TOKEN_KEY, b"").decode() != token:
                return None
            return table.replace_schema_metadata(None)
        return table

    def store(self, name: str, table: pa.Table, token: str | None = None) -> None:
        """Store ``table`` as ``name`` atomically (with ``token`` as its only metadata when given)."""
        if token is not None:
            table = table.replace_schema_metadata({TOKEN_KEY: token.encode()})
        atomic_write_table(self.folder / name, table)


class OutputSink:
    """Chunk tables appended in order to a parquet file (temporary name, renamed by :meth:`commit`) or gathered
    in memory (``path=None``).

    Parameters
    ----------
    path : path or None
    schema : pyarrow.Schema
        Schema (and metadata) of every table written.
    """

    def __init__(self, path: str | os.PathLike | None, schema: pa.Schema):
        self.schema = schema
        self.path = Path(path) if path is not None else None
        self.tables: list[pa.Table] = []
        self._tmp = self._writer = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp")
            os.close(fd)
            self._writer = pq.ParquetWriter(self._tmp, schema)

    def conform(self, table: pa.Table) -> pa.Table:
        """``table`` with the sink's schema (metadata replaced; cast when the fields differ)."""
        if table.schema.equals(self.schema, check_metadata=False):
            return table.replace_schema_metadata(self.schema.metadata)
        return table.cast(self.schema)

    def write(self, table: pa.Table) -> None:
        table = self.conform(table)
        if self._writer is not None:
            self._writer.write_table(table)
        else:
            self.tables.append(table)

    def commit(self, metadata: dict[bytes, bytes] | None = None) -> pa.Table | None:
        """Finish: rename the file into place (after rewriting it with ``metadata`` replacing the schema metadata,
        when given) and return None, or return the in-memory table."""
        if self._writer is None:
            table = pa.concat_tables(self.tables) if self.tables else self.schema.empty_table()
            return table.replace_schema_metadata(metadata or self.schema.metadata)
        self._writer.close()
        self._writer = None
        if metadata is not None and metadata != self.schema.metadata:
            self._rewrite_with(metadata)
        os.replace(self._tmp, self.path)
        self._tmp = None
        return None

    def _rewrite_with(self, metadata: dict[bytes, bytes]) -> None:
        """Copy the temporary file row group by row group into a new one whose schema carries ``metadata``
        (parquet keeps the schema in the footer, written first by the writer: the counts known only at the
        end need a second file; one row group in memory at a time, not the whole output)."""
        fd, new = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp")
        os.close(fd)
        try:
            source = pq.ParquetFile(self._tmp)
            schema = source.schema_arrow.with_metadata(metadata)
            with pq.ParquetWriter(new, schema) as writer:
                for i in range(source.num_row_groups):
                    writer.write_table(source.read_row_group(i).replace_schema_metadata(metadata))
            source.close()
        except BaseException:
            Path(new).unlink(missing_ok=True)
            raise
        Path(self._tmp).unlink()
        self._tmp = new

    def abort(self) -> None:
        """Close and remove the temporary file (a failed or interrupted run writes nothing)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._tmp is not None:
            Path(self._tmp).unlink(missing_ok=True)
            self._tmp = None


class Progress:
    """Structures embedded and structures/s on stderr (only when stderr is a terminal, unless forced)."""

    def __init__(self, enabled: bool | None):
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self.t0 = time.perf_counter()
        self.n = 0

    def update(self, n: int) -> None:
        self.n += n
        if not self.enabled:
            return
        dt = time.perf_counter() - self.t0
        rate = self.n / dt if dt > 0 else 0.0
        print(f"\rembedded {self.n} structures, {rate:.1f} structures/s", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


@dataclass
class DriveResult:
    """What :func:`drive` did.

    Attributes
    ----------
    n_rows : int
        Rows written.
    n_structures : int
        Structures with a vector.
    n_skipped : int
        Structures left out or written as NaN rows.
    skip_reasons : collections.Counter
        ``{reason: structures}``.
    skipped : list of (str, str)
        ``(id, reason)`` of the first :data:`MAX_SKIP_EXAMPLES` skipped structures.
    n_chunks, n_chunks_cached : int
        Chunks written, and those read from the cache.
    table : pyarrow.Table or None
        The output when it was gathered in memory.
    elapsed_s : float
    """

    n_rows: int = 0
    n_structures: int = 0
    n_skipped: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    skipped: list = field(default_factory=list)
    n_chunks: int = 0
    n_chunks_cached: int = 0
    table: pa.Table | None = None
    elapsed_s: float = 0.0


def drive(batches: Iterable[pa.Table], transformer: Transformer, *, out: str | os.PathLike | None = None,
          cache: ChunkCache | None = None, progress: Progress | None = None,
          final_metadata: Callable[[DriveResult], dict[bytes, bytes]] | None = None,
          on_close: Callable[[], Any] | None = None) -> DriveResult:
    """Run ``transformer`` over ``batches`` (see the module docstring).

    Parameters
    ----------
    batches : iterable of pyarrow.Table
        Frame batches (FRAME_SCHEMA), each one chunk of the output and of the cache.
    transformer : Transformer
    out : path, optional
        Output parquet file, written whole or not at all; None gathers the output in :attr:`DriveResult.table`.
    cache : ChunkCache, optional
    progress : Progress, optional
    final_metadata : callable, optional
        ``final_metadata(result)`` gives the schema metadata of the finished file (counts included); without it
        the transformer's schema metadata stays.
    on_close : callable, optional
        Called once when the run ends, successfully or not, before the output is committed (stop the reading
        process, shut down the worker pools).

    Returns
    -------
    DriveResult
    """
    t0 = time.perf_counter()
    result = DriveResult()
    sink = OutputSink(out, transformer.schema)
    pending: deque = deque()  # ("cached", Chunk) or ("compute", (name, token)) in input order

    def emit(chunk: Chunk, cached: bool) -> None:
        sink.write(chunk.table)
        result.n_rows += chunk.table.num_rows
        result.n_structures += chunk.n_structures
        result.n_skipped += len(chunk.skipped)
        for ident, reason in chunk.skipped:
            result.skip_reasons[reason] += 1
            if len(result.skipped) < MAX_SKIP_EXAMPLES:
                result.skipped.append((ident, reason))
        result.n_chunks += 1
        result.n_chunks_cached += int(cached)
        if progress is not None:
            progress.update(chunk.n_structures + len(chunk.skipped))

    def flush_cached() -> None:
        while pending and pending[0][0] == "cached":
            emit(pending.popleft()[1], True)

    def missing() -> Iterator[pa.Table]:
        for i, batch in enumerate(batches):
            name = token = None
            if cache is not None:
                name, token = transformer.chunk_key(i, batch)
                table = cache.load(name, token)
                if table is not None:
                    pending.append(("cached", transformer.from_cache(table)))
                    flush_cached()  # written at once when nothing computed is waiting before it
                    continue
            pending.append(("compute", (name, token)))
            yield batch

    stream = transformer.transform(missing())
    closed = False
    try:
        for chunk in stream:
            flush_cached()
            kind, (name, token) = pending.popleft()
            assert kind == "compute", "a transformer yielded more chunks than it was given batches"
            if cache is not None and name is not None:
                cache.store(name, transformer.to_cache(chunk), token)
            emit(chunk, False)
        flush_cached()
        if pending:  # a computed chunk never came: the output would silently lack its rows
            raise RuntimeError(f"a transformer yielded fewer chunks than it was given batches "
                               f"({sum(kind == 'compute' for kind, _ in pending)} missing)")
        closed = True
        if on_close is not None:
            on_close()
        result.elapsed_s = time.perf_counter() - t0
        result.table = sink.commit(final_metadata(result) if final_metadata is not None else None)
    except BaseException:
        sink.abort()
        raise
    finally:
        stream.close()
        if progress is not None:
            progress.close()
        if not closed and on_close is not None:
            on_close()
    result.elapsed_s = time.perf_counter() - t0
    return result


def limit_worker_threads(environment: bool = False) -> None:
    """Initializer of worker processes: one BLAS / OpenMP thread (threadpoolctl) and one torch thread if torch is
    loaded; with ``environment`` also ``NUMBA_NUM_THREADS`` / ``OMP_NUM_THREADS`` = 1 for libraries not yet
    initialised. A worker computes one structure at a time: a thread pool per core in every worker
    oversubscribes the machine (measured on a 16-core GPU host: 8 graph workers with default pools left the
    embedding pipeline at 0.6x of the model-only rate)."""
    if environment:
        os.environ["NUMBA_NUM_THREADS"] = "1"
        os.environ["OMP_NUM_THREADS"] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn, a dependency
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def process_pool(workers: int, preload: Sequence[str] = (), initializer: Callable | None = None,
                 initargs: tuple = (), forkserver: bool = True):
    """A ``ProcessPoolExecutor`` of ``workers`` processes started from a fork server that imported ``preload``.

    Not plain ``fork``: the parent may hold OpenMP / numba / Arrow / CUDA threads, which a forked child inherits
    in a broken state. The fork server imports the modules once, before any worker exists, so every worker
    starts without paying those imports (and compilations) again. Without a fork server on the platform (or with
    ``forkserver=False``), the platform's default start method is used. The multiprocessing resource tracker is
    started first so that the workers share it: it unlinks shared-memory blocks a killed run leaves behind.

    Parameters
    ----------
    workers : int
    preload : sequence of str
        Modules the fork server imports.
    initializer, initargs
        Run in each worker when it starts (default :func:`limit_worker_threads`).
    forkserver : bool
        Use the fork server where the platform has one.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    context = None
    if forkserver and "forkserver" in mp.get_all_start_methods():
        context = mp.get_context("forkserver")
        # Takes effect when this process's forkserver starts (the first pool that needs it); a forkserver
        # already running keeps its modules, and workers then import the rest when they unpickle a task.
        context.set_forkserver_preload(list(preload))
    elif forkserver:
        context = mp.get_context("spawn")
    return ProcessPoolExecutor(int(workers), mp_context=context, initializer=initializer or limit_worker_threads,
                               initargs=initargs)


def metadata_json(doc: dict) -> bytes:
    """``doc`` as the JSON bytes stored in a schema-metadata value (keys sorted, non-JSON values as str)."""
    return json.dumps(doc, sort_keys=True, default=str).encode()
