"""Hugging Face dataset folders (README ``configs:``, shard folders, ColabFit ``co/`` + ``ds.parquet``) as one
dataset, ``--config`` selection, and ``monoculture audit`` of LeMat and ColabFit data (level of theory, counts)."""
from __future__ import annotations

import json

import pytest

from monoculture.cli import main
from monoculture.datasets import DatasetOpenError, concat_batches, open_dataset, sniff_format

from parquet_files import lemat_bulk_rows, lemat_traj_rows, write_colabfit_folder, write_lemat_bulk, write_lemat_traj

README = """---
license: cc-by-4.0
configs:
- config_name: compatible_pbe
  data_files:
  - split: train
    path: compatible_pbe/train-*
- config_name: compatible_scan
  data_files:
  - split: train
    path: compatible_scan/train-*
---
# LeMat-Bulk (test copy)
"""


@pytest.fixture()
def lemat_folder(tmp_path):
    """Two configs: compatible_pbe (two shards: 2 + 1 frames), compatible_scan (one shard, 1 frame)."""
    root = tmp_path / "LeMat-Bulk"
    pbe = [dict(r, functional="pbe") for r in lemat_bulk_rows()[:3]]
    write_lemat_bulk(root / "compatible_pbe" / "train-00000-of-00002.parquet", rows=pbe[:2])
    write_lemat_bulk(root / "compatible_pbe" / "train-00001-of-00002.parquet", rows=pbe[2:])
    scan = [dict(lemat_bulk_rows()[0], functional="scan")]
    write_lemat_bulk(root / "compatible_scan" / "train-00000-of-00001.parquet", rows=scan)
    (root / "README.md").write_text(README)
    (root / ".gitattributes").write_text("*.parquet filter=lfs\n")
    return root


def _audit(tmp_path, *args):
    out = tmp_path / "audit.json"
    assert main(["audit", *map(str, args), "--json", str(out), "--quiet", "--no-umap", "--descriptor", "none"]) == 0
    return json.loads(out.read_text())["datasets"]


def test_hf_folder_reads_every_config_as_one_dataset(lemat_folder):
    assert sniff_format(lemat_folder) == "lemat"
    ds = open_dataset(lemat_folder, quiet=True)
    t = concat_batches(ds.batches())
    assert ds.card.name == "lemat-bulk" and ds.accounting.to_dict()["read"] == 4
    rows = t.to_pylist()
    assert [(r["subset"], r["id"]) for r in rows] == [
        ("compatible_pbe", "mp-1/pbe"), ("compatible_pbe", "oqmd-7/pbe"), ("compatible_pbe", "agm002/pbe"),
        ("compatible_scan", "mp-1/scan")]
    assert rows[2]["source"] == f"{lemat_folder}::compatible_pbe/train-00001-of-00002.parquet:0"


def test_config_selects(lemat_folder):
    from monoculture.datasets import ReadOptions

    ds = open_dataset(lemat_folder, quiet=True, options=ReadOptions(config="compatible_scan"))
    t = concat_batches(ds.batches())
    assert t.column("id").to_pylist() == ["mp-1/scan"] and t.column("level_of_theory").to_pylist() == ["SCAN"]
    assert len(ds.shards(8)) == 1  # units follow the selection
    with pytest.raises(DatasetOpenError, match="no config 'compatible_r2scan'.*compatible_pbe, compatible_scan"):
        open_dataset(lemat_folder, options=ReadOptions(config="compatible_r2scan"))


def test_audit_with_config_option(tmp_path, lemat_folder, capsys):
    (pbe,) = _audit(tmp_path, lemat_folder, "--config", "compatible_pbe")
    assert pbe["records"]["read"] == 3 and pbe["level_of_theory"] == {"PBE": 3}
    (both,) = _audit(tmp_path, lemat_folder)
    assert both["records"]["read"] == 4 and both["level_of_theory"] == {"PBE": 3, "SCAN": 1}
    assert main(["audit", str(lemat_folder), "--config", "nope", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]


def test_audit_lemat_bulk_and_traj_shards(tmp_path):
    bulk = write_lemat_bulk(tmp_path / "bulk" / "train-00000-of-00017.parquet")
    traj = write_lemat_traj(tmp_path / "traj" / "train-00000-of-00100.parquet",
                            rows=lemat_traj_rows() + [dict(r, id=r["id"] + "-b", functional="pbesol")
                                                      for r in lemat_traj_rows()])
    b, t = _audit(tmp_path, bulk, traj)
    assert b["format"] == "lemat" and b["name"] == "lemat-bulk"
    assert b["records"]["read"] == 3 and b["records"]["skipped_reasons"] == {"disordered_site": 1}
    assert b["level_of_theory"] == {"PBE": 1, "PBEsol": 1, "SCAN": 1}
    assert t["name"] == "lemat-traj" and t["records"]["read"] == 6
    assert t["level_of_theory"] == {"PBE": 3, "PBEsol": 3} and t["method"] == {"relax": 6}


def test_audit_colabfit_folder(tmp_path):
    folder = write_colabfit_folder(tmp_path / "OMat24_train_aimd_from_PBE_1000_npt")
    assert sniff_format(folder) == "colabfit"
    ds = open_dataset(folder, quiet=True)
    assert ds.card.name == "colabfit-omat24"
    (doc,) = _audit(tmp_path, folder)
    assert doc["format"] == "colabfit" and doc["records"]["read"] == 10  # co/ only: ds.parquet is metadata
    assert doc["level_of_theory"] == {"PBE": 4, "PBE+U": 2, "wB97M-V": 4}
    from monoculture.datasets import ReadOptions

    with pytest.raises(DatasetOpenError, match="'info' holds no frame table"):
        open_dataset(folder, options=ReadOptions(config="info"))


def test_colabfit_card_from_ds_parquet_name(tmp_path):
    folder = write_colabfit_folder(tmp_path / "download", name="OMol25_validation")
    assert open_dataset(folder, quiet=True).card.name == "colabfit-omol25"


def test_shard_folder_without_readme(tmp_path):
    """Shard folders without a card: each sub-folder is a config."""
    root = tmp_path / "mirror"
    write_lemat_traj(root / "compatible_pbe" / "train-00000.parquet")
    write_lemat_traj(root / "compatible_pbesol" / "train-00000.parquet",
                     rows=[dict(r, functional="pbesol", id=r["id"] + "s") for r in lemat_traj_rows()])
    assert sniff_format(root) == "lemat"
    from monoculture.datasets import ReadOptions

    t = concat_batches(open_dataset(root, quiet=True, options=ReadOptions(config="compatible_pbesol")).batches())
    assert set(t.column("level_of_theory").to_pylist()) == {"PBEsol"} and t.num_rows == 3


def test_datasets_arrow_cache_folder(tmp_path):
    """A local ``datasets`` cache: config folders of version / hash folders of ``.arrow`` stream files, with
    ``dataset_info.json``, lock files and ``cache-*.arrow`` leftovers of ``.map`` (not read)."""
    import pyarrow as pa

    from monoculture.datasets import ReadOptions

    from parquet_files import LEMAT_TRAJ_SCHEMA

    root = tmp_path / "lematerial___le_mat-traj"
    for config, functional in (("compatible_pbe", "pbe"), ("compatible_pbesol", "pbesol")):
        leaf = root / config / "0.0.0" / "abc123"
        leaf.mkdir(parents=True)
        rows = [dict(r, functional=functional, id=f"{r['id']}-{functional}") for r in lemat_traj_rows()]
        table = pa.Table.from_pylist(rows, schema=LEMAT_TRAJ_SCHEMA)
        for name in ("le_mat-traj-train.arrow", "cache-0123abcd.arrow"):
            with pa.OSFile(str(leaf / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
        (leaf / "dataset_info.json").write_text("{}")
    (tmp_path / "lematerial___le_mat-traj_builder.lock").write_text("")
    (root / "compatible_pbe" / "0.0.0" / "abc123.incomplete_info.lock").write_text("")
    assert sniff_format(root) == "lemat"
    ds = open_dataset(root, quiet=True, options=ReadOptions(config="compatible_pbesol"))
    t = concat_batches(ds.batches())
    assert ds.card.name == "lemat-traj" and t.num_rows == 3  # the cache-*.arrow copy is not read
    assert set(t.column("level_of_theory").to_pylist()) == {"PBEsol"}
    assert concat_batches(open_dataset(root, quiet=True).batches()).num_rows == 6
