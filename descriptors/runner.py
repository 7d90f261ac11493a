"""Run a descriptor over a dataset: fit once, transform batches in parallel processes, cache per batch.

Flow of :func:`featurize`:

1. **Fit** (only if the descriptor is not fitted yet): one pass over all batches (or the first
   ``fit_batches``), in this process, before any parallel work. Descriptors keep their fit cheap (a
   species union, per-formula minima) and do heavy fitting on a seeded sample (SOAP's PCA). The fitted
   descriptor is cached too, so a resumed run does not refit.
2. **Transform**: batch ``i`` goes to a worker process (``n_jobs``, default all cores; 1 runs inline);
   results come back and are written **in batch order**, so the output does not depend on ``n_jobs``.
3. **Cache** (optional): every finished batch is written as ``batch_<i>.parquet`` (temporary file, then
   an atomic rename) under a folder named by the SHA-256 of ``cache_key_parts`` (say the input files'
   content hashes and the reader name), the descriptor config, the package versions and, for a
   descriptor fitted beforehand, its learned state. An interrupted run resumes from the finished batches;
   a cached batch is used only if the ids it holds equal the ids of the batch being read.

Output: one row per frame, columns ``id`` (string), ``features`` (``fixed_size_list<float32, d>``) and
``skip_reason`` (null when featurized; features are NaN otherwise). The schema metadata key
``b"monoculture"`` holds JSON with the descriptor config, feature names, package versions and counts.

Steps 2 and 3, and the writing, are the frames -> vectors driver (:func:`~.driver.drive`) running a
:class:`DescriptorTransformer`; model embeddings run through the same driver
(:mod:`.models.pipeline`).
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import threading
import time
from collections import deque
from concurrent.futures import Future
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .base import FrameDescriptor, check_batch
from .driver import (
    Chunk,
    ChunkCache,
    Transformer,
    atomic_write_bytes,
    drive,
    limit_worker_threads,
    metadata_json,
    own_buffers,
    process_pool,
    row_pieces,
)
from .registry import get_descriptor
from .transfer import adopt, discard, to_shared

__all__ = ["featurize", "FeaturizeResult", "DescriptorTransformer", "read_features", "features_table",
           "METADATA_KEY"]

#: Schema-metadata key of the JSON description written with the features.
METADATA_KEY = b"monoculture"


@dataclass
class FeaturizeResult:
    """What :func:`featurize` did.

    Attributes
    ----------
    descriptor : FrameDescriptor
        The fitted descriptor.
    table : pyarrow.Table or None
        The features (``id``, ``features``, ``skip_reason``) when no ``out`` path was given.
    out : pathlib.Path or None
    n_rows, n_skipped, n_batches, n_batches_cached : int
    elapsed_s : float
        Wall time of the whole call (s).
    metadata : dict
        The JSON written under :data:`METADATA_KEY`.
    skipped : list of (str, str)
        ``(id, reason)`` of skipped frames (first 1,000).
    """

    descriptor: FrameDescriptor
    table: pa.Table | None
    out: Path | None
    n_rows: int
    n_skipped: int
    n_batches: int
    n_batches_cached: int
    elapsed_s: float
    metadata: dict
    skipped: list[tuple[str, str]] = field(default_factory=list)


def features_table(ids: Sequence[str], X: np.ndarray, reasons: Sequence[str | None]) -> pa.Table:
    """Assemble the output columns from ids, an ``(n, d)`` array and skip reasons."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    d = X.shape[1]
    feats = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1), pa.float32()), d)
    return pa.table({"id": pa.array(ids, pa.string()), "features": feats,
                     "skip_reason": pa.array(reasons, pa.string())})


def read_features(path: str | os.PathLike) -> tuple[list[str], np.ndarray, dict]:
    """Read a features parquet written by :func:`featurize` (a view of
    :func:`~.embedding_files.read_embedding_file`, the one reader of embedding and feature files).

    Returns
    -------
    ids : list of str, length n
    X : numpy.ndarray, shape (n, d), float32 (NaN rows for skipped frames)
    metadata : dict
        The JSON stored under :data:`METADATA_KEY`.
    """
    from .embedding_files import read_embedding_file

    f = read_embedding_file(path)
    return f.ids, f.X, f.metadata


# -- sources -----------------------------------------------------------------------------------------
class _Source:
    """Frame batches for one or two passes; a one-shot iterator is held in memory only if two are needed."""

    def __init__(self, batches: Any, passes: int):
        self._dataset = None
        self._seq: Any = None
        if isinstance(batches, (pa.Table, pa.RecordBatch)):
            self._seq = [check_batch(batches)]
        elif hasattr(batches, "batches") and callable(batches.batches):
            self._dataset = batches
        elif isinstance(batches, Sequence):
            self._seq = batches
        elif isinstance(batches, Iterable):
            self._seq = list(batches) if passes > 1 else iter(batches)
        else:
            raise TypeError(f"expected frame batches (Table, list of Tables, dataset), got {type(batches)}")

    def __iter__(self) -> Iterator[pa.Table]:
        it = self._dataset.batches() if self._dataset is not None else iter(self._seq)
        for b in it:
            yield check_batch(b)


def _ids_digest(batch: pa.Table) -> str:
    return hashlib.sha256("\n".join(batch.column("id").to_pylist()).encode("utf-8")).hexdigest()


#: Parts a worker process holds (running or queued) before this process computes the next part itself
#: (measured on 2 cores, 20,000 frames: 2 gave 1.90x / 1.86x for SOAP-PCA / local with 2 processes, 4 gave
#: 1.81x / 1.68x).
PARTS_PER_WORKER = 2

#: Tests set this to send parts to the workers from the first batch on (normally this process computes while
#: the fork server starts, so small inputs never reach a worker).
_WAIT_FOR_WORKERS = False


# -- worker side ---------------------------------------------------------------------------------------
_WORKER_DESCRIPTOR: FrameDescriptor | None = None
_WORKER_SHARED_MIN_BYTES = 1 << 20  # SHARED_MIN_BYTES of the process that started the pool


def _init_worker(payload: bytes, shared_min_bytes: int = 1 << 20) -> None:
    """Process initializer: one thread per process for numba / BLAS, then load the fitted descriptor and the
    caller's :data:`SHARED_MIN_BYTES` (a fork-server child imports this module afresh)."""
    global _WORKER_DESCRIPTOR, _WORKER_SHARED_MIN_BYTES
    _WORKER_SHARED_MIN_BYTES = int(shared_min_bytes)
    limit_worker_threads(environment=True)
    _WORKER_DESCRIPTOR = pickle.loads(payload)


def _compute_part(descriptor: FrameDescriptor, batch: pa.Table) -> tuple[dict, list[str | None]]:
    """``({"X": X (n, d) float32}, skip reason or None per row)`` of a batch, with one BLAS thread: a part
    computed in this process, in the form of a worker's result (see :func:`_worker_part`)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # same BLAS threading inline and in workers: output independent of n_jobs
        res = descriptor.transform_with_mask(batch)
    reasons: list[str | None] = [None] * batch.num_rows
    if res.skipped:
        for i, (_, reason) in zip(np.flatnonzero(~res.ok), res.skipped):
            reasons[int(i)] = reason
    return {"X": np.ascontiguousarray(res.X, dtype=np.float32)}, reasons


def _parts(batch: pa.Table, n_jobs: int) -> list[pa.Table]:
    """``batch`` cut into parts of about 250 rows (at least ``2 * n_jobs`` parts when it is larger), the unit
    that workers and this process share: small enough that no process waits long for another at the end
    of a batch, large enough that task messages cost little."""
    return row_pieces(batch, max(16, min(250, -(-batch.num_rows // (2 * n_jobs)))))


class _Batch:
    """One input batch being featurized: its parts, in order, each ``(X, reasons)`` computed here or the future
    of a worker's :func:`_worker_part` (or a whole cached table).

    When every part is done, :meth:`table` makes the batch's table from the parts' arrays (a chunk each, no
    copy); the driver caches it (per input batch, whoever computed its parts).

    With ``n_jobs = N``, ``N - 1`` worker processes keep up to :data:`PARTS_PER_WORKER` parts each in hand and
    this process computes the other parts: work starts while the workers start (a fork server importing the
    libraries takes about 2 s), and only the workers' share of the rows crosses processes, through shared
    memory (:mod:`.transfer`). Output order and values do not depend on who computed a part (one BLAS
    thread everywhere).
    """

    def __init__(self, parts: list, ids: list[str]):
        self.parts = parts
        self.ids = ids

    def busy(self) -> int:
        return sum(1 for p in self.parts if isinstance(p, Future) and not p.done())

    def ready(self) -> bool:
        return self.busy() == 0

    def table(self) -> pa.Table:
        tables = []
        row = 0
        for part in self.parts:
            item, reasons = part.result() if isinstance(part, Future) else part
            # A worker's rows stay in its shared block, which the table now owns (no copy of ~60 kB per row
            # for full-width SOAP); the row order is the parts' order.
            tables.append(features_table(self.ids[row : row + len(reasons)], adopt(item)["X"], reasons))
            row += len(reasons)
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def discard(self) -> None:
        """Unlink the shared blocks of finished worker parts (the run stopped before this batch was emitted)."""
        for part in self.parts:
            if isinstance(part, Future):
                try:
                    item, _ = part.result()
                except BaseException:  # noqa: BLE001 - cleaning up after a stop; the error is reported elsewhere
                    continue
                discard(item)


#: A worker's part goes back through shared memory from this size on (bytes of its rows); smaller parts are
#: cheaper through the pipe than a block's system calls.
SHARED_MIN_BYTES = 1 << 20


def _worker_part(batch: pa.Table) -> tuple[Any, list[str | None]]:
    """A part computed in a worker process: its rows in a shared-memory block (or, when they are small or
    ``/dev/shm`` is short, the array itself, through the pipe) and its skip reasons."""
    arrays, reasons = _compute_part(_WORKER_DESCRIPTOR, batch)
    return (to_shared(arrays) if arrays["X"].nbytes >= _WORKER_SHARED_MIN_BYTES else arrays), reasons


def _pool(n_jobs: int, descriptor: FrameDescriptor):
    """Worker processes started by a fork server (spawn where there is none) that imports the descriptor's module
    and heavy libraries once (:func:`~.driver.process_pool`); each loads the fitted descriptor when it starts."""
    return process_pool(n_jobs, preload=[__name__, type(descriptor).__module__, *descriptor.preload],
                        initializer=_init_worker,
                        initargs=(pickle.dumps(descriptor, protocol=4), SHARED_MIN_BYTES))


class DescriptorTransformer(Transformer):
    """A fitted descriptor as a transformer of the frames -> vectors driver (:func:`~.driver.drive`).

    Batches are cut into parts (:func:`_parts`); with ``n_jobs = N``, ``N - 1`` worker processes keep up to
    :data:`PARTS_PER_WORKER` parts each in hand and this process computes the others (see :class:`_Batch`).
    Chunks come out in batch order; at most ``4 * n_jobs`` computed batches wait for their turn. The cache key
    of a batch is its position, checked against the SHA-256 of its ids.

    Parameters
    ----------
    descriptor : FrameDescriptor
        Fitted.
    n_jobs : int
        Processes, this one included.
    metadata : dict
        Written as JSON under :data:`METADATA_KEY`.
    """

    def __init__(self, descriptor: FrameDescriptor, n_jobs: int, metadata: dict):
        self.descriptor = descriptor
        self.n_jobs = int(n_jobs)
        schema = features_table([], np.zeros((0, descriptor.n_features_out_), np.float32), []).schema
        self.schema = schema.with_metadata({METADATA_KEY: metadata_json(metadata)})

    def chunk_key(self, index: int, batch: pa.Table) -> tuple[str, str]:
        return f"batch_{index:06d}.parquet", _ids_digest(batch)

    def from_cache(self, table: pa.Table) -> Chunk:
        return self.chunk(table)

    @staticmethod
    def chunk(table: pa.Table) -> Chunk:
        """A chunk of the features table of a batch (rows with a ``skip_reason`` are its skipped frames)."""
        reasons = table.column("skip_reason")
        bad = reasons.is_valid().to_numpy(zero_copy_only=False)
        skipped = []
        if bad.any():
            ids = table.column("id").to_pylist()
            rs = reasons.to_pylist()
            skipped = [(ids[i], rs[i]) for i in np.flatnonzero(bad)]
        return Chunk(table, table.num_rows - len(skipped), skipped)

    def transform(self, batches: Iterator[pa.Table]) -> Iterator[Chunk]:
        desc, n_jobs = self.descriptor, self.n_jobs
        pool = None
        n_workers = n_jobs - 1  # this process computes too (see _Batch)
        # The first task of a fork-server pool blocks its caller until the server has imported the libraries
        # (about 1.5 s); a thread pays that while this process computes.
        pool_ready = threading.Event()
        starter = None
        start_error: list[BaseException] = []

        def start_pool():
            nonlocal pool
            try:
                new_pool = _pool(n_workers, desc)
                new_pool.submit(int).result()
                pool = new_pool
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
                start_error.append(exc)
            finally:
                pool_ready.set()

        pending: deque = deque()
        max_in_flight = 4 * n_jobs  # batches held in memory at most (computed, waiting for their turn)
        try:
            for batch in batches:
                ids = batch.column("id").to_pylist()
                if n_workers == 0:
                    # In the same parts as with workers, so that one path (_Batch.table) assembles every batch.
                    pending.append(_Batch([_compute_part(desc, part) for part in _parts(batch, 1)], ids))
                else:
                    if starter is None:
                        starter = threading.Thread(target=start_pool, name="monoculture-pool-start", daemon=True)
                        starter.start()
                        if _WAIT_FOR_WORKERS:
                            pool_ready.wait()
                    parts = []
                    for part in _parts(batch, n_jobs):
                        busy = sum(p.busy() for p in pending) + sum(
                            1 for x in parts if isinstance(x, Future) and not x.done())
                        if not pool_ready.is_set() or busy >= PARTS_PER_WORKER * n_workers:
                            parts.append(_compute_part(desc, part))
                        else:
                            if start_error:
                                raise start_error[0]
                            parts.append(pool.submit(_worker_part, own_buffers(part)))
                    pending.append(_Batch(parts, ids))
                # Emit what is ready, in order; wait for a worker only when too much is queued behind it.
                while pending and (pending[0].ready() or len(pending) > max_in_flight):
                    yield self.chunk(pending.popleft().table())
            while pending:
                yield self.chunk(pending.popleft().table())
        finally:
            if starter is not None:
                starter.join()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            for left in pending:  # stopped by an error: unlink the shared blocks of parts never emitted
                left.discard()


# -- main entry ----------------------------------------------------------------------------------------
def featurize(
    batches: Any,
    descriptor: str | FrameDescriptor,
    n_jobs: int | None = None,
    out: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_key_parts: Sequence[Any] = (),
    fit_batches: int | None = None,
    params: dict[str, Any] | None = None,
) -> FeaturizeResult:
    """Featurize every frame of a dataset, one row per frame, in input order.

    Parameters
    ----------
    batches : pyarrow.Table, sequence of pyarrow.Table, iterable of them, or object with ``.batches()``
        Frame batches (FRAME_SCHEMA). Read twice when the descriptor must be fitted (a one-shot iterator
        is then held in memory); a dataset object's ``.batches()`` is called once per pass.
    descriptor : str or FrameDescriptor
        A registry name (see :func:`~.registry.get_descriptor`, with ``params``) or an instance, fitted or
        not. An unfitted one is fitted here on the first pass.
    n_jobs : int or None, default None
        Processes for transform, this one included: ``n_jobs - 1`` worker processes take a batch whenever
        one of them is free and this process computes the rest; None uses all cores (``os.cpu_count()``);
        1 runs in this process only.
    out : path or None
        Parquet file to write (atomically); None returns the table in memory instead.
    cache_dir : path or None
        Folder of the per-batch cache; None disables caching.
    cache_key_parts : sequence
        What identifies the input (file content hashes, reader name...); required with ``cache_dir``.
    fit_batches : int or None, default None
        Fit on the first ``fit_batches`` batches only (None: all).
    params : dict or None
        Constructor parameters when ``descriptor`` is a name.

    Returns
    -------
    FeaturizeResult
    """
    t0 = time.perf_counter()
    desc = get_descriptor(descriptor, **(params or {})) if isinstance(descriptor, str) else descriptor
    if params and not isinstance(descriptor, str):
        raise ValueError("params are only used with a descriptor given by name")
    n_jobs = (os.cpu_count() or 1) if n_jobs is None else int(n_jobs)
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1 or None, got {n_jobs}")

    cdir: Path | None = None
    if cache_dir is not None:
        if not cache_key_parts:
            raise ValueError("cache_dir needs cache_key_parts that identify the input (e.g. file hashes)")
        key_doc = {
            "parts": [str(p) for p in cache_key_parts],
            "config": desc.config(),
            "versions": desc.versions(),
            "fit_batches": fit_batches,
            "state": desc.state_digest() if desc.is_fitted() else None,
        }
        key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()[:32]
        cdir = Path(cache_dir) / f"{desc.name}-{key}"
        cdir.mkdir(parents=True, exist_ok=True)

    fitted = cdir / "fitted.pkl" if cdir is not None else None
    load_fit = not desc.is_fitted() and fitted is not None and fitted.exists()
    source = _Source(batches, passes=1 if desc.is_fitted() or load_fit else 2)
    if not desc.is_fitted():
        if load_fit:
            desc = pickle.loads(fitted.read_bytes())
        else:
            it = iter(source)
            if fit_batches is not None:
                it = (b for _, b in zip(range(int(fit_batches)), it))
            desc.fit(it)
            if fitted is not None:
                atomic_write_bytes(fitted, pickle.dumps(desc, protocol=4))

    metadata = {
        "descriptor": desc.config(),
        "feature_names": [str(n) for n in desc.feature_names_],
        "n_features": int(desc.n_features_out_),
        "versions": desc.versions(),
        "cache_key_parts": [str(p) for p in cache_key_parts],
        "fit": f"first {fit_batches} batches" if fit_batches is not None else "all batches, first pass",
    }
    transformer = DescriptorTransformer(desc, n_jobs, metadata)
    cache = ChunkCache(cdir) if cdir is not None else None
    def final_metadata(res) -> dict:  # the counts, known at the end, go into the file (and the table) too
        metadata.update(n_rows=res.n_rows, n_skipped=res.n_skipped)
        return {METADATA_KEY: metadata_json(metadata)}

    done = drive(source, transformer, out=out, cache=cache, final_metadata=final_metadata)
    out_path = Path(out) if out is not None else None
    return FeaturizeResult(desc, done.table, out_path, done.n_rows, done.n_skipped, done.n_chunks,
                           done.n_chunks_cached, time.perf_counter() - t0, metadata, done.skipped)
