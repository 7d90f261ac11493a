"""File-level alignment (what `monoculture align` runs): embeddings on disk + sets given as datasets."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monoculture.audit.alignment.runner import load_embeddings, run_alignment, set_frames_metadata
from monoculture.cli import main
from monoculture.datasets import read_frames


def _write(path, ids, X):
    col = pa.FixedSizeListArray.from_arrays(pa.array(X.astype(np.float32).ravel()), X.shape[1])
    pq.write_table(pa.table({"id": ids, "embedding": col}), path)


@pytest.fixture()
def zoo(tmp_path, shared_samples):
    """Two 'models' and a descriptor over the OMat24 sample (ID) and the extxyz molecules + crystals (OOD)."""
    id_ids = read_frames(shared_samples / "omat24_sample").column("id").to_pylist()
    ood_ids = read_frames(shared_samples / "mixed_sample.extxyz").column("id").to_pylist()
    ids = id_ids + ood_ids
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(len(ids), 6))
    folder = tmp_path / "zoo"
    folder.mkdir()
    _write(folder / "model-a.parquet", ids, latent @ rng.normal(size=(6, 16)))
    _write(folder / "model-b.parquet", ids, latent @ rng.normal(size=(6, 12)) + 0.1 * rng.normal(size=(len(ids), 12)))
    _write(folder / "composition.parquet", ids, latent[:, :4])
    return folder, id_ids, ood_ids


def test_load_zoo_and_metadata(zoo, shared_samples):
    folder, id_ids, ood_ids = zoo
    models = load_embeddings(folder)
    assert sorted(models) == ["composition", "model-a", "model-b"]
    md = set_frames_metadata([shared_samples / "mixed_sample.extxyz"])
    assert len(md) == 14 and md["periodic"].sum() == 8
    assert md.loc[md.n_atoms == 3, "elements"].iloc[0] == "H-O"


def test_align_cli_writes_section(zoo, shared_samples, tmp_path):
    folder, _, _ = zoo
    out = tmp_path / "align.json"
    rc = main(["align", "--embeddings", str(folder), "--id-set", str(shared_samples / "omat24_sample"),
               "--ood-set", str(shared_samples / "mixed_sample.extxyz"), "--descriptor-model", "composition",
               "--n-boot", "10", "--repeats", "3", "--k", "5", "--json", str(out)])
    assert rc == 0
    section = json.loads(out.read_text())["alignment"]
    assert section["models"] == ["model-a", "model-b"]
    assert {"local", "global"} <= set(section["verdicts"])
    for v in section["verdicts"].values():
        assert len(v["interval"]) == 2
    assert section["parameters"]["k"] == 5 and section["parameters"]["normalisation"] == "max"


def test_align_needs_both_sets(zoo, shared_samples):
    folder, _, _ = zoo
    with pytest.raises(ValueError, match="both"):
        run_alignment(folder, id_set=[shared_samples / "omat24_sample"], ood_set=None)
