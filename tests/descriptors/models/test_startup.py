"""Start-up of `monoculture embed`: workers forked from a preloaded forkserver, read-ahead process, forward clock."""
from __future__ import annotations

import json

import numpy as np
import pytest

from monoculture.descriptors.models.base import ForwardClock, union_seconds


def test_union_seconds_counts_overlaps_once():
    # [0, 1] and [0.5, 2] overlap on [0.5, 1]: 2 s together; [3, 4] adds 1 s; [3.2, 3.5] is inside it.
    assert union_seconds([(3.0, 4.0), (0.0, 1.0), (0.5, 2.0), (3.2, 3.5)]) == pytest.approx(3.0)
    assert union_seconds([]) == 0.0


def test_forward_clock_on_cpu_times_wall_intervals():
    import time

    clock = ForwardClock("cpu")
    t0 = time.perf_counter()
    for _ in range(2):
        token = clock.start()
        time.sleep(0.02)
        clock.stop(token)
    total = time.perf_counter() - t0
    s = clock.summary(since=t0)
    assert s["n_forward"] == 2 and s["timer"] == "wall"
    assert 0.04 <= s["forward_busy_s"] <= total + 1e-6
    assert s["forward_sum_s"] == pytest.approx(s["forward_busy_s"])  # one after the other: no overlap
    assert 0.0 <= s["first_forward_s"] < s["last_forward_s"] <= total + 1e-6


def test_chgnet_warm_up_compiles_the_signature_real_calls_use():
    pytest.importorskip("numba")
    from ase.build import bulk

    from monoculture.descriptors.models._chgnet import ChgnetGraphBuilder
    from monoculture.descriptors.models._chgnet_graph import _bookkeeping_numba, warm_up

    warm_up()
    assert len(_bookkeeping_numba.signatures) == 1
    atoms = bulk("NaCl", "rocksalt", a=5.64).repeat(2)
    payload = ChgnetGraphBuilder(6.0, 3.0, 94).build_payload(atoms)
    assert payload["n_atoms"][0] == 16 and payload["n_angles"][0] > 0
    assert len(_bookkeeping_numba.signatures) == 1  # no second compilation for other argument values


def test_preloaded_workers_start_with_graph_code_and_without_torch():
    pytest.importorskip("chgnet")
    from monoculture.descriptors.models.base import graph_worker_pool
    from monoculture.descriptors.models.registry import graph_worker_modules

    probe = ("(len(__import__('sys').modules['monoculture.descriptors.models._chgnet_graph']._bookkeeping_numba"
             ".signatures), 'torch' in __import__('sys').modules)")
    with graph_worker_pool(2, preload=graph_worker_modules("chgnet-0.3.0")) as pool:
        # eval (picklable, a builtin) runs the probe in a worker that has not built any graph yet.
        compiled, has_torch = pool.submit(eval, probe).result(timeout=300)
    assert compiled == 1 and not has_torch
    assert graph_worker_modules("no-such-model") == ()


def test_read_ahead_gives_the_batches_and_accounting_of_a_direct_read(bundled_samples):
    from monoculture.datasets import open_dataset
    from monoculture.descriptors.models.pipeline import ReadAhead

    path = bundled_samples / "mptrj_sample.json"
    direct = open_dataset(path, batch_size=30, quiet=True)
    ref = list(direct.batches())
    ds = open_dataset(path, batch_size=30, quiet=True)
    got = list(ReadAhead([ds], ahead=1))
    assert [b.num_rows for b in got] == [b.num_rows for b in ref]
    for a, b in zip(ref, got):
        assert a.column("id").to_pylist() == b.column("id").to_pylist()
        assert a.column("positions").equals(b.column("positions"))
    assert (ds.accounting.read, ds.accounting.skipped, ds.accounting.failed) == (
        direct.accounting.read, direct.accounting.skipped, direct.accounting.failed)
    assert ds.accounting.read == sum(b.num_rows for b in ref) > 0


class _BrokenDataset:
    """A dataset whose reading fails (the reading process imports this module to unpickle it)."""

    def __init__(self):
        from monoculture.datasets import ReadOptions

        self.progress = True
        self.options = ReadOptions()

    def batches(self):
        raise ValueError("unreadable on purpose")


def test_read_ahead_raises_the_reading_error():
    from monoculture.descriptors.models.pipeline import ReadAhead

    with pytest.raises(ValueError, match="unreadable on purpose"):
        list(ReadAhead([_BrokenDataset()]))


@pytest.mark.slow
def test_embed_command_with_workers_matches_in_process_and_reports_timeline(tmp_path, bundled_samples):
    pytest.importorskip("chgnet")
    from monoculture.cli import main
    from monoculture.descriptors.models.pipeline import read_embeddings

    src = json.loads((bundled_samples / "mptrj_sample.json").read_text())
    small = {k: src[k] for k in list(src)[:3]}
    path = tmp_path / "small_mptrj.json"
    path.write_text(json.dumps(small))
    n = sum(len(v) for v in small.values())
    common = [str(path), "--model", "chgnet-0.3.0", "--device", "cpu", "--batch-size", "4"]
    assert main(["embed", *common, "--out", str(tmp_path / "a.parquet"), "--workers", "0"]) == 0
    assert main(["embed", *common, "--out", str(tmp_path / "b.parquet"), "--workers", "2",
                 "--json", str(tmp_path / "s.json")]) == 0
    a, b = read_embeddings(tmp_path / "a.parquet"), read_embeddings(tmp_path / "b.parquet")
    assert a[0] == b[0] and len(a[0]) == n
    np.testing.assert_allclose(a[1], b[1], atol=1e-5)
    s = json.loads((tmp_path / "s.json").read_text())
    tl = s["timeline_s"]
    assert s["n_rows"] == n and s["datasets"][0]["read"] == n and tl["timer"] == "wall"
    assert 0 <= tl["embed_started"] <= tl["workers_started_s"] <= tl["model_loaded_s"] <= tl["first_forward_s"]
    assert tl["first_forward_s"] < tl["last_forward_s"] <= tl["done_s"] <= s["command_s"]
    assert 0 < tl["forward_busy_s"] <= s["command_s"] and 0 < s["forward_busy_share"] <= 1
    assert tl["n_forward"] == -(-n // 4)  # pieces of --batch-size frames, one forward each
