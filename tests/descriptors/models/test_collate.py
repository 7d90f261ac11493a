"""Graph batches in numpy: collate / split are inverse, batching batches is batching graphs, and the
whole-batch forward equals each library's own batching (CHGNet ``BatchedGraph.from_graphs``, torch_geometric
``Batch.from_data_list``)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ase.build import bulk, molecule  # noqa: E402

from monoculture.descriptors.models import load_embedder  # noqa: E402
from monoculture.descriptors.models.collate import BatchLayout  # noqa: E402

pytestmark = pytest.mark.models

_CACHE: dict = {}


def _embedder(name):
    if name not in _CACHE:
        _CACHE[name] = load_embedder(name, device="cpu")
    return _CACHE[name]


def _structures(one_atom_cell=True):
    out = [bulk("Si", "diamond", a=5.43), bulk("ZnO", "wurtzite", a=3.25, c=5.2), molecule("CH3CH2OH"),
           bulk("Cu", "fcc", a=3.61)]
    if one_atom_cell:
        out.append(bulk("Po", "sc", a=3.35))  # self-image edges only
    for i in range(4):
        a = bulk("GaAs", "zincblende", a=5.65).repeat((2, 1, 2))
        a.rattle(0.05, seed=i)
        out.append(a)
    return out


def test_layout_by_hand():
    layout = BatchLayout(kinds=("atoms", "edges"), arrays={
        "z": ("atoms", ()), "edge": ("edges", ("atoms", None)), "dst": ("edges", ("atoms",)), "cell": ("graphs", ()),
    })
    g1 = {"n_atoms": np.array([2]), "n_edges": np.array([1]), "z": np.array([1, 8]), "edge": np.array([[1, 7]]),
          "dst": np.array([0]), "cell": np.array([[1.0]])}
    g2 = {"n_atoms": np.array([1]), "n_edges": np.array([2]), "z": np.array([6]), "edge": np.array([[0, 5], [0, 6]]),
          "dst": np.array([0, 0]), "cell": np.array([[2.0]])}
    b = layout.collate([g1, g2])
    assert b["n_atoms"].tolist() == [2, 1] and b["n_edges"].tolist() == [1, 2]
    assert b["edge"].tolist() == [[1, 7], [2, 5], [2, 6]]  # second column is a value, not an index
    assert b["dst"].tolist() == [0, 2, 2]
    back = layout.split(b)
    for g, h in zip([g1, g2], back):
        assert all(np.array_equal(g[k], h[k]) for k in g)
    with pytest.raises(ValueError, match="no graphs"):
        layout.collate([])


@pytest.mark.parametrize("name", ["chgnet-0.3.0", "sevennet-0"])
def test_split_inverts_collate_and_batches_of_batches(name):
    builder = _embedder(name).graph_builder()
    graphs = [builder.build_payload(a) for a in _structures(one_atom_cell=name.startswith("chgnet"))]
    batch = builder.collate(graphs)
    for g, h in zip(graphs, builder.split(batch)):
        assert g.keys() == h.keys()
        for k in g:
            assert g[k].dtype == h[k].dtype and np.array_equal(g[k], h[k]), k
    merged = builder.collate([builder.collate(graphs[:3]), builder.collate(graphs[3:4]), builder.collate(graphs[4:])])
    for k in batch:
        assert np.array_equal(merged[k], batch[k]), k


@pytest.mark.parametrize("name", ["chgnet-0.2.0", "chgnet-0.3.0", "chgnet-r2scan"])
def test_chgnet_batch_forward_equals_the_library_one_graph_at_a_time(name):
    """Readout input from CHGNet's own forward (``BatchedGraph.from_graphs``) on the library's ``CrystalGraph``
    of each structure alone vs the whole-batch forward on the collated arrays (a one-atom Po cell without
    angles, molecules and crystals mixed in one batch)."""
    emb = _embedder(name)
    builder = emb.graph_builder()
    structures = _structures()
    captured = []
    handle = emb._tap.register_forward_hook(lambda _m, _i, out: captured.append(out.detach().clone()))
    try:
        with torch.no_grad():
            for a in structures:
                emb.model_([builder(a)], task="e")
    finally:
        handle.remove()
    got = emb.forward_batch(builder.collate([builder.build_payload(a) for a in structures]))
    np.testing.assert_allclose(got, torch.cat(captured).numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["sevennet-0", "sevennet-mf-0"])
def test_sevennet_batch_equals_torch_geometric_batch(name):
    """Node features from torch_geometric's ``Batch.from_data_list`` of sevenn's ``AtomGraphData`` vs the
    collated arrays: the same numbers (the same tensors reach the model)."""
    import sevenn._keys as KEY
    from torch_geometric.data import Batch

    emb = _embedder(name)
    builder = emb.graph_builder()
    structures = _structures(one_atom_cell=False)
    with torch.no_grad():
        ref = emb.model_(Batch.from_data_list([builder(a) for a in structures]))[KEY.NODE_FEATURE].numpy()
    got = emb.forward_batch(builder.collate([builder.build_payload(a) for a in structures]))
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("name", ["chgnet-0.2.0", "chgnet-0.3.0", "chgnet-r2scan"])
def test_chgnet_graph_without_angles_embeds_as_alone(name):
    """hcp Mg (nearest neighbours 3.2 Å, beyond the 3 Å bond-graph cutoff) has no angles; CHGNet runs its bond
    and angle layers only for batches with angles, so batched next to Si it would change (0.6 for 0.2.0)."""
    emb = _embedder(name)
    mg = bulk("Mg", "hcp", a=3.21, c=5.21).repeat((2, 2, 2))
    assert emb.graph_builder().build_payload(mg)["n_angles"][0] == 0
    structures = [bulk("Si", "diamond", a=5.43), mg, bulk("Cu", "fcc", a=3.61), mg]
    _, alone = emb.embed([mg])
    _, batched = emb.embed(structures, batch_size=4)
    np.testing.assert_allclose(batched[[1, 3]], np.vstack([alone, alone]), atol=1e-5, rtol=0)
    feats, counts = emb.forward([emb.graph_builder().build_payload(a) for a in structures])
    assert counts.tolist() == [2, 16, 1, 16]
    np.testing.assert_allclose(feats[2:18].mean(0), alone[0], atol=1e-5, rtol=0)
