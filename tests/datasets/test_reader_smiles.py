"""SMILES reader: RDKit's bundled NCI .smi file, CSV / TSV tables, invalid SMILES, corrupted bytes."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from corrupt_bytes import corruptions
from rdkit import RDConfig

from monoculture.datasets import Accounting, DatasetOpenError, open_dataset
from monoculture.datasets.frames import concat_batches
from monoculture.datasets.readers import smiles as smiles_reader
from monoculture.datasets.registry import ReadOptions

NCI_SMI = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"

TABLE = (
    "mol_id,SMILES,note\n"
    "m1,CCO,ethanol\n"
    "m2,C1CC,unclosed ring\n"
    "m3,[NH4+],ammonium\n"
    "m4,[CH3],methyl radical\n"
    "m5,,empty\n"
    "m6,C(C)(C)(C)(C)C,five-valent carbon\n"
    "m7,[2H]OC,deuterated methanol\n"
)


def _read(path, **kw):
    ds = open_dataset(path, quiet=True, **kw)
    return concat_batches(ds.batches()), ds.accounting


def test_nci_first_5k_every_line_accounted():
    if not NCI_SMI.exists():
        pytest.skip("RDKit installation without its NCI data files")
    lines = [ln for ln in NCI_SMI.read_text().splitlines() if ln.strip()]
    table, acc = _read(NCI_SMI)
    assert acc.read + acc.skipped + acc.failed == len(lines)
    assert acc.failed == 0
    assert set(acc.skipped_reasons) <= {"invalid_smiles"}
    assert table.num_rows == acc.read > 0.99 * len(lines)
    first = table.slice(0, 1).to_pylist()[0]
    smiles, name = lines[0].split()
    assert (first["smiles"], first["id"]) == (smiles, name)
    assert first["formula"] == "C7H6O2" and first["n_atoms"] == 15  # implicit H made explicit
    assert first["positions"] is None and first["pbc"] == [False, False, False]
    assert first["method"] == "unknown" and first["energy_eV"] is None
    assert first["cell"] == [0.0] * 9 and first["volume_A3"] is None


def test_csv_table(tmp_path, capfd):
    path = tmp_path / "mols.csv"
    path.write_text(TABLE)
    table, acc = _read(path)
    rows = {r["id"]: r for r in table.to_pylist()}
    assert sorted(rows) == ["m1", "m3", "m4", "m7"]
    assert (acc.read, acc.skipped, acc.failed) == (4, 3, 0)
    assert dict(acc.skipped_reasons) == {"invalid_smiles": 3}
    details = {e.key: e.detail for e in acc.examples}
    assert "unclosed ring" in details["line 3"].lower()
    assert "valence" in details["line 7"].lower()
    assert "empty" in details["line 6"].lower()
    assert rows["m1"]["formula"] == "C2H6O" and rows["m1"]["smiles"] == "CCO"
    assert (rows["m3"]["charge"], rows["m3"]["spin"], rows["m3"]["n_atoms"]) == (1, 1, 5)
    assert (rows["m4"]["charge"], rows["m4"]["spin"], rows["m4"]["n_atoms"]) == (0, 2, 4)
    assert rows["m7"]["n_atoms"] == 6 and rows["m7"]["smiles"] == "[2H]OC"
    assert rows["m1"]["source"] == f"{path}::line 2"
    assert "SMILES Parse Error" not in capfd.readouterr().err  # RDKit's own logging is silenced


def test_tsv_and_smiles_column_option(tmp_path):
    path = tmp_path / "mols.tsv"
    path.write_text("structure\tlabel\nc1ccccc1\tbenzene\nO=C=O\tco2\n")
    with pytest.raises(DatasetOpenError, match="pass --smiles-column"):  # opened on its own: one error at open
        open_dataset(path)
    acc = Accounting(quiet=True)  # read anyway (as inside a folder): one failed record, nothing read
    assert list(smiles_reader.iter_records(path, ReadOptions(), acc)) == []
    assert (acc.read, acc.failed) == (0, 1)
    assert dict(acc.failed_reasons) == {"no_smiles_column": 1}
    table, acc = _read(path, options=ReadOptions(smiles_column="structure"))
    assert acc.read == 2
    assert table.column("formula").to_pylist() == ["C6H6", "CO2"]
    assert table.column("id").to_pylist() == ["mols.tsv:2", "mols.tsv:3"]


def test_smi_header_comments_and_names(tmp_path):
    path = tmp_path / "set.smi"
    path.write_text("SMILES Name\n# a comment\n\nCC ethane gas\n  N  \nnot_a_smiles x\n")
    table, acc = _read(path)
    assert (acc.read, acc.skipped, acc.failed) == (2, 1, 0)
    assert table.column("id").to_pylist() == ["ethane gas", "set.smi:5"]
    assert table.column("formula").to_pylist() == ["C2H6", "H3N"]


def test_undecodable_line_fails_and_reading_goes_on(tmp_path):
    path = tmp_path / "bad.smi"
    path.write_bytes(b"CCO a\n\xff\xfe\x00C b\nCCN c\n")
    table, acc = _read(path)
    assert (acc.read, acc.skipped, acc.failed) == (2, 0, 1)
    assert dict(acc.failed_reasons) == {"undecodable_line": 1}


def test_oversized_csv_field_fails_one_row(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text('smiles,id\nCC,"' + "x" * 200_000 + '"\nCCO,b\n')
    table, acc = _read(path)
    assert (acc.read, acc.failed) == (1, 1)
    assert dict(acc.failed_reasons) == {"bad_row": 1}
    assert table.column("id").to_pylist() == ["b"]
    path.write_text('"' + "x" * 200_000 + '",smiles\nx,CC\n')
    _, acc = _read(path)
    assert (acc.read, dict(acc.failed_reasons)) == (0, {"bad_header": 1})


def test_mol_from_smiles_reason():
    mol, reason = smiles_reader.mol_from_smiles("C1CC(")
    assert mol is None and "SMILES Parse Error" in reason
    mol, reason = smiles_reader.mol_from_smiles("c1ccccc1")
    assert reason is None and mol.GetNumAtoms() == 6


SMI_BYTES = b"CCO ethanol\nc1ccccc1 benzene\n[NH4+] ammonium\nC1CC broken\nO=C=O\n"


@settings(max_examples=30, deadline=None)
@given(data=corruptions(SMI_BYTES))
def test_corrupt_smi_never_raises(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("smifuzz") / "fuzz.smi"
    path.write_bytes(data)
    table, acc = _read(path, format="smiles")
    assert table.num_rows == acc.read
    assert min(acc.read, acc.skipped, acc.failed) >= 0
    assert acc.read + acc.skipped + acc.failed <= len(data.split(b"\n"))


@settings(max_examples=30, deadline=None)
@given(data=corruptions(TABLE.encode()))
def test_corrupt_csv_never_raises(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("csvfuzz") / "fuzz.csv"
    path.write_bytes(data)
    try:
        table, acc = _read(path, format="smiles")
    except DatasetOpenError as exc:  # the header lost its SMILES column: one clean error at open
        assert str(exc).startswith(f"{path}: no SMILES column") and "--smiles-column" in str(exc)
        return
    assert table.num_rows == acc.read
    assert min(acc.read, acc.skipped, acc.failed) >= 0
    n_lines = len(re.split(rb"\r\n|\r|\n", data))  # the csv module also ends rows at a bare \r
    assert acc.read + acc.skipped + acc.failed <= max(1, n_lines - 1)
