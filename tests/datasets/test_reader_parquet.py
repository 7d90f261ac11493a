"""Parquet readers: LeMat-Bulk, LeMat-Traj, ColabFit (both schemas), ASE columns; every frame-table column
against the values written, with units and signs (LeMat kBar VASP sign -> GPa ASE sign; ColabFit eV/Å^3 and
virials), nulls, ids, level of theory, streaming and row-group shards, unknown schemas."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monoculture.datasets import UnknownFormatError, concat_batches, open_dataset, sniff_format

from parquet_files import (CELL_A, CELL_B, GPa_PER_EV_A3, assert_row, colabfit_rows, expected_row, lemat_bulk_rows,
                           lemat_traj_rows, voigt, write_ase, write_colabfit, write_lemat_bulk, write_lemat_traj)


def _read(path, **kw):
    ds = open_dataset(path, quiet=True, progress=False, **kw)
    t = concat_batches(ds.batches())
    return ds, {r["id"]: r for r in t.to_pylist()}, t


def test_lemat_bulk_every_column(tmp_path):
    path = write_lemat_bulk(tmp_path / "train-00000-of-00001.parquet")
    assert sniff_format(path) == "lemat"
    ds, rows, t = _read(path)
    assert ds.format == "lemat" and ds.card.name == "lemat-bulk"
    acc = ds.accounting.to_dict()
    assert acc["read"] == 3 and acc["skipped"] == 1 and acc["skipped_reasons"] == {"disordered_site": 1}
    assert list(rows) == ["mp-1/pbe", "oqmd-7/scan", "agm002/pbesol"]  # immutable_id/functional, file order
    src = lemat_bulk_rows()
    # mp-1: kBar with VASP sign (positive = compressive) -> GPa with ASE sign: -0.1 x
    stress = [-0.1 * v for v in voigt(src[0]["stress_tensor"])]
    assert stress[:3] == pytest.approx([-1.0, 2.0, -3.0]) and stress[3:] == pytest.approx([-0.3, -0.2, -0.1])
    assert_row(rows["mp-1/pbe"], expected_row([29, 79, 79], src[0]["cartesian_site_positions"], CELL_A, [True] * 3,
                                              -12.5, src[0]["forces"], stress))
    # OQMD row: no forces, no stress, no energy: nulls stay nulls
    assert_row(rows["oqmd-7/scan"], expected_row([26, 8], src[1]["cartesian_site_positions"], CELL_B, [True] * 3,
                                                 None, None, None))
    # species named Fe1 -> Fe through the species JSON
    assert_row(rows["agm002/pbesol"], expected_row([26, 26, 8], src[2]["cartesian_site_positions"], CELL_B,
                                                   [True] * 3, -20.0, src[2]["forces"], None))
    assert [rows[i]["functional"] for i in rows] == ["PBE", "SCAN", "PBEsol"]
    assert [rows[i]["level_of_theory"] for i in rows] == ["PBE", "SCAN", "PBEsol"]
    for r in rows.values():
        assert r["hubbard_u"] is None and r["basis"] is None and r["method"] == "relax"
        assert r["temperature_K"] is None and r["charge"] is None and r["spin"] is None and r["smiles"] is None
        assert r["dataset"] == "lemat-bulk" and r["subset"] is None
    assert rows["mp-1/pbe"]["source"] == f"{path}::{path.name}:0"
    assert rows["mp-1/pbe"]["pressure_GPa"] == pytest.approx(-(-1.0 + 2.0 - 3.0) / 3)


def test_lemat_traj_ids_stress_and_card(tmp_path):
    path = write_lemat_traj(tmp_path / "compatible_pbe" / "train-00000-of-00002.parquet")
    ds, rows, _ = _read(path)
    assert ds.format == "lemat" and ds.card.name == "lemat-traj"
    assert list(rows) == ["mp-5-0-pbe-0", "mp-5-0-pbe-1", "mp-5-0-pbe-2"]  # `id`, unique per frame
    src = lemat_traj_rows()
    for step, (rid, r) in enumerate(rows.items()):
        s = src[step]
        stress = None if s["stress_tensor"] is None else [-0.1 * v for v in voigt(s["stress_tensor"])]
        assert_row(r, expected_row([14, 14, 8], s["cartesian_site_positions"], CELL_A, [True] * 3, s["energy"],
                                   s["forces"], stress))
        assert r["energy_eV"] == -30.0 - step  # uncorrected energy, not energy_corrected
        assert r["level_of_theory"] == "PBE" and r["method"] == "relax"
    assert rows["mp-5-0-pbe-0"]["stress_GPa"][:3] == pytest.approx([0.5, -1.5, -2.5])  # compressive 25 kBar -> -2.5
    assert rows["mp-5-0-pbe-0"]["pressure_GPa"] == pytest.approx((-0.5 + 1.5 + 2.5) / 3)


@pytest.mark.parametrize("new_schema", [False, True], ids=["export-2025", "colabfit-tools"])
def test_colabfit_every_column(tmp_path, new_schema):
    path = write_colabfit(tmp_path / "co_0.parquet", new_schema=new_schema)
    assert sniff_format(path) == "colabfit"
    ds, rows, _ = _read(path)
    assert ds.accounting.to_dict()["read"] == 5 and ds.accounting.skipped == 0
    assert list(rows) == ["PO_1", "PO_2", "PO_3", "PO_4", "PO_5"]  # property_id
    src = colabfit_rows(new_schema)
    stress = [GPa_PER_EV_A3 * v for v in voigt(src[0]["cauchy_stress"])]  # eV/Å^3 -> GPa, sign kept
    assert stress[0] == pytest.approx(1.6021766208)
    assert_row(rows["PO_1"], expected_row([14, 8, 8], src[0]["positions"], CELL_A, [True] * 3, -20.0,
                                          src[0]["atomic_forces"], stress), atol=1e-9)
    # a volume-normalised stress is a virial (eV): divided by the cell volume, it is the same stress
    assert_row(rows["PO_2"], expected_row([14, 8, 8], src[1]["positions"], CELL_A, [True] * 3, -21.0,
                                          src[1]["atomic_forces"], stress), atol=1e-9)
    # the molecule: zero cell, not periodic, no stress; charge and spin from the metadata, not `multiplicity`
    assert_row(rows["PO_3"], expected_row([8, 1, 1], src[2]["positions"], np.zeros((3, 3)), [False] * 3, -2080.0,
                                          src[2]["atomic_forces"], None))
    assert rows["PO_3"]["charge"] == -1 and rows["PO_3"]["spin"] == 2
    assert_row(rows["PO_4"], expected_row([26, 26], src[3]["positions"], CELL_B, [True] * 3, -16.0, None, None))
    assert rows["PO_4"]["charge"] is None and rows["PO_4"]["spin"] is None
    # a molecule in a box: pbc derived True from the cell, but dimension_types says 0: not periodic
    assert rows["PO_5"]["pbc"] == [False] * 3 and rows["PO_5"]["volume_A3"] is None
    assert [rows[i]["level_of_theory"] for i in rows] == ["PBE+U", "PBE", "wB97M-V", "PBE", "wB97M-V"]
    assert [rows[i]["functional"] for i in rows] == ["PBE", "PBE", "wB97M-V", "PBE", "wB97M-V"]
    assert rows["PO_1"]["hubbard_u"] is True and rows["PO_2"]["hubbard_u"] is None


def test_colabfit_has_forces_false_means_no_forces(tmp_path):
    rows = colabfit_rows(new_schema=True)
    rows[3].update(atomic_forces=[[0.0, 0.0, 0.0]] * 2, has_forces=False)  # zeros written, flagged absent
    _, out, _ = _read(write_colabfit(tmp_path / "co.parquet", new_schema=True, rows=rows))
    assert out["PO_4"]["forces"] is None and out["PO_4"]["fmax_eV_A"] is None
    assert out["PO_1"]["forces"] is not None


def test_ase_columns_every_column(tmp_path):
    path = write_ase(tmp_path / "mptrj_like.parquet")
    assert sniff_format(path) == "ase-parquet"
    ds, rows, _ = _read(path)
    assert ds.card is None and ds.accounting.to_dict()["read"] == 3
    v = [0.01, 0.02, 0.03, 0.004, 0.005, 0.006]
    assert_row(rows["a"], expected_row([3, 9], [[0, 0, 0], [1.9, 1.8, 1.7]], CELL_A, [True] * 3, -9.0,
                                       [[0.2, 0, 0], [-0.2, 0, 0]], [GPa_PER_EV_A3 * x for x in v]))
    m = [-0.01, 0.001, 0.002, 0.001, -0.02, 0.003, 0.002, 0.003, -0.03]
    assert_row(rows["b"], expected_row([11, 17], [[0, 0, 0], [2.8, 0.1, 0]], CELL_B, [True] * 3, -7.0,
                                       [[0.0, 0.1, 0], [0.0, -0.1, 0]], [GPa_PER_EV_A3 * x for x in voigt(m)]))
    assert_row(rows["c"], expected_row([7, 7], [[0, 0, 0], [0, 0, 1.1]], None, [False] * 3, -16.0, None, None))
    assert {r["level_of_theory"] for r in rows.values()} == {"unknown"}
    _, rows, _ = _read(path, level_of_theory="PBE")
    assert {r["level_of_theory"] for r in rows.values()} == {"PBE"}


def test_bad_rows_are_counted_and_the_rest_read(tmp_path):
    rows = lemat_bulk_rows()[:3]
    rows[0] = dict(rows[0], cartesian_site_positions=[[0.0, 0.0, 0.0], [1.0, 1.0]])  # an atom of 2 numbers
    rows[1] = dict(rows[1], forces=[[0.0, 0.0, 0.0]])  # forces for 1 of 2 atoms
    ds, out, _ = _read(write_lemat_bulk(tmp_path / "x.parquet", rows=rows))
    acc = ds.accounting.to_dict()
    assert acc["read"] == 1 and acc["skipped_reasons"] == {"bad_positions": 1, "bad_forces": 1}
    assert list(out) == ["agm002/pbesol"]


def test_streaming_batches_and_row_group_shards(tmp_path):
    rows = [dict(r, immutable_id=f"mp-{k}") for k in range(7) for r in lemat_bulk_rows()[:3]]
    path = write_lemat_bulk(tmp_path / "s.parquet", rows=rows, row_group_size=4)
    assert pq.ParquetFile(path).metadata.num_row_groups == 6
    ds = open_dataset(path, quiet=True, batch_size=5)
    sizes = [b.num_rows for b in ds.batches()]
    assert sum(sizes) == 21 and max(sizes) <= 5
    whole = concat_batches(ds.batches()).column("id").to_pylist()
    units = ds.shards(3)
    assert len(units) == 3 and all(u[3] is not None for u in units)  # row-group ranges of the one file
    parts = []
    for unit in units:
        parts += concat_batches(ds.batches(unit)).column("id").to_pylist()
    assert parts == whole and len(set(whole)) == 21


def test_unknown_schema_is_one_line_with_columns(tmp_path, capsys):
    path = tmp_path / "mystery.parquet"
    pq.write_table(pa.table({"smiles_string": ["CCO"], "homo": [1.0]}), path)
    with pytest.raises(UnknownFormatError) as exc:
        sniff_format(path)
    msg = str(exc.value)
    assert "\n" not in msg and "smiles_string, homo" in msg
    assert "lemat" in msg and "colabfit" in msg and "ase-parquet" in msg
    from monoculture.cli import main

    assert main(["audit", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "smiles_string" in err[0]


def test_forced_format_of_another_schema_is_refused(tmp_path):
    from monoculture.datasets import DatasetOpenError

    path = write_ase(tmp_path / "a.parquet")
    with pytest.raises(DatasetOpenError, match="not a lemat table"):
        open_dataset(path, format="lemat")


def test_arrow_cache_file(tmp_path):
    """A Hugging Face ``datasets`` cache file (Arrow IPC stream) reads like the parquet."""
    table = pa.Table.from_pylist(lemat_traj_rows(), schema=pq.read_schema(write_lemat_traj(tmp_path / "t.parquet")))
    arrow = tmp_path / "cache" / "lemat-traj-train.arrow"
    arrow.parent.mkdir()
    with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    assert sniff_format(arrow) == "lemat"
    _, a, _ = _read(arrow)
    _, b, _ = _read(tmp_path / "t.parquet")
    assert list(a) == list(b)
    for k in a:
        assert {c: v for c, v in a[k].items() if c != "source"} == {c: v for c, v in b[k].items() if c != "source"}
