"""Per-structure sets of atomic environments read from a dataset: QUESTS descriptors plus what selection needs.

Every atom of every structure is described by the QUESTS descriptor (``quests``' defaults: 32 neighbours,
5 Å cutoff; :class:`~monoculture.descriptors.local.LocalEnvironmentDescriptor` with
``max_atoms_per_structure=None``), kept as float32, with the structure's id, distinct elements, atom count
and thermodynamic regime (temperature, pressure and equilibrium classes of
:mod:`monoculture.audit.coverage.regimes`). A structure's environments are contiguous rows.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..coverage.regimes import equilibrium_class, pressure_class, temperature_class

__all__ = ["EnvironmentSet", "read_environments", "UNKNOWN_REGIME", "regime_name"]

#: Class index meaning "unknown" in each regime column (temperature, pressure, equilibrium).
UNKNOWN_REGIME = (6, 5, 2)
_T = ("0 K", "1-300 K", "300-600 K", "600-1000 K", "1000-2000 K", ">=2000 K", "T unknown")
_P = ("< -1 GPa", "-1..1 GPa", "1-10 GPa", "10-50 GPa", ">=50 GPa", "P unknown")
_EQ = ("near equilibrium", "far from equilibrium", "no forces")


def regime_name(regime) -> str:
    """Readable name of a (temperature class, pressure class, equilibrium class) triple."""
    t, p, e = (int(v) for v in regime)
    return f"{_T[t]}, {_P[p]}, {_EQ[e]}"


@dataclass
class EnvironmentSet:
    """The environments of a dataset, grouped by structure.

    Attributes
    ----------
    name : str
    X : numpy.ndarray, shape (n_environments, d), float32
        Per-atom QUESTS descriptors, structure after structure.
    offsets : numpy.ndarray, shape (n_structures + 1,), int64
        Structure ``i`` owns rows ``offsets[i] : offsets[i + 1]``.
    ids : numpy.ndarray of str, shape (n_structures,)
    species : list of numpy.ndarray
        Distinct atomic numbers of each structure (ascending).
    regimes : numpy.ndarray, shape (n_structures, 3), int64
        Temperature, pressure and equilibrium class of each structure (:data:`UNKNOWN_REGIME` = unknown).
    volume_per_atom_A3 : numpy.ndarray, shape (n_structures,), float64
        NaN for non-periodic structures.
    skipped : list of (str, str)
        ``(id, reason)`` of structures the descriptor could not describe.
    """

    name: str
    X: np.ndarray
    offsets: np.ndarray
    ids: np.ndarray
    species: list
    regimes: np.ndarray
    volume_per_atom_A3: np.ndarray
    skipped: list = field(default_factory=list)

    @property
    def n_structures(self) -> int:
        return int(len(self.ids))

    @property
    def n_environments(self) -> int:
        return int(self.X.shape[0])

    @property
    def structure_of(self) -> np.ndarray:
        """Structure index of every environment, shape (n_environments,)."""
        return np.repeat(np.arange(self.n_structures), np.diff(self.offsets))

    def mean_volume_per_atom(self) -> float:
        """Mean volume per atom (Å^3/atom) over periodic structures, weighted by atoms; NaN if none."""
        v = self.volume_per_atom_A3
        n = np.diff(self.offsets)
        ok = np.isfinite(v)
        return float(np.sum(v[ok] * n[ok]) / np.sum(n[ok])) if ok.any() and n[ok].sum() else float("nan")

    def subset(self, rows: np.ndarray) -> "EnvironmentSet":
        """The structures ``rows`` (order kept)."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = np.diff(self.offsets)[rows]
        env = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in rows]) if len(rows) \
            else np.zeros(0, np.int64)
        return EnvironmentSet(self.name, self.X[env], np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                              self.ids[rows], [self.species[i] for i in rows], self.regimes[rows],
                              self.volume_per_atom_A3[rows], [])


def _column(batch: pa.Table, name: str) -> np.ndarray:
    if name not in batch.column_names:
        return np.full(batch.num_rows, np.nan)
    return np.asarray(batch.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def read_environments(source, *, name: str | None = None, k: int = 32, cutoff: float = 5.0,
                      progress: Callable[[int, int], None] | None = None) -> EnvironmentSet:
    """Describe every atom of every structure of a dataset.

    Parameters
    ----------
    source : Dataset, pyarrow.Table or iterable of pyarrow.Table
        Frame batches (FRAME_SCHEMA); a :class:`~monoculture.datasets.Dataset` is read with ``.batches()``.
    name : str, optional
        Name of the set (default: the dataset's name, else "environments").
    k, cutoff : int, float
        QUESTS descriptor parameters (neighbours; cutoff in Å).
    progress : callable (n_structures, n_environments), optional
        Called after every batch.

    Returns
    -------
    EnvironmentSet
    """
    from ...descriptors.base import iter_batches
    from ...descriptors.local import LocalEnvironmentDescriptor

    desc = LocalEnvironmentDescriptor(k=k, cutoff=cutoff, max_atoms_per_structure=None).fit([])
    blocks, counts, ids, species, regimes, vols, skipped = [], [], [], [], [], [], []
    for batch in iter_batches(source):
        if batch.num_rows == 0:
            continue
        af = desc.transform_atoms(batch)
        skipped.extend(af.skipped)
        rows, first = np.unique(af.frame_index, return_index=True)
        n_per = np.diff(np.append(first, len(af.frame_index)))
        order = np.argsort(af.frame_index, kind="stable")
        blocks.append(af.X[order])
        counts.append(n_per)
        bid = batch.column("id").to_pylist()
        bspec = batch.column("species").to_pylist()
        t = temperature_class(_column(batch, "temperature_K"))
        p = pressure_class(_column(batch, "pressure_GPa"))
        e = equilibrium_class(_column(batch, "fmax_eV_A"))
        vol = _column(batch, "volume_A3") / np.maximum(np.asarray(batch.column("n_atoms").to_numpy(), float), 1)
        for r in rows:
            ids.append(str(bid[r]))
            species.append(np.asarray(bspec[r], dtype=np.int64))
        regimes.append(np.stack([t[rows], p[rows], e[rows]], axis=1))
        vols.append(vol[rows])
        if progress is not None:
            progress(len(ids), sum(len(b) for b in blocks))
    d = 2 * int(k) - 1
    X = np.concatenate(blocks).astype(np.float32, copy=False) if blocks else np.zeros((0, d), np.float32)
    n = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    return EnvironmentSet(
        name or getattr(source, "name", None) or "environments", X,
        np.concatenate([[0], np.cumsum(n)]).astype(np.int64), np.asarray(ids, dtype=object), species,
        np.concatenate(regimes).astype(np.int64) if regimes else np.zeros((0, 3), np.int64),
        np.concatenate(vols) if vols else np.zeros(0), skipped)
