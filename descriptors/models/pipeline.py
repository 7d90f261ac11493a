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
   :func:`~.base.embed_frames`) and the model runs batched under ``torch.no_grad`` without forces/stress;
4. the chunk is written to the cache atomically (temporary file + rename) and appended to the output
   parquet with a ``ParquetWriter``: memory holds one chunk whatever the dataset size.

Output: columns ``id`` and ``embedding`` (fixed-size list of float32); the schema metadata key
``monoculture.embedding`` holds the model provenance, the pooling, and the skip counts.

Start-up (what a user's first run pays; docs/embedding.md has the measurements). With ``workers > 0`` the
graph workers are started first, from a forkserver that imports graph building and compiles its numba code once
(:func:`~.base.graph_worker_pool`), and :class:`ReadAhead` reads the input in its own process from the moment
the command starts; both overlap the loading of torch and the model in this process. The first pieces go to the
workers as soon as the model is loaded, and a warm-up forward (:meth:`~.base.ModelEmbedder.warm_up`) runs while
they are built. :attr:`EmbedResult.timeline` records when each step ended and how long the GPU had a forward in
flight (:class:`~.base.ForwardClock`).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ...datasets.frames import atoms_arrays
from .base import ForwardClock, embed_frames, graph_worker_pool
from .registry import embeddings_table, graph_worker_modules, load_embedder

__all__ = ["EmbedResult", "ReadAhead", "embed_dataset", "structure_hashes", "read_embeddings"]


@dataclass
class EmbedResult:
    """What :func:`embed_dataset` did (counts of structures)."""

    out: Path
    n_rows: int = 0
    n_skipped: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    n_chunks: int = 0
    n_chunks_cached: int = 0
    elapsed_s: float = 0.0
    metadata: dict = field(default_factory=dict)
    #: Seconds after the start of :func:`embed_dataset` at which each step ended (``workers_started_s``,
    #: ``model_loaded_s``, ``first_forward_s``, ``last_forward_s``, ``done_s``) and the forward totals of
    #: :meth:`~.base.ForwardClock.summary` (``forward_busy_s``: time the device had a forward in flight).
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


def _atomic_write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    pq.write_table(table, tmp)
    os.replace(tmp, path)


class _Progress:
    """structures/s and counts on stderr (only when stderr is a terminal, unless forced)."""

    def __init__(self, enabled: bool | None, total: int | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()
        self.n = 0
        self.total = total

    def update(self, n: int) -> None:
        self.n += n
        if not self.enabled:
            return
        dt = time.perf_counter() - self.t0
        rate = self.n / dt if dt > 0 else 0.0
        eta = f", ETA {(self.total - self.n) / rate:.0f} s" if self.total and rate > 0 else ""
        print(f"\rembedded {self.n} structures, {rate:.1f} structures/s{eta}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


#: ``ReadOptions.extra`` of the datasets :class:`ReadAhead` reads: MPTrj files are read by the reference reader
#: (orjson), never by the compiled scanner, whose first use on a machine compiles for 20-40 s (34 s measured on
#: a 2-core machine for a 2,000-frame file) while the embedding needs only ~9 MB/s of JSON per 1,000 structures/s.
READ_AHEAD_EXTRA = {"mptrj_scan_min_bytes": -1}


def _read_into(datasets: list, queue, extra: dict) -> None:
    """Body of :class:`ReadAhead`'s process: every frame batch of ``datasets`` into ``queue``, then their
    accounting (or the exception that stopped the reading)."""
    from dataclasses import replace

    try:
        for ds in datasets:
            ds.progress = False
            ds.options = replace(ds.options, extra={**(ds.options.extra or {}), **extra})
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

    ``monoculture embed`` makes one before it loads the model: the reading (and, in that process, its imports)
    overlaps the loading of torch and the model, and later the forward passes, without taking this process's
    GIL, which the threads launching GPU kernels need. Iterating yields the batches in order, as
    ``Dataset.batches()`` would; at the end each dataset's ``accounting`` is replaced by the one its reading
    produced. At most ``ahead`` batches wait in the queue (memory: ``ahead`` frame batches).

    Parameters
    ----------
    datasets : list of monoculture.datasets.Dataset
        Opened datasets (picklable), read one after the other.
    ahead : int
        Batches read ahead of the consumer.
    extra : dict, optional
        Merged into each dataset's ``ReadOptions.extra`` in the reading process (default
        :data:`READ_AHEAD_EXTRA`).
    """

    def __init__(self, datasets: list, ahead: int = 4, extra: dict | None = None):
        import multiprocessing

        self.datasets = list(datasets)
        ctx = multiprocessing.get_context("spawn")
        self._queue = ctx.Queue(maxsize=max(int(ahead), 1))
        self._process = ctx.Process(target=_read_into, name="monoculture-read-ahead", daemon=True,
                                    args=(self.datasets, self._queue, READ_AHEAD_EXTRA if extra is None else extra))
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


def embed_dataset(batches: Iterable[pa.Table], model: str, out, *, device: str = "cpu", batch_size: int = 32,
                  workers: int = 0, pooling: str = "mean", cache_dir=None, progress: bool | None = None,
                  embedder=None) -> EmbedResult:
    """Embed every frame of a stream of frame batches with a bundled model and write parquet in chunks.

    Order of the start-up: the graph workers are started first (with the modules of ``model``'s family, see
    :func:`~.base.graph_worker_pool`), then the model is loaded; a :class:`ReadAhead` given as ``batches`` has
    been reading since it was made. The first pieces go to the workers at once and a warm-up forward runs while
    they are built (device runs only).

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
    cache_dir : path, optional
        Folder of the per-chunk cache (resumable runs); None disables it.
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
    try:
        if hasattr(embedder, "result"):  # a Future
            embedder = embedder.result()
        embedder = embedder or load_embedder(model, device=device)
    except BaseException:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
        if isinstance(batches, ReadAhead):
            batches.close()
        raise
    timeline["model_loaded_s"] = time.perf_counter() - t0
    timeline["device"] = str(embedder.device)
    on_device = str(embedder.device) != "cpu"
    clock = ForwardClock(embedder.device)
    meta = embedder.metadata(pooling)
    model_key = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:24]
    cache = Path(cache_dir) / f"{embedder.name}-{model_key}" if cache_dir else None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".partial")
    result = EmbedResult(out=out)
    writer = None
    bar = _Progress(progress)
    try:
        # Queue of chunks in input order: ("cached", table, None) or ("compute", frame batch, cache path).
        pending: list[tuple[str, pa.Table, Path | None]] = []

        def missing_batches():
            for batch in batches:
                path = None
                if cache is not None:  # hashing costs ~15 us a frame: only when there is a cache to look up
                    hashes = structure_hashes(batch)
                    ids = batch.column("id").to_pylist()
                    key = hashlib.sha256("\n".join([model_key, *ids, *hashes]).encode()).hexdigest()
                    path = cache / f"chunk_{key}.parquet"
                if path is not None and path.exists():
                    pending.append(("cached", pq.read_table(path), None))
                    result.n_chunks_cached += 1
                    continue
                pending.append(("compute", batch, path))
                yield batch

        # embed_frames pulls frame batches lazily; cached chunks are passed through in input order.
        stream = embed_frames(embedder, missing_batches(), batch_size=batch_size, pooling=pooling, executor=executor,
                              clock=clock, warm_up=embedder.warm_up if on_device else None)
        done = iter(stream)
        while True:
            try:
                ids, X, skipped = next(done)
            except StopIteration:
                ids = None
            # Write everything queued before the computed chunk (cached chunks), then the computed chunk.
            while pending and pending[0][0] == "cached":
                _, table, _ = pending.pop(0)
                writer = _write(writer, tmp_out, table, meta)
                result.n_rows += table.num_rows
                result.n_chunks += 1
                bar.update(table.num_rows)
            if ids is None:
                break
            _, batch, path = pending.pop(0)
            for s in skipped:
                result.skip_reasons[s.reason] += 1
            result.n_skipped += len(skipped)
            table = embeddings_table(list(ids), X, meta)
            if path is not None:
                _atomic_write(table, path)
            writer = _write(writer, tmp_out, table, meta)
            result.n_rows += table.num_rows
            result.n_chunks += 1
            bar.update(table.num_rows + len(skipped))
        if writer is None:
            writer = _write(None, tmp_out, embeddings_table([], np.zeros((0, embedder.width(pooling)), np.float32),
                                                            meta), meta)
    finally:
        bar.close()
        if isinstance(batches, ReadAhead):
            batches.close()
        if executor is not None:
            executor.shutdown()
        if writer is not None:
            writer.close()
    meta = dict(meta, n_rows=result.n_rows, n_skipped=result.n_skipped,
                skip_reasons=dict(sorted(result.skip_reasons.items())))
    final = pq.read_table(tmp_out)
    final = final.replace_schema_metadata({"monoculture.embedding": json.dumps(meta, sort_keys=True, default=str)})
    pq.write_table(final, tmp_out)
    os.replace(tmp_out, out)
    result.metadata = meta
    result.elapsed_s = time.perf_counter() - t0
    timeline["done_s"] = result.elapsed_s
    timeline.update(clock.summary(since=t0))
    result.timeline = timeline
    return result


def _write(writer, path: Path, table: pa.Table, meta: dict):
    table = table.replace_schema_metadata({"monoculture.embedding": json.dumps(meta, sort_keys=True, default=str)})
    if writer is None:
        writer = pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
    return writer


def read_embeddings(path) -> tuple[list[str], np.ndarray, dict]:
    """(ids, embeddings (n, width) float32, metadata) of a file written by :func:`embed_dataset`."""
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(b"monoculture.embedding", b"{}"))
    col = table.column("embedding").combine_chunks()
    X = col.flatten().to_numpy(zero_copy_only=False).reshape(len(table), -1)
    return table.column("id").to_pylist(), X.astype(np.float32, copy=False), meta
