"""Batches through shared memory: same arrays back, block unlinked after use, pipe fallback when short."""
import os

import numpy as np
import pytest

from monoculture.descriptors import transfer
from monoculture.descriptors.transfer import SharedBatch, adopt, discard, opened, to_shared

pytestmark = pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no POSIX shared memory here")


def _batch():
    rng = np.random.default_rng(0)
    return {"n_atoms": np.array([3, 2], np.int64), "pos": rng.normal(size=(5, 3)).astype(np.float32),
            "edges": rng.integers(0, 5, (7, 2)).astype(np.int32), "image": rng.integers(-2, 3, (7, 3)).astype(np.int8),
            "empty": np.zeros((0, 5), np.int32)}


def test_roundtrip_and_unlink():
    batch = _batch()
    item = to_shared(batch)
    assert isinstance(item, SharedBatch)
    assert os.path.exists(f"/dev/shm/{item.name.lstrip('/')}")
    with opened(item) as got:
        assert got.keys() == batch.keys()
        for k in batch:
            assert got[k].dtype == batch[k].dtype and got[k].shape == batch[k].shape
            np.testing.assert_array_equal(got[k], batch[k])
    assert not os.path.exists(f"/dev/shm/{item.name.lstrip('/')}")


def test_discard_unlinks_and_plain_batches_pass_through():
    item = to_shared(_batch())
    discard(item)
    assert not os.path.exists(f"/dev/shm/{item.name.lstrip('/')}")
    plain = _batch()
    with opened(plain) as got:
        assert got["pos"] is plain["pos"]
    discard(plain)  # nothing to do


def test_short_shared_memory_falls_back_to_the_pipe(monkeypatch):
    monkeypatch.setattr(transfer, "_shm_free_bytes", lambda: 1000)
    batch = _batch()
    assert to_shared(batch) is batch
    assert to_shared({"x": np.zeros(0)}) is not None  # empty batch: nothing to share


def test_adopt_keeps_the_arrays_without_the_name():
    batch = _batch()
    item = to_shared(batch)
    got = adopt(item)
    assert not os.path.exists(f"/dev/shm/{item.name.lstrip('/')}")  # unlinked at once, still mapped
    for k in batch:
        assert got[k].dtype == batch[k].dtype and got[k].shape == batch[k].shape
        np.testing.assert_array_equal(got[k], batch[k])
    got["pos"][0, 0] = 42.0  # writable, like any result array
    plain = _batch()
    assert adopt(plain)["pos"] is plain["pos"]


def test_adopt_copies_where_the_block_has_no_path(monkeypatch):
    """Where /dev/shm/NAME cannot be opened (not Linux), the arrays are copied out and the block unlinked."""
    batch = _batch()
    item = to_shared(batch)
    real_open = os.open

    def no_dev_shm(path, *args, **kwargs):
        if str(path).startswith("/dev/shm/"):
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(transfer.os, "open", no_dev_shm)
    got = adopt(item)
    monkeypatch.undo()
    assert not os.path.exists(f"/dev/shm/{item.name.lstrip('/')}")
    for k in batch:
        np.testing.assert_array_equal(got[k], batch[k])
        assert got[k].flags.owndata  # a copy, not a view of the unlinked block
