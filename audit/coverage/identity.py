"""Identity of a frame: what makes two records *the same structure* (exact duplicates).

Two rules, chosen per frame (documented contract, recorded in every result as :data:`IDENTITY_RULES`):

* **molecule** (a frame with a SMILES string and no 3D positions): the standard InChIKey of the molecule
  RDKit parses from the SMILES. Two records are the same molecule when their InChIKeys are equal, so
  ``OCC`` and ``CCO`` are one molecule while constitutional isomers (2,2- and 2,3-dimethylbutane) and
  stereoisomers differ. The first block of the key (14 characters, the connectivity) is kept as
  :attr:`FrameIdentity.connectivity`.
* **geometry** (every frame with positions): species and geometry, invariant to the order of the atoms.
  Periodic frames: the cell (rounded to :data:`CELL_DECIMALS` decimals of Å) and each atom's fractional
  coordinates wrapped into [0, 1) and rounded to :data:`FRAC_DECIMALS` decimals; other frames: Cartesian
  positions relative to the centroid rounded to :data:`POS_DECIMALS` decimals of Å. The atoms enter as a
  multiset (a sum of per-atom 64-bit hashes), so the same structure written with its atoms in another order
  is the same. Rotated or translated copies of a crystal are *not* recognised here: those are left to the
  near-duplicate check (:mod:`~monoculture.audit.coverage.duplicates`).

A SMILES the RDKit cannot parse falls back to its literal string. Keys are 64-bit hashes (pandas' SipHash):
two different structures share a key with probability about ``n^2 / 2^65``.

Everything but the InChIKeys is vectorised over a batch (one pass of numpy / pandas hashing over all atoms).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa

from ...datasets.frames import atoms_arrays

__all__ = ["FrameIdentity", "frame_identity", "inchikey", "IDENTITY_RULES", "FRAC_DECIMALS", "CELL_DECIMALS",
           "POS_DECIMALS"]

#: Decimals kept of wrapped fractional coordinates (1e-4 of a 5 Å cell is 5e-4 Å).
FRAC_DECIMALS = 4
#: Decimals kept of cell vectors (Å).
CELL_DECIMALS = 3
#: Decimals kept of centred Cartesian positions of non-periodic frames (Å).
POS_DECIMALS = 3

#: The identity rules, as they are written into results.
IDENTITY_RULES = {
    "molecule": "same standard InChIKey (RDKit, from the SMILES): same molecule incl. stereochemistry",
    "geometry": (f"same species and geometry in any atom order: cell rounded to {CELL_DECIMALS} decimals of Å "
                 f"and fractional coordinates wrapped into [0, 1) rounded to {FRAC_DECIMALS} decimals "
                 f"(periodic), or positions about the centroid rounded to {POS_DECIMALS} decimals of Å"),
    "formula": "same formula (a frame with neither positions nor SMILES: nothing else is known of it)",
}

_HASH_KEY = "monoculture-id-0"  # 16 characters: pandas' SipHash key (fixed: keys must not depend on a seed)


@dataclass(frozen=True)
class FrameIdentity:
    """Identity keys of the frames of one batch.

    Attributes
    ----------
    key : numpy.ndarray, shape (n,), uint64
        Equal keys mean the same structure (see the module docstring).
    rule : numpy.ndarray of str, shape (n,)
        ``"molecule"`` or ``"geometry"`` per frame.
    connectivity : numpy.ndarray of str, shape (n,)
        InChIKey connectivity block (14 characters) of molecule-rule frames; ``""`` for the others.
    """

    key: np.ndarray
    rule: np.ndarray
    connectivity: np.ndarray


@lru_cache(maxsize=16384)
def inchikey(smiles: str) -> str | None:
    """Standard InChIKey of a SMILES string (RDKit), or None when RDKit cannot parse it.

    Memoised (the last 16,384 strings): the exact-duplicate count and the chemical-space reservoir both
    key the frames of a batch (4,096 frames by default), so each SMILES was parsed and keyed twice
    (1.6 s of InChIKeys for 5,000 SMILES, half of them repeated).
    """
    from rdkit import Chem, rdBase

    block = rdBase.BlockLogs()  # noqa: F841  (silences RDKit's C++ log while alive)
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    key = Chem.MolToInchiKey(mol)
    return key or None


def _hash_rows(columns: dict[str, np.ndarray]) -> np.ndarray:
    if not len(next(iter(columns.values()))):
        return np.zeros(0, np.uint64)
    return pd.util.hash_pandas_object(pd.DataFrame(columns), index=False, hash_key=_HASH_KEY).to_numpy(np.uint64)


def _geometry_keys(batch: pa.Table, rows: np.ndarray) -> np.ndarray:
    """Geometry keys of ``rows`` of ``batch`` (frames that have positions)."""
    arr = atoms_arrays(batch.take(pa.array(rows)))
    n = len(arr)
    lens = np.diff(arr.offsets)
    owner = np.repeat(np.arange(n), lens)
    periodic = arr.pbc.all(axis=1)
    pos = arr.positions
    coords = np.empty_like(pos)
    if periodic.any():
        cells = arr.cells.astype(np.float64)
        inv = np.zeros_like(cells)
        ok = periodic & (np.abs(np.linalg.det(cells)) > 1e-12)
        inv[ok] = np.linalg.inv(cells[ok])
        frac = np.einsum("ai,aij->aj", pos, inv[owner])
        frac = np.round(frac - np.floor(frac), FRAC_DECIMALS)
        frac[frac >= 1.0] -= 1.0  # 0.99996 rounds to 1.0: the same point as 0.0
        coords[:] = frac
    if (~periodic).any():
        sums = np.add.reduceat(pos, arr.offsets[:-1], axis=0) if pos.shape[0] else np.zeros((n, 3))
        centroid = sums / np.maximum(lens, 1)[:, None]
        centred = np.round(pos - centroid[owner], POS_DECIMALS)
        np_atoms = ~periodic[owner]
        coords[np_atoms] = centred[np_atoms]
    scale = np.where(periodic[owner], 10.0**FRAC_DECIMALS, 10.0**POS_DECIMALS)[:, None]
    q = np.rint(coords * scale).astype(np.int64)
    atom_h = _hash_rows({"z": arr.numbers.astype(np.int64), "x": q[:, 0], "y": q[:, 1], "z3": q[:, 2]})
    with np.errstate(over="ignore"):
        multiset = (np.add.reduceat(atom_h, arr.offsets[:-1]) if atom_h.size else np.zeros(n, np.uint64))
    multiset[lens == 0] = 0
    cell_q = np.rint(np.where(periodic[:, None, None], arr.cells, 0.0) * 10.0**CELL_DECIMALS).astype(np.int64)
    cols = {"atoms": multiset.view(np.int64), "n": lens, "pbc": (arr.pbc * np.array([1, 2, 4])).sum(1)}
    for i in range(3):
        for j in range(3):
            cols[f"c{i}{j}"] = cell_q[:, i, j]
    return _hash_rows(cols)


def frame_identity(batch: pa.Table) -> FrameIdentity:
    """Identity keys of every frame of a frame batch.

    Parameters
    ----------
    batch : pyarrow.Table
        Frame batch (:data:`~monoculture.datasets.frames.FRAME_SCHEMA`).

    Returns
    -------
    FrameIdentity
    """
    n = batch.num_rows
    key = np.zeros(n, np.uint64)
    rule = np.full(n, "geometry", dtype=object)
    conn = np.full(n, "", dtype=object)
    has_pos = batch.column("positions").is_valid().to_numpy(zero_copy_only=False).astype(bool)
    smiles = batch.column("smiles").to_pylist() if "smiles" in batch.column_names else [None] * n
    mol_rows = [i for i in range(n) if not has_pos[i] and smiles[i]]
    if mol_rows:
        texts = []
        for i in mol_rows:
            k = inchikey(smiles[i])
            texts.append(k if k is not None else f"unparsed:{smiles[i]}")
            conn[i] = k.split("-")[0] if k is not None else ""
        key[mol_rows] = pd.util.hash_array(np.asarray(texts, dtype=object), hash_key=_HASH_KEY, categorize=False)
        rule[mol_rows] = "molecule"
    geo_rows = np.flatnonzero(has_pos)
    if geo_rows.size:
        key[geo_rows] = _geometry_keys(batch, geo_rows)
    # a frame with neither positions nor SMILES: its species and counts are all there is
    rest = np.flatnonzero(~has_pos & (rule == "geometry"))
    if rest.size:
        formulas = np.asarray(batch.column("formula").take(pa.array(rest)).to_pylist(), dtype=object)
        key[rest] = pd.util.hash_array(formulas, hash_key=_HASH_KEY, categorize=False)
        rule[rest] = "formula"
    return FrameIdentity(key, rule.astype(str), conn.astype(str))
