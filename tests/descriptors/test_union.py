import pickle

import numpy as np
import pytest
from ase.build import bulk
from sklearn.base import clone

from conftest import frames_from_atoms, frames_from_smiles
from monoculture.descriptors import featurize, get_descriptor
from monoculture.descriptors.composition import CompositionDescriptor
from monoculture.descriptors.registry import is_descriptor_name
from monoculture.descriptors.structure import StructureDescriptor
from monoculture.descriptors.union import UnionDescriptor

SMALL_SOAP = dict(r_cut=4.0, n_max=3, l_max=2)


@pytest.fixture(scope="module")
def public():
    from ase.collections import dcdft, g2

    return frames_from_atoms(list(dcdft) + list(g2), ids=[f"d{i}" for i in range(71)] + list(g2.names))


def test_width_names_and_values_are_the_parts(public):
    d = get_descriptor("composition+structure").fit(public)
    assert isinstance(d, UnionDescriptor) and d.name == "composition+structure"
    comp = CompositionDescriptor().fit(public)
    struct = StructureDescriptor(features="invariant").fit(public)  # the default structure part
    assert d.n_features_out_ == comp.n_features_out_ + struct.n_features_out_ == 183 + 8
    assert list(d.feature_names_) == ([f"composition__{n}" for n in comp.feature_names_]
                                      + [f"structure__{n}" for n in struct.feature_names_])
    X = d.transform(public)
    np.testing.assert_array_equal(X, np.hstack([comp.transform(public), struct.transform(public)]))
    three = get_descriptor("composition+structure+regime", structure__features="all").fit(public)
    assert three.n_features_out_ == 183 + 20 + 13


def test_crystals_and_molecules_finite_and_sensible(public):
    """dcdft solids and g2 molecules: finite, and the structure columns are what one computes by hand."""
    from ase.collections import dcdft

    d = get_descriptor("composition+structure").fit(public)
    res = d.transform_with_mask(public)
    assert res.ok.all() and np.isfinite(res.X).all()
    col = {n: j for j, n in enumerate(d.feature_names_)}
    X = res.X
    cu = [a.get_chemical_formula() for a in dcdft].index(dcdft["Cu"].get_chemical_formula())
    atoms = dcdft["Cu"]
    v = atoms.get_volume() / len(atoms)
    assert X[cu, col["structure__volume_per_atom_A3"]] == pytest.approx(v, rel=1e-5)
    assert X[cu, col["structure__density_g_cm3"]] == pytest.approx(63.546 / v * 1.66053906660, rel=1e-3)
    assert X[cu, col["composition__frac_Cu"]] == 1
    crystals, molecules = X[:71], X[71:]
    assert (crystals[:, col["structure__is_periodic"]] == 1).all()
    assert (crystals[:, col["structure__cell_missing"]] == 0).all()
    assert (molecules[:, col["structure__is_periodic"]] == 0).all()
    assert (molecules[:, col["structure__cell_missing"]] == 1).all()
    assert (molecules[:, col["structure__volume_per_atom_A3"]] == 0).all()
    # every dcdft solid is denser than 0.05 g/cm^3 (the noble-gas solids) and below 23 (Os, Ir)
    dens = crystals[:, col["structure__density_g_cm3"]]
    assert dens.min() > 0.05 and dens.max() < 23.0
    # no column that depends on the stored cell: a supercell has the same row
    nacl = bulk("NaCl", "rocksalt", a=5.64)
    pair = d.transform(frames_from_atoms([nacl, nacl.repeat((3, 1, 2))]))
    np.testing.assert_allclose(pair[1], pair[0], rtol=1e-6)


def test_skips_are_joined():
    batch = frames_from_smiles(["CCO", "not_a_smiles"])
    d = get_descriptor("molecule+soap", species=[1, 6, 8], **SMALL_SOAP).fit(batch)
    res = d.transform_with_mask(batch)
    assert res.ok.tolist() == [False, False]
    assert res.skipped == [("s0", "soap: no 3D positions"),
                           ("s1", "molecule: RDKit cannot parse SMILES 'not_a_smiles'; soap: no 3D positions")]
    assert np.isnan(res.X).all()
    d2 = get_descriptor("composition+molecule").fit(batch)
    res2 = d2.transform_with_mask(batch)
    assert res2.ok.tolist() == [True, False] and np.isfinite(res2.X[0]).all()


def test_fit_reads_a_stream_once(crystals):
    """A one-pass generator (what featurize gives) feeds every part; each batch is read once."""
    cu, nacl = bulk("Cu", "fcc", a=3.61), bulk("NaCl", "rocksalt", a=5.64)
    batches = [frames_from_atoms([cu], ids=["a"], energy_eV=[-3.7]),
               frames_from_atoms([nacl], ids=["b"], energy_eV=[-6.0])]
    reads = []

    def stream():
        for b in batches:
            reads.append(b.column("id")[0].as_py())
            yield b

    d = get_descriptor("soap+regime", **SMALL_SOAP).fit(stream())
    assert reads == ["a", "b"]
    soap, regime = d.parts_
    assert soap.species_.tolist() == [11, 17, 29]  # species from both batches
    assert regime.reference_volume_per_atom_ == pytest.approx(
        {"ClNa|unknown": 5.64**3 / 8, "Cu|unknown": 3.61**3 / 4})


def test_fit_errors_propagate():
    with pytest.raises(ValueError, match="at least one species"):
        get_descriptor("composition+soap").fit(iter([]))

    def broken():
        yield frames_from_atoms([bulk("Cu", "fcc", a=3.61)])
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):  # the reader's error, and no hang
        get_descriptor("composition+regime").fit(broken())


def test_registry_names_and_params():
    assert is_descriptor_name("composition+structure") and is_descriptor_name("soap")
    assert not is_descriptor_name("composition+composition") and not is_descriptor_name("composition+coulomb")
    d = get_descriptor("composition+structure+molecule", structure__features="all", radius=3, fractions=False)
    assert d.part_params == {"structure": {"features": "all"}, "molecule": {"radius": 3},
                             "composition": {"fractions": False}}
    assert [p["params"] for p in d.config()["parts"]][1]["features"] == "all"
    assert get_descriptor("composition+structure").config()["parts"][1]["params"]["features"] == "invariant"
    for bad, match in (("composition+coulomb", "unknown descriptor"), ("composition+composition", "unknown")):
        with pytest.raises(ValueError, match=match):
            get_descriptor(bad)
    for params in ({"structure__nope": 1}, {"soap__symprec": 1}, {"nope": 1}):
        with pytest.raises(ValueError, match="takes no parameter"):
            get_descriptor("composition+structure", **params)
    d = get_descriptor("regime+structure")
    assert clone(d).get_params() == d.get_params() and pickle.loads(pickle.dumps(d)).name == "regime+structure"


def test_featurize_and_pickle(crystals, molecules, tmp_path):
    batch = frames_from_atoms(crystals + molecules)
    res = featurize([batch], "composition+structure", n_jobs=1, out=tmp_path / "f.parquet")
    assert res.n_rows == 10 and res.n_skipped == 0
    assert res.metadata["n_features"] == 191 and res.metadata["feature_names"][-1] == "structure__spin_missing"
    d = res.descriptor
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(d)).transform(batch), d.transform(batch))
    assert "spglib" in d.dependencies and "pymatgen" in d.dependencies
