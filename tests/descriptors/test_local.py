"""QUESTS-based local descriptor; one module fixture pays the numba compilation (~20 s cold)."""
import numpy as np
import pytest
from ase.build import bulk

from conftest import frames_from_atoms, frames_from_smiles
from monoculture.descriptors.local import LocalEnvironmentDescriptor


@pytest.fixture(scope="module")
def fitted(crystals, molecules):
    batch = frames_from_atoms(crystals + molecules)
    d = LocalEnvironmentDescriptor(max_atoms_per_structure=3).fit(batch)
    return d, batch, d.transform(batch)


def test_shapes_and_known_value(fitted):
    d, batch, X = fitted
    assert X.shape == (10, 2 * 63) and X.dtype == np.float32 and np.isfinite(X).all()
    assert d.feature_names_[0] == "mean_x1_0" and d.feature_names_[63] == "std_x1_0"
    # fcc Cu, a = 3.61 Å: 12 nearest neighbours at a/sqrt(2); x1 = w(r)/r, quests' w = (1 - (r/rc)^2)^2
    r = 3.61 / np.sqrt(2)
    w = (1 - (r / 5.0) ** 2) ** 2
    np.testing.assert_allclose(X[1, :12], w / r, rtol=1e-5)
    assert X[1, 12] < X[1, 11]  # second shell is farther
    assert np.allclose(X[1, 63:], 0, atol=1e-6)  # one environment in a perfect crystal: std 0


def test_invariances(fitted):
    d, _, _ = fitted
    a = bulk("ZnO", "wurtzite", a=3.25, c=5.2)
    rot = a.copy()
    rot.rotate(29, "x", rotate_cell=True)
    rot.translate([0.5, 0.5, -3])
    mirrored = a.copy()
    mirrored.set_cell(-np.array(a.cell), scale_atoms=True)  # left-handed cell, same lattice
    X = d.transform(frames_from_atoms([a, a.repeat((2, 2, 3)), rot, mirrored]))
    for i in (1, 2, 3):
        np.testing.assert_allclose(X[i], X[0], atol=1e-6)


def test_skips_and_atoms(fitted):
    d, batch, X = fitted
    slab = bulk("Cu", "fcc", a=3.61)
    slab.pbc = [True, True, False]
    res = d.transform_with_mask(frames_from_atoms([slab]))
    assert res.skipped[0][1].startswith("partial periodicity")
    assert d.transform_with_mask(frames_from_smiles(["C"])).skipped == [("s0", "no 3D positions")]
    A = d.transform_atoms(batch)
    counts = np.bincount(A.frame_index, minlength=10)
    assert counts.max() == 3 and A.X.shape == (counts.sum(), 63)
    # per-atom rows of Cu equal its pooled mean
    np.testing.assert_allclose(A.X[A.frame_index == 1][0], X[1, :63], rtol=1e-6)
