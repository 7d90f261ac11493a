"""Species-agnostic local-environment descriptor (QUESTS), per atom and pooled per structure.

Uses the ``quests`` package (Schwalbe-Koda et al., the descriptor behind its dataset entropy): for each atom,
``x1`` = the ``k`` nearest neighbour distances turned into smoothly cut-off inverse distances, sorted, and
``x2`` = the sorted mean inverse cross-distances between those neighbours (``2k - 1`` numbers in all).
The numba kernels of quests are called directly on the frame table's flat arrays, without building
``ase.Atoms``; its ``get_descriptors`` wrapper is not used because it treats slabs as molecules and
concatenates a whole list in memory.

The first call in a process compiles the kernels (about 16-19 s here, 0.2 s once numba's on-disk cache is
warm). ``descriptor_pbc`` runs its bins in numba threads; :func:`~.runner.featurize` sets one thread per
worker process.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..datasets.frames import atoms_arrays
from .base import AtomFeatures, FrameDescriptor, check_batch, sampled_atom_features

__all__ = ["LocalEnvironmentDescriptor"]


class LocalEnvironmentDescriptor(FrameDescriptor):
    """QUESTS local-environment vectors, pooled per structure by mean and standard deviation.

    Parameters
    ----------
    k : int, default 32
        Nearest neighbours per atom (per-atom width ``2k - 1``).
    cutoff : float, default 5.0
        Cutoff radius of the smooth weight (Å).
    max_atoms_per_structure : int or None, default 32
        Per-atom mode (:meth:`transform_atoms`): atoms kept per structure, chosen reproducibly from
        ``(random_state, frame id)``; None keeps every atom. Pooling always uses every atom.
    random_state : int, default 0
        Seed of the atom subsample.
    n_threads : int, default 1
        numba threads for quests' periodic kernel while this descriptor runs (restored afterwards).
        One is right for typical cells: measured here on 2 busy cores, 2 threads ran 8-atom cells at
        24 frames/s against 450 with 1 (the kernel parallelises over spatial bins, which small cells do
        not have); parallelise over batches with ``featurize`` instead.

    Attributes
    ----------
    feature_names_ : numpy.ndarray of str, shape (2 (2k - 1),)
        ``mean_x1_0 .. mean_x2_{k-2}, std_x1_0 .. std_x2_{k-2}``.
    n_features_out_ : int

    Notes
    -----
    Fully periodic frames use quests' periodic kernel (a left-handed cell is replaced by the same lattice
    with its third vector negated, which the kernel needs); frames with no periodic direction use the
    molecular kernel. Frames with partial periodicity (slabs, wires) and frames without positions are
    skipped with a reason. Fewer than ``k`` neighbours (small molecules) pad with zeros, as quests does.
    The width does not grow with the number of species (126 numbers per structure with ``k = 32``), so
    unlike SOAP it needs no memory guard.
    """

    name = "local"
    dependencies = ("quests", "numba")
    required_columns = ("id", "numbers", "positions", "cell", "pbc")
    preload = ("quests.descriptor",)

    def __init__(self, k: int = 32, cutoff: float = 5.0, max_atoms_per_structure: int | None = 32,
                 random_state: int = 0, n_threads: int = 1):
        self.n_threads = n_threads
        self.k = k
        self.cutoff = cutoff
        self.max_atoms_per_structure = max_atoms_per_structure
        self.random_state = random_state

    def _fit_batches(self, batches) -> None:
        if int(self.k) < 2:
            raise ValueError(f"k must be >= 2, got {self.k}")
        for _ in batches:
            pass

    def _atom_names(self) -> list[str]:
        k = int(self.k)
        return [f"x1_{j}" for j in range(k)] + [f"x2_{j}" for j in range(k - 1)]

    def _feature_names(self) -> list[str]:
        names = self._atom_names()
        return [f"mean_{n}" for n in names] + [f"std_{n}" for n in names]

    def _frames(self, batch: pa.Table):
        """Yield (row, per-atom descriptors (n_atoms, 2k-1) or None, reason)."""
        import warnings

        from numba.core.errors import NumbaTypeSafetyWarning
        from quests.descriptor import descriptor_nopbc, descriptor_pbc

        warnings.filterwarnings("ignore", category=NumbaTypeSafetyWarning, module="quests")
        import numba

        k, cutoff = int(self.k), float(self.cutoff)
        arr = atoms_arrays(batch)
        previous = numba.get_num_threads()
        numba.set_num_threads(max(1, min(int(self.n_threads), numba.config.NUMBA_NUM_THREADS)))
        try:
            yield from self._kernel_rows(arr, k, cutoff, descriptor_pbc, descriptor_nopbc)
        finally:
            numba.set_num_threads(previous)

    @staticmethod
    def _kernel_rows(arr, k, cutoff, descriptor_pbc, descriptor_nopbc):
        for i in range(len(arr)):
            _, pos, cell, pbc = arr.frame(i)
            if pos is None:
                yield i, None, "no 3D positions"
                continue
            pos = np.ascontiguousarray(pos, dtype=np.float64)
            if pbc.all():
                cell = np.array(cell, dtype=np.float64)
                if np.linalg.det(cell) < 0:
                    cell[2] = -cell[2]
                x1, x2 = descriptor_pbc(pos, cell, k=k, cutoff=cutoff)
            elif not pbc.any():
                x1, x2 = descriptor_nopbc(pos, k=k, cutoff=cutoff)
            else:
                yield i, None, f"partial periodicity pbc={pbc.tolist()} is not supported by quests"
                continue
            yield i, np.concatenate([x1, x2], axis=1), None

    def _transform_batch(self, batch: pa.Table):
        d = 2 * int(self.k) - 1
        out = np.full((batch.num_rows, 2 * d), np.nan)
        skipped = []
        for i, x, reason in self._frames(batch):
            if x is None:
                skipped.append((i, reason))
                continue
            out[i, :d] = x.mean(axis=0)
            out[i, d:] = x.std(axis=0)
        return out, skipped

    def transform_atoms(self, X: pa.Table) -> AtomFeatures:
        """Per-atom QUESTS vectors of a reproducible subsample (``max_atoms_per_structure`` per frame).

        Parameters
        ----------
        X : pyarrow.Table
            A frame batch (FRAME_SCHEMA).

        Returns
        -------
        AtomFeatures
            ``X`` shape (n_sampled_atoms, 2k - 1) float32 (columns ``x1_*, x2_*``), frame rows, atom
            indices and skipped frames.
        """
        self._check_fitted()
        batch = check_batch(X, self.required_columns)
        d = 2 * int(self.k) - 1
        x, fi, ai, skipped = sampled_atom_features(batch, self._frames(batch), lambda v, sel: v[sel], d,
                                                   self.max_atoms_per_structure, self.random_state)
        return AtomFeatures(x.astype(np.float32), fi, ai, skipped)
