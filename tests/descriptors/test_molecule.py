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
    # no bond orders fit a neutral CH3: it is described by its bond graph (three C-H bonds), not skipped
    assert res.ok.tolist() == [True, True] and res.X.shape == (2, 64) and np.isfinite(res.X).all()
    assert res.X[1].sum() > 0 and not np.array_equal(res.X[0], res.X[1])
    bad = d.transform_with_mask(frames_from_smiles(["C1CC", "CC"]))
    assert bad.skipped == [("s0", "RDKit cannot parse SMILES 'C1CC'")]
    crystal = d.transform_with_mask(frames_from_atoms([Atoms("Cu", cell=[2.5] * 3, pbc=True)]))
    assert crystal.skipped == [("f0", "periodic structure without SMILES is not a molecule")]


def test_charge_is_used():
    """Hydroxide gets bond orders only with charge -1; at charge 0 (a radical) only its bond graph."""
    from monoculture.descriptors.molecule import RDKIT_DESCRIPTORS, mol_from_frame

    oh = Atoms("OH", positions=[[0, 0, 0], [0.97, 0, 0]])
    d = MoleculeDescriptor(fp_size=64).fit(frames_from_atoms([oh]))
    anion = d.transform_with_mask(frames_from_atoms([oh], charge=[-1]))
    radical = d.transform_with_mask(frames_from_atoms([oh], charge=[0]))
    assert anion.ok.all() and radical.ok.all()
    mol, _ = mol_from_frame(None, oh.numbers, oh.positions, oh.pbc, -1)
    assert mol.GetAtomWithIdx(0).GetFormalCharge() == -1
    j = 64 + RDKIT_DESCRIPTORS.index("NumValenceElectrons")
    assert anion.X[0, j] == radical.X[0, j] + 1  # the extra electron of the anion
