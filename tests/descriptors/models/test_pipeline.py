"""embed_dataset: chunked output, resumable cache, worker processes give the same numbers."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("chgnet")

from monoculture.datasets import open_dataset  # noqa: E402
from monoculture.descriptors.models import load_embedder  # noqa: E402
from monoculture.descriptors.models.pipeline import embed_dataset, read_embeddings  # noqa: E402

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("chgnet-0.3.0", device="cpu")


@pytest.fixture(scope="module")
def batches(bundled_samples):
    return list(open_dataset(bundled_samples / "mptrj_sample.json", batch_size=40, quiet=True).batches())


def test_interrupted_run_resumes_to_the_same_file(tmp_path, embedder, batches):
    full = tmp_path / "full.parquet"
    embed_dataset(batches, "chgnet-0.3.0", full, embedder=embedder, batch_size=16)

    def interrupted():
        yield batches[0]
        yield batches[1]
        raise KeyboardInterrupt  # the run dies after two chunks

    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        embed_dataset(interrupted(), "chgnet-0.3.0", tmp_path / "x.parquet", embedder=embedder, cache_dir=cache,
                      batch_size=16)
    assert not (tmp_path / "x.parquet").exists()
    resumed = embed_dataset(batches, "chgnet-0.3.0", tmp_path / "x.parquet", embedder=embedder, cache_dir=cache,
                            batch_size=16)
    assert resumed.n_chunks_cached == 2 and resumed.n_chunks == len(batches)
    a, b = read_embeddings(full), read_embeddings(tmp_path / "x.parquet")
    assert a[0] == b[0]
    np.testing.assert_allclose(a[1], b[1], atol=1e-5)
    again = embed_dataset(batches, "chgnet-0.3.0", tmp_path / "y.parquet", embedder=embedder, cache_dir=cache)
    assert again.n_chunks_cached == len(batches)


def test_workers_and_batch_size_do_not_change_numbers(tmp_path, embedder, batches):
    one = embed_dataset(batches[:2], "chgnet-0.3.0", tmp_path / "a.parquet", embedder=embedder, batch_size=1)
    many = embed_dataset(batches[:2], "chgnet-0.3.0", tmp_path / "b.parquet", embedder=embedder, batch_size=64,
                         workers=2)
    a, b = read_embeddings(one.out), read_embeddings(many.out)
    assert a[0] == b[0] and a[1].shape == (80, embedder.dim)
    np.testing.assert_allclose(a[1], b[1], atol=1e-4)
    assert b[2]["model"] == "chgnet-0.3.0" and b[2]["pooling"] == "mean"


def test_a_run_from_the_cache_counts_the_same_skips(tmp_path, embedder):
    """Skipped structures of a cached chunk are recorded with it: a resumed run reports the same skips."""
    from ase import Atoms
    from ase.build import bulk

    from monoculture.datasets.memory import frames_from_atoms

    lone = Atoms("H", positions=[[0, 0, 0]], cell=[20, 20, 20], pbc=True)  # no neighbour within 6 Å
    frames = frames_from_atoms([bulk("NaCl", "rocksalt", a=5.64), lone], ids=["nacl", "lone"])
    kw = dict(embedder=embedder, cache_dir=tmp_path / "cache")
    first = embed_dataset([frames], "chgnet-0.3.0", tmp_path / "a.parquet", **kw)
    again = embed_dataset([frames], "chgnet-0.3.0", tmp_path / "b.parquet", **kw)
    assert first.n_chunks_cached == 0 and again.n_chunks_cached == 1
    assert first.skip_reasons == again.skip_reasons == {"isolated_atom": 1}
    assert (again.n_rows, again.n_structures, again.n_skipped) == (1, 1, 1)
    assert read_embeddings(again.out)[2]["skip_reasons"] == {"isolated_atom": 1}
