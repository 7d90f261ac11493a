import numpy as np
import pytest
from ase.build import bulk

from conftest import frames_from_atoms
from monoculture.descriptors.structure import StructureDescriptor, crystal_system_code


def _get(d, X, name):
    return X[:, list(d.feature_names_).index(name)]


def test_crystals_known_values(crystals):
    batch = frames_from_atoms(crystals)
    d = StructureDescriptor().fit(batch)
    X = d.transform(batch)
    assert X.shape == (5, 16) and X.dtype == np.float32
    # rock salt 225, fcc 225, diamond 227, wurtzite 186, CsCl 221
    np.testing.assert_array_equal(_get(d, X, "spacegroup_number"), [225, 225, 227, 186, 221])
    np.testing.assert_array_equal(_get(d, X, "crystal_system_code"), [7, 7, 7, 6, 7])
    # NaCl: a = 5.64 Å, 4 formula units per cubic cell; 58.44 g/mol
    assert _get(d, X, "volume_per_atom_A3")[0] == pytest.approx(5.64**3 / 8, rel=1e-6)
    assert _get(d, X, "density_g_cm3")[0] == pytest.approx(4 * 58.443 / 5.64**3 * 1.6605390666, rel=1e-3)
    assert _get(d, X, "gamma_deg")[0] == pytest.approx(60.0, abs=1e-4)  # fcc primitive cell
    assert _get(d, X, "n_elements")[2] == 1 and _get(d, X, "is_periodic").tolist() == [1] * 5
    assert np.isnan(_get(d, X, "charge_e")).all()


def test_supercell_and_rattle():
    a = bulk("NaCl", "rocksalt", a=5.64)
    rattled = a.repeat(2)
    rattled.rattle(0.1, seed=1)
    X = StructureDescriptor().fit_transform(frames_from_atoms([a, a.repeat(3), rattled]))
    assert X[1, 5] == 225 and X[2, 5] == 1  # P1 once displacements exceed symprec
    assert X[1, 3] == pytest.approx(X[0, 3], rel=1e-6)


def test_molecules(molecules):
    batch = frames_from_atoms(molecules, charge=[0, 0, 0, -1, None], spin=[1, 1, 1, 2, None])
    d = StructureDescriptor().fit(batch)
    X = d.transform(batch)
    assert _get(d, X, "n_heavy_atoms").tolist() == [1, 1, 6, 3, 1]
    assert _get(d, X, "is_periodic").tolist() == [0] * 5
    assert np.isnan(_get(d, X, "density_g_cm3")).all() and np.isnan(_get(d, X, "spacegroup_number")).all()
    assert _get(d, X, "charge_e")[3] == -1 and _get(d, X, "spin_multiplicity")[3] == 2
    assert np.isnan(_get(d, X, "charge_e")[4])


def test_crystal_system_code():
    np.testing.assert_array_equal(
        crystal_system_code(np.array([1, 2, 3, 15, 16, 74, 75, 142, 143, 167, 168, 194, 195, 230])),
        [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7],
    )
    assert np.isnan(crystal_system_code(np.array([np.nan]))[0])
