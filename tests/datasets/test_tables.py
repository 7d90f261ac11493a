"""SMILES tables: --smiles-column / --id-column, column detection, and one error for a table without SMILES."""
from __future__ import annotations

import pytest

from monoculture.cli import _open_all, build_parser, main
from monoculture.datasets import DatasetOpenError, ReadOptions, concat_batches, open_dataset

TABLE = "compound,structure,pIC50\nasp,CC(=O)Oc1ccccc1C(=O)O,5.1\neth,CCO,3.0\nbad,C1CC,0.0\n"


def _read(path, **kw):
    ds = open_dataset(path, quiet=True, **kw)
    return concat_batches(ds.batches()), ds.accounting


def test_cli_smiles_and_id_columns(tmp_path):
    path = tmp_path / "assay.csv"
    path.write_text(TABLE)
    args = build_parser().parse_args(["audit", str(path), "--smiles-column", "structure", "--id-column", "compound"])
    (ds,) = _open_all(args)
    assert (ds.options.smiles_column, ds.options.id_column) == ("structure", "compound")
    table = concat_batches(ds.batches())
    assert table.column("id").to_pylist() == ["asp", "eth"]
    assert table.column("formula").to_pylist() == ["C9H8O4", "C2H6O"]  # aspirin, ethanol
    assert table.column("smiles").to_pylist() == ["CC(=O)Oc1ccccc1C(=O)O", "CCO"]
    acc = ds.accounting
    assert (acc.read, acc.skipped, acc.failed) == (2, 1, 0)
    assert [e.key for e in acc.examples] == ["line 4"]  # the unclosed ring


def test_id_column_default_is_file_and_line(tmp_path):
    path = tmp_path / "assay.csv"
    path.write_text(TABLE)
    table, _ = _read(path, options=ReadOptions(smiles_column="structure"))
    assert table.column("id").to_pylist() == ["assay.csv:2", "assay.csv:3"]


def test_column_names_match_any_case(tmp_path):
    path = tmp_path / "pubchem.tsv"  # PubChem's column name: contains "smiles", not equal to it
    path.write_text("CID\tIsomericSMILES\n702\tCCO\n241\tc1ccccc1\n")
    table, acc = _read(path, options=ReadOptions(id_column="cid"))
    assert acc.read == 2
    assert table.column("id").to_pylist() == ["702", "241"]
    assert table.column("formula").to_pylist() == ["C2H6O", "C6H6"]


@pytest.mark.parametrize("options, message", [
    (ReadOptions(), "no SMILES column (none named like 'smiles'); its columns are 'compound', 'structure', 'pIC50'; "
                    "pass --smiles-column NAME"),
    (ReadOptions(smiles_column="SMILES"), "no column 'SMILES'; its columns are"),
    (ReadOptions(smiles_column="structure", id_column="name"), "no column 'name'; its columns are"),
])
def test_missing_column_is_one_error_at_open(tmp_path, options, message):
    path = tmp_path / "assay.csv"
    path.write_text(TABLE)
    with pytest.raises(DatasetOpenError) as info:
        open_dataset(path, options=options)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_missing_smiles_column_prints_one_line(tmp_path, capsys):
    path = tmp_path / "assay.csv"
    path.write_text(TABLE)
    assert main(["audit", str(path), "--no-umap"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(path) in err[0] and "'structure'" in err[0] and "--smiles-column" in err[0]


def test_table_without_smiles_inside_a_folder_is_one_failed_file(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    (folder / "a.csv").write_text("smiles,name\nCCO,ethanol\n")
    (folder / "b.csv").write_text(TABLE)
    table, acc = _read(folder)
    assert table.column("id").to_pylist() == ["a.csv:ethanol"]
    assert (acc.read, acc.failed, dict(acc.failed_reasons)) == (1, 1, {"no_smiles_column": 1})
    assert acc.examples[0].file == str(folder / "b.csv")
