"""Embedding files: the one writer of ``monoculture embed`` tables and the one reader of every embedding file.

Layouts written by the package
------------------------------
``monoculture embed`` with ``--pooling mean`` or ``mean_var`` (one row per embedded structure):

* ``id`` (string): the structure id;
* ``embedding`` (``fixed_size_list<float32, width>``).

``monoculture embed --pooling atoms`` (one row per atom of each embedded structure, structures one after the
other, atoms in the order of the input frame):

* ``id`` (string): the structure id, repeated for each of its atoms;
* ``atom_index`` (int32): 0-based position of the atom in its structure;
* ``atomic_number`` (int16);
* ``embedding`` (``fixed_size_list<float32, width>``), width = the model's ``dim``.

Both carry the schema-metadata key ``monoculture.embedding``: JSON with the model provenance (``model``,
``version``, ``layer``, ``pooling``, ``dim``, ``width``, ``cutoff_A``, ``checkpoint``, ``checkpoint_sha256``,
``dtype``), the counts (``n_rows``, ``n_skipped``, ``skip_reasons``; per-atom files add ``n_structures``).
Skipped structures have no row.

``monoculture featurize`` writes ``id``, ``features`` (``fixed_size_list<float32, d>``) and ``skip_reason``
(null when featurized; NaN features otherwise) with JSON under the key ``monoculture``
(:mod:`.runner`).

Other layouts read
------------------
* Parquet with an ``id`` column and either **one list column** (``list<float>``, ``large_list`` or
  ``fixed_size_list``) or **several numeric columns** (one per dimension, in file order). Other non-numeric
  columns (``skip_reason``) are ignored. A null list or a list of NaNs is a skipped structure and becomes a
  NaN row. A file with both ``atom_index`` and ``atomic_number`` columns is per-atom.
* ``.npz`` with arrays ``ids`` (shape (n,)) and ``embeddings`` (shape (n, d)).

:func:`read_embedding_file` returns an :class:`EmbeddingFile`; ``monoculture.audit.alignment.embeddings_io``
and :func:`monoculture.descriptors.models.pipeline.read_embeddings` are thin views of it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["EmbeddingFile", "read_embedding_file", "read_skip_info", "embeddings_table", "EMBEDDING_SUFFIXES",
           "EMBEDDING_METADATA_KEY", "FEATURES_METADATA_KEY", "PER_ATOM_COLUMNS"]

#: File suffixes :func:`read_embedding_file` reads.
EMBEDDING_SUFFIXES = (".parquet", ".npz")
#: Schema-metadata key of ``monoculture embed`` files (JSON).
EMBEDDING_METADATA_KEY = "monoculture.embedding"
#: Schema-metadata key of ``monoculture featurize`` files (JSON).
FEATURES_METADATA_KEY = "monoculture"
#: Columns that make a file per-atom.
PER_ATOM_COLUMNS = ("atom_index", "atomic_number")
_SHOW = 5  # examples quoted in error messages


@dataclass
class EmbeddingFile:
    """Contents of one embedding file.

    Attributes
    ----------
    ids : list of str, length n_rows
        Id of each row; in a per-atom file the structure id, repeated for each of its atoms.
    X : numpy.ndarray, shape (n_rows, width)
        The vectors (float32 unless asked otherwise); NaN rows are skipped structures (featurize files,
        null lists).
    metadata : dict
        The JSON of ``monoculture.embedding`` (embed files) or ``monoculture`` (featurize files); empty
        when there is none.
    atom_index : numpy.ndarray of int32, shape (n_rows,), or None
        Position of each row's atom in its structure (0-based); None for a per-structure file.
    atomic_numbers : numpy.ndarray of int16, shape (n_rows,), or None
        Atomic number of each row's atom; None for a per-structure file.
    path : pathlib.Path or None
    """

    ids: list
    X: np.ndarray
    metadata: dict = field(default_factory=dict)
    atom_index: np.ndarray | None = None
    atomic_numbers: np.ndarray | None = None
    path: Path | None = None

    @property
    def is_per_atom(self) -> bool:
        """True when each row is one atom (``monoculture embed --pooling atoms``)."""
        return self.atom_index is not None

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def width(self) -> int:
        return int(self.X.shape[1])

    def structure_starts(self) -> np.ndarray:
        """First row of each structure, int64, shape (n_structures,): rows where ``atom_index`` is 0 in a
        per-atom file (so two structures with one id stay apart), every row otherwise."""
        if self.atom_index is None:
            return np.arange(self.n_rows, dtype=np.int64)
        return np.flatnonzero(self.atom_index == 0).astype(np.int64)

    @property
    def n_structures(self) -> int:
        return int(self.structure_starts().size)

    def structure_ids(self) -> list[str]:
        """Id of each structure, in file order, length n_structures."""
        return [self.ids[i] for i in self.structure_starts().tolist()]

    def atom_counts(self) -> np.ndarray:
        """Atoms (rows) of each structure, int64, shape (n_structures,)."""
        starts = self.structure_starts()
        return np.diff(np.append(starts, self.n_rows)).astype(np.int64)

    def pooled_mean(self) -> tuple[list[str], np.ndarray]:
        """(structure ids, per-structure mean of the rows (n_structures, width) float32), the sum in float64:
        what ``--pooling mean`` writes for a per-atom file; the rows themselves for a per-structure file."""
        if not self.is_per_atom:
            return list(self.ids), self.X
        starts, counts = self.structure_starts(), self.atom_counts()
        if self.n_rows == 0:
            return [], np.zeros((0, self.width), np.float32)
        sums = np.add.reduceat(self.X.astype(np.float64), starts, axis=0)
        return self.structure_ids(), (sums / counts[:, None]).astype(np.float32)


def embeddings_table(ids, embeddings: np.ndarray, metadata: dict, atom_index=None, atomic_numbers=None):
    """Embeddings as a :class:`pyarrow.Table` in the layout of ``monoculture embed`` (module docstring).

    Parameters
    ----------
    ids : sequence of str, length n
        Row ids (per-atom: the structure id of each atom).
    embeddings : numpy.ndarray, shape (n, width)
    metadata : dict
        Stored as JSON under :data:`EMBEDDING_METADATA_KEY`.
    atom_index, atomic_numbers : array-like of int, shape (n,), optional
        Both or neither: with them the table is per-atom (columns ``id``, ``atom_index`` int32,
        ``atomic_number`` int16, ``embedding``).

    Returns
    -------
    pyarrow.Table
    """
    import pyarrow as pa

    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != len(ids):
        raise ValueError(f"embeddings of shape {x.shape} do not match {len(ids)} ids")
    if (atom_index is None) != (atomic_numbers is None):
        raise ValueError("atom_index and atomic_numbers go together (a per-atom table needs both)")
    col = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), pa.float32()), x.shape[1])
    fields = [pa.field("id", pa.string(), nullable=False)]
    arrays = [pa.array([str(i) for i in ids], pa.string())]
    if atom_index is not None:
        index = np.asarray(atom_index)
        numbers = np.asarray(atomic_numbers)
        if index.shape != (len(ids),) or numbers.shape != (len(ids),):
            raise ValueError(f"atom_index {index.shape} and atomic_numbers {numbers.shape} need shape ({len(ids)},)")
        fields += [pa.field("atom_index", pa.int32(), nullable=False),
                   pa.field("atomic_number", pa.int16(), nullable=False)]
        arrays += [pa.array(index.astype(np.int32), pa.int32()), pa.array(numbers.astype(np.int16), pa.int16())]
    fields.append(pa.field("embedding", col.type, nullable=False))
    arrays.append(col)
    schema = pa.schema(fields, metadata={EMBEDDING_METADATA_KEY: json.dumps(metadata, sort_keys=True, default=str)})
    return pa.Table.from_arrays(arrays, schema=schema)


def _examples(items) -> str:
    items = list(items)
    shown = ", ".join(repr(x) for x in items[:_SHOW])
    return shown + (", ..." if len(items) > _SHOW else "")


def _list_column_to_array(col, name: str, dtype) -> np.ndarray:
    """A pyarrow (chunked) list column -> array (n, d) of ``dtype``; null or empty entries become NaN rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(col)
    if pa.types.is_fixed_size_list(col.type):
        d = col.type.list_size
        if col.null_count == 0:  # the usual case: one flat buffer, no copy of the rows but the cast
            flat = col.flatten().to_numpy(zero_copy_only=False)
            return np.asarray(flat, dtype=dtype).reshape(n, d)
        valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        out = np.full((n, d), np.nan, dtype=dtype)
        if valid.any():
            vals = col.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False)
            out[valid] = np.asarray(vals, dtype=dtype).reshape(-1, d)
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
    out = np.full((n, d), np.nan, dtype=dtype)
    valid = lengths == d
    if valid.any():
        vals = col.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False)
        out[valid] = np.asarray(vals, dtype=dtype).reshape(-1, d)
    return out


def _json_metadata(schema) -> dict:
    meta = schema.metadata or {}
    for key in (EMBEDDING_METADATA_KEY, FEATURES_METADATA_KEY):
        raw = meta.get(key.encode())
        if raw is None:
            continue
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    return {}


def _read_parquet(path: Path, dtype) -> EmbeddingFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    names = table.column_names
    if "id" not in names:
        raise ValueError(f"{path.name}: parquet embeddings need an 'id' column; got {names}")
    metadata = _json_metadata(table.schema)
    id_col = table.column("id")
    ids = id_col.to_pylist()
    if id_col.null_count or not (pa.types.is_string(id_col.type) or pa.types.is_large_string(id_col.type)):
        ids = [str(i) for i in ids]  # ints, nulls ("None") as the text the alignment joins on
    per_atom = all(c in names for c in PER_ATOM_COLUMNS)
    if metadata.get("pooling") == "atoms" and not per_atom:
        raise ValueError(f"{path.name}: metadata says pooling 'atoms' but the columns {list(PER_ATOM_COLUMNS)} "
                         f"are missing (got {names}); re-run `monoculture embed --pooling atoms`")
    skip = {"id", *(PER_ATOM_COLUMNS if per_atom else ())}
    others = [c for c in names if c not in skip]

    def kind(c):
        return table.schema.field(c).type

    lists = [c for c in others if pa.types.is_list(kind(c)) or pa.types.is_large_list(kind(c))
             or pa.types.is_fixed_size_list(kind(c))]
    numeric = [c for c in others if pa.types.is_floating(kind(c)) or pa.types.is_integer(kind(c))]
    if len(lists) == 1 and not numeric:
        X = _list_column_to_array(table.column(lists[0]), lists[0], dtype)
    elif len(lists) > 1:
        raise ValueError(f"{path.name}: more than one list column {lists}; keep exactly one embedding column")
    elif numeric and not lists:
        X = np.column_stack([np.asarray(table.column(c).to_numpy(zero_copy_only=False), dtype=dtype)
                             for c in numeric])
    elif lists and numeric:
        raise ValueError(f"{path.name}: both a list column {lists} and numeric columns {numeric[:_SHOW]}; "
                         "use one layout")
    else:
        raise ValueError(f"{path.name}: no embedding column (a list column or numeric columns) besides 'id'")
    atom_index = atomic_numbers = None
    if per_atom:
        atom_index = np.asarray(table.column("atom_index").to_numpy(zero_copy_only=False), dtype=np.int32)
        atomic_numbers = np.asarray(table.column("atomic_number").to_numpy(zero_copy_only=False), dtype=np.int16)
        if atom_index.size and atom_index[0] != 0:
            raise ValueError(f"{path.name}: a per-atom file starts with atom_index {int(atom_index[0])}, not 0")
        step = np.diff(atom_index)
        if ((step != 1) & (atom_index[1:] != 0)).any():
            raise ValueError(f"{path.name}: atom_index does not count 0, 1, 2... within each structure")
    return EmbeddingFile(ids, X, metadata, atom_index, atomic_numbers, path)


def read_embedding_file(path: str | os.PathLike, dtype=np.float32) -> EmbeddingFile:
    """Read one embedding file (any layout of the module docstring).

    Parameters
    ----------
    path : str or path-like
        ``.parquet`` or ``.npz``.
    dtype : numpy dtype, default float32
        Type of :attr:`EmbeddingFile.X` (float64 keeps the precision of float64 files).

    Returns
    -------
    EmbeddingFile

    Raises
    ------
    ValueError
        Unsupported suffix, missing ``id`` column / npz arrays, ambiguous or missing embedding columns,
        lists of different lengths, ids that do not match the rows.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            missing = {"ids", "embeddings"} - set(z.files)
            if missing:
                raise ValueError(f"{path.name}: .npz needs arrays 'ids' and 'embeddings'; missing {sorted(missing)}")
            ids = [str(i) for i in np.asarray(z["ids"]).astype(str).tolist()]
            X = np.asarray(z["embeddings"], dtype=dtype)
        result = EmbeddingFile(ids, X, {}, path=path)
    elif suffix == ".parquet":
        result = _read_parquet(path, dtype)
    else:
        raise ValueError(f"{path.name}: unsupported embedding file; expected one of {EMBEDDING_SUFFIXES}")
    if result.X.ndim != 2 or result.X.shape[0] != len(result.ids):
        raise ValueError(f"{path.name}: {len(result.ids)} ids but embeddings of shape {result.X.shape}")
    return result


def read_skip_info(path: str | os.PathLike) -> dict:
    """What an embedding file says about the structures it skipped.

    Parameters
    ----------
    path : str or path-like
        A ``.parquet`` file of ``monoculture embed`` (skipped structures are left out; the schema metadata
        ``monoculture.embedding`` counts them by reason) or ``monoculture featurize`` (skipped structures
        are NaN rows with a ``skip_reason``). Other files give empty answers.

    Returns
    -------
    dict
        ``recorded_skip_reasons``: ``{reason: count}`` from the metadata; ``skip_reason_by_id``:
        ``{id: reason}`` from a ``skip_reason`` column.
    """
    path = Path(path)
    out = {"recorded_skip_reasons": {}, "skip_reason_by_id": {}}
    if path.suffix.lower() != ".parquet":
        return out
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    meta = schema.metadata or {}
    for key in (EMBEDDING_METADATA_KEY.encode(), FEATURES_METADATA_KEY.encode()):
        if key in meta:
            try:
                info = json.loads(meta[key])
            except ValueError:
                continue
            reasons = info.get("skip_reasons") if isinstance(info, dict) else None
            if isinstance(reasons, dict):
                out["recorded_skip_reasons"] = {str(k): int(v) for k, v in reasons.items()}
    if "skip_reason" in schema.names:
        t = pq.read_table(path, columns=["id", "skip_reason"])
        out["skip_reason_by_id"] = {str(i): str(r) for i, r in zip(t.column("id").to_pylist(),
                                                                    t.column("skip_reason").to_pylist())
                                    if r is not None}
    return out
