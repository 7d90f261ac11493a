"""SDF reader: RDKit's bundled NCI SD file, a hand-corrupted copy, 3D records, energies, corrupted bytes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from corrupt_bytes import corruptions
from rdkit import Chem, RDConfig
from rdkit.Chem import AllChem

from monoculture.datasets import open_dataset
from monoculture.datasets.frames import concat_batches
from monoculture.datasets.registry import ReadOptions, sniff_format

NCI_SDF = Path(RDConfig.RDDataDir) / "NCI" / "first_200.props.sdf"
END = b"$$$$\n"


@pytest.fixture(scope="module")
def nci_bytes():
    if not NCI_SDF.exists():
        pytest.skip("RDKit installation without its NCI data files")
    return NCI_SDF.read_bytes()


def _read(path, **kw):
    ds = open_dataset(path, quiet=True, **kw)
    return concat_batches(ds.batches()), ds.accounting


def _embedded(smiles: str, name: str, **props) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=7) == 0
    mol.SetProp("_Name", name)
    for key, value in props.items():
        mol.SetProp(key, value)
    return mol


def _write_sdf(path, mols):
    writer = Chem.SDWriter(str(path))
    for mol in mols:
        writer.write(mol)
    writer.close()
    return path


def test_nci_first_200(nci_bytes):
    table, acc = _read(NCI_SDF)
    assert sniff_format(NCI_SDF) == "sdf"
    assert (acc.read, acc.skipped, acc.failed) == (nci_bytes.count(END), 0, 0) == (200, 0, 0)
    first = table.slice(0, 1).to_pylist()[0]
    assert first["id"] == "first_200.props.sdf:0"  # the records have empty names
    assert first["formula"] == "C7H6O2" and first["n_atoms"] == 15  # implicit H made explicit
    assert first["smiles"] == Chem.MolToSmiles(Chem.MolFromSmiles("CC1=CC(=O)C=CC1=O"))
    assert first["energy_eV"] is None and first["method"] == "unknown"
    assert table.column("positions").null_count == 200  # 2D depictions carry no geometry
    assert set(table.column("spin").to_pylist()) >= {1}


def test_hand_corrupted_copy(tmp_path, nci_bytes):
    records = nci_bytes.split(END)
    atom_line = records[2].split(b"\n")[4]
    records[2] = records[2].replace(atom_line, b"garbage " + atom_line[8:], 1)  # unreadable coordinate
    path = tmp_path / "corrupted.sdf"
    path.write_bytes(END.join(records))
    table, acc = _read(path)
    assert (acc.read, acc.skipped, acc.failed) == (199, 1, 0)
    issue = acc.examples[0]
    assert (issue.key, issue.reason) == ("record 2", "invalid_molecule")
    assert "coordinates" in issue.detail  # RDKit's message, captured
    ids = table.column("id").to_pylist()
    assert "corrupted.sdf:2" not in ids
    assert ids[1:3] == ["corrupted.sdf:1", "corrupted.sdf:3"]  # ids keep the index in the file


def test_truncated_copy(tmp_path, nci_bytes):
    records = nci_bytes.split(END)
    path = tmp_path / "cut.sdf"
    path.write_bytes(END.join(records[:3]) + END + records[3][:300])
    _, acc = _read(path)
    assert (acc.read, acc.skipped + acc.failed) == (3, 1)


def test_valence_error_is_skipped_with_reason(tmp_path):
    bad = Chem.MolFromSmiles("C(C)(C)(C)(C)C", sanitize=False)
    path = tmp_path / "valence.sdf"
    path.write_text(Chem.MolToMolBlock(bad) + "$$$$\n" + Chem.MolToMolBlock(Chem.MolFromSmiles("CC")) + "$$$$\n")
    _, acc = _read(path)
    assert (acc.read, acc.skipped) == (1, 1)
    assert "valence" in acc.examples[0].detail.lower()


def test_3d_positions_charge_spin(tmp_path):
    ethanol = _embedded("CCO", "ethanol", energy="-4.2")
    ammonium = _embedded("[NH4+]", "ammonium")
    methyl = _embedded("[CH3]", "")
    path = _write_sdf(tmp_path / "three.sdf", [ethanol, ammonium, methyl])
    table, acc = _read(path)
    assert acc.read == 3
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == ["ethanol", "ammonium", "three.sdf:2"]
    np.testing.assert_allclose(rows[0]["positions"], ethanol.GetConformer().GetPositions(), atol=1e-4)
    assert rows[0]["formula"] == "C2H6O" and rows[0]["smiles"] == "CCO"
    assert rows[0]["energy_eV"] is None  # a property called "energy" is not taken on trust
    assert (rows[1]["charge"], rows[1]["spin"]) == (1, 1)
    assert (rows[2]["charge"], rows[2]["spin"], rows[2]["n_atoms"]) == (0, 2, 4)


def test_implicit_h_on_3d_record_get_coordinates(tmp_path):
    heavy = Chem.RemoveHs(_embedded("CCO", "heavy only"))
    path = _write_sdf(tmp_path / "heavy.sdf", [heavy])
    table, _ = _read(path)
    row = table.to_pylist()[0]
    assert row["n_atoms"] == 9
    pos = np.asarray(row["positions"])
    np.testing.assert_allclose(pos[:3], heavy.GetConformer().GetPositions(), atol=1e-4)
    ch_bond = np.linalg.norm(pos[3] - pos[0])
    assert 0.9 < ch_bond < 1.2  # added hydrogens sit at bonding distance (Å)


def test_energy_key_option(tmp_path):
    path = _write_sdf(tmp_path / "e.sdf", [_embedded("O", "water", E_eV="-14.25"),
                                           _embedded("N", "ammonia", E_eV="n/a"),
                                           _embedded("C", "methane")])
    table, acc = _read(path, options=ReadOptions(energy_key="E_eV"))
    assert (acc.read, acc.skipped) == (2, 1)
    assert dict(acc.skipped_reasons) == {"bad_energy": 1}
    assert table.column("energy_eV").to_pylist() == [-14.25, None]
    table, _ = _read(path, options=ReadOptions(extra={"sdf_energy_key": "E_eV"}))
    assert table.column("energy_eV").to_pylist() == [-14.25, None]


def test_single_mol_file(tmp_path):
    path = tmp_path / "benzene.mol"
    Chem.MolToMolFile(_embedded("c1ccccc1", "benzene"), str(path))
    table, acc = _read(path)
    assert acc.read == 1 and table.column("formula").to_pylist() == ["C6H6"]
    assert table.column("smiles").to_pylist() == ["c1ccccc1"]


_SMALL = (Chem.MolToMolBlock(Chem.MolFromSmiles("CCO")) + "> <E>\n1.0\n\n$$$$\n"
          + Chem.MolToMolBlock(Chem.MolFromSmiles("c1ccncc1")) + "$$$$\n").encode()


@settings(max_examples=30, deadline=None)
@given(data=corruptions(_SMALL))
def test_corrupt_sdf_never_raises(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("sdffuzz") / "fuzz.sdf"
    path.write_bytes(data)
    table, acc = _read(path, format="sdf")
    assert table.num_rows == acc.read
    assert min(acc.read, acc.skipped, acc.failed) >= 0
    assert acc.read + acc.skipped + acc.failed <= data.count(b"$$$$") + 1
