"""Model embedders: structure checks, graph building, pooling, skip records, and the embedder base class.

An embedder turns structures into the features a pretrained interatomic potential computes at its last
interaction layer, the per-atom tensor that its energy readout consumes, and pools them per structure.
Each concrete embedder (:mod:`._chgnet`, :mod:`._sevennet`) only says

* how one :class:`ase.Atoms` becomes one model graph (:meth:`ModelEmbedder.graph_builder`: a picklable
  builder whose ``build_payload(atoms)`` gives the graph as a one-graph batch of numpy arrays and whose
  ``collate(graphs)`` / ``split(batch)`` batch and unbatch them, see :mod:`.collate`; so graphs, and whole
  forward batches, can be built in worker processes), and
* how a batch becomes per-atom features (:meth:`ModelEmbedder.forward_batch`), with no forces, no
  stress and no autograd.

Everything else (ids, validation, batching, skips, pooling, metadata) lives here, once; streaming frame
batches through worker processes and the model is :mod:`.streaming`.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "POOLINGS",
    "SkippedStructure",
    "EmbeddedRows",
    "atom_positions",
    "UnsupportedStructure",
    "ModelEmbedder",
    "pool_features",
    "build_graphs",
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


def atom_positions(counts: np.ndarray) -> np.ndarray:
    """0-based position of every atom in its structure: ``[0..c0-1, 0..c1-1, ...]``, int32, shape (sum(counts),)."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return (np.arange(total, dtype=np.int64) - starts).astype(np.int32)


@dataclass
class EmbeddedRows:
    """Rows embedded from some structures (one forward batch, or one frame batch).

    Attributes
    ----------
    ids : list of str, length n_rows
        Row ids: the structure ids, repeated per atom for per-atom rows.
    X : numpy.ndarray, float32, shape (n_rows, width)
    skipped : list of SkippedStructure
    atom_index : numpy.ndarray of int32, shape (n_rows,), or None
        Per-atom rows only: position of the atom in its structure.
    atomic_numbers : numpy.ndarray of int16, shape (n_rows,), or None
        Per-atom rows only.
    """

    ids: list
    X: np.ndarray
    skipped: list
    atom_index: np.ndarray | None = None
    atomic_numbers: np.ndarray | None = None

    @property
    def n_structures(self) -> int:
        """Structures embedded (rows, or atoms starting a structure)."""
        return len(self.ids) if self.atom_index is None else int(np.count_nonzero(self.atom_index == 0))

    def __iter__(self):
        """``ids, X, skipped = rows`` (the tuple :func:`embed_frames` yields)."""
        return iter((self.ids, self.X, self.skipped))

    @classmethod
    def concat(cls, parts: Sequence["EmbeddedRows"], width: int, per_atom: bool,
               skipped: Sequence[SkippedStructure] = ()) -> "EmbeddedRows":
        """Rows of ``parts`` one after the other (an empty ``(0, width)`` array when there are none), their
        skips then ``skipped``."""
        ids = [i for p in parts for i in p.ids]
        X = np.concatenate([p.X for p in parts], axis=0) if parts else np.zeros((0, width), np.float32)
        skips = [s for p in parts for s in p.skipped] + list(skipped)
        if not per_atom:
            return cls(ids, X, skips)
        index = np.concatenate([p.atom_index for p in parts]) if parts else np.zeros(0, np.int32)
        numbers = np.concatenate([p.atomic_numbers for p in parts]) if parts else np.zeros(0, np.int16)
        return cls(ids, X, skips, index, numbers)


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

    def batch_atomic_numbers(self, batch: dict) -> np.ndarray:
        """Atomic number of every atom of a collated batch, in the order of the per-atom features: int16,
        shape (n_atoms_total,). Reads the batch's ``atomic_number`` (CHGNet) or ``atomic_numbers`` (SevenNet)
        array; an embedder whose batches name it otherwise overrides this."""
        for key in ("atomic_number", "atomic_numbers"):
            if key in batch:
                return np.asarray(batch[key]).reshape(-1).astype(np.int16)
        raise KeyError(f"{type(self).__name__}: the graph batch holds no atomic numbers ({sorted(batch)})")

    def embed_batch_rows(self, batch: dict, ids: Sequence[str], pooling: str = "mean") -> EmbeddedRows:
        """Forward one collated batch and pool; if the batch fails, its graphs are retried one at a time and
        those that still fail are skipped as ``forward_error``.

        Returns
        -------
        EmbeddedRows
            With ``pooling="atoms"``: one row per atom, ``ids`` repeated per atom, and the atoms' positions
            in their structures and atomic numbers (taken from the graph batch, hence in the model's order).
        """
        try:
            counts = np.asarray(batch["n_atoms"], np.int64)
            pooled = pool_features(self.forward_batch(batch), counts, pooling)
        except Exception:  # noqa: BLE001 - isolate the structure that breaks the batch
            if len(ids) == 1:
                raise
            parts: list[EmbeddedRows] = []
            skipped: list[SkippedStructure] = []
            for g, ident in zip(self._builder().split(batch), ids):
                try:
                    parts.append(self.embed_batch_rows(g, [ident], pooling))
                except Exception as exc:  # noqa: BLE001
                    skipped.append(SkippedStructure(ident, "forward_error", f"{type(exc).__name__}: {exc}"))
            return EmbeddedRows.concat(parts, self.width(pooling), pooling == "atoms", skipped)
        if pooling == "atoms":
            return EmbeddedRows(np.repeat(np.asarray(ids, dtype=object), counts).tolist(), pooled, [],
                                atom_positions(counts), self.batch_atomic_numbers(batch))
        return EmbeddedRows(list(ids), pooled, [])

    def embed_batch(
        self, batch: dict, ids: Sequence[str], pooling: str = "mean"
    ) -> tuple[list[str], list[np.ndarray], list[SkippedStructure]]:
        """:meth:`embed_batch_rows` as ``(row ids, [array (n_rows, width)], skipped)``; row ids repeat per atom
        with ``pooling="atoms"``."""
        rows = self.embed_batch_rows(batch, ids, pooling)
        return rows.ids, [rows.X], rows.skipped

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
