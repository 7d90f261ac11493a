"""Frame batches to embeddings: graphs built (in worker processes or here), collated into forward batches, run
by the model (in up to ``concurrency`` threads on their own CUDA streams), rows gathered per frame batch.

:func:`embed_frame_rows` is the model transformer of the frames -> vectors driver (:mod:`..driver`, used by
:func:`~.pipeline.embed_dataset`); :func:`embed_frames` is its tuple form.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..driver import own_buffers, process_pool, row_pieces
from ..transfer import discard, opened, to_shared
from .clock import ForwardClock
from .embedder import EmbeddedRows, ModelEmbedder, SkippedStructure, _check_pooling, build_graphs

__all__ = ["build_frame_batches", "embed_frame_rows", "embed_frames", "forward_batches", "graph_worker_pool",
           "start_workers"]


def _frames_to_atoms(batch) -> tuple[list[Any], list[str], list[SkippedStructure]]:
    """ASE Atoms of the frames of a batch that have positions; the others are skipped."""
    from monoculture.datasets.frames import iter_ase_atoms

    has_pos = batch.column("positions").is_valid().to_numpy(zero_copy_only=False)
    ids_all = batch.column("id").to_pylist()
    skipped = [
        SkippedStructure(ids_all[i], "no_positions", "frame has no 3D positions")
        for i in np.flatnonzero(~has_pos)
    ]
    if not has_pos.all():
        import pyarrow as pa

        batch = batch.filter(pa.array(has_pos))
    atoms = list(iter_ase_atoms(batch)) if batch.num_rows else []
    return atoms, [a.info["id"] for a in atoms], skipped


def build_frame_batches(builder: Any, batch: Any, batch_size: int, shared: bool = False
                        ) -> tuple[list[tuple[Any, list[str]]], list[SkippedStructure]]:
    """Forward batches of the frames of one frame batch (``pyarrow.Table``); runs in worker processes.

    The graphs of the frames the model takes (``builder.build_payload``) are collated in runs of
    ``batch_size`` consecutive graphs (``builder.collate``), so the model process receives a few large numpy
    arrays per forward batch and does no per-graph work.

    With ``shared=True`` (worker processes feeding a GPU) each batch is put in shared memory
    (:func:`~monoculture.descriptors.transfer.to_shared`); open it with
    :func:`~monoculture.descriptors.transfer.opened`.

    Returns
    -------
    batches : list of (dict or SharedBatch, list of str)
        Each collated batch and the ids of its graphs.
    skipped : list of SkippedStructure
        Frames left out, those without positions first.
    """
    atoms, ids, skipped_pre = _frames_to_atoms(batch)
    graphs, kept, skipped = build_graphs(builder.build_payload, atoms, ids)
    batches = []
    for s in range(0, len(graphs), batch_size):
        collated = builder.collate(graphs[s : s + batch_size])
        batches.append((to_shared(collated) if shared else collated, kept[s : s + batch_size]))
    return batches, skipped_pre + skipped


def graph_worker_pool(workers: int, preload: Sequence[str] = ()):
    """A ``ProcessPoolExecutor`` of ``workers`` graph-building processes (one thread each) for
    :func:`embed_frame_rows`; the caller shuts it down (use it as a context manager).

    Parameters
    ----------
    workers : int
        Number of processes.
    preload : sequence of str
        Modules the workers need (:func:`~.registry.graph_worker_modules`). When given (and the platform has
        it), the workers are forked from a ``multiprocessing`` forkserver that imports these modules once,
        before any worker exists (:func:`~monoculture.descriptors.driver.process_pool`), and every worker is
        started at once (:func:`start_workers`): imports and compiled code are paid once per run, in parallel
        with whatever the calling process does meanwhile (loading the model), and the workers never inherit
        the calling process's torch, CUDA context or threads. Without it, the platform's default start method
        is used and workers start on first use.
    """
    pool = process_pool(int(workers), preload=preload, forkserver=bool(preload))
    if preload and "forkserver" in multiprocessing.get_all_start_methods():
        # From a thread: starting the first worker waits until the forkserver has imported (and compiled) the
        # preloaded modules, seconds during which this process goes on loading the model.
        import threading

        threading.Thread(target=start_workers, args=(pool, int(workers)), name="monoculture-start-workers",
                         daemon=True).start()
    return pool


def _ready() -> int:
    """A task that does nothing (returns the worker's pid): submitted to start a worker."""
    import os

    return os.getpid()


def start_workers(executor: Any, n: int) -> list:
    """Start the ``n`` processes of a process pool now instead of on first use (the pool then starts one per
    task submitted while none is idle); returns the futures of the no-op tasks that started them."""
    futures = []
    for _ in range(int(n)):
        try:
            futures.append(executor.submit(_ready))
        except RuntimeError:  # the pool was shut down meanwhile (the run failed or ended): nothing to start
            break
    return futures


def embed_frame_rows(
    embedder: ModelEmbedder,
    batches: Iterable[Any],
    *,
    batch_size: int = 32,
    pooling: str = "mean",
    executor: Any = None,
    prefetch: int | None = None,
    piece_size: int | None = None,
    transport: str = "auto",
    concurrency: int | None = None,
    clock: ForwardClock | None = None,
    warm_up: Callable[[], Any] | None = None,
) -> Iterator[EmbeddedRows]:
    """Stream embeddings of frame batches (see :mod:`monoculture.datasets.frames`), one
    :class:`EmbeddedRows` per frame batch.

    Each frame batch is cut into pieces of ``piece_size`` frames; the graphs of a piece are built and collated
    into forward batches of at most ``batch_size`` graphs (:func:`build_frame_batches`), which the model then
    runs. The pieces, hence the forward batches, are the same with or without an executor, so the numbers
    are too.

    Parameters
    ----------
    embedder : ModelEmbedder
    batches : iterable of pyarrow.Table
        Frame batches with the columns of ``FRAME_SCHEMA`` (at least id, numbers, positions, cell, pbc).
    batch_size : int
        Largest number of structures per forward pass.
    pooling : {"mean", "mean_var", "atoms"}
    executor : concurrent.futures.Executor, optional
        When given (e.g. :func:`graph_worker_pool`), the pieces are built there, up to ``prefetch`` at a time,
        while this process runs the model on the batches already built: graph building and collation on N
        workers overlap the forward passes, and this process only copies each batch to the device. Without
        it, pieces are built in this process.
    prefetch : int, optional
        Pieces in flight in ``executor`` (default: twice its number of workers). Memory holds at most
        ``prefetch`` pieces of graphs plus the embeddings of one frame batch.
    piece_size : int, optional
        Frames per piece (default ``batch_size``: one forward batch per worker task when no frame is skipped).
    transport : {"auto", "pipe", "shm"}
        How a process-pool executor returns batches: ``shm`` through shared memory (:mod:`..transfer`; keeps
        the model process's GIL free for launching GPU kernels), ``pipe`` pickled through the executor's
        pipe; ``auto``: ``shm`` when the model is not on the CPU. Thread executors always share the arrays.
    concurrency : int, optional
        Forward batches run at once, each in its own thread and CUDA stream (see :func:`forward_batches`);
        default 2 on a GPU, 1 on the CPU.
    clock : ForwardClock, optional
        Records the time of every forward pass (the GPU-busy share of ``monoculture embed``).
    warm_up : callable, optional
        Called once, after the first pieces were handed to ``executor`` and before waiting for the first of them
        (e.g. :meth:`ModelEmbedder.warm_up`): the device's one-time costs overlap the building of the first
        batches. Without an executor it is called before the first piece is built.

    Yields
    ------
    EmbeddedRows
        One per frame batch, in input order: the rows (per atom with ``pooling="atoms"``, with their atom
        positions and atomic numbers) and the frames of this batch left out (no positions, element outside
        the model's table, forward error...).
    """
    _check_pooling(pooling)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    piece_size = max(int(piece_size or batch_size), 1)
    builder = embedder.graph_builder()

    def pieces():
        """(piece, is last piece of its frame batch), in input order; an empty batch is one empty piece."""
        for batch in batches:
            parts = row_pieces(batch, piece_size)  # zero-copy slices
            for i, piece in enumerate(parts):
                yield piece, i == len(parts) - 1

    if transport not in ("auto", "pipe", "shm"):
        raise ValueError(f"transport must be 'auto', 'pipe' or 'shm', got {transport!r}")
    if executor is None:
        if warm_up is not None:
            warm_up()
        built = ((build_frame_batches(builder, piece, batch_size), last) for piece, last in pieces())
    else:
        from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

        shared = isinstance(executor, ProcessPoolExecutor) and (
            transport == "shm" or (transport == "auto" and embedder.device != "cpu"))
        n_workers = max(int(getattr(executor, "_max_workers", 1) or 1), 1)
        sent = pieces()
        if not isinstance(executor, ThreadPoolExecutor):  # pickled: a slice would carry its parent's buffers
            sent = ((own_buffers(piece), last) for piece, last in sent)
        built = _prefetched(executor, builder, sent, batch_size, max(int(prefetch or 2 * n_workers), 1), shared,
                            warm_up)

    def events():
        for (batches_of_piece, piece_skipped), last in built:
            yield "skipped", piece_skipped
            for item, batch_ids in batches_of_piece:
                yield "batch", (item, batch_ids)
            if last:
                yield "end", None

    per_atom = pooling == "atoms"
    width = embedder.width(pooling)
    parts: list[EmbeddedRows] = []
    skipped: list[SkippedStructure] = []
    for kind, value in _forward_events(embedder, events(), pooling, concurrency, clock):
        if kind == "skipped":
            skipped.extend(value)
        elif kind == "batch":
            parts.append(value)
            skipped.extend(value.skipped)
        else:
            rows = EmbeddedRows.concat(parts, width, per_atom)
            rows.skipped = skipped  # in the order they were found: a piece's frames, then its forward errors
            yield rows
            parts, skipped = [], []


def embed_frames(embedder: ModelEmbedder, batches: Iterable[Any], **options: Any
                 ) -> Iterator[tuple[list[str], np.ndarray, list[SkippedStructure]]]:
    """Stream embeddings of frame batches: :func:`embed_frame_rows` as ``(ids, embeddings, skipped)`` tuples.

    Yields
    ------
    ids : list of str
        Ids of the embedded rows (repeated per atom with ``pooling="atoms"``), one yield per frame batch,
        in input order.
    embeddings : numpy.ndarray, float32, shape (len(ids), width)
    skipped : list of SkippedStructure
        Frames of this batch left out (no positions, element outside the model's table, forward error...).
    """
    for rows in embed_frame_rows(embedder, batches, **options):
        yield rows.ids, rows.X, rows.skipped


def _default_concurrency(embedder: ModelEmbedder) -> int:
    return 2 if str(embedder.device).startswith("cuda") else 1


def _forward_one(embedder: ModelEmbedder, item: Any, ids: Sequence[str], pooling: str,
                 clock: ForwardClock | None = None):
    with embedder._thread_stream(), opened(item) as batch:
        if clock is None:
            return embedder.embed_batch_rows(batch, ids, pooling)
        token = clock.start()
        try:
            return embedder.embed_batch_rows(batch, ids, pooling)
        finally:
            clock.stop(token)


def _forward_events(embedder: ModelEmbedder, events: Iterable[tuple[str, Any]], pooling: str,
                    concurrency: int | None, clock: ForwardClock | None = None) -> Iterator[tuple[str, Any]]:
    """``events`` in order, each ``("batch", (item, ids))`` replaced by ``("batch", EmbeddedRows)``;
    up to ``concurrency`` forwards run at once in threads (each on its own CUDA stream)."""
    concurrency = max(int(concurrency or _default_concurrency(embedder)), 1)
    if concurrency == 1:
        for kind, value in events:
            yield (kind, _forward_one(embedder, *value, pooling, clock)) if kind == "batch" else (kind, value)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    queue: deque = deque()
    pending = 0
    with ThreadPoolExecutor(concurrency, thread_name_prefix="monoculture-forward") as pool:
        try:
            for kind, value in events:
                if kind == "batch":
                    queue.append((kind, pool.submit(_forward_one, embedder, *value, pooling, clock)))
                    pending += 1
                else:
                    queue.append((kind, value))
                # A batch more than the threads in flight, so that a thread never waits for this one.
                while queue and (queue[0][0] != "batch" or pending > concurrency):
                    kind0, value0 = queue.popleft()
                    if kind0 == "batch":
                        pending -= 1
                        value0 = value0.result()
                    yield kind0, value0
            while queue:
                kind0, value0 = queue.popleft()
                yield kind0, value0.result() if kind0 == "batch" else value0
        finally:
            for kind0, value0 in queue:  # stopped early: let the submitted forwards finish, unlink their blocks
                if kind0 == "batch":
                    try:
                        value0.result()
                    except BaseException:  # noqa: BLE001 - result not wanted
                        pass


def forward_batches(embedder: ModelEmbedder, batches: Iterable[tuple[Any, Sequence[str]]], pooling: str = "mean",
                    concurrency: int | None = None) -> Iterator[tuple[list[str], list[np.ndarray], list]]:
    """:meth:`ModelEmbedder.embed_batch` of each ``(batch, ids)``, in order, ``concurrency`` at a time.

    CHGNet's and SevenNet's forwards synchronise with the GPU several times (``torch.bincount``, output sizes),
    so one thread alternates between launching kernels and waiting; two threads on two CUDA streams overlap
    one batch's launches with the other's kernels (measured on an H200; see docs/embedding.md). The default
    is 2 on a GPU and 1 on the CPU, where one forward already uses every core.
    """
    for _, rows in _forward_events(embedder, (("batch", b) for b in batches), pooling, concurrency):
        yield rows.ids, [rows.X], rows.skipped


def _prefetched(executor: Any, builder: Any, pieces: Iterator, batch_size: int, prefetch: int,
                shared: bool = False, warm_up: Callable[[], Any] | None = None) -> Iterator:
    """``(build_frame_batches result, last)`` of each piece, built in ``executor`` with ``prefetch`` in flight,
    in input order; ``warm_up()`` runs once before the first wait. Shared-memory batches of pieces never consumed
    (the caller stopped) are unlinked."""
    from collections import deque

    in_flight: deque = deque()

    def before_first_wait():
        nonlocal warm_up
        if warm_up is not None:
            fn, warm_up = warm_up, None
            fn()

    try:
        for piece, last in pieces:
            in_flight.append((executor.submit(build_frame_batches, builder, piece, batch_size, shared), last))
            if len(in_flight) >= prefetch:
                before_first_wait()
                future, was_last = in_flight.popleft()
                yield future.result(), was_last
        before_first_wait()
        while in_flight:
            future, was_last = in_flight.popleft()
            yield future.result(), was_last
    finally:
        for future, _ in in_flight:
            try:
                batches, _ = future.result()
            except BaseException:  # noqa: BLE001 - cleaning up after a stop; the error was reported or is moot
                continue
            for item, _ in batches:
                discard(item)
