"""Read model embeddings from files and join several models on their structure ids.

File layouts
------------
* Parquet with an ``id`` column and either **one list column** (``list<float>``, ``large_list`` or
  ``fixed_size_list``; e.g. the ``features`` column of ``monoculture featurize``) or **several numeric
  columns** (one per embedding dimension, in file order). Other non-numeric columns (``skip_reason``) are
  ignored. A null list or a list of NaNs is a skipped structure and becomes a NaN row.
* ``.npz`` with arrays ``ids`` (shape (n,)) and ``embeddings`` (shape (n, d)).

A folder of such files is a *model zoo*: the model name is the file stem.

Joining
-------
:func:`join_embeddings` checks that every model lists each id once and that all models list the same ids;
otherwise it raises a :class:`ValueError` that says how many ids are wrong and shows examples. Rows that
are entirely NaN in any model (a structure a model or descriptor skipped) are dropped for *every* model,
so the rows stay paired; rows with only some NaNs are an error (a broken embedding, not a skip).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

__all__ = ["read_embeddings", "read_model_zoo", "join_embeddings", "JoinedEmbeddings", "EMBEDDING_SUFFIXES"]

EMBEDDING_SUFFIXES = (".parquet", ".npz")
_SHOW = 5  # examples quoted in error messages


def _examples(items) -> str:
    items = list(items)
    shown = ", ".join(repr(x) for x in items[:_SHOW])
    return shown + (", ..." if len(items) > _SHOW else "")


def _list_column_to_array(col, name: str) -> np.ndarray:
    """A pyarrow (chunked) list column -> float64 array (n, d); null or empty entries become NaN rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(col)
    if pa.types.is_fixed_size_list(col.type):
        d = col.type.list_size
        valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        out = np.full((n, d), np.nan)
        if valid.any():
            vals = col.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False)
            out[valid] = np.asarray(vals, dtype=np.float64).reshape(-1, d)
        return out
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    lengths = np.where(np.isnan(lengths.astype(float)), 0, lengths).astype(np.int64)
    filled = lengths[lengths > 0]
    if filled.size == 0:
        raise ValueError(f"list column {name!r} has no non-empty entry")
    widths = np.unique(filled)
    if widths.size > 1:
        raise ValueError(f"list column {name!r} holds lists of different lengths {widths[:_SHOW].tolist()}; "
                         "every embedding of one model must have the same width")
    d = int(widths[0])
    out = np.full((n, d), np.nan)
    valid = lengths == d
    if valid.any():
        vals = col.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False)
        out[valid] = np.asarray(vals, dtype=np.float64).reshape(-1, d)
    return out


def read_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one model's embeddings.

    Parameters
    ----------
    path : str or path-like
        ``.parquet`` (``id`` + one list column or several numeric columns) or ``.npz`` (``ids``,
        ``embeddings``); see the module docstring.

    Returns
    -------
    ids : numpy.ndarray of str, shape (n,)
    X : numpy.ndarray, shape (n, d), float64
        NaN rows mark skipped structures.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            missing = {"ids", "embeddings"} - set(z.files)
            if missing:
                raise ValueError(f"{path.name}: .npz needs arrays 'ids' and 'embeddings'; missing {sorted(missing)}")
            ids = np.asarray(z["ids"]).astype(str)
            X = np.asarray(z["embeddings"], dtype=np.float64)
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if "id" not in table.column_names:
            raise ValueError(f"{path.name}: parquet embeddings need an 'id' column; got {table.column_names}")
        ids = np.asarray(table.column("id").to_pylist(), dtype=object).astype(str)
        others = [c for c in table.column_names if c != "id"]
        lists = [c for c in others if pa.types.is_list(table.schema.field(c).type)
                 or pa.types.is_large_list(table.schema.field(c).type)
                 or pa.types.is_fixed_size_list(table.schema.field(c).type)]
        numeric = [c for c in others if pa.types.is_floating(table.schema.field(c).type)
                   or pa.types.is_integer(table.schema.field(c).type)]
        if len(lists) == 1 and not numeric:
            X = _list_column_to_array(table.column(lists[0]), lists[0])
        elif len(lists) > 1:
            raise ValueError(f"{path.name}: more than one list column {lists}; keep exactly one embedding column")
        elif numeric and not lists:
            X = np.column_stack([np.asarray(table.column(c).to_numpy(zero_copy_only=False), dtype=np.float64)
                                 for c in numeric])
        elif lists and numeric:
            raise ValueError(f"{path.name}: both a list column {lists} and numeric columns {numeric[:_SHOW]}; "
                             "use one layout")
        else:
            raise ValueError(f"{path.name}: no embedding column (a list column or numeric columns) besides 'id'")
    else:
        raise ValueError(f"{path.name}: unsupported embedding file; expected one of {EMBEDDING_SUFFIXES}")
    if X.ndim != 2 or X.shape[0] != ids.shape[0]:
        raise ValueError(f"{path.name}: {ids.shape[0]} ids but embeddings of shape {X.shape}")
    return ids, X


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
    """

    ids: np.ndarray
    arrays: dict
    skipped: dict = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        """Rows dropped because at least one model skipped them."""
        return len(set().union(*self.skipped.values())) if self.skipped else 0


def join_embeddings(embeddings: Mapping[str, tuple]) -> JoinedEmbeddings:
    """Join per-model embeddings on their ids.

    Parameters
    ----------
    embeddings : mapping of str to (ids, X)
        ``ids`` shape (n_m,), ``X`` shape (n_m, d_m). Every model must list the same ids, each once.

    Returns
    -------
    JoinedEmbeddings

    Raises
    ------
    ValueError
        Duplicated ids in a model, ids that not every model has, partly-NaN rows, mismatched shapes.
    """
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
    return JoinedEmbeddings(ref_ids[keep], {k: np.ascontiguousarray(v[keep]) for k, v in arrays.items()}, skipped)
