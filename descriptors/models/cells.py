"""Cells for models that demand a fully periodic cell: molecules and slabs go into vacuum.

A model built on periodic neighbour lists (CHGNet) needs three lattice vectors. For a structure whose
``pbc`` is not all True, :func:`vacuum_cell` keeps the periodic lattice vectors and replaces each
non-periodic one by a vector orthogonal to the periodic ones, of length ``extent + 2 * cutoff`` where
``extent`` is the spread of the atoms along that direction. The nearest periodic image of any atom along a
padded direction is then at least ``2 * cutoff`` away, so the model graph (all pairs within ``cutoff``) is
exactly the graph of the isolated molecule / slab: the embedding does not depend on the box.
"""
from __future__ import annotations

import numpy as np

__all__ = ["vacuum_cell"]


def _orthonormal_complement(vectors: np.ndarray) -> np.ndarray:
    """Orthonormal basis (rows) of the complement of the span of ``vectors`` (rows), in R^3."""
    if len(vectors) == 0:
        return np.eye(3)
    # SVD: right singular vectors beyond the rank span the complement.
    _, s, vt = np.linalg.svd(np.atleast_2d(vectors))
    rank = int((s > 1e-10 * max(s.max(), 1.0)).sum())
    return vt[rank:]


def vacuum_cell(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff_A: float) -> np.ndarray:
    """A fully periodic cell that isolates the non-periodic directions of a structure.

    Parameters
    ----------
    positions : numpy.ndarray, shape (n_atoms, 3)
        Cartesian positions (Å).
    cell : numpy.ndarray, shape (3, 3)
        Lattice vectors as rows (Å); rows of non-periodic directions are ignored (may be zero).
    pbc : numpy.ndarray, shape (3,), bool
        Periodic flags.
    cutoff_A : float
        Radial cutoff of the model graph (Å).

    Returns
    -------
    numpy.ndarray, shape (3, 3)
        Lattice vectors (Å): periodic rows unchanged, each non-periodic row replaced by a unit vector
        orthogonal to the periodic rows times ``extent + 2 * cutoff_A``. Right-handed.

    Raises
    ------
    ValueError
        If the periodic rows are linearly dependent.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    pbc = np.asarray(pbc, dtype=bool).reshape(3)
    periodic = cell[pbc]
    if len(periodic) and np.linalg.matrix_rank(periodic, tol=1e-8) < len(periodic):
        raise ValueError("periodic lattice vectors are linearly dependent")
    directions = _orthonormal_complement(periodic)
    out = cell.copy()
    for axis, u in zip(np.flatnonzero(~pbc), directions):
        proj = positions @ u
        extent = float(proj.max() - proj.min()) if len(proj) else 0.0
        out[axis] = u * (extent + 2.0 * float(cutoff_A))
    if np.linalg.det(out) < 0:
        axis = int(np.flatnonzero(~pbc)[-1])
        out[axis] = -out[axis]
    return out
