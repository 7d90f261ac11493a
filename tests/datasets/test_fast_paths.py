"""The fast frame-production paths: column batches, segment batching, MPTrj material cuts, GC pausing.

The reference test (``test_frame_reference.py``) checks the outputs; these check the machinery itself:
that the fast paths are taken on regular data, that they agree with the per-record paths on the same
records, and the cases the per-record path used to crash on.
"""
from __future__ import annotations

import gc
import io
import json
import random

import pyarrow as pa
import pytest

from monoculture.datasets import Accounting, FrameBuilder, open_dataset
from monoculture.datasets.records import ColumnBatch, SegmentBatcher, record_batches
from monoculture.datasets.reading import gc_paused
from monoculture.datasets.readers import aselmdb, mptrj
from monoculture.datasets.samples import sample_dir


def _segments(module, path, batch_size=4096):
    return list(module.iter_batches(path, None, Accounting(quiet=True), batch_size=batch_size))


@pytest.mark.parametrize("module,name", [(mptrj, "mptrj_sample.json"), (aselmdb, "omat24_sample")])
def test_regular_samples_go_to_columns(module, name):
    """Every frame of the bundled (regular) samples is moved into flat columns, none into rows."""
    batches = _segments(module, sample_dir() / name)
    kinds = {type(seg).__name__ for segments in batches for seg in segments if len(seg)}
    assert kinds == {"ColumnBatch"}


@pytest.mark.parametrize("module,name", [(mptrj, "mptrj_sample.json"), (aselmdb, "omat24_sample")])
def test_columns_and_their_rows_build_the_same_table(module, name):
    batches = _segments(module, sample_dir() / name)
    for segments in batches:
        rows = [row for seg in segments for row in seg.rows()]
        a = FrameBuilder("d", "f", Accounting(quiet=True)).build(segments)
        b = FrameBuilder("d", "f", Accounting(quiet=True)).build([rows])
        assert a.equals(b)


@pytest.mark.parametrize("batch_size", [1, 5, 7, 36, 1000])
def test_batches_are_cut_at_batch_size(batch_size):
    """Column segments that overshoot are split: batches hold exactly batch_size records."""
    for module, name in ((mptrj, "mptrj_sample.json"), (aselmdb, "omat24_sample")):
        sizes = [sum(len(s) for s in segs) for segs in _segments(module, sample_dir() / name, batch_size)]
        assert all(n == batch_size for n in sizes[:-1]) and 0 < sizes[-1] <= batch_size


def _column_batch(frames):
    cb = ColumnBatch()
    for i, n in enumerate(frames):
        cb.lengths.append(n)
        cb.numbers.extend([8] * n)
        cb.positions.extend([float(i)] * 3 * n)
        cb.cell.extend([5.0, 0, 0, 0, 5.0, 0, 0, 0, 5.0])
        cb.pbc.extend([1, 1, 1])
        cb.forces.extend([0.5] * 3 * n)
        cb.has_forces.append(1)
        cb.stress.extend([0.1] * 6)
        cb.has_stress.append(i % 2)
        for name, value in (("ids", f"f{i}"), ("keys", str(i)), ("energy", -1.0 * n), ("temperature", None),
                            ("method", "md"), ("subset", None), ("charge", None), ("spin", None)):
            getattr(cb, name).append(value)
    return cb


def test_column_batch_take_mark_rollback():
    cb = _column_batch([1, 2, 3, 4])
    mark = cb.mark()
    cb.numbers.extend([1, 2])
    cb.ids.append("x")
    cb.rollback(mark)
    assert cb.mark() == mark
    head = cb.take(2)
    assert len(head) == 2 and len(cb) == 2
    assert list(head.numbers) == [8] * 3 and list(cb.numbers) == [8] * 7
    assert list(cb.positions[:3]) == [2.0] * 3 and len(head.stress) == 12
    t = FrameBuilder("d", "f", Accounting(quiet=True)).build([head, cb])
    assert t.column("id").to_pylist() == ["f0", "f1", "f2", "f3"]
    assert t.column("n_atoms").to_pylist() == [1, 2, 3, 4]
    assert t.column("stress_GPa").null_count == 2


def _extend(cb: ColumnBatch, more: ColumnBatch) -> None:
    for name in ColumnBatch._BUFFERS + ColumnBatch._LISTS:
        getattr(cb, name).extend(getattr(more, name))


def test_segment_batcher_mixes_rows_and_columns():
    batcher = SegmentBatcher(4, ColumnBatch)
    rows = _column_batch([1, 1, 1, 1, 1]).rows()
    batcher.add_row(rows[0])
    assert list(batcher.ready()) == []
    _extend(batcher.columns(), _column_batch([1, 1, 1]))
    batcher.added(3)
    (first,) = batcher.ready()
    assert [type(s).__name__ for s in first] == ["list", "ColumnBatch"] and [len(s) for s in first] == [1, 3]
    batcher.add_row(rows[1])
    _extend(batcher.columns(), _column_batch([2, 2, 2, 2, 2, 2, 2]))  # overshoots: split across batches
    batcher.added(7)
    out = list(batcher.ready())
    assert [[len(s) for s in b] for b in out] == [[1, 3], [4]]
    assert out[1][0].lengths.tolist() == [2, 2, 2, 2] and len(out[1][0].numbers) == 8
    assert batcher.pending == 0 and batcher.rest() is None


def test_ragged_arrays_are_skipped_not_fatal():
    """Ragged per-atom lists used to make numpy raise inside the builder and end the whole read."""
    acc = Accounting(quiet=True)
    b = FrameBuilder("toy", "toy", acc)
    base = dict(numbers=[11, 17], cell=[5.64, 0, 0, 0, 5.64, 0, 0, 0, 5.64], pbc=[True] * 3, energy_eV=-1.0)
    rows = []
    for i, change in enumerate([{}, {"positions": [[0, 0, 0], [1, 2]]}, {"forces": [[1, 2, 3, 4], [0, 0]]},
                                {"stress_GPa": [[1, 2], [3]]}, {"cell": [[1, 0, 0], [0, 1]]},
                                {"numbers": ["Na", 17]}]):
        d = dict(base, positions=[[0, 0, 0], [2.8, 0, 0]], forces=None, stress_GPa=None)
        d.update(change)
        rows.append((f"f{i}", str(i), d["numbers"], d["positions"], d["cell"], d["pbc"], d["energy_eV"],
                     d["forces"], d["stress_GPa"], None, "static", None, None, None, None, None, None, None))
    t = b.build([rows])
    assert t.num_rows == 1
    assert acc.skipped_reasons == {"bad_positions": 1, "bad_forces": 1, "bad_stress": 1, "bad_cell": 1,
                                   "unknown_element": 1}


def _old_cuts(buf: bytes) -> list[tuple[int, int]]:
    return [(m.start(0), m.start(1)) for m in mptrj._MATERIAL_START.finditer(buf)]


@pytest.mark.parametrize("seed", range(20))
def test_material_starts_equal_the_regex(seed):
    """Cuts found through braces are exactly the matches of the material-start pattern, with odd keys,
    blanks, hyphens, braces and commas inside strings, and a truncated tail."""
    rng = random.Random(seed)
    keys = ["mp-1", "mvc-12", "a", "x-y-z", "k{", "comma,key", "-lead", "sp ace", "mp-" + "9" * 198, "q" * 205]
    blanks = ["", " ", "\n  ", "\t"]
    parts = []
    for _ in range(rng.randint(1, 12)):
        key = rng.choice(keys)
        b = [rng.choice(blanks) for _ in range(4)]
        frame = rng.choice([f"{key}-{rng.randint(0, 9)}", "other", f"{key}x-1", "e-fermi"])
        value = rng.choice(['{"a": 1}', '[1, 2, {"b": "c-d"}]', '"s, \\"t\\": {\\"u-"', "null"])
        parts.append(f'"{key}"{b[0]}:{b[1]}{{{b[2]}"{frame}": {value}, "n-1": {{"{key}-": 2}}}}')
    text = "{" + ("," + rng.choice(blanks)).join(parts) + "}"
    data = text.encode()
    for end in (len(data), rng.randint(1, len(data))):
        buf = data[:end]
        assert mptrj.material_starts(bytearray(buf)) == _old_cuts(buf)


def test_pieces_cover_the_file_whatever_the_block_size():
    data = (sample_dir() / "mptrj_sample.json").read_bytes()
    ref = json.loads(data)
    for block in (97, 4096, 1 << 20):
        got = {}
        for piece in mptrj._pieces(io.BytesIO(data), True, block_size=block):
            got.update(json.loads(piece))
        assert got == ref


def test_gc_paused_restores_the_collector():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a caller's own choice is kept
    finally:
        gc.enable()
    with pytest.raises(RuntimeError):
        with gc_paused():
            raise RuntimeError
    assert gc.isenabled()


def test_batches_leave_the_collector_on_between_batches():
    ds = open_dataset(sample_dir() / "mptrj_sample.json", quiet=True, batch_size=10)
    states = [gc.isenabled() for _ in ds.batches()]
    assert states and all(states)


def test_mixed_segments_equal_the_per_record_path(tmp_path):
    """A batch whose segments are rows (an irregular material) and columns builds the same table as the
    records one by one."""
    doc = json.loads((sample_dir() / "mptrj_sample.json").read_text())
    mp_id = list(doc)[3]
    frame_id = next(iter(doc[mp_id]))
    doc[mp_id][frame_id]["force"][0][0] = None  # this material goes frame by frame
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(doc))
    batches = _segments(mptrj, path, batch_size=50)
    assert [type(seg).__name__ for seg in batches[0]] == ["ColumnBatch", "list", "ColumnBatch"]
    ds = open_dataset(path, quiet=True, batch_size=50)
    table = pa.concat_tables(list(ds.batches()))
    assert ds.accounting.skipped_reasons == {"nan_forces": 1}
    assert table.num_rows == 107
    acc = Accounting(quiet=True)
    builder = FrameBuilder(ds.name, str(path), acc, theory=ds._fill_theory)
    tables = [builder.build(batch) for batch in record_batches(mptrj.iter_records(path, ds.options, acc), 50)]
    assert pa.concat_tables([t for t in tables if t is not None]).equals(table)
    assert acc.to_dict() == ds.accounting.to_dict()
