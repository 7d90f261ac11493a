"""Frames for the descriptor tests, built from real ASE structures and SMILES through the project's FrameBuilder
(``frames_from_atoms`` is the package's own, :func:`monoculture.datasets.memory.frames_from_atoms`)."""
from __future__ import annotations

import numpy as np
import pytest

from monoculture.datasets.memory import frames_from_atoms  # noqa: F401 - imported by the tests from here
from monoculture.datasets.memory import frames_from_records
from monoculture.datasets.records import RawFrame


def frames_from_smiles(smiles, ids=None):
    """SMILES-only frames (no 3D positions): numbers from RDKit with explicit hydrogens."""
    from rdkit import Chem

    records = []
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi)
        numbers = [a.GetAtomicNum() for a in Chem.AddHs(mol).GetAtoms()] if mol is not None else [6]
        records.append(RawFrame(id=ids[i] if ids else f"s{i}", key=str(i), numbers=np.array(numbers), smiles=smi))
    return frames_from_records(records, dataset="test", file="test.smi")


@pytest.fixture(scope="session")
def crystals():
    """Rock salt NaCl, fcc Cu, diamond Si, wurtzite ZnO, CsCl: ASE prototypes."""
    from ase.build import bulk

    return [
        bulk("NaCl", "rocksalt", a=5.64),
        bulk("Cu", "fcc", a=3.61),
        bulk("Si", "diamond", a=5.43),
        bulk("ZnO", "wurtzite", a=3.25, c=5.2),
        bulk("CsCl", "cesiumchloride", a=4.12),
    ]


@pytest.fixture(scope="session")
def molecules():
    """Five g2 molecules (non-periodic, no cell)."""
    from ase.collections import g2

    return [g2[name] for name in ("H2O", "CH4", "C6H6", "CH3CH2OH", "NH3")]
