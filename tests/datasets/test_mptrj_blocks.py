"""The MPTrj reader gives the stored reference whatever the block size it cuts the stream into.

Materials cross block boundaries when blocks are far smaller than a material (64 bytes, 4 kB); plain
and gzip-compressed files, whole and in shards, must give the batches and accounting that
``test_frame_reference.py`` stores. Pretty-printed and empty files are read too.
"""
from __future__ import annotations

import functools
import gzip
import json

import pytest
from test_frame_reference import _build_case, _check, _digest, _run

from monoculture.datasets import open_dataset
from monoculture.datasets.readers import mptrj
from monoculture.datasets.samples import sample_dir


def _small_blocks(monkeypatch, block: int) -> None:
    monkeypatch.setattr(mptrj, "_pieces", functools.partial(mptrj._pieces, block_size=block))


@pytest.mark.parametrize("name", ["mptrj-edge", "mptrj-truncated", "mptrj-corrupt-middle"])
@pytest.mark.parametrize("block", [64, 4096])
def test_compressed_file_in_small_blocks_equals_reference(tmp_path, monkeypatch, name, block):
    path, kwargs = _build_case(name, tmp_path)
    packed = tmp_path / (path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    _small_blocks(monkeypatch, block)
    ds = open_dataset(packed, quiet=True, progress=False, **kwargs)
    roots = [str(packed), str(packed.parent)]
    got = {"batches": _digest(ds.batches(), roots)}
    text = json.dumps(ds.accounting.to_dict(), sort_keys=True)
    for root in roots:
        text = text.replace(root, "<root>")
    got["accounting"] = json.loads(text)
    _check(name, got)


@pytest.mark.parametrize("name", ["sample:mptrj_sample.json", "mptrj-edge", "mptrj-corrupt-middle"])
def test_plain_file_and_shards_in_small_blocks_equal_reference(tmp_path, monkeypatch, name):
    _small_blocks(monkeypatch, 4096)
    _check(name, _run(name, tmp_path))
    if name != "mptrj-corrupt-middle":
        _check(name + " (3 shards)", _run(name, tmp_path, shards=3))


def test_pretty_printed_and_empty_files(tmp_path):
    doc = json.loads((sample_dir() / "mptrj_sample.json").read_text())
    compact = open_dataset(sample_dir() / "mptrj_sample.json", quiet=True, progress=False)
    expected = _digest(compact.batches(), [str(sample_dir() / "mptrj_sample.json"), str(sample_dir())])
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(doc, indent=4))
    ds = open_dataset(pretty, quiet=True, progress=False, format="mptrj")
    got = _digest(ds.batches(), [str(pretty), str(tmp_path)])
    assert ds.accounting.read == sum(map(len, doc.values())) and ds.accounting.failed == 0
    assert [b["rows"] for b in got] == [b["rows"] for b in expected]
    for text in ["{}", "  {\n}\n", '{"mps-x": {}}']:
        path = tmp_path / "empty.json"
        path.write_text(text)
        ds = open_dataset(path, quiet=True, progress=False, format="mptrj")
        assert list(ds.batches()) == [] and ds.accounting.read == 0 and ds.accounting.failed == 0
