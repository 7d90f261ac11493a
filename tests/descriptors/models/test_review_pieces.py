"""Pieces of frame batches in embed_frame_rows: zero-copy slices in this process; buffers of their own only
for what is pickled to an executor (a one-piece slice of a big table carried its parent's buffers before)."""
from __future__ import annotations

import pickle
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from monoculture.descriptors.driver import own_buffers, row_pieces
from monoculture.descriptors.models import streaming


class _FakeEmbedder:
    """What embed_frame_rows asks of an embedder when no forward batch is built."""

    device = "cpu"

    def graph_builder(self):
        return None

    def width(self, pooling: str = "mean") -> int:
        return 4


class _PicklingExecutor(Executor):
    """Runs each task at once, after a pickle round trip of its arguments (as a process pool would); records
    the bytes of every piece it received."""

    def __init__(self):
        self.piece_bytes: list[int] = []

    def submit(self, fn, *args, **kwargs):
        self.piece_bytes.append(len(pickle.dumps(args[1])))
        args = pickle.loads(pickle.dumps(args))
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _big_table(n: int = 100_000) -> pa.Table:
    return pa.table({"id": pa.array([f"f{i}" for i in range(n)]), "x": pa.array(np.arange(n, dtype=np.float64))})


def _run(monkeypatch, batches, executor):
    seen: list[pa.Table] = []

    def build(builder, piece, batch_size, shared=False):
        seen.append(piece)
        return [], []

    monkeypatch.setattr(streaming, "build_frame_batches", build)
    out = list(streaming.embed_frame_rows(_FakeEmbedder(), batches, batch_size=4, executor=executor))
    assert len(out) == len(batches)
    return seen


def test_without_an_executor_pieces_are_slices_sharing_the_batch_buffers(monkeypatch):
    batch = _big_table(10)
    seen = _run(monkeypatch, [batch], None)
    assert [p.num_rows for p in seen] == [4, 4, 2]
    base = batch.column("x").chunk(0).buffers()[1].address
    # zero-copy: the pieces point into the batch's buffer (8 bytes per float64 row)
    assert [p.column("x").chunk(0).buffers()[1].address + 8 * p.column("x").chunk(0).offset for p in seen] == [
        base + 8 * s for s in (0, 4, 8)]


def test_pieces_pickled_to_an_executor_carry_only_their_rows(monkeypatch):
    whole = _big_table()
    one_piece = whole.slice(500, 3)  # a batch no larger than a piece: row_pieces returns it as it is
    executor = _PicklingExecutor()
    seen = _run(monkeypatch, [one_piece, whole.slice(1000, 10)], executor)
    assert [p.num_rows for p in seen] == [3, 4, 4, 2]
    assert seen[0].column("id").to_pylist() == ["f500", "f501", "f502"]
    parent = len(pickle.dumps(one_piece))
    assert parent > 100 * max(executor.piece_bytes)  # what the slice itself pickles to: the parent's buffers
    assert max(executor.piece_bytes) < 2_000


def test_a_thread_executor_gets_the_slices_themselves(monkeypatch):
    whole = _big_table(1000)
    batch = whole.slice(10, 8)
    with ThreadPoolExecutor(1) as pool:
        seen = _run(monkeypatch, [batch], pool)
    base = whole.column("x").chunk(0).buffers()[1].address
    assert [p.column("x").chunk(0).buffers()[1].address + 8 * p.column("x").chunk(0).offset for p in seen] == [
        base + 8 * 10, base + 8 * 14]


def test_row_pieces_and_own_buffers():
    whole = _big_table(1000)
    pieces = row_pieces(whole, 300)
    assert [p.num_rows for p in pieces] == [300, 300, 300, 100]
    assert pa.concat_tables(pieces).equals(whole)
    assert row_pieces(whole, 5000)[0] is whole
    own = own_buffers(pieces[3])
    assert own.equals(pieces[3]) and len(pickle.dumps(own)) < 0.2 * len(pickle.dumps(pieces[3]))
    sent = [own_buffers(p) for p in row_pieces(whole.slice(0, 10), 4)]  # what a worker process receives
    assert sent[0].equals(whole.slice(0, 4))
    assert all(len(pickle.dumps(p)) < 1_000 for p in sent)
