"""Read model embeddings from files and join several models on their structure ids.

File layouts
------------
Files are read by :func:`monoculture.descriptors.embedding_files.read_embedding_file` (the one reader of
embedding files; :func:`read_embeddings` and :func:`read_skip_info` here are its views for the alignment):

* Parquet with an ``id`` column and either **one list column** (``list<float>``, ``large_list`` or
  ``fixed_size_list``; e.g. the ``features`` column of ``monoculture featurize``) or **several numeric
  columns** (one per embedding dimension, in file order). Other non-numeric columns (``skip_reason``) are
  ignored. A null list or a list of NaNs is a skipped structure and becomes a NaN row.
* ``.npz`` with arrays ``ids`` (shape (n,)) and ``embeddings`` (shape (n, d)).

A folder of such files is a *model zoo*: the model name is the file stem.

Joining
-------
:func:`join_embeddings` checks that every model lists each id once. Models that refused different
structures (an element outside a model's table, an isolated atom) list different ids: by default
(``how="common"``) the ids every model lists are kept and, per model, the ids it lacks are recorded
(``JoinedEmbeddings.absent``); ``how="same"`` instead raises a :class:`ValueError` that says how many ids
differ and shows examples. Rows that are entirely NaN in any model (a structure a model or descriptor
skipped) are dropped for *every* model, so the rows stay paired; rows with only some NaNs are an error (a
broken embedding, not a skip).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ...descriptors.embedding_files import EMBEDDING_SUFFIXES, read_embedding_file, read_skip_info

__all__ = ["read_embeddings", "read_model_zoo", "read_skip_info", "join_embeddings", "JoinedEmbeddings",
           "EMBEDDING_SUFFIXES"]

_SHOW = 5  # examples quoted in error messages


def _examples(items) -> str:
    items = list(items)
    shown = ", ".join(repr(x) for x in items[:_SHOW])
    return shown + (", ..." if len(items) > _SHOW else "")


def read_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one model's embeddings (a view of
    :func:`monoculture.descriptors.embedding_files.read_embedding_file`, the one reader).

    Parameters
    ----------
    path : str or path-like
        ``.parquet`` (``id`` + one list column or several numeric columns) or ``.npz`` (``ids``,
        ``embeddings``); see the module docstring.

    Returns
    -------
    ids : numpy.ndarray of str, shape (n,)
        Row ids; in a per-atom file (``monoculture embed --pooling atoms``) each structure id repeats once per
        atom, which :func:`join_embeddings` refuses: read such files with ``read_embedding_file``.
    X : numpy.ndarray, shape (n, d), float64
        NaN rows mark skipped structures.
    """
    f = read_embedding_file(path, dtype=np.float64)
    return np.asarray(f.ids, dtype=object).astype(str), f.X


def read_model_zoo(folder: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read every embedding file of a folder; the model name is the file stem.

    Parameters
    ----------
    folder : str or path-like

    Returns
    -------
    dict
        ``{model: (ids, X)}`` in sorted order of file names, ``ids`` shape (n_m,), ``X`` shape (n_m, d_m).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of embedding files")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EMBEDDING_SUFFIXES)
    if not files:
        raise ValueError(f"{folder} holds no embedding file ({', '.join(EMBEDDING_SUFFIXES)})")
    stems = [p.stem for p in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise ValueError(f"{folder}: {len(dup)} model name(s) given by more than one file: {_examples(dup)}")
    return {p.stem: read_embeddings(p) for p in files}


@dataclass(frozen=True)
class JoinedEmbeddings:
    """Embeddings of several models on one list of ids (rows paired across models).

    Attributes
    ----------
    ids : numpy.ndarray of str, shape (n,)
        Shared ids in the order of the first model, skipped rows removed.
    arrays : dict of str to numpy.ndarray
        ``{model: X}`` with ``X`` of shape (n, d_model), float64, finite.
    skipped : dict of str to list of str
        ``{model: ids}`` whose row was all-NaN in that model (dropped for every model).
    absent : dict of str to list of str
        ``{model: ids}`` that another model lists but this one does not (``how="common"``; dropped for
        every model).
    listed : dict of str to int
        ``{model: number of ids in its input}``.
    """

    ids: np.ndarray
    arrays: dict
    skipped: dict = field(default_factory=dict)
    absent: dict = field(default_factory=dict)
    listed: dict = field(default_factory=dict)

    @property
    def dropped_ids(self) -> set:
        """Ids some model lists but that are not analysed (skipped by a model or absent from one)."""
        return set().union(*self.skipped.values(), *self.absent.values())

    @property
    def n_skipped(self) -> int:
        """Ids dropped because at least one model skipped them or does not list them."""
        return len(self.dropped_ids)

    def accounting(self) -> dict:
        """Per model: ids listed, ids it lacks or skipped, and ids it embedded that are dropped because
        another model lacks or skipped them (JSON-ready, with up to 5 example ids each)."""
        dropped = self.dropped_ids
        out = {}
        for name in self.arrays:
            own = set(self.skipped.get(name, [])) | set(self.absent.get(name, []))
            others = dropped - own
            out[name] = {
                "n_listed": int(self.listed.get(name, 0)),
                "n_analysed": int(self.ids.size),
                "n_not_listed": len(self.absent.get(name, [])),
                "not_listed_examples": sorted(self.absent.get(name, []))[:_SHOW],
                "n_skipped_rows": len(self.skipped.get(name, [])),
                "skipped_rows_examples": sorted(self.skipped.get(name, []))[:_SHOW],
                "n_dropped_for_other_models": len(others),
                "dropped_for_other_models_examples": sorted(others)[:_SHOW],
            }
        return out


def join_embeddings(embeddings: Mapping[str, tuple], how: str = "common") -> JoinedEmbeddings:
    """Join per-model embeddings on their ids.

    Parameters
    ----------
    embeddings : mapping of str to (ids, X)
        ``ids`` shape (n_m,), ``X`` shape (n_m, d_m); every model lists each id at most once.
    how : {"common", "same"}
        ``"common"``: keep the ids every model lists (order of the first model) and record the others in
        ``absent``; ``"same"``: every model must list the same ids.

    Returns
    -------
    JoinedEmbeddings

    Raises
    ------
    ValueError
        Duplicated ids in a model, ids that not every model has (``how="same"``), partly-NaN rows,
        mismatched shapes, fewer than 2 ids embedded by every model.
    """
    if how not in ("common", "same"):
        raise ValueError(f"how must be 'common' or 'same'; got {how!r}")
    if not embeddings:
        raise ValueError("no embeddings given")
    names = list(embeddings)
    parsed = {}
    for name in names:
        try:
            ids, X = embeddings[name]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model {name!r}: expected a pair (ids, X)") from exc
        ids = np.asarray(ids).astype(str)
        X = np.asarray(X, dtype=np.float64)
        if ids.ndim != 1 or X.ndim != 2 or X.shape[0] != ids.shape[0]:
            raise ValueError(f"model {name!r}: ids of shape {ids.shape} do not match embeddings of shape {X.shape}")
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            dup = uniq[counts > 1]
            raise ValueError(f"model {name!r}: {dup.size} id(s) appear more than once, e.g. {_examples(dup)}")
        parsed[name] = (ids, X)

    listed = {name: int(parsed[name][0].size) for name in names}
    absent = {}
    if how == "common":
        sets = {name: set(parsed[name][0].tolist()) for name in names}
        every = set.union(*sets.values())
        common = set.intersection(*sets.values())
        for name in names:
            if sets[name] != every:
                absent[name] = sorted(every - sets[name])
        if len(common) < len(every):
            for name in names:
                ids, X = parsed[name]
                keep = np.fromiter((s in common for s in ids.tolist()), dtype=bool, count=ids.size)
                parsed[name] = (ids[keep], X[keep])
    ref_ids = parsed[names[0]][0]
    ref_set = set(ref_ids.tolist())
    for name in names[1:]:
        other = set(parsed[name][0].tolist())
        if other != ref_set:
            only_ref = sorted(ref_set - other)
            only_other = sorted(other - ref_set)
            raise ValueError(
                f"ids of model {name!r} do not match those of {names[0]!r}: {len(only_ref)} id(s) only in "
                f"{names[0]!r} (e.g. {_examples(only_ref)}), {len(only_other)} only in {name!r} "
                f"(e.g. {_examples(only_other)})")

    position = {s: i for i, s in enumerate(ref_ids.tolist())}
    arrays, skipped = {}, {}
    bad_rows = np.zeros(ref_ids.size, dtype=bool)
    for name in names:
        ids, X = parsed[name]
        order = np.empty(ids.size, dtype=np.int64)
        order[np.fromiter((position[s] for s in ids.tolist()), dtype=np.int64, count=ids.size)] = np.arange(ids.size)
        X = X[order]
        nan = np.isnan(X)
        all_nan = nan.all(axis=1)
        partial = nan.any(axis=1) & ~all_nan
        if partial.any():
            raise ValueError(f"model {name!r}: {int(partial.sum())} row(s) are partly NaN, e.g. "
                             f"{_examples(ref_ids[partial])}; only whole rows may be NaN (skipped structures)")
        if not np.isfinite(X[~all_nan]).all():
            raise ValueError(f"model {name!r}: embeddings contain infinite values")
        if all_nan.any():
            skipped[name] = ref_ids[all_nan].tolist()
        bad_rows |= all_nan
        arrays[name] = X
    keep = ~bad_rows
    if keep.sum() < 2:
        raise ValueError(f"fewer than 2 structures are embedded by every model ({int(keep.sum())} left)")
    return JoinedEmbeddings(ref_ids[keep], {k: np.ascontiguousarray(v[keep]) for k, v in arrays.items()}, skipped,
                            absent, listed)
