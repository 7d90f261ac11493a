"""LeMat parquet rows that fail several checks are counted once; ``dimension_types`` is read row by row."""
from __future__ import annotations

import pytest

from monoculture.datasets import concat_batches, open_dataset

from parquet_files import lemat_bulk_rows, write_lemat_bulk


def _read(path):
    ds = open_dataset(path, format="lemat", quiet=True, progress=False)
    t = concat_batches(ds.batches())
    return ds, {r["id"]: r for r in t.to_pylist()}


@pytest.mark.parametrize("damage,reason", [
    ({"stress_tensor": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}, "bad stress"),
    ({"forces": [[0.1, 0.2, 0.3]]}, "bad forces"),
    ({"cartesian_site_positions": [[0.0, 0.0, 0.0]]}, "bad positions"),
    ({"cartesian_site_positions": None}, "null positions"),
])
def test_a_disordered_row_failing_another_check_is_skipped_once(tmp_path, damage, reason):
    rows = lemat_bulk_rows()
    assert rows[3]["immutable_id"] == "mp-9"  # the disordered row (species X1: Fe or Co)
    rows[3].update(damage)
    ds, read = _read(write_lemat_bulk(tmp_path / "bulk.parquet", rows))
    acc = ds.accounting
    assert (acc.read, acc.skipped, acc.failed) == (3, 1, 0), reason
    assert acc.total == len(rows)
    assert dict(acc.skipped_reasons) == {"disordered_site": 1}  # the first failing rule
    assert list(read) == ["mp-1/pbe", "oqmd-7/scan", "agm002/pbesol"]
    (issue,) = [e for e in acc.examples if e.reason == "disordered_site"]
    assert issue.key.endswith(":3") and "X1" in issue.detail


def test_disordered_and_other_bad_rows_each_counted_once(tmp_path):
    rows = lemat_bulk_rows()
    rows[3]["forces"] = [[0.0, 0.0]]  # disordered and bad forces
    rows[1]["stress_tensor"] = [[1.0, 2.0]]  # ordered, bad stress only
    ds, read = _read(write_lemat_bulk(tmp_path / "bulk.parquet", rows))
    acc = ds.accounting
    assert (acc.read, acc.skipped) == (2, 2) and acc.total == 4
    assert dict(acc.skipped_reasons) == {"disordered_site": 1, "bad_stress": 1}
    assert list(read) == ["mp-1/pbe", "agm002/pbesol"]


def test_dimension_types_row_by_row_null_is_periodic(tmp_path):
    rows = lemat_bulk_rows()[:3]
    rows[0]["dimension_types"] = None  # null: LeMat's default, periodic in 3D
    rows[1]["dimension_types"] = [1, 1, 0]  # a slab
    rows[2]["dimension_types"] = [0, 0, 0]
    ds, read = _read(write_lemat_bulk(tmp_path / "bulk.parquet", rows))
    assert ds.accounting.read == 3
    assert read["mp-1/pbe"]["pbc"] == [True, True, True]
    assert read["oqmd-7/scan"]["pbc"] == [True, True, False]
    assert read["agm002/pbesol"]["pbc"] == [False, False, False]


def test_dimension_types_of_wrong_length_is_periodic_and_others_kept(tmp_path):
    rows = lemat_bulk_rows()[:3]
    rows[0]["dimension_types"] = [1, 0]
    rows[1]["dimension_types"] = [0, 1, 1]
    ds, read = _read(write_lemat_bulk(tmp_path / "bulk.parquet", rows))
    assert read["mp-1/pbe"]["pbc"] == [True, True, True]
    assert read["oqmd-7/scan"]["pbc"] == [False, True, True]
    assert read["agm002/pbesol"]["pbc"] == [True, True, True]  # the fixture's [1, 1, 1]
