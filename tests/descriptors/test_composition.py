import pickle

import numpy as np
import pytest
from ase.build import bulk
from ase.data import atomic_numbers, chemical_symbols
from sklearn.exceptions import NotFittedError

from conftest import frames_from_atoms
from monoculture.descriptors.composition import (
    CompositionDescriptor, ELEMENT_PROPERTIES, IMPUTED_ELEMENT_PROPERTIES, SECONDARY_SOURCES,
    element_property_table, imputed_element_properties, pymatgen_element_properties,
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


def test_noble_gas_gaps_are_imputed():
    """He has no Pauling electronegativity in pymatgen: it takes Kr's 3.0 (same group, nearest with a value).

    Replaces the former NaN behaviour (HeH renormalised to H alone, He2 NaN), which issue #18 forbids.
    """
    from ase import Atoms

    frames = frames_from_atoms([Atoms("HeH", positions=[[0, 0, 0], [0, 0, 1]]),
                                Atoms("He2", positions=[[0, 0, 0], [0, 0, 3]])])
    d = CompositionDescriptor(properties=["X", "Z"]).fit(frames)
    X = d.transform(frames)
    assert X[0, _col(d, "X_mean")] == pytest.approx((3.0 + 2.20) / 2)
    assert X[0, _col(d, "X_std")] == pytest.approx(0.4) and X[0, _col(d, "X_range")] == pytest.approx(0.8)
    assert X[1, _col(d, "X_mean")] == pytest.approx(3.0) and X[1, _col(d, "Z_mean")] == 2


def test_imputation_table_matches_rule_and_constant():
    raw, second = pymatgen_element_properties(), pymatgen_element_properties(secondary=True)
    table = element_property_table()
    assert np.isfinite(table[1:]).all() and np.isnan(table[0]).all()
    # the documented constant is exactly what the rule does with the installed pymatgen
    assert imputed_element_properties() == IMPUTED_ELEMENT_PROPERTIES
    names = [n for n, _ in ELEMENT_PROPERTIES]
    filled = {(el, p) for p, pairs in IMPUTED_ELEMENT_PROPERTIES.items() for el in pairs}
    assert len(filled) == 186
    for z in range(1, 119):
        for j, p in enumerate(names):
            el = chemical_symbols[z]
            if (el, p) not in filled:
                assert table[z, j] == raw[z, j]  # pymatgen values are left alone
                continue
            assert np.isnan(raw[z, j])
            source = IMPUTED_ELEMENT_PROPERTIES[p][el]
            if source == SECONDARY_SOURCES.get(p):  # step 1: the element's own second attribute
                assert table[z, j] == second[z, j]
            else:  # step 2: a donor of the same group with pymatgen data (its own, or from step 1)
                donor = atomic_numbers[source]
                assert raw[donor, names.index("group")] == raw[z, names.index("group")]
                assert not np.isnan(raw[donor, j]) or IMPUTED_ELEMENT_PROPERTIES[p][source] == SECONDARY_SOURCES[p]
                assert table[z, j] == table[donor, j]
    # values checked by hand against the rule
    x, r, mv, mp = (names.index(p) for p in ("X", "atomic_radius", "molar_volume", "melting_point"))
    assert table[2, x] == table[10, x] == table[18, x] == raw[36, x] == pytest.approx(3.0)  # He, Ne, Ar <- Kr
    noble = [2, 10, 18, 36, 54, 86]
    np.testing.assert_allclose(table[noble, r], [0.31, 0.38, 0.71, 0.88, 1.08, 1.2])  # calculated radii
    assert table[118, r] == table[86, r]  # Og <- Rn (filled in step 1, from its calculated radius)
    assert table[87, r] == raw[55, r] and table[96, r] == raw[95, r]  # Fr <- Cs, Cm <- Am
    assert table[100, mv] == raw[99, mv] and table[104, mp] == raw[72, mp]  # Fm <- Es, Rf <- Hf


def test_every_element_finite():
    """A dimer of every element Z = 1..118: every feature finite, fractions of Z <= 103 equal 1."""
    from ase import Atoms

    atoms = [Atoms(numbers=[z, z], positions=[[0, 0, 0], [0, 0, 2.5]]) for z in range(1, 119)]
    frames = frames_from_atoms(atoms)
    d = CompositionDescriptor().fit(frames)
    res = d.transform_with_mask(frames)
    assert res.ok.all() and np.isfinite(res.X).all()
    np.testing.assert_array_equal(res.X[np.arange(103), np.arange(103)], 1.0)
    assert res.X[:, _col(d, "Z_mean")].tolist() == list(range(1, 119))
    assert (res.X[:, _col(d, "X_std")] == 0).all()


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
