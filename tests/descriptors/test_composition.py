import pickle

import numpy as np
import pytest
from ase.build import bulk
from sklearn.exceptions import NotFittedError

from conftest import frames_from_atoms
from monoculture.descriptors.composition import (
    CompositionDescriptor, ELEMENT_PROPERTIES, element_property_table,
)


def _col(d, name):
    return list(d.feature_names_).index(name)


def test_nacl_known_values(crystals):
    batch = frames_from_atoms(crystals)
    d = CompositionDescriptor().fit(batch)
    X = d.transform(batch)
    assert X.shape == (5, 103 + 5 * len(ELEMENT_PROPERTIES)) and X.dtype == np.float32
    assert len(d.feature_names_) == X.shape[1] == d.n_features_out_
    nacl = X[0]
    assert nacl[_col(d, "frac_Na")] == 0.5 and nacl[_col(d, "frac_Cl")] == 0.5
    assert nacl[:103].sum() == pytest.approx(1.0)
    # Pauling electronegativity: Na 0.93, Cl 3.16
    assert nacl[_col(d, "X_mean")] == pytest.approx((0.93 + 3.16) / 2, abs=1e-6)
    assert nacl[_col(d, "X_std")] == pytest.approx((3.16 - 0.93) / 2, abs=1e-6)
    assert nacl[_col(d, "X_min")] == pytest.approx(0.93)
    assert nacl[_col(d, "X_range")] == pytest.approx(3.16 - 0.93, abs=1e-6)
    assert nacl[_col(d, "Z_mean")] == pytest.approx(14.0)
    # Cu: one element, std 0, NValence = 3d10 4s1 = 11
    assert X[1, _col(d, "Z_std")] == 0.0 and X[1, _col(d, "NValence_mean")] == 11


def test_supercell_rotation_translation_invariant(crystals):
    a = crystals[3]
    rot = a.copy()
    rot.rotate(37, "x", rotate_cell=True)
    rot.translate([0.4, -1.0, 2.0])
    X = CompositionDescriptor().fit_transform(frames_from_atoms([a, a.repeat((3, 2, 2)), rot]))
    np.testing.assert_allclose(X[1], X[0], atol=1e-6)
    np.testing.assert_allclose(X[2], X[0], atol=1e-6)


def test_weighted_statistics_match_loop():
    """Off-stoichiometric Fe3Al against a per-element Python computation."""
    atoms = bulk("Fe", "bcc", a=2.87, cubic=True).repeat((2, 1, 1))  # 4 Fe
    atoms.numbers[0] = 13
    d = CompositionDescriptor().fit(frames_from_atoms([atoms]))
    x = d.transform(frames_from_atoms([atoms]))[0]
    table = element_property_table()
    names = [n for n, _ in ELEMENT_PROPERTIES]
    for j, p in enumerate(names):
        vals, w = np.array([table[13, j], table[26, j]]), np.array([0.25, 0.75])
        mean = (w * vals).sum()
        assert x[_col(d, f"{p}_mean")] == pytest.approx(mean, rel=1e-6)
        assert x[_col(d, f"{p}_std")] == pytest.approx(np.sqrt((w * (vals - mean) ** 2).sum()), rel=1e-5, abs=1e-6)
        assert x[_col(d, f"{p}_max")] == pytest.approx(vals.max(), rel=1e-6)


def test_missing_property_renormalised():
    """He has no Pauling electronegativity: X statistics of HeH come from H alone; of He2 are NaN."""
    from ase import Atoms

    frames = frames_from_atoms([Atoms("HeH", positions=[[0, 0, 0], [0, 0, 1]]),
                                Atoms("He2", positions=[[0, 0, 0], [0, 0, 3]])])
    d = CompositionDescriptor(properties=["X", "Z"]).fit(frames)
    X = d.transform(frames)
    assert X[0, _col(d, "X_mean")] == pytest.approx(2.20) and X[0, _col(d, "X_std")] == 0
    assert np.isnan(X[1, _col(d, "X_mean")]) and X[1, _col(d, "Z_mean")] == 2


def test_params_and_errors(crystals):
    batch = frames_from_atoms(crystals)
    with pytest.raises(NotFittedError):
        CompositionDescriptor().transform(batch)
    with pytest.raises(ValueError, match="unknown element properties"):
        CompositionDescriptor(properties=["nope"]).fit(batch)
    with pytest.raises(TypeError, match="pyarrow.Table"):
        CompositionDescriptor().fit(batch).transform(np.zeros((2, 3)))
    d = CompositionDescriptor(fractions=False, properties=["Z"]).fit(batch)
    assert list(d.feature_names_) == ["Z_mean", "Z_std", "Z_min", "Z_max", "Z_range"]
    d2 = pickle.loads(pickle.dumps(d))
    np.testing.assert_array_equal(d2.transform(batch), d.transform(batch))
