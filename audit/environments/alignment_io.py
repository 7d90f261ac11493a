"""Inputs of :func:`~.alignment.align_environments` from files: per-atom embedding files and the per-atom QUESTS
descriptors of the structures they came from.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .alignment import AtomFeatures

__all__ = ["read_atom_embedding", "read_atom_environments"]


def read_atom_embedding(path, name: str | None = None) -> AtomFeatures:
    """One model's per-atom features from a ``monoculture embed --pooling atoms`` file.

    Parameters
    ----------
    path : str or path-like
        Parquet with ``id``, ``atom_index``, ``atomic_number`` and ``embedding`` (read by
        :func:`monoculture.descriptors.embedding_files.read_embedding_file`).
    name : str, optional
        Model name (default: the file's ``model`` metadata, else the file stem).

    Returns
    -------
    AtomFeatures

    Raises
    ------
    ValueError
        The file is not per-atom (a pooled embedding cannot be aligned atom by atom), or unreadable.
    """
    from ...descriptors.embedding_files import read_embedding_file

    f = read_embedding_file(path)
    if not f.is_per_atom:
        raise ValueError(f"{Path(path).name} holds one row per structure (pooling "
                         f"{f.metadata.get('pooling', 'unknown')!r}); environment alignment needs per-atom rows: "
                         "run `monoculture embed ... --pooling atoms`")
    label = name or str(f.metadata.get("model") or Path(path).stem)
    return AtomFeatures(label, np.asarray(f.ids, dtype=object), f.atom_index.astype(np.int64), f.X,
                        f.atomic_numbers.astype(np.int64))


def read_atom_environments(source, *, k: int = 32, cutoff: float = 5.0,
                           progress: Callable[[int], None] | None = None) -> tuple[AtomFeatures, list]:
    """QUESTS descriptor of every atom of every structure, keyed by (structure id, atom index).

    Parameters
    ----------
    source : Dataset, pyarrow.Table or iterable of pyarrow.Table
        Frame batches (FRAME_SCHEMA).
    k, cutoff : int, float
        QUESTS descriptor parameters (neighbours; cutoff in Å), quests' defaults.
    progress : callable (n_atoms), optional

    Returns
    -------
    (AtomFeatures named "QUESTS" with X of shape (n_atoms, 2k - 1) float32, skipped [(id, reason)])
    """
    from ...datasets.frames import atoms_arrays
    from ...descriptors.base import iter_batches
    from ...descriptors.local import LocalEnvironmentDescriptor

    desc = LocalEnvironmentDescriptor(k=k, cutoff=cutoff, max_atoms_per_structure=None).fit([])
    ids, index, numbers, blocks, skipped = [], [], [], [], []
    for batch in iter_batches(source):
        if batch.num_rows == 0:
            continue
        af = desc.transform_atoms(batch)
        skipped.extend(af.skipped)
        arr = atoms_arrays(batch)
        bid = np.asarray(batch.column("id").to_pylist(), dtype=object)
        ids.append(bid[af.frame_index])
        index.append(np.asarray(af.atom_index, np.int64))
        numbers.append(arr.numbers[arr.offsets[af.frame_index] + af.atom_index].astype(np.int64))
        blocks.append(af.X)
        if progress is not None:
            progress(sum(len(b) for b in blocks))
    d = 2 * int(k) - 1
    cat = (lambda parts, empty: np.concatenate(parts) if parts else empty)
    return AtomFeatures("QUESTS", cat(ids, np.zeros(0, object)), cat(index, np.zeros(0, np.int64)),
                        cat(blocks, np.zeros((0, d), np.float32)), cat(numbers, np.zeros(0, np.int64))), skipped
