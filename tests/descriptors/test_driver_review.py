"""The frames -> vectors driver refuses to drop rows, writes counts into featurize files, and rewrites the
output's metadata without reading the whole file (review of 2026-12-06)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monoculture.descriptors.driver import Chunk, OutputSink, drive


class _Short:
    """A transformer that yields a chunk for the first batch only."""

    schema = pa.schema([("id", pa.string())])

    def transform(self, batches):
        for i, b in enumerate(batches):
            if i == 0:
                yield Chunk(pa.table({"id": b.column("id")}), b.num_rows, [])

    def chunk_key(self, i, batch):
        return f"c{i}", "t"

    def from_cache(self, table):
        return Chunk(table, table.num_rows, [])

    def to_cache(self, chunk):
        return chunk.table


def test_a_transformer_that_yields_too_few_chunks_is_an_error_not_lost_rows(tmp_path):
    batches = [pa.table({"id": ["a", "b"]}), pa.table({"id": ["c"]})]
    with pytest.raises(RuntimeError, match="fewer chunks"):
        drive(iter(batches), _Short(), out=tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists() and not list(tmp_path.glob("*.tmp"))


def test_commit_rewrites_metadata_row_group_by_row_group(tmp_path):
    schema = pa.schema([("id", pa.string())], metadata={b"k": b"before"})
    sink = OutputSink(tmp_path / "o.parquet", schema)
    for i in range(3):
        sink.write(pa.table({"id": [f"{i}a", f"{i}b"]}))
    sink.commit({b"k": b"after"})
    f = pq.ParquetFile(tmp_path / "o.parquet")
    assert f.num_row_groups == 3 and f.schema_arrow.metadata == {b"k": b"after"}
    assert pq.read_table(tmp_path / "o.parquet").column("id").to_pylist() == ["0a", "0b", "1a", "1b", "2a", "2b"]
    assert [p.name for p in tmp_path.iterdir()] == ["o.parquet"]


def test_featurize_files_hold_their_counts(tmp_path):
    from ase.build import bulk

    from monoculture.datasets.memory import frames_from_atoms
    from monoculture.descriptors import featurize, read_features

    batch = frames_from_atoms([bulk("Si"), bulk("Cu")])
    res = featurize(batch, "composition", n_jobs=1, out=tmp_path / "f.parquet")
    meta = read_features(tmp_path / "f.parquet")[2]
    assert meta["n_rows"] == res.n_rows == 2 and meta["n_skipped"] == 0
