"""Identity keys, exact duplicates over every frame and near-duplicates on the sample, on real structures."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule

from monoculture.audit.coverage import ChemicalSpaceCoverage
from monoculture.audit.coverage.duplicates import ExactDuplicates
from monoculture.audit.coverage.identity import frame_identity
from monoculture.datasets.frames import concat_batches
from monoculture.datasets.memory import frames_from_records
from monoculture.datasets.records import RawFrame


def _frames(atoms_list, ids=None, dataset="t"):
    records = [RawFrame(id=ids[i] if ids else f"f{i}", key=str(i), numbers=a.numbers, positions=a.positions,
                        cell=a.cell[:] if a.pbc.all() else None, pbc=a.pbc)
               for i, a in enumerate(atoms_list)]
    return frames_from_records(records, dataset=dataset, file=f"{dataset}.xyz")


def _smiles(smiles, ids=None):
    from rdkit import Chem

    records = []
    for i, s in enumerate(smiles):
        mol = Chem.AddHs(Chem.MolFromSmiles(s))
        records.append(RawFrame(id=ids[i] if ids else f"s{i}", key=str(i),
                                numbers=np.array([a.GetAtomicNum() for a in mol.GetAtoms()]), smiles=s))
    return frames_from_records(records, dataset="smi", file="t.smi")


def test_geometry_identity_is_invariant_to_atom_order_and_wrapping():
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    permuted = nacl[[3, 1, 0, 2, 7, 5, 4, 6]]
    wrapped = nacl.copy()
    wrapped.positions[0] += wrapped.cell[0]  # the same point one cell over
    moved = nacl.copy()
    moved.positions[0] += 0.05
    water = molecule("H2O")
    shifted = water.copy()
    shifted.translate([3.0, -1.0, 2.0])
    key = frame_identity(_frames([nacl, permuted, wrapped, moved, water, shifted])).key
    assert key[0] == key[1] == key[2]
    assert key[3] != key[0]
    assert key[4] == key[5] and key[4] != key[0]


def test_molecule_identity_by_inchikey():
    ident = frame_identity(_smiles(["CCO", "OCC", "COC", "CC(C)(C)CC", "CC(C)C(C)C", "C[C@H](N)O", "C[C@@H](N)O"]))
    k = ident.key
    assert (ident.rule == "molecule").all()
    assert k[0] == k[1]  # the same molecule written twice
    assert k[0] != k[2]  # ethanol vs dimethyl ether: constitutional isomers
    assert k[3] != k[4]  # 2,2- vs 2,3-dimethylbutane
    assert k[5] != k[6] and ident.connectivity[5] == ident.connectivity[6]  # enantiomers share connectivity


def test_exact_duplicates_count_and_merge():
    cu, si = bulk("Cu", "fcc", a=3.6), bulk("Si", "diamond", a=5.43)
    b1 = _frames([cu, si, cu.copy()], ids=["a", "b", "c"])
    b2 = _frames([si.copy(), cu.copy(), bulk("Cu", "fcc", a=3.7)], ids=["d", "e", "f"])
    whole = ExactDuplicates().update(concat_batches([b1, b2])).result()
    merged = ExactDuplicates().update(b2).merge(ExactDuplicates().update(b1)).result()
    # Cu x3 (a, c, e) and Si x2 (b, d): 3 duplicates in 2 groups; the strained Cu (f) is no duplicate
    assert whole["n_frames"] == 6 and whole["n_unique"] == 3 and whole["n_duplicates"] == 3
    assert whole["n_groups"] == 2 and whole["rules"] == {"geometry": 6}
    assert sorted(whole["examples"]) == [["a", "c", "e"], ["b", "d"]]
    assert merged["n_duplicates"] == whole["n_duplicates"] and sorted(merged["examples"]) == sorted(whole["examples"])


def _space(batch, k=5):
    x = np.random.default_rng(0).normal(size=(batch.num_rows, 3)).astype(np.float32) * 1e-3
    return ChemicalSpaceCoverage(sample_size=100, k=k, umap=False, quests_crosscheck=False).update(batch, x).result()


def test_near_duplicates_of_crystals():
    rng = np.random.default_rng(1)
    base = bulk("Cu", "fcc", a=3.6, cubic=True)
    rattled = base.copy()
    rattled.positions += rng.normal(scale=0.02, size=rattled.positions.shape)  # thermal-size displacement
    strained = base.copy()
    strained.set_cell(base.cell * 1.4, scale_atoms=True)  # 40 % longer: not the same structure
    other = bulk("Cu", "bcc", a=2.87, cubic=True) * (2, 1, 1)  # Cu4 too, another lattice
    r = _space(_frames([base, rattled, strained, other], ids=["base", "rattled", "strained", "bcc"]))
    nd = r["near_duplicates"]
    assert nd["complete"] and nd["candidate_pairs"] == 6
    assert [sorted(p) for p in nd["examples"]] == [["base", "rattled"]] and nd["n"] == 2 and nd["share"] == 0.5


def test_isomers_are_never_duplicates():
    from rdkit import Chem
    from rdkit.Chem import AllChem

    # five hexane isomers as 3-D molecules (RDKit ETKDG) and as SMILES: no exact, no near duplicate
    smiles = ["CCCCCC", "CC(C)CCC", "CCC(C)CC", "CC(C)(C)CC", "CC(C)C(C)C"]
    atoms = []
    for s in smiles:
        from ase import Atoms

        mol = Chem.AddHs(Chem.MolFromSmiles(s))
        AllChem.EmbedMolecule(mol, randomSeed=7)
        atoms.append(Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()],
                           positions=mol.GetConformer().GetPositions()))
    for batch in (_frames(atoms), _smiles(smiles)):
        assert ExactDuplicates().update(batch).result()["n_duplicates"] == 0
        nd = _space(batch)["near_duplicates"]
        assert nd["candidate_pairs"] == 10 and nd["n"] == 0


def test_smiles_stereoisomers_are_near_not_exact():
    batch = _smiles(["C[C@H](N)O", "C[C@@H](N)O", "CC(N)O", "c1ccccc1", "c1ccccc1"])
    ex = ExactDuplicates().update(batch).result()
    assert ex["n_duplicates"] == 1 and ex["examples"] == [["s3", "s4"]]
    nd = _space(batch)["near_duplicates"]
    assert nd["n"] == 3 and nd["n_pairs"] == 3  # the three C2H7NO records share one constitution
    assert pytest.approx(nd["share"]) == 3 / 5


def test_near_duplicate_budget_gives_a_lower_bound():
    rng = np.random.default_rng(2)
    base = bulk("Cu", "fcc", a=3.6, cubic=True)
    frames = []
    for _ in range(8):
        a = base.copy()
        a.positions += rng.normal(scale=0.01, size=a.positions.shape)
        frames.append(a)
    batch = _frames(frames)
    x = np.zeros((8, 3), np.float32)
    full = ChemicalSpaceCoverage(sample_size=100, k=7, umap=False, quests_crosscheck=False).update(batch, x).result()
    capped = ChemicalSpaceCoverage(sample_size=100, k=7, umap=False, quests_crosscheck=False,
                                   max_near_duplicate_pairs=3).update(batch, x).result()
    f, c = full["near_duplicates"], capped["near_duplicates"]
    assert f["candidate_pairs"] == 28 and f["complete"] and not f["share_is_lower_bound"] and f["n"] == 8
    assert c["pairs_checked"] == 3 and c["share_is_lower_bound"] and c["n"] <= f["n"] and c["match_rate"] == 1.0
