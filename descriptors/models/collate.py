"""Graph batches as plain numpy arrays: collate single-structure graphs into one forward batch, split it back.

Model libraries batch graphs in Python, one graph at a time, right before the forward pass (CHGNet's
``BatchedGraph.from_graphs`` runs ~15 small tensor operations per graph on the model's device; PyG's
``Batch.from_data_list`` walks every attribute of every graph). On a GPU that per-graph loop, not the
network, sets the speed. Here a graph is a dict of numpy arrays whose rows belong to a few *row kinds*
(atoms, edges, angles...), and a batch is the same dict for many graphs: rows concatenated, index columns
shifted by the number of rows of the kind they point into, and one count per graph and row kind. So batching
is a handful of ``np.concatenate`` calls that worker processes do, and the model process only copies a few
large arrays to the device.

No library does this layout-agnostic collation in numpy (torch_geometric collates torch tensors of its own
``Data`` objects, one attribute at a time), hence this module.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["BatchLayout", "counts_key"]


def counts_key(kind: str) -> str:
    """Key of the per-graph row counts of row kind ``kind`` in a batch (``"n_atoms"``...)."""
    return f"n_{kind}"


@dataclass(frozen=True)
class BatchLayout:
    """Which rows each array of a graph batch has, and which of its columns index other rows.

    Parameters
    ----------
    kinds : tuple of str
        Row kinds (e.g. ``("atoms", "edges")``). A batch holds ``n_<kind>``: int64 array of shape
        ``(n_graphs,)``, the rows of that kind per graph.
    arrays : mapping of str to (str, tuple)
        ``key -> (row kind, index columns)``. The array has one row per row of that kind (or one per graph when
        the kind is ``"graphs"``). ``index columns`` gives, for each column of a 2D array (or the single column of
        a 1D array), the row kind it indexes (its values are shifted by that kind's offset when graphs are
        batched) or ``None`` for a plain value; an empty tuple means no index columns.
    """

    kinds: tuple
    arrays: Mapping

    def _offsets(self, batch: Mapping, kind: str) -> np.ndarray:
        counts = np.asarray(batch[counts_key(kind)], dtype=np.int64)
        return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    def _rows(self, batch: Mapping, kind: str) -> np.ndarray:
        if kind == "graphs":
            return np.ones(self.n_graphs(batch), dtype=np.int64)
        return np.asarray(batch[counts_key(kind)], dtype=np.int64)

    def n_graphs(self, batch: Mapping) -> int:
        """Number of graphs in ``batch``."""
        return int(len(batch[counts_key(self.kinds[0])]))

    def _shifts(self, key: str, arr: np.ndarray, batch: Mapping, sign: int) -> np.ndarray:
        """``arr`` with its index columns shifted by +-(offset of its graph in ``batch``)."""
        kind, index_cols = self.arrays[key]
        if not index_cols or arr.shape[0] == 0:
            return arr
        rows = self._rows(batch, kind)
        out = arr.copy()
        cols = index_cols
        for j, target in enumerate(cols):
            if target is None:
                continue
            shift = np.repeat(self._offsets(batch, target), rows).astype(arr.dtype, copy=False)
            if arr.ndim == 1:
                out += sign * shift
            else:
                out[:, j] += sign * shift
        return out

    def collate(self, graphs: Sequence[Mapping]) -> dict:
        """One batch of ``graphs`` (single graphs or batches, in order); arrays keep their dtypes.

        Index columns of each input are shifted by the rows of the inputs before it, so that they point into
        the batch's rows; counts are concatenated. Index columns must have a dtype wide enough for the batch
        (int32 holds 2**31 rows).
        """
        if not graphs:
            raise ValueError("no graphs to collate")
        out: dict = {}
        start: dict = {}
        for kind in self.kinds:
            key = counts_key(kind)
            parts = [np.asarray(g[key], dtype=np.int64) for g in graphs]
            out[key] = np.concatenate(parts)
            totals = np.array([p.sum() for p in parts], dtype=np.int64)
            start[kind] = np.concatenate([[0], np.cumsum(totals)[:-1]])
        for key, (_, index_cols) in self.arrays.items():
            parts = [g[key] for g in graphs]
            arr = np.concatenate(parts, axis=0)
            if index_cols and arr.shape[0]:
                rows = np.array([len(p) for p in parts], dtype=np.int64)
                cols = index_cols
                for j, target in enumerate(cols):
                    if target is None:
                        continue
                    shift = np.repeat(start[target], rows).astype(arr.dtype, copy=False)
                    if arr.ndim == 1:
                        arr += shift
                    else:
                        arr[:, j] += shift
            out[key] = arr
        return out

    def split(self, batch: Mapping) -> list[dict]:
        """The single-graph batches of ``batch`` (the inverse of :meth:`collate`)."""
        n = self.n_graphs(batch)
        local = {key: self._shifts(key, np.asarray(batch[key]), batch, -1) for key in self.arrays}
        starts = {kind: np.concatenate([[0], np.cumsum(self._rows(batch, kind))]) for kind in (*self.kinds, "graphs")}
        out = []
        for i in range(n):
            g = {counts_key(kind): np.asarray(batch[counts_key(kind)][i : i + 1], dtype=np.int64) for kind in self.kinds}
            for key, (kind, _) in self.arrays.items():
                s = starts[kind]
                g[key] = local[key][s[i] : s[i + 1]]
            out.append(g)
        return out
