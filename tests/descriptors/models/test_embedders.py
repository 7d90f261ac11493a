"""Embeddings from the bundled CHGNet and SevenNet checkpoints (offline, CPU)."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("torch")

from ase import Atoms  # noqa: E402
from ase.build import bulk, molecule  # noqa: E402

from monoculture.datasets.memory import frames_from_records  # noqa: E402
from monoculture.datasets.records import RawFrame  # noqa: E402
from monoculture.descriptors.models import available_models, embed_frames, load_embedder  # noqa: E402

pytestmark = pytest.mark.models

MODEL_NAMES = ["chgnet-0.2.0", "chgnet-0.3.0", "chgnet-r2scan", "sevennet-0", "sevennet-l3i5", "sevennet-mf-0"]
#: Batched vs one-at-a-time, supercell vs cell: float32 models, sums in a different order.
ATOL = 1e-4


def crystals():
    out = [
        bulk("Si", "diamond", a=5.43),
        bulk("NaCl", "rocksalt", a=5.64),
        bulk("Cu", "fcc", a=3.61),
        bulk("GaAs", "zincblende", a=5.65),
        bulk("MgO", "rocksalt", a=4.21),
    ]
    for i, a in enumerate(out):
        a.info["id"] = f"c{i}"
    return out


def ethanol():
    m = molecule("CH3CH2OH")
    m.info["id"] = "ethanol"
    return m


_CACHE: dict = {}


@pytest.fixture(scope="module", params=MODEL_NAMES)
def embedder(request):
    if request.param not in _CACHE:
        _CACHE[request.param] = load_embedder(request.param, device="cpu")
    return _CACHE[request.param]


def _single(embedder, atoms_list, pooling="mean"):
    return np.concatenate([embedder.embed([a], pooling=pooling)[1] for a in atoms_list])


def test_registry_lists_bundled_models():
    assert available_models() == MODEL_NAMES
    with pytest.raises(ValueError, match="unknown model"):
        load_embedder("mace-mp-0")


def test_embed_shapes_finite_and_batch_invariant(embedder):
    structures = crystals() + [ethanol()]
    ids, x = embedder.embed(structures, batch_size=4)
    assert list(ids) == ["c0", "c1", "c2", "c3", "c4", "ethanol"]
    assert x.shape == (6, embedder.dim) and x.dtype == np.float32
    assert np.isfinite(x).all()
    # different structures give different embeddings
    assert np.linalg.norm(x[0] - x[1]) > 1e-3
    np.testing.assert_allclose(x, _single(embedder, structures), atol=ATOL, rtol=0)
    assert embedder.skipped_ == []
    meta = embedder.metadata("mean")
    assert meta["model"] == embedder.name and meta["layer"] == embedder.layer and meta["pooling"] == "mean"
    assert len(meta["checkpoint_sha256"]) == 64


def test_pooling_variants(embedder):
    structures = [crystals()[3], ethanol()]
    _, mean = embedder.embed(structures)
    _, mv = embedder.embed(structures, pooling="mean_var")
    assert mv.shape == (2, 2 * embedder.dim) == (2, embedder.width("mean_var"))
    np.testing.assert_allclose(mv[:, : embedder.dim], mean, atol=1e-6)
    assert (mv[:, embedder.dim :] >= 0).all() and mv[1, embedder.dim :].max() > 0
    ids, per_atom = embedder.embed(structures, pooling="atoms")
    assert per_atom.shape == (2 + 9, embedder.dim)
    assert list(ids) == ["c3"] * 2 + ["ethanol"] * 9
    np.testing.assert_allclose(per_atom[:2].mean(0), mean[0], atol=1e-6)
    np.testing.assert_allclose(per_atom[2:].var(0), mv[1, embedder.dim :], atol=1e-5)


def test_supercell_gives_same_mean(embedder):
    cell = bulk("NaCl", "rocksalt", a=5.64)
    cell.rattle(0.05, seed=3)
    super_ = cell.repeat((2, 2, 1))
    _, x = embedder.embed([cell, super_])
    np.testing.assert_allclose(x[0], x[1], atol=ATOL, rtol=0)


def test_unknown_element_skipped_with_reason(embedder):
    og = Atoms("Og2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[6, 6, 6], pbc=True)
    og.info["id"] = "og"
    structures = [crystals()[0], og, crystals()[1]]
    ids, x = embedder.embed(structures)
    assert list(ids) == ["c0", "c1"] and x.shape == (2, embedder.dim)
    assert [(s.id, s.reason) for s in embedder.skipped_] == [("og", "unsupported_element")]


def test_isolated_atom_policy(embedder):
    atom = Atoms("Li", positions=[[0, 0, 0]])
    ids, x = embedder.embed([atom, ethanol()])
    if embedder.name.startswith("chgnet"):  # CHGNet's converter refuses isolated atoms
        assert list(ids) == ["ethanol"]
        assert [s.reason for s in embedder.skipped_] == ["isolated_atom"]
    else:  # SevenNet accepts them
        assert list(ids) == ["0", "ethanol"] and np.isfinite(x).all()


def test_chgnet_mean_matches_library_crystal_features():
    """Independent path: chgnet's predict_structure (its own converter, full task) returns the sum over
    atoms of the readout-MLP input as ``crystal_fea``; divided by the atom count it is our mean."""
    from pymatgen.io.ase import AseAtomsAdaptor

    emb = _CACHE.get("chgnet-0.3.0") or load_embedder("chgnet-0.3.0")
    structures = crystals()[:3]
    _, x = emb.embed(structures)
    for a, row in zip(structures, x):
        pred = emb.model_.predict_structure(
            AseAtomsAdaptor.get_structure(a), task="e", return_crystal_feas=True
        )
        np.testing.assert_allclose(pred["crystal_fea"] / len(a), row, atol=1e-5)


def test_chgnet_molecule_independent_of_box():
    emb = _CACHE.get("chgnet-0.3.0") or load_embedder("chgnet-0.3.0")
    mol = ethanol()
    boxed = mol.copy()
    boxed.set_cell([40.0, 41.0, 42.0])
    boxed.center()
    boxed.pbc = True
    _, x = emb.embed([mol, boxed])
    np.testing.assert_allclose(x[0], x[1], atol=ATOL)


def test_sevennet_features_are_the_readout_input_of_the_calculator():
    """The library's ASE calculator (energy, forces, stress, one structure, full model): the tensor that
    enters its ``reduce_input_to_hidden`` equals our per-atom features."""
    from sevenn.calculator import SevenNetCalculator

    from monoculture.descriptors.models._sevennet import load_sevennet_model

    emb = _CACHE.get("sevennet-0") or load_embedder("sevennet-0")
    full, _ = load_sevennet_model("sevennet-0")
    captured = []
    full._modules["reduce_input_to_hidden"].register_forward_pre_hook(
        lambda _m, args: captured.append(args[0]["x"].detach().clone())
    )
    calc = SevenNetCalculator(full, file_type="model_instance", device="cpu")
    a = crystals()[3].repeat((1, 1, 2))
    a.rattle(0.02, seed=1)
    a.calc = calc
    a.get_forces()
    _, per_atom = emb.embed([a], pooling="atoms")
    np.testing.assert_allclose(captured[-1].numpy(), per_atom, atol=1e-5)


def _frames(atoms_list, ids):
    records = [RawFrame(id=ident, key=ident, numbers=a.numbers, positions=None if ident == "nopos" else a.positions,
                        cell=np.array(a.cell) if a.pbc.any() else None, pbc=a.pbc)
               for ident, a in zip(ids, atoms_list)]
    return frames_from_records(records, dataset="test", file="test.xyz")


def test_embed_frames_streams_with_skips():
    emb = _CACHE.get("chgnet-0.3.0") or load_embedder("chgnet-0.3.0")
    cs = crystals()
    og = Atoms("Og2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[6, 6, 6], pbc=True)
    batch1 = _frames([cs[0], og, ethanol()], ["a", "og", "mol"])
    batch2 = _frames([cs[1], cs[2]], ["b", "nopos"])
    _, ref = emb.embed([cs[0], ethanol(), cs[1]])
    for executor in (None, ThreadPoolExecutor(1)):
        out = list(embed_frames(emb, [batch1, batch2], batch_size=2, executor=executor))
        assert [o[0] for o in out] == [["a", "mol"], ["b"]]
        assert [[(s.id, s.reason) for s in o[2]] for o in out] == [
            [("og", "unsupported_element")], [("nopos", "no_positions")]
        ]
        np.testing.assert_allclose(np.concatenate([o[1] for o in out]), ref, atol=ATOL)
        if executor is not None:
            executor.shutdown()


def test_graph_builder_pickles_for_worker_processes(embedder):
    """Graph batches built by an unpickled builder (as in a worker process) give the same embedding."""
    import pickle

    from monoculture.descriptors.models import pool_features

    builder = pickle.loads(pickle.dumps(embedder.graph_builder()))
    structures = [crystals()[1], ethanol()]
    graphs = pickle.loads(pickle.dumps([builder.build_payload(a) for a in structures]))
    feats, counts = embedder.forward(graphs)
    assert counts.tolist() == [2, 9]
    _, ref = embedder.embed(structures)
    np.testing.assert_allclose(pool_features(feats, counts, "mean"), ref, atol=ATOL)


def test_worker_path_gives_the_same_embeddings(embedder):
    """With an executor, pieces are built and collated there: same numbers, any piece size."""
    cs = crystals()[:3] + [ethanol()]
    batch = _frames(cs, [a.info["id"] for a in cs])
    _, ref = embedder.embed(cs)
    for piece_size in (None, 1, 3):
        with ThreadPoolExecutor(1) as pool:
            out = list(embed_frames(embedder, [batch], batch_size=2, executor=pool, prefetch=3,
                                    piece_size=piece_size))
        assert len(out) == 1 and out[0][0] == [a.info["id"] for a in cs]
        np.testing.assert_allclose(out[0][1], ref, atol=ATOL)


def test_concurrent_forwards_give_the_same_embeddings(embedder):
    """Forward batches in several threads (the GPU default is 2): same rows, same numbers, same order."""
    cs = crystals() + [ethanol()]
    batch = _frames(cs, [a.info["id"] for a in cs])
    ref = list(embed_frames(embedder, [batch, batch], batch_size=2, concurrency=1))
    got = list(embed_frames(embedder, [batch, batch], batch_size=2, concurrency=3))
    assert [g[0] for g in got] == [r[0] for r in ref]
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g[1], r[1])


def test_forward_error_skips_only_the_failing_structure(monkeypatch):
    """A batch whose forward fails is retried graph by graph; only the graph that still fails is skipped."""
    emb = _CACHE.get("chgnet-0.3.0") or load_embedder("chgnet-0.3.0")
    real = emb.forward_batch

    def flaky(batch):
        if 9 in batch["n_atoms"].tolist():  # ethanol
            raise RuntimeError("device out of memory")
        return real(batch)

    cs = crystals()[:2] + [ethanol()] + crystals()[2:4]
    _, ref = emb.embed([a for a in cs if len(a) != 9])
    monkeypatch.setattr(emb, "forward_batch", flaky)
    out = list(embed_frames(emb, [_frames(cs, [a.info["id"] for a in cs])], batch_size=4))
    assert out[0][0] == ["c0", "c1", "c2", "c3"]
    assert [(s.id, s.reason) for s in out[0][2]] == [("ethanol", "forward_error")]
    assert "out of memory" in out[0][2][0].detail
    np.testing.assert_allclose(out[0][1], ref, atol=ATOL)


def test_worker_processes_with_shared_memory_batches():
    """Real worker processes returning batches through shared memory (the GPU default) and through the
    pipe: the numbers of the in-process path, and no block left in /dev/shm."""
    import os

    from monoculture.descriptors.models.base import graph_worker_pool

    emb = _CACHE.get("sevennet-0") or load_embedder("sevennet-0")
    cs = crystals() + [ethanol()]
    batch = _frames(cs, [a.info["id"] for a in cs])
    ref = list(embed_frames(emb, [batch], batch_size=2))
    before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    with graph_worker_pool(2) as pool:
        for transport in ("shm", "pipe"):
            out = list(embed_frames(emb, [batch], batch_size=2, executor=pool, transport=transport))
            assert out[0][0] == ref[0][0]
            np.testing.assert_array_equal(out[0][1], ref[0][1])
        stopped = embed_frames(emb, [batch, batch], batch_size=2, executor=pool, transport="shm", prefetch=4)
        next(stopped)
        stopped.close()  # prefetched blocks of the unconsumed batch are unlinked
    after = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    assert not {n for n in after - before if n.startswith("psm_")}
    with pytest.raises(ValueError, match="transport"):
        next(embed_frames(emb, [batch], executor=pool, transport="carrier pigeon"))
