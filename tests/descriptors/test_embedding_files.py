"""The one embedding-file reader (monoculture.descriptors.embedding_files) and its writer, on every layout."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monoculture.descriptors.embedding_files import (
    EmbeddingFile,
    embeddings_table,
    read_embedding_file,
    read_skip_info,
)
from monoculture.descriptors.runner import features_table, read_features


def _per_atom(tmp_path, ids, counts, width=3, meta=None):
    rng = np.random.default_rng(0)
    n = int(sum(counts))
    X = rng.standard_normal((n, width)).astype(np.float32)
    rows = [i for i, c in zip(ids, counts) for _ in range(c)]
    index = np.concatenate([np.arange(c) for c in counts])
    z = np.arange(1, n + 1)
    path = tmp_path / "atoms.parquet"
    pq.write_table(embeddings_table(rows, X, meta or {"pooling": "atoms", "model": "m"}, index, z), path)
    return path, X, rows, index, z


def test_per_atom_round_trip_and_structures_sharing_an_id(tmp_path):
    path, X, rows, index, z = _per_atom(tmp_path, ["a", "b", "a"], [2, 3, 1])
    f = read_embedding_file(path)
    assert isinstance(f, EmbeddingFile) and f.is_per_atom and f.metadata["pooling"] == "atoms"
    assert f.ids == rows and f.X.dtype == np.float32
    np.testing.assert_array_equal(f.X, X)
    assert f.atom_index.dtype == np.int32 and f.atomic_numbers.dtype == np.int16
    np.testing.assert_array_equal(f.atom_index, index)
    np.testing.assert_array_equal(f.atomic_numbers, z)
    assert f.structure_ids() == ["a", "b", "a"] and f.atom_counts().tolist() == [2, 3, 1] and f.n_structures == 3
    ids, mean = f.pooled_mean()
    assert ids == ["a", "b", "a"]
    np.testing.assert_allclose(mean, [X[:2].mean(0), X[2:5].mean(0), X[5]], atol=1e-6)


def test_per_structure_files_have_no_atom_columns(tmp_path):
    X = np.arange(6, dtype=np.float32).reshape(2, 3)
    pq.write_table(embeddings_table(["p", "q"], X, {"pooling": "mean"}), tmp_path / "m.parquet")
    f = read_embedding_file(tmp_path / "m.parquet")
    assert not f.is_per_atom and f.atom_index is None and f.atomic_numbers is None
    assert f.structure_ids() == ["p", "q"] and f.atom_counts().tolist() == [1, 1]
    np.testing.assert_array_equal(f.pooled_mean()[1], X)
    f64 = read_embedding_file(tmp_path / "m.parquet", dtype=np.float64)
    assert f64.X.dtype == np.float64


def test_featurize_and_npz_layouts(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    X[2] = np.nan
    table = features_table(["a", "b", "c", "d"], X, [None, None, "no atoms", None])
    pq.write_table(table.replace_schema_metadata({b"monoculture": json.dumps({"n_features": 3}).encode()}),
                   tmp_path / "f.parquet")
    f = read_embedding_file(tmp_path / "f.parquet")
    assert f.metadata == {"n_features": 3} and not f.is_per_atom
    np.testing.assert_array_equal(f.X, X)  # NaN rows kept
    ids, X2, meta = read_features(tmp_path / "f.parquet")
    assert ids == f.ids and meta == f.metadata
    np.testing.assert_array_equal(X2, X)
    assert read_skip_info(tmp_path / "f.parquet")["skip_reason_by_id"] == {"c": "no atoms"}
    np.savez(tmp_path / "z.npz", ids=np.array(["x", "y"]), embeddings=np.eye(2))
    z = read_embedding_file(tmp_path / "z.npz", dtype=np.float64)
    assert z.ids == ["x", "y"] and z.metadata == {} and z.X.dtype == np.float64


def test_inconsistent_files_are_refused(tmp_path):
    path, *_ = _per_atom(tmp_path, ["a"], [2])
    t = pq.read_table(path)
    pq.write_table(t.drop_columns(["atom_index", "atomic_number"]), tmp_path / "old.parquet")
    with pytest.raises(ValueError, match="pooling 'atoms'"):
        read_embedding_file(tmp_path / "old.parquet")
    bad = t.set_column(1, "atom_index", pa.array([1, 2], pa.int32()))
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="starts with atom_index 1"):
        read_embedding_file(tmp_path / "bad.parquet")
    gap = t.set_column(1, "atom_index", pa.array([0, 2], pa.int32()))
    pq.write_table(gap, tmp_path / "gap.parquet")
    with pytest.raises(ValueError, match="does not count"):
        read_embedding_file(tmp_path / "gap.parquet")
    with pytest.raises(ValueError, match="go together"):
        embeddings_table(["a"], np.zeros((1, 2)), {}, atom_index=[0])
    with pytest.raises(ValueError, match="unsupported"):
        read_embedding_file(tmp_path / "x.csv")


def test_alignment_reader_is_a_view(tmp_path):
    from monoculture.audit.alignment.embeddings_io import read_embeddings

    path, X, rows, *_ = _per_atom(tmp_path, ["a", "b"], [2, 1])
    ids, Y = read_embeddings(path)
    assert ids.tolist() == rows and Y.dtype == np.float64
    np.testing.assert_array_equal(Y, X.astype(np.float64))
