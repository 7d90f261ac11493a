"""Readers added by another package through the ``monoculture.readers`` entry-point group.

A tiny fake distribution (a ``*.dist-info`` folder with ``entry_points.txt``, and its module) is put on
``sys.path``: the registry lists its format, sniffs its files, and reads them like any bundled format.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from monoculture.datasets import READERS, open_dataset, sniff_format
from monoculture.datasets.errors import UnknownFormatError
from monoculture.datasets.registry import ENTRY_POINT_GROUP, bundled_modules, get_reader

PLUGIN = '''
"""Toy format: one 'Z x y z' line per atom (Å), frames separated by a blank line."""
from monoculture.datasets.records import RawFrame
from monoculture.datasets.options import ReaderSpec

READER = ReaderSpec("toyxyz", "toy format of a third-party package (.toy)", __name__, extensions=(".toy",))


def iter_records(path, options, accounting):
    for i, block in enumerate(path.read_text().strip().split("\\n\\n")):
        rows = [line.split() for line in block.splitlines()]
        yield RawFrame(id=f"{path.stem}:{i}", key=f"frame {i}", numbers=[int(r[0]) for r in rows],
                       positions=[[float(x) for x in r[1:4]] for r in rows], pbc=[False, False, False])
'''


def _distribution(root, entry_points: str, modules: dict[str, str]):
    for name, code in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(code))
    info = root / "toy_monoculture_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-monoculture-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}")
    return root


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """sys.path holds the fake distribution while the test runs; the registry is collected again after."""
    _distribution(tmp_path, "toy = toy_reader\n", {"toy_reader": PLUGIN})
    (tmp_path / "water.toy").write_text("8 0 0 0\n1 0.96 0 0\n1 -0.24 0.93 0\n\n6 0 0 0\n1 1.09 0 0\n"
                                        "1 -0.36 1.03 0\n1 -0.36 -0.51 0.89\n1 -0.36 -0.51 -0.89\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    READERS.reload()
    yield tmp_path
    READERS.reload()  # collected again, without the plugin, on next use
    sys.modules.pop("toy_reader", None)


def _bundled_names() -> list[str]:
    """Format names of the bundled reader modules, in their declared detection order."""
    specs = [importlib.import_module(f"monoculture.datasets.readers.{m}").READER for m in bundled_modules()]
    return [s.name for s in sorted(specs, key=lambda s: (s.order, s.name))]


def test_bundled_readers_declare_themselves():
    assert list(READERS)[: len(bundled_modules())] == _bundled_names()
    assert list(READERS)[:2] == ["mptrj", "aselmdb"] and list(READERS)[-1] == "folder"  # specific first, fallback last
    assert "mptrj" in bundled_modules() and not any(m.startswith("_") for m in bundled_modules())
    assert get_reader("mptrj").module_path == "monoculture.datasets.readers.mptrj"
    from monoculture.datasets import load_cards

    cards = load_cards()
    for spec in READERS.values():  # every card a reader says it may detect is a real card
        assert set(spec.cards) <= set(cards), spec.name


def test_entry_point_adds_a_format(plugin_path):
    assert "toyxyz" in READERS and list(READERS)[-1] == "toyxyz"  # after the bundled readers
    path = plugin_path / "water.toy"
    assert sniff_format(path) == "toyxyz"
    ds = open_dataset(path)
    table = ds.batches().__next__()
    assert ds.format == "toyxyz"
    assert table.column("formula").to_pylist() == ["H2O", "CH4"]
    assert table.column("n_atoms").to_pylist() == [3, 5]
    positions = np.array(table.column("positions")[0].as_py())
    assert positions[1] == pytest.approx([0.96, 0.0, 0.0])
    assert ds.accounting.read == 2


def test_formats_command_lists_the_plugin(plugin_path, capsys):
    from monoculture.cli import main

    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    assert "toyxyz" in out and "toy format of a third-party package" in out


def test_formats_command_in_a_fresh_process(plugin_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "monoculture", "formats"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1].split()[0] == "toyxyz" and any(line.split()[0] == "mptrj" for line in lines)


def test_broken_or_clashing_plugins_are_skipped(tmp_path, monkeypatch, caplog):
    clash = PLUGIN.replace('ReaderSpec("toyxyz"', 'ReaderSpec("mptrj"')
    _distribution(tmp_path, "broken = toy_broken\nclash = toy_clash\nwrong = toy_wrong\n",
                  {"toy_broken": "raise ImportError('needs a missing library')\n", "toy_clash": clash,
                   "toy_wrong": "READER = 'not a spec'\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    READERS.reload()
    try:
        names = list(READERS)
        problems = list(READERS.problems)
    finally:
        READERS.reload()
        for m in ("toy_broken", "toy_clash", "toy_wrong"):
            sys.modules.pop(m, None)
    assert names == _bundled_names()
    assert len(problems) == 3
    assert any("toy_broken" in p and "cannot be loaded" in p for p in problems)
    assert any("already registered" in p for p in problems)
    assert any("not a ReaderSpec" in p for p in problems)
    assert get_reader("mptrj").module_path == "monoculture.datasets.readers.mptrj"


def test_unknown_format_lists_the_registered_ones(tmp_path):
    with pytest.raises(UnknownFormatError, match="known formats: mptrj, "):
        get_reader("nope")
    odd = tmp_path / "data.unknownext"
    odd.write_text("hello")
    with pytest.raises(UnknownFormatError, match="no reader recognises"):
        sniff_format(odd)
