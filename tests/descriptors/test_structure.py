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
    assert X.shape == (5, 20) and X.dtype == np.float32
    assert list(d.feature_names_[16:]) == ["cell_missing", "spacegroup_missing", "charge_missing", "spin_missing"]
    # rock salt 225, fcc 225, diamond 227, wurtzite 186, CsCl 221
    np.testing.assert_array_equal(_get(d, X, "spacegroup_number"), [225, 225, 227, 186, 221])
    np.testing.assert_array_equal(_get(d, X, "crystal_system_code"), [7, 7, 7, 6, 7])
    # NaCl: a = 5.64 Å, 4 formula units per cubic cell; 58.44 g/mol
    assert _get(d, X, "volume_per_atom_A3")[0] == pytest.approx(5.64**3 / 8, rel=1e-6)
    assert _get(d, X, "density_g_cm3")[0] == pytest.approx(4 * 58.443 / 5.64**3 * 1.6605390666, rel=1e-3)
    assert _get(d, X, "gamma_deg")[0] == pytest.approx(60.0, abs=1e-4)  # fcc primitive cell
    assert _get(d, X, "n_elements")[2] == 1 and _get(d, X, "is_periodic").tolist() == [1] * 5
    # charge and spin unknown: imputed 0 e and multiplicity 1, flagged; every value finite
    assert (_get(d, X, "charge_e") == 0).all() and (_get(d, X, "charge_missing") == 1).all()
    assert (_get(d, X, "spin_multiplicity") == 1).all() and (_get(d, X, "spin_missing") == 1).all()
    assert (_get(d, X, "cell_missing") == 0).all() and (_get(d, X, "spacegroup_missing") == 0).all()
    assert np.isfinite(X).all()


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
    # crystal columns do not apply: imputed 0 and flagged (formerly NaN, which issue #18 forbids)
    for name in ("volume_per_atom_A3", "density_g_cm3", "a_A", "gamma_deg", "spacegroup_number",
                 "crystal_system_code"):
        assert (_get(d, X, name) == 0).all(), name
    assert (_get(d, X, "cell_missing") == 1).all() and (_get(d, X, "spacegroup_missing") == 1).all()
    assert _get(d, X, "charge_e")[3] == -1 and _get(d, X, "spin_multiplicity")[3] == 2
    assert _get(d, X, "charge_missing").tolist() == [0, 0, 0, 0, 1]
    assert _get(d, X, "spin_missing").tolist() == [0, 0, 0, 0, 1]
    assert _get(d, X, "charge_e")[4] == 0 and _get(d, X, "spin_multiplicity")[4] == 1
    assert np.isfinite(X).all()


def test_feature_sets(crystals, molecules):
    batch = frames_from_atoms(crystals + molecules)
    full = StructureDescriptor().fit(batch)
    inv = StructureDescriptor(features="invariant").fit(batch)
    assert list(inv.feature_names_) == ["is_periodic", "volume_per_atom_A3", "density_g_cm3", "charge_e",
                                        "spin_multiplicity", "cell_missing", "charge_missing", "spin_missing"]
    X, Y = full.transform(batch), inv.transform(batch)
    for j, name in enumerate(inv.feature_names_):
        np.testing.assert_array_equal(Y[:, j], _get(full, X, name))
    # invariant features do not change with the supercell; the dropped ones do
    a = bulk("NaCl", "rocksalt", a=5.64)
    pair = frames_from_atoms([a, a.repeat((2, 1, 3))])
    np.testing.assert_allclose(inv.transform(pair)[1], inv.transform(pair)[0], rtol=1e-6)
    assert full.transform(pair)[1, list(full.feature_names_).index("n_atoms")] == 12
    listed = StructureDescriptor(features=["density_g_cm3", "is_periodic"]).fit(batch)
    assert list(listed.feature_names_) == ["is_periodic", "density_g_cm3", "cell_missing"]
    for bad in ("nope", ["a_A", "nope"], []):
        with pytest.raises(ValueError, match="unknown structure feature"):
            StructureDescriptor(features=bad).fit(batch)


def test_crystal_system_code():
    np.testing.assert_array_equal(
        crystal_system_code(np.array([1, 2, 3, 15, 16, 74, 75, 142, 143, 167, 168, 194, 195, 230])),
        [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7],
    )
    assert np.isnan(crystal_system_code(np.array([np.nan]))[0])
