"""Molecular descriptors from RDKit: Morgan count fingerprint plus a few 2D descriptors.

The molecule comes from the ``smiles`` column when it is set; otherwise bonds are perceived from the 3D
coordinates with ``rdDetermineBonds.DetermineBonds`` using the frame's total ``charge`` (0 when unknown).
When no assignment of bond orders fits that charge (radicals such as CH3 or OH, ions of unknown charge:
34 of ASE's 162 g2 molecules), the bond graph from ``DetermineConnectivity`` is used with single bonds and
no implicit hydrogens, so the frame is still described (its fingerprint then sees every bond as single).
Explicit hydrogens of the 3D path are removed afterwards so both paths give the same fingerprint for the
same molecule. A frame RDKit cannot turn into a molecule is skipped with a reason (NaN row): see
:meth:`~.base.FrameDescriptor.transform_with_mask`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ..datasets.frames import atoms_arrays
from .base import FrameDescriptor

__all__ = ["MoleculeDescriptor", "RDKIT_DESCRIPTORS", "mol_from_frame"]

#: RDKit 2D descriptors (``rdkit.Chem.Descriptors`` function names), in output order.
RDKIT_DESCRIPTORS = (
    "MolWt", "HeavyAtomCount", "NumHeteroatoms", "NumHDonors", "NumHAcceptors", "NumRotatableBonds",
    "RingCount", "NumAromaticRings", "FractionCSP3", "TPSA", "MolLogP", "NumValenceElectrons",
)


def mol_from_frame(smiles: str | None, numbers: np.ndarray, positions: np.ndarray | None,
                   pbc: np.ndarray, charge: int | None) -> tuple[Any, str | None]:
    """An RDKit molecule for one frame, or ``(None, reason)``.

    Parameters
    ----------
    smiles : str or None
    numbers : numpy.ndarray, shape (n_atoms,)
    positions : numpy.ndarray, shape (n_atoms, 3), Å, or None
    pbc : numpy.ndarray, shape (3,), bool
    charge : int or None
        Total charge (e) used for bond-order perception; None means 0.

    Returns
    -------
    (rdkit.Chem.Mol or None, str or None)
    """
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdDetermineBonds

    block = rdBase.BlockLogs()  # RDKit's C++ error log would otherwise flood stderr
    try:
        if smiles:
            mol = Chem.MolFromSmiles(smiles)
            if mol is None:
                return None, f"RDKit cannot parse SMILES {smiles!r}"
            return mol, None
        if bool(np.any(pbc)):
            return None, "periodic structure without SMILES is not a molecule"
        if positions is None:
            return None, "no SMILES and no 3D positions"
        rw = Chem.RWMol()
        for z in numbers:
            rw.AddAtom(Chem.Atom(int(z)))
        conf = Chem.Conformer(len(numbers))
        for j, p in enumerate(np.asarray(positions, dtype=np.float64)):
            conf.SetAtomPosition(j, p.tolist())
        rw.AddConformer(conf, assignId=True)
        q = 0 if charge is None else int(charge)
        try:
            mol = rw.GetMol()
            rdDetermineBonds.DetermineBonds(mol, charge=q)
            Chem.SanitizeMol(mol)
            return Chem.RemoveHs(mol), None
        except Exception:  # RDKit raises ValueError or its own C++ exception types
            pass
        # No bond orders fit the total charge (radicals such as CH3 or OH, or an unknown charge): keep the
        # bond graph with single bonds and no implicit hydrogens (every hydrogen is an atom of the frame).
        try:
            mol = rw.GetMol()
            rdDetermineBonds.DetermineConnectivity(mol)
            for atom in mol.GetAtoms():
                atom.SetNoImplicit(True)
            mol = Chem.RemoveHs(mol, sanitize=False)
            mol.UpdatePropertyCache(strict=False)
            Chem.SanitizeMol(mol, Chem.SanitizeFlags.SANITIZE_ALL ^ Chem.SanitizeFlags.SANITIZE_PROPERTIES)
            return mol, None
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return None, f"RDKit cannot perceive a bond graph from 3D coordinates: {msg}"
    finally:
        del block


class MoleculeDescriptor(FrameDescriptor):
    """RDKit Morgan count fingerprint and 2D descriptors of molecules.

    Features: ``morgan_0 .. morgan_{fp_size-1}`` (counts of hashed circular environments, radius
    ``radius``, bond-invariant Morgan/ECFP-like atom invariants) then the :data:`RDKIT_DESCRIPTORS`.

    Parameters
    ----------
    radius : int, default 2
        Morgan radius (2 = ECFP4-like).
    fp_size : int, default 2048
        Fingerprint length (hashed, so collisions are possible).
    descriptors : bool, default True
        Append the :data:`RDKIT_DESCRIPTORS`.

    Attributes
    ----------
    feature_names_ : numpy.ndarray of str, shape (n_features_out_,)
    n_features_out_ : int

    Notes
    -----
    Skipped with a reason: an unparsable SMILES, a periodic frame without SMILES, a frame with neither
    SMILES nor positions, and coordinates whose bonds RDKit cannot perceive for the given charge.
    """

    name = "molecule"
    dependencies = ("rdkit",)
    required_columns = ("id", "numbers", "positions", "pbc", "cell", "charge", "smiles")
    preload = ("rdkit.Chem.Descriptors", "rdkit.Chem.rdDetermineBonds")

    def __init__(self, radius: int = 2, fp_size: int = 2048, descriptors: bool = True):
        self.radius = radius
        self.fp_size = fp_size
        self.descriptors = descriptors

    def _feature_names(self) -> list[str]:
        names = [f"morgan_{i}" for i in range(int(self.fp_size))]
        return names + (list(RDKIT_DESCRIPTORS) if self.descriptors else [])

    def _generator(self):
        cache = self.__dict__.setdefault("_gen_cache", {})
        if "gen" not in cache:
            from rdkit.Chem import rdFingerprintGenerator

            cache["gen"] = rdFingerprintGenerator.GetMorganGenerator(
                radius=int(self.radius), fpSize=int(self.fp_size)
            )
        return cache["gen"]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_gen_cache", None)
        return state

    def _transform_batch(self, batch: pa.Table):
        from rdkit.Chem import Descriptors

        gen = self._generator()
        funcs = [getattr(Descriptors, name) for name in RDKIT_DESCRIPTORS] if self.descriptors else []
        arr = atoms_arrays(batch)
        smiles = batch.column("smiles").to_pylist()
        charge = batch.column("charge").to_pylist()
        out = np.full((batch.num_rows, len(self.feature_names_)), np.nan)
        skipped = []
        fp = int(self.fp_size)
        for i in range(batch.num_rows):
            numbers, pos, _, pbc = arr.frame(i)
            mol, reason = mol_from_frame(smiles[i], numbers, pos, pbc, charge[i])
            if mol is None:
                skipped.append((i, reason))
                continue
            out[i, :fp] = gen.GetCountFingerprintAsNumPy(mol)
            for j, f in enumerate(funcs):
                out[i, fp + j] = f(mol)
        return out, skipped
