import pickle

import numpy as np
import pytest
from ase.build import bulk

from conftest import frames_from_atoms, frames_from_smiles
from monoculture.descriptors.soap import SOAPDescriptor, soap_width

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


# -- memory guard --------------------------------------------------------------------------------------
def _peak_bytes(fn):
    """Peak of Python/numpy allocations (tracemalloc) while ``fn`` runs, and its exception."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    except ValueError as exc:
        error = exc
    else:
        error = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


@pytest.fixture(scope="module")
def dcdft_batch_4096():
    """ASE's 71 dcdft solids repeated into one batch of 4,118 frames (the reader's default batch is 4,096)."""
    from ase.collections import dcdft

    solids = list(dcdft)
    atoms = [solids[i % len(solids)] for i in range(58 * len(solids))]
    return frames_from_atoms(atoms, ids=[f"d{i}" for i in range(len(atoms))])


def test_soap_width_matches_dscribe():
    from dscribe.descriptors import SOAP

    for mode in ("off", "mu1nu1", "mu2", "crossover"):
        for n_species, n_max, l_max in ((1, 6, 4), (3, 3, 2), (71, 6, 4)):
            ref = SOAP(species=list(range(1, n_species + 1)), r_cut=5.0, n_max=n_max, l_max=l_max,
                       compression={"mode": mode}).get_number_of_features()
            assert soap_width(n_species, n_max, l_max, mode) == ref
    with pytest.raises(ValueError, match="unknown SOAP compression"):
        soap_width(2, 3, 2, "zip")


def test_guard_raises_before_allocating(dcdft_batch_4096):
    """71 species x default basis = 454,755 features; 4,118 frames x 4 bytes = 7.0 GiB > 2 GiB."""
    peak, error = _peak_bytes(lambda: SOAPDescriptor().fit(dcdft_batch_4096))
    assert error is not None and peak < 200 * 2**20  # raised without building the 7 GiB array
    msg = str(error)
    assert "\n" not in msg
    assert msg.startswith("SOAP would need 7.0 GiB for a batch of 4,118 structures "
                          "(454,755 features each: 71 species")
    for option in ("--param species=", "compression=mu1nu1", "mu1nu1 12,780", "n_max", "--descriptor local",
                   "--batch-size", "max_bytes"):
        assert option in msg, option
    # the options it names do fit: mu1nu1 gives 12,780 x 4,118 x 4 bytes = 0.2 GiB
    assert SOAPDescriptor(compression="mu1nu1").fit(dcdft_batch_4096).n_features_out_ == 12780
    # and the limit is a parameter
    with pytest.raises(ValueError, match="max_bytes=0.1 GiB"):
        SOAPDescriptor(compression="mu1nu1", max_bytes=0.1 * 2**30).fit(dcdft_batch_4096)


def test_guard_in_transform_pca_and_atoms(crystals):
    batch = frames_from_atoms(crystals)  # 5 frames, 7 species
    species = [8, 11, 14, 17, 29, 30, 55]
    d = SOAPDescriptor(species=species, **SMALL, max_bytes=4 * 693 * 4).fit([])  # width 21*22/2*3 = 693
    assert d.n_soap_features_ == 693
    peak, error = _peak_bytes(lambda: d.transform(batch))
    assert error is not None and str(error).startswith("SOAP would need 0.0 MiB for a batch of 5 structures")
    assert peak < 2**20
    assert d.transform(batch.slice(0, 4)).shape == (4, 693)  # at the limit: computed
    with pytest.raises(ValueError, match="a batch of 5 structures"):  # fit sees the batch too
        SOAPDescriptor(**SMALL, max_bytes=4 * 693 * 4).fit(batch)
    # the PCA sample (10 rows of float64) is checked in fit, before any SOAP vector is computed
    two = [batch, frames_from_atoms(crystals, ids=[f"g{i}" for i in range(5)])]
    with pytest.raises(ValueError, match="the PCA sample of 10 structures"):
        SOAPDescriptor(**SMALL, n_components=2, max_bytes=8 * 693 * 8).fit(two)
    # per-atom mode: NaCl 2 + Cu 1 + Si 2 + ZnO 4 + CsCl 2 = 11 atoms of float64
    with pytest.raises(ValueError, match="the 11 sampled atoms of a batch"):
        SOAPDescriptor(species=species, **SMALL, max_bytes=10 * 693 * 8).fit([]).transform_atoms(batch)
    atoms = SOAPDescriptor(species=species, **SMALL, max_bytes=11 * 693 * 8).fit([]).transform_atoms(batch)
    assert atoms.X.shape == (11, 693)
