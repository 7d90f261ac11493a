"""Embed whole datasets: stream frames, build graphs in worker processes, batched force-free forward passes,
parquet written in chunks, and a resumable cache.

:func:`embed_dataset` is what ``monoculture embed`` runs. Per frame batch (one *chunk*):

1. every frame gets a content hash (BLAKE2b of atomic numbers, positions, cell and pbc, rounded to 1e-6 Å);
2. the chunk key is the hash of those hashes and of the model's provenance (name, version, layer, pooling,
   checkpoint sha256); a chunk found in ``cache_dir`` under that key is read back instead of recomputed,
   so an interrupted run continues where it stopped and a second run over the same data costs only the
   reading and hashing of frames;
3. otherwise the graphs are built (pieces of ``batch_size`` frames spread over ``workers`` processes, up to
   ``2 * workers`` pieces ahead of the model, via
   :func:`~.streaming.embed_frame_rows`) and the model runs batched under ``torch.no_grad`` without
   forces/stress;
4. the chunk is written to the cache atomically (temporary file + rename) with its skipped structures, and
   appended to the output parquet with a ``ParquetWriter``: memory holds one chunk whatever the dataset size.

Steps 2 and 4 (and the streaming, accounting and progress line) are the frames -> vectors driver that
``monoculture featurize`` also runs (:func:`monoculture.descriptors.driver.drive`); the model is its
:class:`ModelTransformer`.

Output (the layouts are defined in :mod:`monoculture.descriptors.embedding_files`, whose
:func:`~monoculture.descriptors.embedding_files.read_embedding_file` reads them back):

* ``pooling="mean"`` / ``"mean_var"``: one row per embedded structure, columns ``id`` (string) and
  ``embedding`` (fixed-size list of float32, width ``dim`` or ``2 * dim``);
* ``pooling="atoms"``: one row per atom, structures one after the other and atoms in input order, columns
  ``id`` (string: the structure id, repeated for each of its atoms), ``atom_index`` (int32, 0-based position
  in the structure), ``atomic_number`` (int16) and ``embedding`` (fixed-size list of float32, width ``dim``).
  The mean of a structure's rows is its ``pooling="mean"`` embedding (to float32 rounding).

The schema metadata key ``monoculture.embedding`` holds JSON: the model provenance (``model``, ``version``,
``layer``, ``pooling``, ``dim``, ``width``, ``cutoff_A``, ``checkpoint``, ``checkpoint_sha256``, ``dtype``),
``n_rows``, ``n_skipped`` (structures) and ``skip_reasons``; per-atom files add ``n_structures``. Skipped
structures have no row.

Start-up (what a user's first run pays; docs/embedding.md has the measurements). With ``workers > 0`` the
graph workers are started first, from a forkserver that imports graph building and compiles its numba code once
(:func:`~.streaming.graph_worker_pool`), and :class:`ReadAhead` reads the input in its own process from the moment
the command starts; both overlap the loading of torch and the model in this process. The first pieces go to the
workers as soon as the model is loaded, and a warm-up forward (:meth:`~.embedder.ModelEmbedder.warm_up`) runs while
they are built. :attr:`EmbedResult.timeline` records when each step ended and how long the GPU had a forward in
flight (:class:`~.clock.ForwardClock`).
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ...datasets.frames import atoms_arrays
from ..driver import Chunk, ChunkCache, Progress, Transformer, drive, metadata_json
from ..embedding_files import EMBEDDING_METADATA_KEY, embeddings_table
from ..runner import read_features
from .clock import ForwardClock
from .embedder import EmbeddedRows, ModelEmbedder
from .registry import graph_worker_modules, load_embedder
from .streaming import embed_frame_rows, graph_worker_pool

__all__ = ["EmbedResult", "ModelTransformer", "ReadAhead", "embed_dataset", "structure_hashes", "read_embeddings",
           "rows_table"]


@dataclass
class EmbedResult:
    """What :func:`embed_dataset` did.

    ``n_rows`` counts the rows written: structures, or atoms with ``pooling="atoms"``; ``n_structures`` counts
    the structures embedded in every case; ``n_skipped`` counts structures.
    """

    out: Path
    n_rows: int = 0
    n_structures: int = 0
    n_skipped: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    n_chunks: int = 0
    n_chunks_cached: int = 0
    elapsed_s: float = 0.0
    metadata: dict = field(default_factory=dict)
    #: Seconds after the start of :func:`embed_dataset` at which each step ended (``workers_started_s``,
    #: ``model_loaded_s``, ``first_forward_s``, ``last_forward_s``, ``done_s``) and the forward totals of
    #: :meth:`~.clock.ForwardClock.summary` (``forward_busy_s``: time the device had a forward in flight).
    timeline: dict = field(default_factory=dict)


def structure_hashes(batch: pa.Table) -> list[str]:
    """Content hash of every frame of a batch (numbers, positions rounded to 1e-6 Å, cell, pbc), hex."""
    arr = atoms_arrays(batch)
    out = []
    for i in range(len(arr)):
        numbers, pos, cell, pbc = arr.frame(i)
        h = hashlib.blake2b(digest_size=16)
        h.update(np.ascontiguousarray(numbers, dtype=np.uint8).tobytes())
        if pos is not None:
            h.update(np.round(np.asarray(pos, dtype=np.float64), 6).tobytes())
        h.update(np.round(np.asarray(cell, dtype=np.float64), 6).tobytes())
        h.update(np.asarray(pbc, dtype=bool).tobytes())
        out.append(h.hexdigest())
    return out


def rows_table(rows: EmbeddedRows, meta: dict) -> pa.Table:
    """The output table of one chunk of rows (per-atom columns when the rows have them)."""
    return embeddings_table(list(rows.ids), rows.X, meta, rows.atom_index, rows.atomic_numbers)


def _table_structures(table: pa.Table) -> int:
    """Structures in a chunk table (rows, or rows with ``atom_index`` 0 in a per-atom table)."""
    if "atom_index" not in table.column_names:
        return table.num_rows
    return int(np.count_nonzero(table.column("atom_index").to_numpy() == 0))


def _read_into(datasets: list, queue) -> None:
    """Body of :class:`ReadAhead`'s process: every frame batch of ``datasets`` into ``queue``, then their
    accounting (or the exception that stopped the reading)."""
    try:
        for ds in datasets:
            ds.progress = False
            for batch in ds.batches():
                queue.put(("batch", batch))
        queue.put(("done", [ds.accounting for ds in datasets]))
    except BaseException as exc:  # noqa: BLE001 - handed to the reading process, which raises it
        try:
            queue.put(("error", exc))
        except Exception:  # noqa: BLE001 - an exception that cannot be pickled
            queue.put(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


class ReadAhead:
    """Frame batches of opened datasets, read in a separate process that starts at once.

    :func:`monoculture.api.embed` (hence ``monoculture embed``) makes one when there are graph workers, while
    the model is being loaded or before it is: the reading (and, in that process, its imports) overlaps the
    loading of torch and the model, and later the forward passes, without taking this process's
    GIL, which the threads launching GPU kernels need. Iterating yields the batches in order, as
    ``Dataset.batches()`` would; at the end each dataset's ``accounting`` is replaced by the one its reading
    produced. At most ``ahead`` batches wait in the queue (memory: ``ahead`` frame batches).

    Parameters
    ----------
    datasets : list of monoculture.datasets.Dataset
        Opened datasets (picklable), read one after the other.
    ahead : int
        Batches read ahead of the consumer.
    """

    def __init__(self, datasets: list, ahead: int = 4):
        import multiprocessing

        self.datasets = list(datasets)
        ctx = multiprocessing.get_context("spawn")
        self._queue = ctx.Queue(maxsize=max(int(ahead), 1))
        self._process = ctx.Process(target=_read_into, name="monoculture-read-ahead", daemon=True,
                                    args=(self.datasets, self._queue))
        self._process.start()
        self._done = False

    def __iter__(self):
        import queue as queue_module

        while not self._done:
            try:
                kind, value = self._queue.get(timeout=1.0)
            except queue_module.Empty:
                if not self._process.is_alive():
                    raise RuntimeError(f"the reading process ended without a result "
                                       f"(exit code {self._process.exitcode})") from None
                continue
            if kind == "batch":
                yield value
            elif kind == "done":
                for ds, accounting in zip(self.datasets, value):
                    ds.accounting = accounting
                self._done = True
                self._process.join(timeout=10)
            else:
                self.close()
                raise value

    def close(self) -> None:
        """Stop the reading process if it still runs (the consumer stopped early)."""
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=10)


#: Schema-metadata key of a cached chunk's skipped structures (JSON list of [id, reason]).
SKIPPED_KEY = b"monoculture.skipped"


class ModelTransformer(Transformer):
    """A loaded model as a transformer of the frames -> vectors driver (:func:`~..driver.drive`): one chunk of
    rows per frame batch through :func:`~.streaming.embed_frame_rows`, cached under the content hash of the
    batch's frames and the model's provenance.

    Parameters
    ----------
    embedder : ModelEmbedder
    pooling : {"mean", "mean_var", "atoms"}
    metadata : dict
        ``embedder.metadata(pooling)``: written with every chunk.
    options : dict
        Keyword arguments of :func:`~.streaming.embed_frame_rows` (``batch_size``, ``executor``, ``clock``,
        ``warm_up``...).
    """

    def __init__(self, embedder: ModelEmbedder, pooling: str, metadata: dict, **options: Any):
        self.embedder = embedder
        self.pooling = pooling
        self.metadata = metadata
        self.options = options
        self.model_key = hashlib.sha256(json.dumps(metadata, sort_keys=True, default=str).encode()).hexdigest()[:24]
        per_atom = (np.zeros(0, np.int32), np.zeros(0, np.int16)) if pooling == "atoms" else ()
        self.schema = embeddings_table([], np.zeros((0, embedder.width(pooling)), np.float32), metadata,
                                       *per_atom).schema

    def transform(self, batches: Iterator[pa.Table]) -> Iterator[Chunk]:
        for rows in embed_frame_rows(self.embedder, batches, pooling=self.pooling, **self.options):
            yield Chunk(rows_table(rows, self.metadata), rows.n_structures, [(s.id, s.reason) for s in rows.skipped])

    def chunk_key(self, index: int, batch: pa.Table) -> tuple[str, None]:
        # hashing costs ~15 us a frame: only asked for when there is a cache to look up
        ids = batch.column("id").to_pylist()
        key = hashlib.sha256("\n".join([self.model_key, *ids, *structure_hashes(batch)]).encode()).hexdigest()
        return f"chunk_{key}.parquet", None

    def to_cache(self, chunk: Chunk) -> pa.Table:
        meta = dict(chunk.table.schema.metadata or {})
        meta[SKIPPED_KEY] = json.dumps([list(s) for s in chunk.skipped]).encode()
        return chunk.table.replace_schema_metadata(meta)

    def from_cache(self, table: pa.Table) -> Chunk:
        skipped = [tuple(s) for s in json.loads((table.schema.metadata or {}).get(SKIPPED_KEY, b"[]"))]
        return Chunk(table, _table_structures(table), skipped)


def embed_dataset(batches: Iterable[pa.Table], model: str, out, *, device: str = "cpu", batch_size: int = 32,
                  workers: int = 0, pooling: str = "mean", cache_dir=None, progress: bool | None = None,
                  embedder=None) -> EmbedResult:
    """Embed every frame of a stream of frame batches with a bundled model and write parquet in chunks.

    Order of the start-up: the graph workers are started first (with the modules of ``model``'s family, see
    :func:`~.streaming.graph_worker_pool`), then the model is loaded; a :class:`ReadAhead` given as ``batches``
    has been reading since it was made. The first pieces go to the workers at once and a warm-up forward runs
    while they are built (device runs only). The rest is the frames -> vectors driver
    (:func:`~monoculture.descriptors.driver.drive`) running a :class:`ModelTransformer`.

    Parameters
    ----------
    batches : iterable of pyarrow.Table
        Frame batches (FRAME_SCHEMA); each batch is one chunk of the output and of the cache.
    model : str
        Model name (:func:`~.registry.available_models`).
    out : path
        Output parquet file (written to a temporary name, renamed when complete).
    device : {"cpu", "cuda", "auto"}
    batch_size : int
        Structures per forward pass.
    workers : int
        Processes that build graphs ahead of the model, up to ``2 * workers`` pieces of ``batch_size`` frames
        in flight (0: in this process).
    pooling : {"mean", "mean_var", "atoms"}
        ``atoms`` writes one row per atom (module docstring).
    cache_dir : path, optional
        Folder of the per-chunk cache (resumable runs); None disables it.
    progress : bool, optional
        Progress line on stderr (default: when stderr is a terminal).
    embedder : ModelEmbedder or concurrent.futures.Future of one, optional
        An already loaded model, or one being loaded in a thread (``monoculture embed`` starts loading it before
        anything else; the graph workers are started before waiting for it); else ``load_embedder(model,
        device)``.

    Returns
    -------
    EmbedResult
        With :attr:`EmbedResult.timeline`.
    """
    t0 = time.perf_counter()
    timeline: dict = {}
    executor = None
    if workers and workers > 0:
        executor = graph_worker_pool(workers, preload=graph_worker_modules(model))
    timeline["workers_started_s"] = time.perf_counter() - t0

    def close() -> None:
        if isinstance(batches, ReadAhead):
            batches.close()
        if executor is not None:
            executor.shutdown(cancel_futures=True)

    try:
        if hasattr(embedder, "result"):  # a Future
            embedder = embedder.result()
        embedder = embedder or load_embedder(model, device=device)
    except BaseException:
        close()
        raise
    timeline["model_loaded_s"] = time.perf_counter() - t0
    timeline["device"] = str(embedder.device)
    on_device = str(embedder.device) != "cpu"
    clock = ForwardClock(embedder.device)
    meta = embedder.metadata(pooling)
    transformer = ModelTransformer(embedder, pooling, meta, batch_size=batch_size, executor=executor, clock=clock,
                                   warm_up=embedder.warm_up if on_device else None)
    cache = (ChunkCache(Path(cache_dir) / f"{embedder.name}-{transformer.model_key}",
                        columns=transformer.schema.names) if cache_dir else None)
    final: dict = {}

    def final_metadata(res) -> dict:
        final.update(meta, n_rows=res.n_rows, n_skipped=res.n_skipped,
                     skip_reasons=dict(sorted(res.skip_reasons.items())))
        if pooling == "atoms":
            final["n_structures"] = res.n_structures
        return {EMBEDDING_METADATA_KEY.encode(): metadata_json(final)}

    done = drive(batches, transformer, out=out, cache=cache, progress=Progress(progress),
                 final_metadata=final_metadata, on_close=close)
    result = EmbedResult(out=Path(out), n_rows=done.n_rows, n_structures=done.n_structures, n_skipped=done.n_skipped,
                         skip_reasons=Counter(done.skip_reasons), n_chunks=done.n_chunks,
                         n_chunks_cached=done.n_chunks_cached, metadata=final)
    result.elapsed_s = time.perf_counter() - t0
    timeline["done_s"] = result.elapsed_s
    timeline.update(clock.summary(since=t0))
    result.timeline = timeline
    return result


#: (ids, embeddings (n_rows, width) float32, metadata) of a file written by :func:`embed_dataset`: the same
#: view of :func:`~monoculture.descriptors.embedding_files.read_embedding_file` as ``read_features`` (one file layout).
read_embeddings = read_features
