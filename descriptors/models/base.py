"""Shared machinery of the model embedders: structure checks, batching, pooling, skip records.

An embedder turns structures into the features a pretrained interatomic potential computes at its last
interaction layer, the per-atom tensor that its energy readout consumes, and pools them per structure.
Each concrete embedder (:mod:`._chgnet`, :mod:`._sevennet`) only says

* how one :class:`ase.Atoms` becomes one model graph (:meth:`ModelEmbedder.graph_builder`, a picklable
  callable, so graphs can be built in worker processes), and
* how a list of graphs becomes per-atom features (:meth:`ModelEmbedder.forward`), with no forces, no
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

__all__ = [
    "POOLINGS",
    "SkippedStructure",
    "UnsupportedStructure",
    "ModelEmbedder",
    "pool_features",
    "build_graphs",
    "build_frame_graphs",
    "embed_frames",
    "graph_worker_pool",
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
    def graph_builder(self) -> Callable[[Any], Any]:
        """A picklable callable ``builder(atoms) -> graph`` (raises :class:`UnsupportedStructure`)."""

    @abstractmethod
    def forward(self, graphs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Per-atom features of a batch of graphs, without forces, stress or autograd.

        Returns
        -------
        features : numpy.ndarray, shape (n_atoms_total, dim), float32
        counts : numpy.ndarray, shape (len(graphs),), int64
        """

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

    def forward_pooled(
        self, graphs: Sequence[Any], pooling: str = "mean"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Forward one batch of graphs and pool. Returns (pooled array, atom counts (n_graphs,))."""
        feats, counts = self.forward(graphs)
        return pool_features(feats, counts, pooling), counts

    def _embed_graphs(
        self, graphs: list, ids: list[str], batch_size: int, pooling: str
    ) -> tuple[list[str], list[np.ndarray], list[SkippedStructure]]:
        """Forward in batches; a batch that fails is retried one structure at a time."""
        out_ids: list[str] = []
        out: list[np.ndarray] = []
        skipped: list[SkippedStructure] = []
        for start in range(0, len(graphs), batch_size):
            chunk, chunk_ids = graphs[start : start + batch_size], ids[start : start + batch_size]
            try:
                pooled, counts = self.forward_pooled(chunk, pooling)
            except Exception:  # noqa: BLE001 - isolate the structure that breaks the batch
                for g, ident in zip(chunk, chunk_ids):
                    try:
                        pooled, counts = self.forward_pooled([g], pooling)
                    except Exception as exc:  # noqa: BLE001
                        skipped.append(SkippedStructure(ident, "forward_error", f"{type(exc).__name__}: {exc}"))
                        continue
                    out.append(pooled)
                    out_ids.extend([ident] * (int(counts[0]) if pooling == "atoms" else 1))
                continue
            out.append(pooled)
            if pooling == "atoms":
                out_ids.extend(np.repeat(np.asarray(chunk_ids, dtype=object), counts).tolist())
            else:
                out_ids.extend(chunk_ids)
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
        graphs, kept, skipped = build_graphs(self.graph_builder(), atoms_list, ids)
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


def build_frame_graphs(builder: Callable[[Any], Any], batch: Any, payload: bool = False
                       ) -> tuple[list, list[str], list[SkippedStructure]]:
    """Graphs of the frames of one frame batch (``pyarrow.Table``), skips included; runs in worker processes.

    Returns ``(graphs, kept_ids, skipped)`` as :func:`build_graphs`, with frames that have no positions
    first among the skips. With ``payload=True`` and a builder that has ``build_payload``, the graphs are
    returned as that method's plain numpy form (``builder.from_payload`` turns them into model graphs):
    torch tensors sent between processes would go through torch's shared-memory file-descriptor passing,
    one descriptor per tensor, which is slow for many small graphs and hangs in some sandboxes.
    """
    atoms, ids, skipped_pre = _frames_to_atoms(batch)
    make = builder.build_payload if payload and hasattr(builder, "build_payload") else builder
    graphs, kept, skipped = build_graphs(make, atoms, ids)
    return graphs, kept, skipped_pre + skipped


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


def graph_worker_pool(workers: int):
    """A ``ProcessPoolExecutor`` of ``workers`` graph-building processes (one thread each) for
    :func:`embed_frames`; the caller shuts it down (use it as a context manager)."""
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(int(workers), initializer=_limit_worker_threads)


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
) -> Iterator[tuple[list[str], np.ndarray, list[SkippedStructure]]]:
    """Stream embeddings of frame batches (see :mod:`monoculture.datasets.frames`).

    Parameters
    ----------
    embedder : ModelEmbedder
    batches : iterable of pyarrow.Table
        Frame batches with the columns of ``FRAME_SCHEMA`` (at least id, numbers, positions, cell, pbc).
    batch_size : int
        Structures per forward pass.
    pooling : {"mean", "mean_var", "atoms"}
    executor : concurrent.futures.Executor, optional
        When given (e.g. :func:`graph_worker_pool`), each frame batch is cut into pieces of ``piece_size``
        frames and the graphs of up to ``prefetch`` pieces are built in it while this process runs the model
        on the graphs already built, so graph building on N workers overlaps the forward passes. Forward
        batches are the same consecutive runs of ``batch_size`` graphs as without an executor. Without it,
        graphs are built in this process.
    prefetch : int, optional
        Pieces in flight in ``executor`` (default: twice its number of workers). Memory holds at most
        ``prefetch`` pieces of graphs plus the embeddings of one frame batch.
    piece_size : int, optional
        Frames per task sent to a worker (default 64: several workers build the first forward batch
        together, and few task messages reach this process).

    Yields
    ------
    ids : list of str
        Ids of the embedded rows (repeated per atom with ``pooling="atoms"``), one yield per frame batch,
        in input order.
    embeddings : numpy.ndarray, float32, shape (len(ids), width)
    skipped : list of SkippedStructure
        Frames of this batch left out (no positions, element outside the model's table, ...).
    """
    _check_pooling(pooling)
    batch_size = int(batch_size)
    builder = embedder.graph_builder()

    def finish(built):
        graphs, kept, skipped = built
        out_ids, out, skipped_fwd = embedder._embed_graphs(graphs, kept, batch_size, pooling)
        return out_ids, out, skipped + skipped_fwd

    def assemble(parts):
        ids, arrays, skipped = [], [], []
        for out_ids, out, skp in parts:
            ids.extend(out_ids)
            arrays.extend(out)
            skipped.extend(skp)
        values = np.concatenate(arrays, axis=0) if arrays else np.zeros((0, embedder.width(pooling)), np.float32)
        return ids, values, skipped

    if executor is None:
        for batch in batches:
            yield assemble([finish(build_frame_graphs(builder, batch))])
        return

    n_workers = max(int(getattr(executor, "_max_workers", 1) or 1), 1)
    if prefetch is None:
        prefetch = 2 * n_workers
    prefetch = max(int(prefetch), 1)
    if piece_size is None:
        # Small enough that the first forward batch is built by several workers at once (no idle device
        # while one worker builds a whole batch), large enough that the model process spends little time
        # on task messages (measured on an H100 host, SevenNet-0, batch 256: pieces of 64 on 4 workers
        # 0.87x of the model-only rate, pieces of 32 on 8 workers 0.70x).
        piece_size = 64
    piece_size = max(int(piece_size), 1)

    def pieces():
        """(piece, is last piece of its frame batch), in input order; an empty batch is one empty piece."""
        for batch in batches:
            parts = _pieces(batch, piece_size)
            for i, piece in enumerate(parts):
                yield piece, i == len(parts) - 1

    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def unpack(future):
        """Payloads -> model graphs, in a thread of this process: overlaps the model's waits on the device."""
        graphs, kept, skipped = future.result()
        if hasattr(builder, "from_payload"):
            graphs = [builder.from_payload(g) for g in graphs]
        return graphs, kept, skipped

    source = iter(pieces())
    in_flight: deque = deque()
    exhausted = False
    # Graphs of the current frame batch waiting for a full forward batch, and what that batch gave so far.
    buf_graphs: list = []
    buf_ids: list[str] = []
    done_parts: list = []
    skipped_build: list[SkippedStructure] = []
    with ThreadPoolExecutor(1) as unpacker:
        while True:
            while not exhausted and len(in_flight) < prefetch:
                try:
                    piece, last = next(source)
                except StopIteration:
                    exhausted = True
                    break
                built = executor.submit(build_frame_graphs, builder, piece, True)
                in_flight.append((unpacker.submit(unpack, built), last))
            if not in_flight:
                return
            future, last = in_flight.popleft()
            graphs, kept, skipped = future.result()
            buf_graphs.extend(graphs)
            buf_ids.extend(kept)
            skipped_build.extend(skipped)
            # Forward batches are consecutive batch_size runs of the frame batch's graphs, as without workers.
            while len(buf_graphs) >= batch_size or (last and buf_graphs):
                done_parts.append(finish((buf_graphs[:batch_size], buf_ids[:batch_size], [])))
                del buf_graphs[:batch_size], buf_ids[:batch_size]
            if last:
                done_parts.insert(0, ([], [], skipped_build))  # build skips first, as without workers
                yield assemble(done_parts)
                done_parts, skipped_build = [], []
