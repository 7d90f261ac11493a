"""monoculture.api.embed as `monoculture embed` runs it: the model given (or being loaded) passed on, the input
read ahead in its own process when there are graph workers, descriptors refusing a model object."""
from __future__ import annotations

from concurrent.futures import Future

import pytest

import monoculture
from monoculture.descriptors.models import pipeline


@pytest.fixture
def fake_embed_dataset(monkeypatch):
    """Replaces embed_dataset: records what api.embed hands it and consumes the batches."""
    calls: list[dict] = []

    def fake(batches, model, out, **kwargs):
        n = sum(b.num_rows for b in batches)
        calls.append({"batches": batches, "model": model, "n": n, **kwargs})
        return pipeline.EmbedResult(out=out, n_rows=n, n_structures=n)

    monkeypatch.setattr(pipeline, "embed_dataset", fake)
    return calls


@pytest.mark.parametrize("workers", [0, 2])
def test_api_embed_passes_the_model_and_reads_ahead_with_workers(tmp_path, bundled_samples, fake_embed_dataset,
                                                                 workers):
    pytest.importorskip("chgnet")
    from monoculture.datasets import open_dataset

    path = bundled_samples / "mptrj_sample.json"
    loading: Future = Future()
    ds = open_dataset(path, batch_size=40, quiet=True)
    res = monoculture.embed([ds], "chgnet-0.3.0", tmp_path / "x.parquet", workers=workers, embedder=loading)
    (call,) = fake_embed_dataset
    assert call["embedder"] is loading and call["workers"] == workers
    assert isinstance(call["batches"], pipeline.ReadAhead) == (workers > 0)
    direct = open_dataset(path, batch_size=40, quiet=True)
    n = sum(b.num_rows for b in direct.batches())
    assert call["n"] == res.n_rows == n > 0
    assert ds.accounting.read == direct.accounting.read  # the reading process's accounting is handed back


def test_api_embed_refuses_a_model_object_for_a_descriptor_and_negative_workers(tmp_path, bundled_samples):
    path = bundled_samples / "mptrj_sample.json"
    with pytest.raises(monoculture.UsageError, match="descriptor"):
        monoculture.embed(path, "composition", tmp_path / "x.parquet", embedder=object())
    pytest.importorskip("chgnet")
    with pytest.raises(monoculture.UsageError, match="workers"):
        monoculture.embed(path, "chgnet-0.3.0", tmp_path / "x.parquet", workers=-1)
    assert not (tmp_path / "x.parquet").exists()
