"""Model-free parts of the embedders: pooling, vacuum cells, graph-building skips, result tables."""
import json

import numpy as np
import pytest

from monoculture.descriptors.models import (
    SkippedStructure,
    UnsupportedStructure,
    build_graphs,
    embeddings_table,
    pool_features,
)
from monoculture.descriptors.models.cells import vacuum_cell


def test_pool_mean_var_atoms_by_hand():
    feats = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    counts = np.array([2, 1])
    np.testing.assert_allclose(pool_features(feats, counts, "mean"), [[2.0, 3.0], [5.0, 6.0]])
    # population variance: ((1-2)^2 + (3-2)^2) / 2 = 1; a single atom has variance 0
    np.testing.assert_allclose(pool_features(feats, counts, "mean_var"), [[2, 3, 1, 1], [5, 6, 0, 0]])
    out = pool_features(feats, counts, "atoms")
    assert out.dtype == np.float32 and out.shape == (3, 2)


def test_pool_rejects_bad_input():
    with pytest.raises(ValueError, match="pooling"):
        pool_features(np.zeros((2, 3)), np.array([2]), "max")
    with pytest.raises(ValueError, match="do not match"):
        pool_features(np.zeros((2, 3)), np.array([3]), "mean")


def test_vacuum_cell_molecule_box():
    pos = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    cell = vacuum_cell(pos, np.zeros((3, 3)), np.zeros(3, bool), cutoff_A=6.0)
    # each axis: extent + 2 * cutoff
    np.testing.assert_allclose(np.abs(cell), np.diag([13.0, 14.0, 15.0]), atol=1e-12)
    assert np.linalg.det(cell) > 0


def test_vacuum_cell_slab_keeps_periodic_vectors():
    a, b = np.array([3.0, 0.0, 0.0]), np.array([1.5, 2.6, 0.0])
    cell = np.array([a, b, [0.0, 0.0, 0.0]])
    pos = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 4.0]])
    out = vacuum_cell(pos, cell, np.array([True, True, False]), cutoff_A=5.0)
    np.testing.assert_allclose(out[:2], cell[:2])
    np.testing.assert_allclose(out[2], [0.0, 0.0, 14.0], atol=1e-12)  # 4 Å extent + 2 * 5 Å


def test_vacuum_cell_wire_directions_orthogonal():
    cell = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    pos = np.random.default_rng(0).normal(size=(5, 3))
    out = vacuum_cell(pos, cell, np.array([False, False, True]), cutoff_A=4.0)
    np.testing.assert_allclose(out[2], cell[2])
    assert abs(out[0] @ out[2]) < 1e-9 and abs(out[1] @ out[2]) < 1e-9 and abs(out[0] @ out[1]) < 1e-9
    for axis in (0, 1):
        u = out[axis] / np.linalg.norm(out[axis])
        extent = np.ptp(pos @ u)
        assert np.linalg.norm(out[axis]) == pytest.approx(extent + 8.0)


def test_build_graphs_records_skips_in_order():
    def builder(x):
        if x == "bad":
            raise UnsupportedStructure("unsupported_element", "Z=118")
        if x == "boom":
            raise RuntimeError("neighbour list failed")
        return x.upper()

    graphs, kept, skipped = build_graphs(builder, ["a", "bad", "b", "boom"], ["0", "1", "2", "3"])
    assert graphs == ["A", "B"] and kept == ["0", "2"]
    assert skipped == [
        SkippedStructure("1", "unsupported_element", "Z=118"),
        SkippedStructure("3", "graph_error", "RuntimeError: neighbour list failed"),
    ]


def test_embeddings_table_roundtrip():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    table = embeddings_table(["s0", "s1"], x, {"model": "m", "pooling": "mean"})
    assert table.column("id").to_pylist() == ["s0", "s1"]
    back = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(2, 3)
    np.testing.assert_array_equal(back, x)
    assert json.loads(table.schema.metadata[b"monoculture.embedding"]) == {"model": "m", "pooling": "mean"}
    with pytest.raises(ValueError):
        embeddings_table(["s0"], x, {})
