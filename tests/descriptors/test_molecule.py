import numpy as np
import pytest
from ase import Atoms

from conftest import frames_from_atoms, frames_from_smiles
from monoculture.descriptors.molecule import RDKIT_DESCRIPTORS, MoleculeDescriptor


def test_smiles_and_3d_agree(molecules):
    d = MoleculeDescriptor().fit(frames_from_atoms(molecules))
    from3d = d.transform_with_mask(frames_from_atoms(molecules, charge=[0] * 5))
    fromsmi = d.transform_with_mask(frames_from_smiles(["O", "C", "c1ccccc1", "CCO", "N"]))
    assert from3d.ok.all() and fromsmi.ok.all()
    np.testing.assert_array_equal(from3d.X, fromsmi.X)
    X = fromsmi.X
    assert X.shape == (5, 2048 + len(RDKIT_DESCRIPTORS)) and X.dtype == np.float32
    names = list(d.feature_names_)
    assert X[2, names.index("HeavyAtomCount")] == 6 and X[2, names.index("NumAromaticRings")] == 1
    assert X[3, names.index("MolWt")] == pytest.approx(46.069, abs=1e-3)
    # methane, radius 2: one carbon environment at radius 0 only -> a single count of 1
    assert X[1, :2048].sum() == 1
    # ethanol: 3 heavy atoms -> 3 radius-0 + 3 radius-1 environments (radius 2 repeats nothing new)
    assert X[3, :2048].sum() >= 6


def test_skip_with_reason(molecules):
    radical = Atoms("CH3", positions=[[0, 0, 0], [1.09, 0, 0], [-0.545, 0.944, 0], [-0.545, -0.944, 0]])
    batch = frames_from_atoms([molecules[0], radical], charge=[0, 0])
    d = MoleculeDescriptor(fp_size=64, descriptors=False).fit(batch)
    res = d.transform_with_mask(batch)
    assert res.ok.tolist() == [True, False] and res.X.shape == (2, 64)
    assert res.skipped[0][0] == "f1" and "cannot perceive bonds" in res.skipped[0][1]
    assert np.isnan(res.X[1]).all()
    bad = d.transform_with_mask(frames_from_smiles(["C1CC", "CC"]))
    assert bad.skipped == [("s0", "RDKit cannot parse SMILES 'C1CC'")]
    crystal = d.transform_with_mask(frames_from_atoms([Atoms("Cu", cell=[2.5] * 3, pbc=True)]))
    assert crystal.skipped == [("f0", "periodic structure without SMILES is not a molecule")]


def test_charge_is_used():
    """Hydroxide perceives only with charge -1."""
    oh = Atoms("OH", positions=[[0, 0, 0], [0.97, 0, 0]])
    d = MoleculeDescriptor(fp_size=64).fit(frames_from_atoms([oh]))
    assert d.transform_with_mask(frames_from_atoms([oh], charge=[-1])).ok.all()
    assert not d.transform_with_mask(frames_from_atoms([oh], charge=[0])).ok.any()
