"""Exact duplicates over every frame, and near-duplicates on the chemical-space sample.

**Exact duplicates** (:class:`ExactDuplicates`, every frame, exact under merge): frames whose identity key
(:mod:`~monoculture.audit.coverage.identity`: same molecule by InChIKey, or same species and geometry in
any atom order) equals that of an earlier frame. ``n_duplicates`` counts the copies beyond the first of
each group, so a set of 10 frames in which one structure is written 3 times has 2 duplicates.

**Near-duplicates** (:func:`near_duplicates`, on the seeded sample): pairs of frames that are not exact
duplicates but the same structure to within a stated absolute tolerance. Candidates are the pairs of
sampled frames with the same formula of which one is among the other's ``k`` nearest neighbours in the
scaled descriptor space, nearest first, at most ``max_pairs`` of them; each candidate is then checked on
the structures themselves:

* two periodic frames: pymatgen's ``StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, primitive_cell=False,
  scale=False, attempt_supercell=False)`` (its default tolerances, without volume scaling or supercells);
* two frames not periodic in all three directions: the same bond graph (connectivity perceived from the
  positions by RDKit's ``DetermineConnectivity``, compared as canonical SMILES, so constitutional isomers
  differ) and sorted lists of all interatomic distances within :data:`MOLECULE_RMS_A` (0.1 Å) root mean
  square (the same molecule in nearly the same geometry; measured on hexane conformers from RDKit's ETKDG:
  0.08-0.22 Å apart, a 0.02 Å rattle 0.02 Å);
* two molecules known only by SMILES: the same InChIKey connectivity block (they differ only in the
  stereo, isotope or protonation layers). Constitutional isomers never share that block, so they are never
  near-duplicates.

Frames known by formula alone cannot be checked and are never near-duplicates.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .identity import IDENTITY_RULES, frame_identity

__all__ = ["ExactDuplicates", "near_duplicates", "STRUCTURE_MATCHER_TOLERANCES", "MOLECULE_RMS_A"]

#: Tolerances of pymatgen's StructureMatcher used for periodic frames.
STRUCTURE_MATCHER_TOLERANCES = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5.0}
#: Largest RMS difference (Å) of sorted interatomic distances of two near-duplicate non-periodic frames.
MOLECULE_RMS_A = 0.1
#: Candidate pairs checked at most by default, nearest first. A StructureMatcher fit of two 31-atom cells
#: takes about 12 ms here, so 500 pairs cost about 6 s (5,000 pairs were 25 s of a 38 s audit of a
#: 20,000-frame MPTrj-like file); when candidates remain unchecked, the share is a lower bound and says so.
MAX_PAIRS = 500


class ExactDuplicates:
    """Counts frames that repeat an earlier frame's identity, over the whole dataset.

    Memory: 8 bytes per frame for the key plus its id (Arrow string array); merges concatenate.
    """

    def __init__(self):
        self.keys_: list[np.ndarray] = []
        self.ids_: list[pa.Array] = []
        self.rules_: dict[str, int] = {}

    def update(self, batch: pa.Table) -> "ExactDuplicates":
        """Add the frames of a batch; returns self."""
        if batch.num_rows == 0:
            return self
        ident = frame_identity(batch)
        self.keys_.append(ident.key)
        self.ids_.append(batch.column("id").combine_chunks())
        rules, counts = np.unique(ident.rule, return_counts=True)
        for r, c in zip(rules, counts):
            self.rules_[str(r)] = self.rules_.get(str(r), 0) + int(c)
        return self

    def merge(self, other: "ExactDuplicates") -> "ExactDuplicates":
        """Add another accumulator's frames; returns self (exact and order independent)."""
        self.keys_ += other.keys_
        self.ids_ += other.ids_
        for r, c in other.rules_.items():
            self.rules_[r] = self.rules_.get(r, 0) + c
        return self

    def result(self, max_examples: int = 5) -> dict:
        """JSON-ready summary.

        Returns
        -------
        dict
            ``n_frames``, ``n_unique``, ``n_duplicates`` (frames beyond the first of their group), ``share``
            (``n_duplicates / n_frames``), ``n_groups`` (structures present more than once), ``rules``
            (frames per identity rule), ``rule`` (the text of each rule used) and ``examples`` (up to
            ``max_examples`` groups, each the sorted ids of one structure, at most 5 of them).
        """
        if not self.keys_:
            return {"n_frames": 0, "n_unique": 0, "n_duplicates": 0, "share": 0.0, "n_groups": 0, "rules": {},
                    "rule": {}, "examples": []}
        keys = np.concatenate(self.keys_)
        uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        n = int(keys.size)
        dup_groups = np.flatnonzero(counts > 1)
        examples = []
        if dup_groups.size:
            ids = pa.chunked_array(self.ids_).to_numpy(zero_copy_only=False)
            for g in dup_groups[:max_examples]:
                examples.append(sorted(str(i) for i in ids[inverse == g])[:5])
        return {"n_frames": n, "n_unique": int(uniq.size), "n_duplicates": n - int(uniq.size),
                "share": (n - int(uniq.size)) / n, "n_groups": int(dup_groups.size),
                "rules": dict(sorted(self.rules_.items())),
                "rule": {r: IDENTITY_RULES[r] for r in sorted(self.rules_)}, "examples": examples}


def _sorted_distances(positions: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import pdist

    return np.sort(pdist(positions))


def connectivity_smiles(numbers: np.ndarray, positions: np.ndarray) -> str:
    """Canonical SMILES of the bond graph RDKit perceives from 3-D positions (no bond orders, no charges)."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdDetermineBonds

    block = rdBase.BlockLogs()  # noqa: F841
    mol = Chem.RWMol()
    for z in numbers:
        mol.AddAtom(Chem.Atom(int(z)))
    conf = Chem.Conformer(len(numbers))
    for i, p in enumerate(positions):
        conf.SetAtomPosition(i, [float(x) for x in p])
    mol.AddConformer(conf)
    rdDetermineBonds.DetermineConnectivity(mol)
    return Chem.MolToSmiles(mol)


def _molecule_key(cache: dict, key: int, geometry: tuple) -> tuple:
    """(bond-graph SMILES, sorted distances) of a non-periodic frame, built once per sampled frame."""
    if key not in cache:
        numbers, pos, _, _ = geometry
        cache[key] = (connectivity_smiles(numbers, pos), _sorted_distances(pos))
    return cache[key]


def _structure(cache: dict, key: int, geometry: tuple):
    """The pymatgen Structure of a geometry tuple, built once per sampled frame."""
    if key not in cache:
        from pymatgen.core import Lattice, Structure

        numbers, pos, cell, _ = geometry
        cache[key] = Structure(Lattice(cell), numbers, pos, coords_are_cartesian=True)
    return cache[key]


def _pair_is_near(a: tuple, b: tuple, matcher, structure_a, structure_b, molecule_a, molecule_b) -> bool:
    """Whether two frames (geometry tuples ``a``, ``b``) are near-duplicates.

    ``structure_a`` / ``structure_b`` turn the tuples into (cached) pymatgen Structures, ``molecule_a`` /
    ``molecule_b`` into (cached) bond-graph SMILES and sorted distances.
    """
    na, pa_, _, pbca = a
    nb, pb, _, pbcb = b
    if len(na) != len(nb) or not np.array_equal(np.sort(na), np.sort(nb)):
        return False
    if pa_ is None or pb is None:
        return False
    periodic_a, periodic_b = bool(np.all(pbca)), bool(np.all(pbcb))
    if periodic_a != periodic_b:
        return False
    if periodic_a:
        try:
            return bool(matcher.fit(structure_a(a), structure_b(b)))
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):  # a degenerate cell: not a confirmed match
            return False
    if len(na) < 2:
        return True  # one atom of the same element, and no cell: the same thing
    (ga, da), (gb, db) = molecule_a(a), molecule_b(b)
    return ga == gb and bool(np.sqrt(np.mean((da - db) ** 2)) <= MOLECULE_RMS_A)


def near_duplicates(sample, idx: np.ndarray, dist: np.ndarray, *, other=None, max_pairs: int = MAX_PAIRS,
                    max_examples: int = 5) -> dict:
    """Near-duplicate pairs of a descriptor sample, or of it against another (see the module docstring).

    Parameters
    ----------
    sample : DescriptorSample
        The chemical-space sample (with ``identity``, ``connectivity``, ``rules`` and ``geometry``).
    idx, dist : numpy.ndarray, shape (n, k)
        Neighbours of each row of ``sample`` (leave-one-out within ``sample``, or in ``other``) in the scaled
        descriptor space, and their distances.
    other : DescriptorSample, optional
        The sample ``idx`` points into (a reference); default ``sample`` itself.
    max_pairs : int
        Candidate pairs checked at most (nearest first).
    max_examples : int
        Example pairs kept.

    Returns
    -------
    dict
        ``n`` (frames of ``sample`` in at least one near-duplicate pair), ``share`` (of ``sample``),
        ``n_pairs``, ``candidate_pairs``, ``pairs_checked``, ``complete`` (every candidate checked),
        ``share_is_lower_bound`` (not complete: unchecked candidates may be near-duplicates too),
        ``match_rate`` (confirmed share of the checked pairs), ``rule`` and ``examples`` ([[id, id], ...]).
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    self_mode = other is None
    other = sample if self_mode else other
    n, k = idx.shape
    rows = np.repeat(np.arange(n), k)
    cols = idx.ravel()
    d = dist.ravel()
    ok = (cols >= 0) & ((cols != rows) if self_mode else True)
    rows, cols, d = rows[ok], cols[ok], d[ok]
    ok = (sample.formulas[rows] == other.formulas[cols]) & (sample.identity[rows] != other.identity[cols])
    a, b, d = rows[ok], cols[ok], d[ok]
    if self_mode:
        a, b = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((b, a, d))
    _, first = np.unique(a[order].astype(np.int64) * max(len(other), 1) + b[order], return_index=True)
    first = np.sort(first)
    pairs = list(zip(a[order][first].tolist(), b[order][first].tolist()))
    n_candidates = len(pairs)
    pairs = pairs[:max_pairs]
    matcher = StructureMatcher(**STRUCTURE_MATCHER_TOLERANCES, primitive_cell=False, scale=False,
                               attempt_supercell=False)
    cache_a: dict = {}
    cache_b = cache_a if self_mode else {}
    mol_a: dict = {}
    mol_b = mol_a if self_mode else {}
    flagged = np.zeros(n, bool)
    found = []
    for i, j in pairs:
        if sample.rules[i] == "molecule" and other.rules[j] == "molecule":
            near = bool(sample.connectivity[i]) and sample.connectivity[i] == other.connectivity[j]
        elif sample.rules[i] == "geometry" and other.rules[j] == "geometry":
            near = _pair_is_near(sample.geometry[i], other.geometry[j], matcher,
                                 lambda g, key=i: _structure(cache_a, key, g),
                                 lambda g, key=j: _structure(cache_b, key, g),
                                 lambda g, key=i: _molecule_key(mol_a, key, g),
                                 lambda g, key=j: _molecule_key(mol_b, key, g))
        else:
            near = False
        if near:
            flagged[i] = True
            if self_mode:
                flagged[j] = True
            found.append((i, j))
    return {
        "n": int(flagged.sum()), "share": float(flagged.mean()) if n else 0.0, "n_pairs": len(found),
        "candidate_pairs": n_candidates, "pairs_checked": len(pairs), "complete": len(pairs) == n_candidates,
        "share_is_lower_bound": len(pairs) < n_candidates,
        "match_rate": len(found) / len(pairs) if pairs else 0.0,
        "rule": (f"not an exact duplicate, same formula, among the {k} nearest frames in the scaled descriptor "
                 f"space (at most {max_pairs} candidate pairs checked, nearest first), and: periodic frames match by pymatgen StructureMatcher "
                 f"(ltol {STRUCTURE_MATCHER_TOLERANCES['ltol']}, stol {STRUCTURE_MATCHER_TOLERANCES['stol']}, "
                 f"angle_tol {STRUCTURE_MATCHER_TOLERANCES['angle_tol']} deg, no volume scaling); non-periodic "
                 f"frames have the same bond graph and sorted interatomic distances within {MOLECULE_RMS_A} Å RMS; SMILES-only molecules "
                 f"share the InChIKey connectivity block (differ only in stereo / isotope / protonation)"),
        "examples": [[str(sample.ids[i]), str(other.ids[j])] for i, j in found[:max_examples]],
    }
