"""Embedding files, model zoos and the id join (monoculture.audit.alignment.embeddings_io), plus the
family-tree and gap helpers."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.spatial.distance import cdist

from monoculture.audit.alignment import mutual_knn
from monoculture.audit.alignment.embeddings_io import join_embeddings, read_embeddings, read_model_zoo
from monoculture.audit.alignment.family_tree import family_tree, newick_from_linkage
from monoculture.audit.alignment.gap import coverage_gap, element_rarity, knn_overlap_per_sample, parse_elements
from monoculture.descriptors.runner import features_table


def test_featurize_parquet_with_skips_round_trips(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    X[2] = np.nan
    pq.write_table(features_table(["a", "b", "c", "d"], X, [None, None, "no atoms", None]), tmp_path / "soap.parquet")
    ids, Y = read_embeddings(tmp_path / "soap.parquet")
    assert ids.tolist() == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(Y[[0, 1, 3]], X[[0, 1, 3]])
    assert np.isnan(Y[2]).all()


def test_variable_list_column_with_nulls_and_float_columns(tmp_path):
    pq.write_table(pa.table({"id": ["x", "y", "z"], "emb": pa.array([[1.0, 2.0], None, [5.0, 6.0]])}),
                   tmp_path / "v.parquet")
    ids, Y = read_embeddings(tmp_path / "v.parquet")
    np.testing.assert_array_equal(Y[[0, 2]], [[1, 2], [5, 6]])
    assert np.isnan(Y[1]).all()
    pq.write_table(pa.table({"id": ["x", "y"], "f0": [1.0, 2.0], "f1": [3, 4], "note": ["p", "q"]}),
                   tmp_path / "cols.parquet")
    np.testing.assert_array_equal(read_embeddings(tmp_path / "cols.parquet")[1], [[1, 3], [2, 4]])
    pq.write_table(pa.table({"id": ["x", "y"], "emb": pa.array([[1.0, 2.0], [1.0]])}), tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="different lengths"):
        read_embeddings(tmp_path / "bad.parquet")
    pq.write_table(pa.table({"key": ["x"], "f0": [1.0]}), tmp_path / "noid.parquet")
    with pytest.raises(ValueError, match="'id' column"):
        read_embeddings(tmp_path / "noid.parquet")


def test_model_zoo_folder(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "chgnet.npz", ids=np.array(["b", "a", "c"]), embeddings=rng.standard_normal((3, 4)))
    pq.write_table(pa.table({"id": ["a", "b", "c"], "f0": [0.1, 0.2, 0.3]}), tmp_path / "sevennet.parquet")
    (tmp_path / "notes.txt").write_text("not an embedding")
    zoo = read_model_zoo(tmp_path)
    assert list(zoo) == ["chgnet", "sevennet"]
    joined = join_embeddings(zoo)
    assert joined.ids.tolist() == ["b", "a", "c"]  # order of the first model
    np.testing.assert_array_equal(joined.arrays["sevennet"][:, 0], [0.2, 0.1, 0.3])
    np.savez(tmp_path / "sevennet.npz", ids=np.array(["a"]), embeddings=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="more than one file"):
        read_model_zoo(tmp_path)


def test_join_errors_name_counts_and_examples():
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"1 id\(s\) only in 'a' \(e.g. 'r3'\), 1 only in 'b' \(e.g. 'q'\)"):
        join_embeddings({"a": (["r1", "r2", "r3"], X), "b": (["r1", "r2", "q"], X)}, how="same")
    with pytest.raises(ValueError, match="partly NaN"):
        join_embeddings({"a": (["r1", "r2", "r3"], np.array([[0, 1], [np.nan, 1], [2, 2.0]]))})
    j = join_embeddings({"a": (["r1", "r2", "r3"], np.array([[0, 1], [np.nan, np.nan], [2, 2.0]])),
                         "b": (["r3", "r2", "r1"], np.arange(6.0).reshape(3, 2))})
    assert j.ids.tolist() == ["r1", "r3"] and j.skipped == {"a": ["r2"]} and j.n_skipped == 1
    np.testing.assert_array_equal(j.arrays["b"], [[4, 5], [0, 1]])


def test_family_tree_newick():
    S = np.array([[1.0, 0.9, 0.2], [0.9, 1.0, 0.3], [0.2, 0.3, 1.0]])
    t = family_tree(S, ["a", "b", "odd name"])
    # a and b merge at 0.1; c joins at mean(0.8, 0.7) = 0.75
    assert t["newick"] == "('odd name':0.75,(a:0.1,b:0.1):0.65);"
    assert t["linkage"][-1][2] == pytest.approx(0.75)
    assert newick_from_linkage(np.array(t["linkage"]), ["x", "y", "z"]).count(":") == 4


def test_gap_helpers():
    rng = np.random.default_rng(0)
    X, R = rng.standard_normal((50, 4)), rng.standard_normal((80, 4))
    expected = np.sort(cdist(X, R), axis=1)[:, :3].mean(axis=1)
    np.testing.assert_allclose(coverage_gap(X, R, k=3, block_size=7), expected, rtol=1e-10)
    Y = X @ rng.standard_normal((4, 6)) + 0.3 * rng.standard_normal((50, 6))
    assert knn_overlap_per_sample(X, Y, 5).mean() == pytest.approx(mutual_knn(X, Y, k=5))
    assert parse_elements("Fe-O") == ("Fe", "O") and parse_elements(["O", "O", "H"]) == ("O", "H")
    r = element_rarity(["Fe-O", ["Xe"], []], {"Fe": 9, "O": 99}, 99)
    np.testing.assert_allclose(r[:2], [np.log(10.0), np.log(100.0)])
    assert np.isnan(r[2])
