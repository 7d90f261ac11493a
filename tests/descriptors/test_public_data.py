"""Every descriptor on public data built at test time: finite features wherever a row is featurized.

ASE's dcdft set (71 elemental solids, H..Rn incl. the noble gases), ASE's g2 molecules (162), a dimer of
every element Z = 1..94 (1..118 for the descriptors that need no 3D physics library), and SMILES-only
frames. None of these frames carries energy, forces, stress, temperature, charge or spin, and the
molecules carry no cell: the optional labels are all missing. A row is either featurized and finite, or
skipped (all NaN) with a reason: only the molecule descriptor skips here, for documented reasons.
"""
import numpy as np
import pytest
from ase import Atoms

from conftest import frames_from_atoms, frames_from_smiles
from monoculture.descriptors import get_descriptor

#: (registry name, parameters): SOAP with a small basis so that 94 species stay cheap (width 119,709).
DESCRIPTORS = [
    ("composition", {}), ("structure", {}), ("regime", {}), ("local", {}),
    ("soap", dict(n_max=3, l_max=2)), ("molecule", {}), ("composition+structure", {}),
]
OPTIONAL = ("energy_eV", "forces", "stress_GPa", "temperature_K", "pressure_GPa", "charge", "spin")


@pytest.fixture(scope="module")
def public_sets():
    from ase.collections import dcdft, g2

    return {
        "dcdft": frames_from_atoms(list(dcdft)),
        "g2": frames_from_atoms(list(g2)),
        "dimers_1_94": frames_from_atoms(
            [Atoms(numbers=[z, z], positions=[[0, 0, 0], [0, 0, 2.5]]) for z in range(1, 95)]),
    }


def _check(d, batch):
    res = d.transform_with_mask(batch)
    assert res.X.shape == (batch.num_rows, d.n_features_out_) == (batch.num_rows, len(d.feature_names_))
    assert np.isfinite(res.X[res.ok]).all(), np.asarray(d.feature_names_)[~np.isfinite(res.X[res.ok]).all(0)]
    assert np.isnan(res.X[~res.ok]).all() and len(res.skipped) == (~res.ok).sum()
    assert all(reason for _, reason in res.skipped)
    return res


def test_sets_lack_optional_labels(public_sets):
    """The premise: the public frames carry none of the optional labels; molecules have no cell."""
    for batch in public_sets.values():
        for column in OPTIONAL:
            assert batch.column(column).null_count == batch.num_rows, column
    g2 = public_sets["g2"]
    assert g2.num_rows == 162 and not np.asarray(g2.column("pbc").to_pylist()).any()
    assert public_sets["dcdft"].num_rows == 71
    assert {2, 10, 18, 36, 54, 86} <= set(public_sets["dcdft"].column("species").combine_chunks().flatten()
                                         .to_numpy().tolist())  # He Ne Ar Kr Xe Rn


@pytest.mark.parametrize("name,params", DESCRIPTORS, ids=[n for n, _ in DESCRIPTORS])
def test_finite_on_public_sets(public_sets, name, params):
    for label, batch in public_sets.items():
        d = get_descriptor(name, **params).fit(batch)
        res = _check(d, batch)
        if name != "molecule":
            assert res.ok.all(), (label, res.skipped[:3])
    if name == "molecule":
        d = get_descriptor(name).fit(public_sets["dcdft"])
        res = d.transform_with_mask(public_sets["dcdft"])
        assert not res.ok.any()
        assert {r for _, r in res.skipped} == {"periodic structure without SMILES is not a molecule"}
        # 128 of the 162 g2 molecules get bond orders at charge 0 (RDKit 2026.09); the radicals and the
        # rest fall back to their bond graph: every molecule is described
        res = d.transform_with_mask(public_sets["g2"])
        assert res.ok.all(), res.skipped[:3]


@pytest.mark.parametrize("name", ["composition", "structure", "regime", "composition+structure"])
def test_every_element_to_118(name):
    atoms = [Atoms(numbers=[z, z], positions=[[0, 0, 0], [0, 0, 2.5]]) for z in range(1, 119)]
    batch = frames_from_atoms(atoms)
    res = _check(get_descriptor(name).fit(batch), batch)
    assert res.ok.all()


@pytest.mark.parametrize("name,params", DESCRIPTORS, ids=[n for n, _ in DESCRIPTORS])
def test_smiles_only_frames(name, params):
    """No positions, no cell: featurized and finite, or skipped with a reason (``no 3D positions``)."""
    batch = frames_from_smiles(["CCO", "c1ccccc1", "[Na+].[Cl-]", "not_a_smiles"])
    d = get_descriptor(name, **params).fit(batch)
    res = _check(d, batch)
    if name in ("local", "soap"):
        assert [r for _, r in res.skipped] == ["no 3D positions"] * 4
    elif name == "molecule":
        assert res.ok.tolist() == [True, True, True, False]
    else:
        assert res.ok.all()


def test_labelled_and_unlabelled_frames_mixed(crystals):
    """Some frames with every label, some with none: one batch, every value finite, indicators differ."""
    labelled = dict(energy_eV=[-6.0, None], forces=[np.zeros((2, 3)), None], stress_GPa=[[1, 1, 1, 0, 0, 0], None],
                    temperature_K=[300.0, None], charge=[0, None], spin=[1, None])
    batch = frames_from_atoms([crystals[0], crystals[0]], **labelled)
    for name in ("structure", "regime"):
        d = get_descriptor(name).fit(batch)
        X = d.transform(batch)
        assert np.isfinite(X).all()
        missing = [j for j, n in enumerate(d.feature_names_) if n.endswith("_missing")]
        flags = X[:, missing]
        assert flags[1].sum() > flags[0].sum()
