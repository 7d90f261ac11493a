"""The Dask backend gives the same document as the serial run (byte-identical `datasets`)."""
from __future__ import annotations

import json

import pytest

distributed = pytest.importorskip("distributed")

from monoculture.audit.distributed import connect  # noqa: E402
from monoculture.audit.run import AuditOptions, run_audit  # noqa: E402
from monoculture.datasets.synth import synthesize  # noqa: E402


@pytest.fixture(scope="module")
def client():
    c = connect("local:2")
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


def _datasets_json(doc):
    return json.dumps(doc["datasets"], sort_keys=True)


def test_dask_equals_serial(tmp_path, client, shared_samples):
    mptrj = tmp_path / "mptrj_synth.json"
    synthesize("mptrj", 1200, mptrj, seed=5)
    paths = [str(mptrj), str(shared_samples / "omat24_sample")]
    options = AuditOptions(quiet=True, batch_size=256, sample_size=300, quests_crosscheck=False, umap=False)
    serial = run_audit(paths, options)
    dask = run_audit(paths, options, client=client)
    assert dask["run"]["backend"] == "dask" and dask["run"]["dask_workers"] == 2
    assert _datasets_json(dask) == _datasets_json(serial)
    assert serial["datasets"][0]["records"]["read"] == 1200
    # The work really was split: MPTrj byte ranges and one unit per OMat24 shard.
    from monoculture.datasets import open_dataset

    assert len(open_dataset(mptrj).shards(8)) > 1


def test_cli_dask_flag(tmp_path, shared_samples):
    from monoculture.cli import main

    out = tmp_path / "a.json"
    rc = main(["audit", str(shared_samples / "mptrj_sample.json"), "--dask", "local:2", "--quiet",
               "--no-umap", "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["run"]["backend"] == "dask" and doc["datasets"][0]["records"]["read"] == 83
