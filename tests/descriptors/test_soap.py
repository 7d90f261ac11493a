import pickle

import numpy as np
import pytest
from ase.build import bulk

from conftest import frames_from_atoms, frames_from_smiles
from monoculture.descriptors.soap import SOAPDescriptor

SMALL = dict(r_cut=4.0, n_max=3, l_max=2)


def test_shapes_species_and_invariances(crystals):
    nacl = crystals[0]
    rot = nacl.copy()
    rot.rotate(41, "y", rotate_cell=True)
    rot.rotate(-17, "z", rotate_cell=True)
    rot.translate([1.3, -0.7, 0.2])
    batch = frames_from_atoms(crystals + [nacl.repeat((2, 3, 1)), rot])
    d = SOAPDescriptor(**SMALL).fit(batch)
    assert d.species_.tolist() == [8, 11, 14, 17, 29, 30, 55]
    n = len(d.species_) * 3
    assert d.n_features_out_ == n * (n + 1) // 2 * 3 == len(d.feature_names_)
    X = d.transform(batch)
    assert X.shape == (7, d.n_features_out_) and X.dtype == np.float32
    scale = np.abs(X[0]).max()
    np.testing.assert_allclose(X[5], X[0], atol=1e-6 * scale)  # supercell
    np.testing.assert_allclose(X[6], X[0], atol=1e-6 * scale)  # rotated + translated
    assert np.abs(X[0] - X[1]).max() > 0.1 * scale


def test_molecules_and_skips(molecules):
    species_given = SOAPDescriptor(species=[1, 6, 8], **SMALL)
    batch = frames_from_atoms(molecules)  # NH3 has N, not among the given species
    res = species_given.fit(batch).transform_with_mask(batch)
    assert res.ok.tolist() == [True, True, True, True, False]
    assert res.skipped == [("f4", "elements [7] not among the fitted SOAP species")]
    assert np.isnan(res.X[4]).all() and np.isfinite(res.X[:4]).all()
    rot = molecules[2].copy()
    rot.rotate(70, [1, 1, 0])
    Y = species_given.transform(frames_from_atoms([molecules[2], rot]))
    np.testing.assert_allclose(Y[1], Y[0], atol=1e-6 * np.abs(Y[0]).max())
    no_pos = species_given.transform_with_mask(frames_from_smiles(["CO"]))
    assert no_pos.skipped == [("s0", "no 3D positions")]


def test_pca_fixed_width_and_determinism():
    protos = [bulk("NaCl", "rocksalt", a=5.64), bulk("Cu", "fcc", a=3.61), bulk("MgO", "rocksalt", a=4.2)]
    atoms = []
    for i in range(30):
        a = protos[i % 3].repeat((2, 1, 1))
        a.rattle(0.05, seed=i)
        atoms.append(a)
    batches = [frames_from_atoms(atoms[:15]), frames_from_atoms(atoms[15:], ids=[f"g{i}" for i in range(15)])]
    d = SOAPDescriptor(n_components=4, pca_sample=20, **SMALL).fit(batches)
    assert d.n_features_out_ == 4 and d.pca_.n_components_ == 4
    X = d.transform(batches[0])
    assert X.shape == (15, 4)
    d2 = SOAPDescriptor(n_components=4, pca_sample=20, **SMALL).fit(batches)
    np.testing.assert_array_equal(d2.transform(batches[0]), X)
    d3 = pickle.loads(pickle.dumps(d))
    np.testing.assert_array_equal(d3.transform(batches[0]), X)
    # more components than samples are capped
    assert SOAPDescriptor(n_components=50, pca_sample=5, **SMALL).fit(batches).n_features_out_ == 5


def test_per_atom_subsample_reproducible():
    big = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)  # 64 atoms
    small = bulk("NaCl", "rocksalt", a=5.64)
    batch = frames_from_atoms([small, big], ids=["small", "big"])
    d = SOAPDescriptor(max_atoms_per_structure=5, **SMALL).fit(batch)
    A = d.transform_atoms(batch)
    assert A.X.shape == (7, d.n_features_out_)
    assert A.frame_index.tolist() == [0, 0, 1, 1, 1, 1, 1]
    # the same frame alone, in another batch position, gets the same atoms and vectors
    B = d.transform_atoms(frames_from_atoms([big], ids=["big"]))
    np.testing.assert_array_equal(B.atom_index, A.atom_index[2:])
    np.testing.assert_allclose(B.X, A.X[2:], rtol=1e-6)
    # in a perfect crystal each atom's SOAP equals that of the same species in the primitive cell
    na = A.X[:2][np.array(small.numbers) == 11][0]
    big_na = A.X[2:][big.numbers[A.atom_index[2:]] == 11]
    np.testing.assert_allclose(big_na, np.broadcast_to(na, big_na.shape), atol=1e-6 * np.abs(na).max())


def test_fit_without_frames_fails():
    with pytest.raises(ValueError, match="at least one species"):
        SOAPDescriptor().fit([])
    assert SOAPDescriptor(species=[1]).fit([]).species_.tolist() == [1]
