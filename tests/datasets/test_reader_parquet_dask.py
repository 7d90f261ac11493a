"""Parquet on Dask: a Hugging Face folder with ``--config`` is cut into row-group units, and the audit equals
the serial one."""
from __future__ import annotations

import json

import pytest

distributed = pytest.importorskip("distributed")

from monoculture.audit.distributed import connect  # noqa: E402
from monoculture.audit.run import AuditOptions, run_audit  # noqa: E402
from monoculture.datasets import ReadOptions, open_dataset  # noqa: E402

from parquet_files import lemat_bulk_rows, write_lemat_bulk  # noqa: E402


@pytest.fixture(scope="module")
def client():
    c = connect("local:2")
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


def test_dask_row_groups_equal_serial(tmp_path, client):
    root = tmp_path / "LeMat-Bulk"
    rows = [dict(r, immutable_id=f"mp-{k}") for k in range(30) for r in lemat_bulk_rows()[:3]]
    write_lemat_bulk(root / "compatible_pbe" / "train-00000-of-00001.parquet", rows=rows, row_group_size=10)
    write_lemat_bulk(root / "compatible_scan" / "train-00000-of-00001.parquet",
                     rows=[dict(r, functional="scan") for r in rows[:9]])
    units = open_dataset(root, options=ReadOptions(config="compatible_pbe")).shards(8)
    assert len(units) == 8 and {u[1] for u in units} == {"compatible_pbe"}  # row groups of the selected config
    options = AuditOptions(quiet=True, batch_size=16, sample_size=50, quests_crosscheck=False, umap=False,
                           descriptor=None, config="compatible_pbe")
    serial = run_audit([str(root)], options)
    dask = run_audit([str(root)], options, client=client)
    assert dask["run"]["backend"] == "dask"
    assert json.dumps(dask["datasets"], sort_keys=True) == json.dumps(serial["datasets"], sort_keys=True)
    (doc,) = serial["datasets"]
    assert doc["records"]["read"] == 90 and doc["level_of_theory"] == {"PBE": 30, "PBEsol": 30, "SCAN": 30}
