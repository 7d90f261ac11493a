"""Shared machinery of the model embedders: structure checks, batching, pooling, skip records.

An embedder turns structures into the features a pretrained interatomic potential computes at its last
interaction layer, the per-atom tensor that its energy readout consumes, and pools them per structure.
Each concrete embedder (:mod:`._chgnet`, :mod:`._sevennet`) only says

* how one :class:`ase.Atoms` becomes one model graph (:meth:`ModelEmbedder.graph_builder`: a picklable
  builder whose ``build_payload(atoms)`` gives the graph as a one-graph batch of numpy arrays and whose
  ``collate(graphs)`` / ``split(batch)`` batch and unbatch them, see :mod:`.collate`; so graphs, and whole
  forward batches, can be built in worker processes), and
* how a batch becomes per-atom features (:meth:`ModelEmbedder.forward_batch`), with no forces, no
  stress and no autograd.

Everything else (ids, validation, batching, skips, pooling, metadata) lives here, once.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..transfer import discard, opened, to_shared

__all__ = [
    "POOLINGS",
    "SkippedStructure",
    "UnsupportedStructure",
    "ModelEmbedder",
    "pool_features",
    "build_graphs",
    "build_frame_batches",
    "embed_frames",
    "forward_batches",
    "graph_worker_pool",
    "start_workers",
    "ForwardClock",
    "union_seconds",
    "structure_ids",
]

#: Accepted values of ``pooling``.
POOLINGS = ("mean", "mean_var", "atoms")


class UnsupportedStructure(ValueError):
    """A structure the model cannot take; ``reason`` is a short machine-readable key.

    Parameters
    ----------
    reason : str
        ``unsupported_element``, ``isolated_atom``, ``no_atoms``, ``non_finite_positions``,
        ``singular_cell``, ``graph_error``...
    detail : str
        Human-readable explanation.
    """

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SkippedStructure:
    """One structure left out of the embeddings, and why."""

    id: str
    reason: str
    detail: str = ""


def structure_ids(atoms_list: Sequence[Any], start: int = 0) -> list[str]:
    """Ids of structures: ``atoms.info["id"]`` when present, else the position in the list as a string."""
    out = []
    for i, atoms in enumerate(atoms_list):
        ident = atoms.info.get("id") if hasattr(atoms, "info") else None
        out.append(str(ident) if ident is not None else str(start + i))
    return out


def build_graphs(
    builder: Callable[[Any], Any], atoms_list: Sequence[Any], ids: Sequence[str]
) -> tuple[list[Any], list[str], list[SkippedStructure]]:
    """Build model graphs for many structures, skipping those the model cannot take.

    A module-level function of picklable arguments, so it can be submitted to a process pool.

    Parameters
    ----------
    builder : callable
        ``builder(atoms) -> graph``, raising :class:`UnsupportedStructure` for a structure it refuses.
    atoms_list : sequence of ase.Atoms, length n
    ids : sequence of str, length n

    Returns
    -------
    graphs : list
        Graphs of the accepted structures, in input order.
    kept_ids : list of str
        Their ids.
    skipped : list of SkippedStructure
        The refused structures. Any other exception raised by the model library while building a graph
        is recorded as ``graph_error`` with its message, never raised.
    """
    graphs, kept, skipped = [], [], []
    for atoms, ident in zip(atoms_list, ids):
        try:
            graphs.append(builder(atoms))
        except UnsupportedStructure as exc:
            skipped.append(SkippedStructure(ident, exc.reason, exc.detail))
            continue
        except Exception as exc:  # noqa: BLE001 - a library failure on one structure must not stop a run
            skipped.append(SkippedStructure(ident, "graph_error", f"{type(exc).__name__}: {exc}"))
            continue
        kept.append(ident)
    return graphs, kept, skipped


def pool_features(features: np.ndarray, counts: np.ndarray, pooling: str = "mean") -> np.ndarray:
    """Pool per-atom features into per-structure features.

    Parameters
    ----------
    features : numpy.ndarray, shape (n_atoms_total, dim)
        Per-atom features, structures stored one after the other.
    counts : numpy.ndarray, shape (n_structures,), int
        Atoms of each structure (all >= 1); ``counts.sum() == n_atoms_total``.
    pooling : {"mean", "mean_var", "atoms"}
        ``mean``: average over the atoms of each structure (the study's choice), shape (n_structures, dim).
        ``mean_var``: first two cumulants concatenated, ``[mean, variance]`` with the population variance
        (divisor n_atoms, 0 for one atom), shape (n_structures, 2 * dim), after arXiv 2512.05717.
        ``atoms``: no pooling, the input is returned, shape (n_atoms_total, dim).

    Returns
    -------
    numpy.ndarray, float32
        Sums are accumulated in float64 before the cast.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    features = np.asarray(features)
    counts = np.asarray(counts, dtype=np.int64)
    if features.ndim != 2 or counts.sum() != features.shape[0]:
        raise ValueError(
            f"features of shape {features.shape} do not match atom counts summing to {int(counts.sum())}"
        )
    if pooling == "atoms":
        return features.astype(np.float32, copy=False)
    if len(counts) == 0:
        width = features.shape[1] * (2 if pooling == "mean_var" else 1)
        return np.zeros((0, width), dtype=np.float32)
    if (counts < 1).any():
        raise ValueError("every structure needs at least one atom")
    x = features.astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    mean = np.add.reduceat(x, starts, axis=0) / counts[:, None]
    if pooling == "mean":
        return mean.astype(np.float32)
    centred = x - np.repeat(mean, counts, axis=0)
    var = np.add.reduceat(centred * centred, starts, axis=0) / counts[:, None]
    return np.concatenate([mean, var], axis=1).astype(np.float32)


def _check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ModelEmbedder(ABC):
    """Base class: per-structure embeddings from a pretrained interatomic potential.

    Subclasses set the attributes below in ``__init__`` and implement :meth:`graph_builder` and
    :meth:`forward`. Use :func:`monoculture.descriptors.models.load_embedder` to make one.

    Attributes
    ----------
    name : str
        Registry name (``chgnet-0.3.0``, ``sevennet-0``...).
    version : str
        Checkpoint and package version, e.g. ``CHGNet 0.3.0 (chgnet 0.4.2)``.
    layer : str
        Exactly which tensor is returned.
    dim : int
        Width of the per-atom features.
    cutoff_A : float
        Radial cutoff of the model graph (Å).
    device : str
        ``cpu`` or ``cuda``.
    checkpoint : str
        Path of the bundled weights file.
    skipped_ : list of SkippedStructure
        Structures left out by the last :meth:`embed` call.
    """

    name: str
    version: str
    layer: str
    dim: int
    cutoff_A: float
    device: str
    checkpoint: str
    #: Extra facts recorded in :meth:`metadata` (modal, vacuum box rule...).
    notes: dict

    def __init__(self) -> None:
        self.skipped_: list[SkippedStructure] = []
        self._sha256: str | None = None

    # -- to implement ----------------------------------------------------------------------------------
    @abstractmethod
    def graph_builder(self) -> Any:
        """A picklable builder: ``build_payload(atoms) -> one-graph batch`` (raises
        :class:`UnsupportedStructure`), ``collate(list of batches) -> batch``, ``split(batch) -> list``."""

    @abstractmethod
    def forward_batch(self, batch: dict) -> np.ndarray:
        """Per-atom features of a collated batch (``batch["n_atoms"]``: atoms per graph), without forces,
        stress or autograd: ``(n_atoms_total, dim)`` float32."""

    # -- shared ----------------------------------------------------------------------------------------
    def width(self, pooling: str = "mean") -> int:
        """Number of columns of :meth:`embed` output for ``pooling`` (known before computing)."""
        _check_pooling(pooling)
        return 2 * self.dim if pooling == "mean_var" else self.dim

    def metadata(self, pooling: str = "mean") -> dict:
        """What to record next to the embeddings: model, version, layer, pooling, width, checkpoint hash."""
        _check_pooling(pooling)
        if self._sha256 is None:
            self._sha256 = _file_sha256(self.checkpoint)
        return {
            "model": self.name,
            "version": self.version,
            "layer": self.layer,
            "pooling": pooling,
            "dim": self.dim,
            "width": self.width(pooling),
            "cutoff_A": self.cutoff_A,
            "checkpoint": self.checkpoint.rsplit("/", 1)[-1],
            "checkpoint_sha256": self._sha256,
            "dtype": "float32",
            **self.notes,
        }

    def _builder(self) -> Any:
        if getattr(self, "_builder_cache", None) is None:
            self._builder_cache = self.graph_builder()
        return self._builder_cache

    def forward(self, graphs: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
        """Per-atom features of a list of one-graph batches (``graph_builder().build_payload`` results).

        Returns
        -------
        features : numpy.ndarray, shape (n_atoms_total, dim), float32
        counts : numpy.ndarray, shape (len(graphs),), int64
        """
        if len(graphs) == 0:
            return np.zeros((0, self.dim), np.float32), np.zeros(0, np.int64)
        batch = self._builder().collate(list(graphs))
        return self.forward_batch(batch), np.asarray(batch["n_atoms"], np.int64)

    def forward_pooled(
        self, graphs: Sequence[dict], pooling: str = "mean"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Forward a list of one-graph batches and pool. Returns (pooled array, atom counts (n_graphs,))."""
        feats, counts = self.forward(graphs)
        return pool_features(feats, counts, pooling), counts

    def _warm_up_builder(self) -> Any:
        """Builder of :meth:`warm_up`'s graph: one that needs no compilation (default :meth:`graph_builder`)."""
        return self.graph_builder()

    def warm_up(self, n_graphs: int = 8) -> None:
        """Run one forward on a small batch (``n_graphs`` copies of bulk silicon, 2 atoms each) and discard it.

        The device's one-time costs (CUDA context and library handles, kernels loaded on first use) are then
        paid here, while worker processes build the first real batches (``embed_frames(..., warm_up=...)``),
        instead of in the first real forward. The features do not depend on it.
        """
        from ase.build import bulk

        builder = self._warm_up_builder()
        graph = builder.build_payload(bulk("Si", "diamond", a=5.43))
        self.embed_batch(builder.collate([graph] * int(n_graphs)), [str(i) for i in range(int(n_graphs))], "mean")

    def _thread_stream(self):
        """Context manager running this thread's device work on its own CUDA stream (a no-op on the CPU), so
        forwards in several threads overlap on the GPU."""
        import contextlib

        if not str(self.device).startswith("cuda"):
            return contextlib.nullcontext()
        import threading

        import torch

        local = self.__dict__.setdefault("_streams", threading.local())
        if getattr(local, "stream", None) is None:
            local.stream = torch.cuda.Stream(device=self.device)
        return torch.cuda.stream(local.stream)

    def embed_batch(
        self, batch: dict, ids: Sequence[str], pooling: str = "mean"
    ) -> tuple[list[str], list[np.ndarray], list[SkippedStructure]]:
        """Forward one collated batch and pool; if the batch fails, its graphs are retried one at a time and
        those that still fail are skipped as ``forward_error``.

        Returns ``(row ids, [pooled array], skipped)``; row ids repeat per atom with ``pooling="atoms"``.
        """
        try:
            counts = np.asarray(batch["n_atoms"], np.int64)
            pooled = pool_features(self.forward_batch(batch), counts, pooling)
        except Exception:  # noqa: BLE001 - isolate the structure that breaks the batch
            if len(ids) == 1:
                raise
            out_ids: list[str] = []
            out: list[np.ndarray] = []
            skipped: list[SkippedStructure] = []
            for g, ident in zip(self._builder().split(batch), ids):
                try:
                    part_ids, part, _ = self.embed_batch(g, [ident], pooling)
                except Exception as exc:  # noqa: BLE001
                    skipped.append(SkippedStructure(ident, "forward_error", f"{type(exc).__name__}: {exc}"))
                    continue
                out_ids.extend(part_ids)
                out.extend(part)
            return out_ids, out, skipped
        if pooling == "atoms":
            return np.repeat(np.asarray(ids, dtype=object), counts).tolist(), [pooled], []
        return list(ids), [pooled], []

    def _embed_graphs(
        self, graphs: list, ids: list[str], batch_size: int, pooling: str
    ) -> tuple[list[str], list[np.ndarray], list[SkippedStructure]]:
        """Collate and forward one-graph batches in runs of ``batch_size`` (see :meth:`embed_batch`)."""
        out_ids: list[str] = []
        out: list[np.ndarray] = []
        skipped: list[SkippedStructure] = []
        builder = self._builder()
        for start in range(0, len(graphs), batch_size):
            chunk, chunk_ids = graphs[start : start + batch_size], ids[start : start + batch_size]
            part_ids, part, part_skipped = self.embed_batch(builder.collate(chunk), chunk_ids, pooling)
            out_ids.extend(part_ids)
            out.extend(part)
            skipped.extend(part_skipped)
        return out_ids, out, skipped

    def embed(
        self, atoms_list: Iterable[Any], batch_size: int = 32, pooling: str = "mean"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embed structures.

        Parameters
        ----------
        atoms_list : iterable of ase.Atoms
            Crystals (periodic) and molecules (``pbc`` all False). ``atoms.info["id"]`` is used as the id
            when present, else the position in the input.
        batch_size : int
            Structures per forward pass.
        pooling : {"mean", "mean_var", "atoms"}
            See :func:`pool_features`.

        Returns
        -------
        ids : numpy.ndarray of str (object), shape (n_rows,)
            Id of each row; with ``pooling="atoms"`` a structure's id repeats once per atom.
        embeddings : numpy.ndarray, float32
            ``(n_embedded, dim)`` for ``mean``, ``(n_embedded, 2 * dim)`` for ``mean_var``,
            ``(n_atoms_embedded, dim)`` for ``atoms``; rows follow input order, skipped structures left out
            (listed in :attr:`skipped_`).
        """
        _check_pooling(pooling)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        atoms_list = list(atoms_list)
        ids = structure_ids(atoms_list)
        graphs, kept, skipped = build_graphs(self._builder().build_payload, atoms_list, ids)
        out_ids, out, skipped_fwd = self._embed_graphs(graphs, kept, int(batch_size), pooling)
        self.skipped_ = skipped + skipped_fwd
        values = np.concatenate(out, axis=0) if out else np.zeros((0, self.width(pooling)), np.float32)
        return np.asarray(out_ids, dtype=object), values

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, device={self.device!r})"


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


def _limit_worker_threads() -> None:
    """Initializer of graph-building processes: one BLAS / OpenMP / torch thread each.

    Graph building is one structure at a time; letting every worker start a thread pool per core
    oversubscribes the machine and slows down the process that runs the model (measured on a 16-core GPU host:
    8 workers with default pools left the pipeline at 0.6x of the model-only rate).
    """
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn, a dependency
        pass
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def graph_worker_pool(workers: int, preload: Sequence[str] = ()):
    """A ``ProcessPoolExecutor`` of ``workers`` graph-building processes (one thread each) for
    :func:`embed_frames`; the caller shuts it down (use it as a context manager).

    Parameters
    ----------
    workers : int
        Number of processes.
    preload : sequence of str
        Modules the workers need (:func:`~.registry.graph_worker_modules`). When given (and the platform has
        it), the workers are forked from a ``multiprocessing`` forkserver that imports these modules once,
        before any worker exists, and every worker is started at once (:func:`start_workers`): imports and
        compiled code are paid once per run, in parallel with whatever the calling process does meanwhile
        (loading the model), and the workers never inherit the calling process's torch, CUDA context or
        threads. Without it, the platform's default start method is used and workers start on first use.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import resource_tracker

    # Started here so that the workers share it: it unlinks shared-memory batches a killed run leaves behind.
    resource_tracker.ensure_running()
    context = None
    if preload and "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # Takes effect when this process's forkserver starts (the first pool that needs it); a forkserver
        # already running keeps its modules, and workers then import the rest when they unpickle a task.
        context.set_forkserver_preload(list(preload))
    pool = ProcessPoolExecutor(int(workers), mp_context=context, initializer=_limit_worker_threads)
    if context is not None:
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


def union_seconds(spans: Iterable[tuple[float, float]]) -> float:
    """Length of the union of intervals ``(start, end)`` (s): overlapping time counted once."""
    busy, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b <= end:
            continue
        busy += b - max(a, end)
        end = b
    return float(busy)


class ForwardClock:
    """Time spent in forward passes: wall-clock intervals, and on a GPU the intervals between CUDA events
    recorded on each forward's stream before it copies its batch in and after it copies the features out.

    Why hand-written: torch's profiler records every kernel (far more than needed, and slows the run); two
    events per forward cost microseconds. The events give when the GPU reached the start and the end of each
    forward's work on its stream, on one clock (offsets from a reference event, mapped to ``time.perf_counter``);
    their union is the time the GPU had a forward in flight (an upper bound of kernel time: a stream waiting
    for the CPU to launch its next kernel counts as busy).

    Parameters
    ----------
    device : str
        ``cpu`` or ``cuda[:n]``; on the CPU only wall-clock intervals are kept.
    """

    def __init__(self, device: str = "cpu"):
        import threading
        import time

        self.cuda = str(device).startswith("cuda")
        self._lock = threading.Lock()
        self._wall: list[tuple[float, float]] = []
        self._events: list = []
        self._ref = None
        if self.cuda:
            import torch

            torch.cuda.synchronize(device)
            self._ref = torch.cuda.Event(enable_timing=True)
            self._ref.record()
            torch.cuda.synchronize(device)
        self._ref_wall = time.perf_counter()

    def start(self) -> tuple:
        """Mark the start of a forward on this thread's current stream; pass the result to :meth:`stop`."""
        import time

        event = None
        if self.cuda:
            import torch

            event = torch.cuda.Event(enable_timing=True)
            event.record()
        return time.perf_counter(), event

    def stop(self, token: tuple) -> None:
        """Mark the end of the forward started with ``token``."""
        import time

        start_wall, start_event = token
        end_event = None
        if self.cuda:
            import torch

            end_event = torch.cuda.Event(enable_timing=True)
            end_event.record()
        with self._lock:
            self._wall.append((start_wall, time.perf_counter()))
            if self.cuda:
                self._events.append((start_event, end_event))

    def intervals(self) -> list[tuple[float, float]]:
        """(start, end) of every forward in ``time.perf_counter`` seconds: GPU event times on a GPU (waits for
        the device), wall-clock times on the CPU."""
        if not self.cuda:
            return list(self._wall)
        import torch

        torch.cuda.synchronize()
        ref, base = self._ref, self._ref_wall
        return [(base + ref.elapsed_time(a) / 1e3, base + ref.elapsed_time(b) / 1e3) for a, b in self._events]

    def summary(self, since: float | None = None) -> dict:
        """Totals of the forwards.

        Parameters
        ----------
        since : float, optional
            ``time.perf_counter()`` origin of the returned times (default: when the clock was made).

        Returns
        -------
        dict
            ``n_forward``; ``forward_sum_s`` (sum of the forwards' durations, s; above the busy time when
            forwards overlap); ``forward_busy_s`` (length of the union of the intervals, s); ``first_forward_s``
            and ``last_forward_s`` (start of the first and end of the last, s after ``since``; None without
            forwards); ``timer`` (``cuda_events`` or ``wall``).
        """
        spans = sorted(self.intervals())
        origin = self._ref_wall if since is None else since
        return {
            "n_forward": len(spans),
            "forward_sum_s": float(sum(b - a for a, b in spans)),
            "forward_busy_s": union_seconds(spans),
            "first_forward_s": float(spans[0][0] - origin) if spans else None,
            "last_forward_s": float(max(b for _, b in spans) - origin) if spans else None,
            "timer": "cuda_events" if self.cuda else "wall",
        }


def _pieces(batch: Any, size: int) -> list[Any]:
    """``batch`` cut into tables of at most ``size`` rows, each with its own buffers (a ``slice`` of a table
    would pickle the whole table into a worker)."""
    import pyarrow as pa

    n = batch.num_rows
    if n <= size:
        return [batch]
    return [batch.take(pa.array(np.arange(s, min(s + size, n)))) for s in range(0, n, size)]


def embed_frames(
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
) -> Iterator[tuple[list[str], np.ndarray, list[SkippedStructure]]]:
    """Stream embeddings of frame batches (see :mod:`monoculture.datasets.frames`).

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
    ids : list of str
        Ids of the embedded rows (repeated per atom with ``pooling="atoms"``), one yield per frame batch,
        in input order.
    embeddings : numpy.ndarray, float32, shape (len(ids), width)
    skipped : list of SkippedStructure
        Frames of this batch left out (no positions, element outside the model's table, forward error...).
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
            parts = _pieces(batch, piece_size)
            for i, piece in enumerate(parts):
                yield piece, i == len(parts) - 1

    if transport not in ("auto", "pipe", "shm"):
        raise ValueError(f"transport must be 'auto', 'pipe' or 'shm', got {transport!r}")
    if executor is None:
        if warm_up is not None:
            warm_up()
        built = ((build_frame_batches(builder, piece, batch_size), last) for piece, last in pieces())
    else:
        from concurrent.futures import ProcessPoolExecutor

        shared = isinstance(executor, ProcessPoolExecutor) and (
            transport == "shm" or (transport == "auto" and embedder.device != "cpu"))
        n_workers = max(int(getattr(executor, "_max_workers", 1) or 1), 1)
        built = _prefetched(executor, builder, pieces(), batch_size, max(int(prefetch or 2 * n_workers), 1), shared,
                            warm_up)

    def events():
        for (batches_of_piece, piece_skipped), last in built:
            yield "skipped", piece_skipped
            for item, batch_ids in batches_of_piece:
                yield "batch", (item, batch_ids)
            if last:
                yield "end", None

    ids: list[str] = []
    arrays: list[np.ndarray] = []
    skipped: list[SkippedStructure] = []
    for kind, value in _forward_events(embedder, events(), pooling, concurrency, clock):
        if kind == "skipped":
            skipped.extend(value)
        elif kind == "batch":
            out_ids, out, skipped_fwd = value
            ids.extend(out_ids)
            arrays.extend(out)
            skipped.extend(skipped_fwd)
        else:
            values = (np.concatenate(arrays, axis=0) if arrays
                      else np.zeros((0, embedder.width(pooling)), np.float32))
            yield ids, values, skipped
            ids, arrays, skipped = [], [], []


def _default_concurrency(embedder: ModelEmbedder) -> int:
    return 2 if str(embedder.device).startswith("cuda") else 1


def _forward_one(embedder: ModelEmbedder, item: Any, ids: Sequence[str], pooling: str,
                 clock: ForwardClock | None = None):
    with embedder._thread_stream(), opened(item) as batch:
        if clock is None:
            return embedder.embed_batch(batch, ids, pooling)
        token = clock.start()
        try:
            return embedder.embed_batch(batch, ids, pooling)
        finally:
            clock.stop(token)


def _forward_events(embedder: ModelEmbedder, events: Iterable[tuple[str, Any]], pooling: str,
                    concurrency: int | None, clock: ForwardClock | None = None) -> Iterator[tuple[str, Any]]:
    """``events`` in order, each ``("batch", (item, ids))`` replaced by ``("batch", embed_batch result)``;
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
    for _, value in _forward_events(embedder, (("batch", b) for b in batches), pooling, concurrency):
        yield value


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
