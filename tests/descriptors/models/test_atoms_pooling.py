"""``monoculture embed --pooling atoms``: per-atom rows (id, atom_index, atomic_number, embedding) written end
to end with the bundled CHGNet 0.3.0 on CPU, read back by the one embedding-file reader."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("chgnet")

from ase.build import bulk  # noqa: E402
from ase.io import write  # noqa: E402

from monoculture.cli import main  # noqa: E402
from monoculture.descriptors.embedding_files import read_embedding_file  # noqa: E402

pytestmark = pytest.mark.models


def _crystals():
    return [bulk("NaCl", "rocksalt", a=5.64), bulk("Cu", "fcc", a=3.61), bulk("Si", "diamond", a=5.43),
            bulk("ZnO", "wurtzite", a=3.25, c=5.2), bulk("CsCl", "cesiumchloride", a=4.12)]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """The five crystals embedded by the command with --pooling atoms and --pooling mean."""
    folder = tmp_path_factory.mktemp("atoms")
    crystals = _crystals()
    write(folder / "c.extxyz", crystals)
    for pooling in ("atoms", "mean"):
        assert main(["embed", str(folder / "c.extxyz"), "--model", "chgnet-0.3.0", "--device", "cpu", "--quiet",
                     "--pooling", pooling, "--out", str(folder / f"{pooling}.parquet")]) == 0
    return crystals, read_embedding_file(folder / "atoms.parquet"), read_embedding_file(folder / "mean.parquet")


def test_schema_is_the_documented_per_atom_layout(embedded, tmp_path):
    crystals, per_atom, _ = embedded
    schema = pq.read_schema(per_atom.path)
    assert schema.names == ["id", "atom_index", "atomic_number", "embedding"]
    assert schema.field("id").type == pa.string() and schema.field("atom_index").type == pa.int32()
    assert schema.field("atomic_number").type == pa.int16()
    assert schema.field("embedding").type == pa.list_(pa.float32(), 64)
    meta = json.loads(schema.metadata[b"monoculture.embedding"])
    n_atoms = sum(len(a) for a in crystals)
    assert meta["pooling"] == "atoms" and meta["model"] == "chgnet-0.3.0" and meta["width"] == 64
    assert meta["n_rows"] == n_atoms and meta["n_structures"] == 5 and meta["n_skipped"] == 0


def test_rows_are_the_atoms_of_each_structure_in_input_order(embedded):
    crystals, per_atom, mean = embedded
    assert per_atom.is_per_atom and not mean.is_per_atom and mean.atom_index is None
    assert per_atom.X.dtype == np.float32 and per_atom.X.shape == (sum(len(a) for a in crystals), 64)
    np.testing.assert_array_equal(per_atom.atom_counts(), [len(a) for a in crystals])
    np.testing.assert_array_equal(per_atom.atomic_numbers, np.concatenate([a.numbers for a in crystals]))
    np.testing.assert_array_equal(per_atom.atom_index, np.concatenate([np.arange(len(a)) for a in crystals]))
    assert per_atom.structure_ids() == mean.ids
    assert per_atom.ids == [i for i, a in zip(mean.ids, crystals) for _ in range(len(a))]


def test_mean_of_the_atom_rows_is_the_mean_pooling(embedded):
    crystals, per_atom, mean = embedded
    ids, pooled = per_atom.pooled_mean()
    assert ids == mean.ids
    np.testing.assert_allclose(pooled, mean.X, atol=1e-5)
    # by hand, without the reader's helper: rows of each id averaged
    rows = np.asarray(per_atom.ids)
    by_hand = np.stack([per_atom.X[rows == i].astype(np.float64).mean(axis=0) for i in mean.ids])
    np.testing.assert_allclose(by_hand, mean.X, atol=1e-5)
    # the atoms of a structure differ (Na vs Cl): per-atom rows are not copies of the mean
    assert np.abs(per_atom.X[0] - per_atom.X[1]).max() > 1e-3


def test_cached_chunks_of_an_older_per_atom_layout_are_recomputed(tmp_path):
    from monoculture.datasets.memory import frames_from_atoms
    from monoculture.descriptors.models import load_embedder
    from monoculture.descriptors.models.pipeline import embed_dataset

    frames = frames_from_atoms(_crystals()[:2], ids=["nacl", "cu"])
    emb = load_embedder("chgnet-0.3.0", device="cpu")
    first = embed_dataset([frames], "chgnet-0.3.0", tmp_path / "a.parquet", embedder=emb, pooling="atoms",
                          cache_dir=tmp_path / "cache")
    assert (first.n_rows, first.n_structures, first.n_chunks_cached) == (3, 2, 0)
    again = embed_dataset([frames], "chgnet-0.3.0", tmp_path / "b.parquet", embedder=emb, pooling="atoms",
                          cache_dir=tmp_path / "cache")
    assert again.n_chunks_cached == 1 and again.n_structures == 2
    a, b = read_embedding_file(tmp_path / "a.parquet"), read_embedding_file(tmp_path / "b.parquet")
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.atomic_numbers, b.atomic_numbers)
    for chunk in (tmp_path / "cache").rglob("chunk_*.parquet"):  # a chunk without the per-atom columns
        t = pq.read_table(chunk)
        pq.write_table(t.drop_columns(["atom_index", "atomic_number"]), chunk)
    third = embed_dataset([frames], "chgnet-0.3.0", tmp_path / "c.parquet", embedder=emb, pooling="atoms",
                          cache_dir=tmp_path / "cache")
    assert third.n_chunks_cached == 0
    c = read_embedding_file(tmp_path / "c.parquet")
    assert c.is_per_atom and c.atom_index.tolist() == [0, 1, 0]


@pytest.mark.parametrize("name", ["chgnet-0.3.0", "sevennet-0"])
def test_atom_rows_follow_the_frame_for_both_model_families(name):
    """The atomic numbers come from the model's graph batch: they equal the frame's, atom by atom, for a
    crystal and a molecule (vacuum box), batched together."""
    from ase.build import molecule

    from monoculture.datasets.memory import frames_from_atoms
    from monoculture.descriptors.models import load_embedder
    from monoculture.descriptors.models.base import embed_frame_rows

    pytest.importorskip("sevenn" if name.startswith("sevennet") else "chgnet")
    structures = [bulk("GaAs", "zincblende", a=5.65), molecule("CH3CH2OH"), bulk("NaCl", "rocksalt", a=5.64)]
    emb = load_embedder(name, device="cpu")
    (rows,) = embed_frame_rows(emb, [frames_from_atoms(structures)], pooling="atoms", batch_size=2)
    np.testing.assert_array_equal(rows.atomic_numbers, np.concatenate([s.numbers for s in structures]))
    assert rows.atom_index.tolist() == [0, 1, *range(9), 0, 1] and rows.n_structures == 3
    assert rows.X.shape == (13, emb.dim) and not rows.skipped
    (mean,) = embed_frame_rows(emb, [frames_from_atoms(structures)], pooling="mean", batch_size=2)
    starts = np.array([0, 2, 11])
    np.testing.assert_allclose(np.add.reduceat(rows.X.astype(np.float64), starts) / [[2], [9], [2]], mean.X,
                               atol=1e-5)


def test_worker_processes_and_several_chunks_give_the_same_rows(embedded, tmp_path):
    """Graphs built in a worker process, chunks of 2 frames, forward batches of 2: same per-atom file."""
    _, per_atom, _ = embedded
    out = tmp_path / "w.parquet"
    assert main(["embed", str(per_atom.path.parent / "c.extxyz"), "--model", "chgnet-0.3.0", "--device", "cpu",
                 "--quiet", "--pooling", "atoms", "--workers", "1", "--chunk-size", "2", "--batch-size", "2",
                 "--out", str(out)]) == 0
    f = read_embedding_file(out)
    assert f.ids == per_atom.ids and f.metadata["n_structures"] == 5
    np.testing.assert_array_equal(f.atom_index, per_atom.atom_index)
    np.testing.assert_array_equal(f.atomic_numbers, per_atom.atomic_numbers)
    np.testing.assert_allclose(f.X, per_atom.X, atol=1e-5)
