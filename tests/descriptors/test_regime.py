import numpy as np
import pytest
from ase.build import bulk

from conftest import frames_from_atoms
from monoculture.descriptors.regime import RegimeDescriptor, reduced_formula_keys


def _frames():
    a0 = bulk("NaCl", "rocksalt", a=5.64)
    big = bulk("NaCl", "rocksalt", a=5.70).repeat((2, 1, 1))  # expanded supercell, higher energy/atom
    small = bulk("NaCl", "rocksalt", a=5.50)
    cu = bulk("Cu", "fcc", a=3.61)
    atoms = [a0, big, small, cu, a0]
    return frames_from_atoms(
        atoms,
        energy_eV=[-6.0, -11.6, -5.8, -3.7, -5.0],
        temperature_K=[None, 300.0, None, 1000.0, None],
        stress_GPa=[None, [1, 1, 1, 0, 0, 0], None, None, None],
        forces=[None, np.full((4, 3), 0.1), None, None, None],
        functional=["PBE", "PBE", "PBE", "PBE", "r2SCAN"],
    )


def test_reference_and_strain():
    batch = _frames()
    d = RegimeDescriptor().fit([batch.slice(0, 2), batch.slice(2)])
    assert d.reference_volume_per_atom_ == pytest.approx(
        {"ClNa|PBE": 5.64**3 / 8, "Cu|PBE": 3.61**3 / 4, "ClNa|r2SCAN": 5.64**3 / 8})
    X = d.transform(batch)
    names = list(d.feature_names_)
    strain = X[:, names.index("volume_strain")]
    np.testing.assert_allclose(strain, [0, (5.70 / 5.64) ** 3 - 1, (5.50 / 5.64) ** 3 - 1, 0, 0], atol=1e-6)
    assert X[1, names.index("pressure_GPa")] == pytest.approx(-1.0)  # tensile stress: negative pressure
    assert X[1, names.index("fmax_eV_A")] == pytest.approx(np.sqrt(0.03), rel=1e-6)
    assert X[1, names.index("temperature_K")] == 300 and X[0, names.index("temperature_K")] == 0
    assert X[:, names.index("temperature_missing")].tolist() == [1, 0, 1, 0, 1]
    assert X[:, names.index("pressure_missing")].tolist() == [1, 0, 1, 1, 1]
    assert X[:, names.index("forces_missing")].tolist() == [1, 0, 1, 1, 1]
    assert X[0, names.index("fmax_eV_A")] == 0 and X[0, names.index("pressure_GPa")] == 0
    assert X[:, names.index("energy_missing")].tolist() == [0] * 5
    assert X[1, names.index("energy_per_atom_eV")] == pytest.approx(-11.6 / 4)
    assert names[7:] == ["temperature_missing", "pressure_missing", "forces_missing", "energy_missing",
                         "volume_missing", "volume_strain_missing"]
    assert np.isfinite(X).all()


def test_unknown_composition_and_pooled_theory():
    batch = _frames()
    d = RegimeDescriptor(per_level_of_theory=False).fit(batch.slice(0, 3))
    assert sorted(d.reference_volume_per_atom_) == ["ClNa"]
    X = d.transform(batch)
    names = list(d.feature_names_)
    assert X[3, 6] == 0 and X[:, names.index("volume_strain_missing")].tolist() == [0, 0, 0, 1, 0]  # Cu unseen
    codes, keys = reduced_formula_keys(batch, False)
    assert [keys[c] for c in codes] == ["ClNa", "ClNa", "ClNa", "Cu", "ClNa"]


def test_frames_without_labels(molecules, crystals):
    """No energy, forces, stress, temperature or cell: every value finite, the indicators say what is missing."""
    batch = frames_from_atoms(molecules + crystals)
    d = RegimeDescriptor().fit(batch)
    X = d.transform(batch)
    names = list(d.feature_names_)
    assert np.isfinite(X).all() and X.shape == (10, 13)
    assert (X[:, 7:11] == 1).all()  # temperature, pressure, forces, energy
    assert X[:, names.index("volume_missing")].tolist() == [1] * 5 + [0] * 5
    assert (X[:, names.index("volume_strain_missing")] == 1).all()  # no energy: no reference
    assert (X[:5, :7] == 0).all()
    assert X[5, names.index("volume_per_atom_A3")] == pytest.approx(5.64**3 / 8, rel=1e-6)
