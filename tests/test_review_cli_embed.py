"""`monoculture embed` with a descriptor as the model: one call of monoculture.api.embed, datasets opened once,
the --json summary written (exit 0) and written too when nothing could be embedded (exit 3)."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

import monoculture.datasets as datasets_package
from monoculture.cli import EXIT_NOTHING_AUDITED, main


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Paths passed to monoculture.datasets.open_dataset during the test, in order."""
    calls: list[str] = []
    real = datasets_package.open_dataset

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(datasets_package, "open_dataset", counting)
    return calls


def test_embed_with_a_descriptor_writes_the_json_summary_and_opens_each_dataset_once(tmp_path, bundled_samples,
                                                                                        opened, capsys):
    paths = [str(bundled_samples / "mptrj_sample.json"), str(bundled_samples / "mixed_sample.extxyz")]
    out, summary = tmp_path / "composition.parquet", tmp_path / "run.json"
    rc = main(["embed", *paths, "--model", "composition", "--out", str(out), "--json", str(summary)])
    assert rc == 0
    assert opened == paths  # each path opened once, in order
    doc = json.loads(summary.read_text())
    n_rows = pq.read_metadata(out).num_rows
    assert doc["model"] == "composition" and doc["out"] == str(out)
    assert doc["n_rows"] == n_rows == sum(d["read"] for d in doc["datasets"]) > 0
    assert doc["n_structures"] + doc["n_skipped"] == n_rows
    assert [d["name"] for d in doc["datasets"]] == ["mptrj", "mixed_sample"]
    assert doc["command_s"] > 0 and doc["structures_per_s"] == pytest.approx(n_rows / doc["command_s"])
    assert doc["n_chunks"] >= 1 and doc["n_chunks_cached"] == 0
    assert f"wrote {n_rows} rows" in capsys.readouterr().out


def test_embed_with_a_descriptor_that_skips_everything_exits_3_and_still_writes_the_summary(tmp_path, opened,
                                                                                            capsys):
    smi = tmp_path / "isomers.smi"
    smi.write_text("CCCCCC\nCC(C)CCC\nCCC(C)CC\n")  # molecules without positions: SOAP skips every one
    summary = tmp_path / "run.json"
    rc = main(["embed", str(smi), "--model", "soap", "--out", str(tmp_path / "x.parquet"),
               "--json", str(summary)])
    assert rc == EXIT_NOTHING_AUDITED
    assert opened == [str(smi)]
    doc = json.loads(summary.read_text())
    assert doc["n_rows"] == doc["n_skipped"] == 3 and doc["n_structures"] == 0
    assert "no record could be embedded with soap" in capsys.readouterr().err


def test_embed_with_an_unknown_model_is_a_usage_error_after_opening_the_data_once(tmp_path, bundled_samples,
                                                                                   opened, capsys):
    path = str(bundled_samples / "mptrj_sample.json")
    rc = main(["embed", path, "--model", "no-such-model", "--out", str(tmp_path / "x.parquet")])
    assert rc == 2 and opened == [path]
    err = capsys.readouterr().err
    assert "unknown model 'no-such-model'" in err and "composition" in err
    assert not (tmp_path / "x.parquet").exists()
