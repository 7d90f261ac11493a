import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ase.build import bulk

from conftest import frames_from_atoms, frames_from_smiles
from monoculture.descriptors import featurize, get_descriptor, read_features
from monoculture.descriptors.runner import METADATA_KEY


@pytest.fixture(scope="module")
def batches():
    protos = [bulk("NaCl", "rocksalt", a=5.64), bulk("Cu", "fcc", a=3.61), bulk("MgO", "rocksalt", a=4.2)]
    out = []
    for b in range(4):
        atoms = []
        for i in range(6):
            a = protos[(b + i) % 3].repeat((1, 1, 2))
            a.rattle(0.02, seed=10 * b + i)
            atoms.append(a)
        out.append(frames_from_atoms(atoms, ids=[f"b{b}/{i}" for i in range(6)]))
    return out


def test_parallel_equals_serial_and_metadata(batches, tmp_path):
    params = dict(r_cut=4.0, n_max=3, l_max=2, n_components=3, pca_sample=10)
    r1 = featurize(batches, "soap", n_jobs=1, out=tmp_path / "one.parquet", params=params)
    r2 = featurize(batches, "soap", n_jobs=2, out=tmp_path / "two.parquet", params=params)
    ids1, X1, meta = read_features(tmp_path / "one.parquet")
    ids2, X2, _ = read_features(tmp_path / "two.parquet")
    assert ids1 == ids2 == [f"b{b}/{i}" for b in range(4) for i in range(6)]
    np.testing.assert_array_equal(X1, X2)
    assert X1.shape == (24, 3) and r1.n_rows == r2.n_rows == 24 and r1.n_skipped == 0
    assert meta["descriptor"]["name"] == "soap" and meta["descriptor"]["params"]["n_components"] == 3
    assert meta["feature_names"] == ["soap_pc0", "soap_pc1", "soap_pc2"]
    assert {"monoculture", "numpy", "dscribe"} <= set(meta["versions"])
    schema = pq.read_schema(tmp_path / "one.parquet")
    ftype = schema.field("features").type
    assert pa.types.is_fixed_size_list(ftype) and ftype.list_size == 3 and ftype.value_type == pa.float32()
    # same result as the descriptor called directly
    d = get_descriptor("soap", **params).fit(batches)
    np.testing.assert_array_equal(X1[:6], d.transform(batches[0]))


def test_skip_reasons_and_in_memory(batches):
    mols = frames_from_smiles(["CCO", "C1CC"], ids=["ok", "bad"])
    res = featurize([mols], "molecule", n_jobs=1, params={"fp_size": 32})
    assert res.out is None and res.table.num_rows == 2 and res.n_skipped == 1
    assert res.table.column("skip_reason").to_pylist() == [None, "RDKit cannot parse SMILES 'C1CC'"]
    assert res.skipped == [("bad", "RDKit cannot parse SMILES 'C1CC'")]
    assert json.loads(res.table.schema.metadata[METADATA_KEY])["n_features"] == 32 + 12


def test_worker_parts_come_back_through_shared_memory(batches, monkeypatch):
    """Parts computed in a worker (forced from the first batch) arrive as shared blocks, give the same table as
    one process, carry their skip reasons, and leave no block behind."""
    import os

    from monoculture.descriptors import runner, transfer

    seen = []

    def counting_adopt(item):
        seen.append(isinstance(item, transfer.SharedBatch))
        return transfer.adopt(item)

    monkeypatch.setattr(runner, "_WAIT_FOR_WORKERS", True)
    monkeypatch.setattr(runner, "SHARED_MIN_BYTES", 0)  # passed to the workers when the pool starts
    monkeypatch.setattr(runner, "adopt", counting_adopt)
    before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    params = dict(r_cut=4.0, n_max=3, l_max=2)
    one = featurize(batches, "soap", n_jobs=1, params=params)
    seen.clear()
    two = featurize(batches, "soap", n_jobs=2, params=params)
    assert any(seen) and one.table.equals(two.table) and two.table.num_rows == 24
    mols = frames_from_smiles(["CCO", "C1CC", "c1ccccc1"], ids=["ok", "bad", "benzene"])
    seen.clear()
    res = featurize([mols], "molecule", n_jobs=2, params={"fp_size": 32})
    assert seen == [True]  # the only part went to the worker
    assert res.table.column("skip_reason").to_pylist() == [None, "RDKit cannot parse SMILES 'C1CC'", None]
    assert res.skipped == [("bad", "RDKit cannot parse SMILES 'C1CC'")]
    del one, two, res
    after = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    assert not {name for name in after - before if name.startswith("psm_")}


def test_cache_resume_after_interruption(batches, tmp_path):
    def interrupted():
        yield batches[0]
        yield batches[1]
        raise KeyboardInterrupt

    out = tmp_path / "f.parquet"
    kw = dict(n_jobs=1, out=out, cache_dir=tmp_path / "cache", cache_key_parts=["sha256:abc", "extxyz"])
    d = get_descriptor("composition").fit(batches[0])
    with pytest.raises(KeyboardInterrupt):
        featurize(interrupted(), d, **kw)
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))
    (folder,) = (tmp_path / "cache").iterdir()
    assert sorted(p.name for p in folder.glob("batch_*")) == ["batch_000000.parquet", "batch_000001.parquet"]
    res = featurize(batches, d, **kw)
    assert res.n_batches == 4 and res.n_batches_cached == 2
    ref = featurize(batches, d, n_jobs=1)
    _, X, _ = read_features(out)
    np.testing.assert_array_equal(X, np.stack(ref.table.column("features").to_pylist()))
    # a cached batch whose ids differ from the input batch is recomputed
    res2 = featurize([batches[1], batches[0], batches[2], batches[3]], d, **kw)
    assert res2.n_batches_cached == 2
    _, X2, _ = read_features(out)
    np.testing.assert_array_equal(X2[:6], X[6:12])


def test_fitted_state_is_cached(batches, tmp_path):
    kw = dict(n_jobs=1, cache_dir=tmp_path, cache_key_parts=["x"])
    r1 = featurize(batches, "regime", **kw)
    (folder,) = tmp_path.iterdir()
    assert (folder / "fitted.pkl").exists()
    r2 = featurize(iter(batches), "regime", **kw)  # one-shot iterator is fine: the fit is loaded
    assert r2.n_batches_cached == 4
    assert r2.descriptor.reference_volume_per_atom_ == r1.descriptor.reference_volume_per_atom_


def test_argument_errors(batches, tmp_path):
    with pytest.raises(ValueError, match="cache_key_parts"):
        featurize(batches, "composition", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="n_jobs"):
        featurize(batches, "composition", n_jobs=0)
    with pytest.raises(ValueError, match="unknown descriptor"):
        featurize(batches, "nope")


def test_slices_sent_to_workers_carry_only_their_rows(batches):
    import pickle

    from monoculture.datasets.frames import concat_batches
    from monoculture.descriptors.driver import own_buffers

    whole = concat_batches(batches).combine_chunks()
    piece = whole.slice(6, 2)
    own = own_buffers(piece)
    assert own.equals(piece)
    assert len(pickle.dumps(own)) < 0.5 * len(pickle.dumps(piece))
    assert own_buffers(own) is own  # a table with its own buffers is passed through
    slices = [whole.slice(i, 6) for i in range(0, whole.num_rows, 6)]
    one = featurize(slices, "composition", n_jobs=1)
    two = featurize(slices, "composition", n_jobs=2)
    assert one.table.equals(two.table)
