"""Folders of structure files as one dataset: CIF / POSCAR folders, MPTrj shards with a broken one, mixed folders."""
from __future__ import annotations

import shutil

import ase.io
import numpy as np
import pytest
from ase.collections import dcdft
from ase.geometry import cell_to_cellpar

from monoculture.datasets import Accounting, concat_batches, open_dataset, sniff_format

#: dcdft's first twelve elemental crystals (H4 ... Mg2: 2 to 12 atoms, several lattices).
DCDFT_NAMES = list(dcdft.names)[:12]


def _read(path, **kw):
    ds = open_dataset(path, quiet=True, **kw)
    return ds, concat_batches(ds.batches())


@pytest.fixture()
def cif_folder(tmp_path):
    folder = tmp_path / "cifs"
    folder.mkdir()
    for name in DCDFT_NAMES:
        ase.io.write(folder / f"{name}.cif", dcdft[name])
    return folder


def test_cif_folder_reads_every_structure(cif_folder):
    ds, t = _read(cif_folder)
    assert ds.format == "folder" and ds.card is None
    assert ds.accounting.to_dict()["read"] == len(DCDFT_NAMES) == t.num_rows
    assert ds.accounting.skipped == ds.accounting.failed == 0
    rows = {r["id"]: r for r in t.to_pylist()}
    assert sorted(rows) == sorted(f"{n}.cif:0" for n in DCDFT_NAMES)  # one id per file, sorted file order
    assert t.column("id").to_pylist() == sorted(rows)
    for name in DCDFT_NAMES:
        atoms, row = dcdft[name], rows[f"{name}.cif:0"]
        assert row["n_atoms"] == len(atoms)
        assert sorted(row["numbers"]) == sorted(atoms.numbers.tolist())
        assert row["pbc"] == [True, True, True]
        # CIF stores lengths and angles: compare those (the matrix may be rotated), and the volume (Å^3).
        cell = np.reshape(row["cell"], (3, 3))
        assert np.allclose(cell_to_cellpar(cell), atoms.cell.cellpar(), atol=1e-4)
        assert row["volume_A3"] == pytest.approx(atoms.get_volume(), rel=1e-5)
        assert row["source"] == f"{cif_folder}::{name}.cif::frame 0"


def test_poscar_folders_mixed_with_cif_and_junk(tmp_path):
    folder = tmp_path / "calcs"
    for mp_id, name in [("mp-1", "Si"), ("mp-2", "Ge")]:
        (folder / mp_id).mkdir(parents=True)
        ase.io.write(folder / mp_id / "POSCAR", dcdft[name], format="vasp")
        ase.io.write(folder / mp_id / "CONTCAR", dcdft[name], format="vasp")
    ase.io.write(folder / "Li.cif", dcdft["Li"])
    (folder / "notes.txt").write_text("not a structure\n")
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    (folder / ".cache").mkdir()
    ase.io.write(folder / ".cache" / "Na.cif", dcdft["Na"])
    (folder / "empty.cif").write_text("data_empty\n_cell_length_a 3.0\n")
    ds, t = _read(folder)
    ids = t.column("id").to_pylist()
    assert ids == ["Li.cif:0", "mp-1/CONTCAR:0", "mp-1/POSCAR:0", "mp-2/CONTCAR:0", "mp-2/POSCAR:0"]
    assert len(set(ids)) == len(ids)  # two POSCARs, two CONTCARs: the path in the folder keeps ids apart
    assert t.column("formula").to_pylist() == ["Li3", "Si8", "Si8", "Ge8", "Ge8"]
    acc = ds.accounting
    assert (acc.read, acc.skipped, acc.failed) == (5, 1, 1)  # every file but the hidden ones is counted
    assert dict(acc.skipped_reasons) == {"unrecognised_file": 1}
    assert dict(acc.failed_reasons) == {"no_structure": 1}
    assert {e.file for e in acc.examples} == {str(folder / "notes.txt"), str(folder / "empty.cif")}


@pytest.fixture()
def mptrj_folder(tmp_path, shared_samples):
    folder = tmp_path / "mptrj_shards"
    folder.mkdir()
    good = folder / "part_a.json"  # names that say nothing: the content says MPTrj
    shutil.copy(shared_samples / "mptrj_sample.json", good)
    data = good.read_bytes()
    (folder / "part_b.json").write_bytes(data[: len(data) // 3])  # a download that broke off
    return folder


def test_mptrj_folder_with_a_broken_shard(mptrj_folder, truth):
    good, broken = mptrj_folder / "part_a.json", mptrj_folder / "part_b.json"
    assert sniff_format(good) == sniff_format(broken) == "mptrj"
    ds, t = _read(mptrj_folder)
    assert ds.card.name == "mptrj"  # every shard's reader agrees on the card
    alone = [_read(f)[0].accounting for f in (good, broken)]
    assert alone[0].read == truth["mptrj"]["frames"] and alone[0].failed == 0
    assert alone[1].failed == 1 and 0 < alone[1].read < alone[0].read
    acc = ds.accounting
    assert (acc.read, acc.skipped, acc.failed) == (alone[0].read + alone[1].read, 0, 1)
    assert [e.file for e in acc.examples] == [str(broken)]  # the failure names the broken file
    sources = t.column("source").to_pylist()
    assert sum(s.startswith(f"{mptrj_folder}::part_a.json::") for s in sources) == truth["mptrj"]["frames"]
    assert set(t.column("level_of_theory").to_pylist()) <= {"PBE", "PBE+U"}  # the card's rule applies


def test_folder_shards_merge_to_one_pass(mptrj_folder, cif_folder):
    for folder in (mptrj_folder, cif_folder):
        ds, serial = _read(folder, batch_size=5)
        expected = ds.accounting.to_dict()
        units = ds.shards(3)
        assert len(units) == min(3, len(list(folder.iterdir())))
        parts, acc = [], Accounting()
        for unit in units:
            parts.extend(ds.batches(shard=unit))
            acc = acc.merge(ds.accounting)
        assert concat_batches(parts).equals(serial)
        assert acc.to_dict() == expected


def test_batches_have_batch_size_records_across_files(cif_folder):
    ds = open_dataset(cif_folder, quiet=True, batch_size=5)
    assert [b.num_rows for b in ds.batches()] == [5, 5, 2]


def test_format_forces_the_reader_of_every_file(tmp_path, shared_samples):
    folder = tmp_path / "dump"
    folder.mkdir()
    shutil.copy(shared_samples / "mptrj_sample.json", folder / "chunk.000")
    ds, _ = _read(folder)
    assert (ds.accounting.read, dict(ds.accounting.skipped_reasons)) == (0, {"unrecognised_file": 1})
    ds, t = _read(folder, format="mptrj")
    assert ds.format == "folder" and ds.options.file_format == "mptrj"
    assert t.num_rows == ds.accounting.read > 0


def test_empty_inputs_read_as_nothing(tmp_path):
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    (empty_dir / ".hidden.cif").write_text("x")
    (tmp_path / "empty.extxyz").write_text("")
    for path in (empty_dir, tmp_path / "empty.extxyz"):
        ds = open_dataset(path, quiet=True)
        assert list(ds.batches()) == []
        assert ds.accounting.to_dict()["read"] == ds.accounting.total == 0


def test_a_second_pass_prints_nothing_new(tmp_path, caplog):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    ds = open_dataset(folder)
    for _ in range(2):  # the audit reads a first batch to fit its descriptor, then everything
        list(ds.batches())
    assert ds.accounting.skipped == 1
    assert sum("unrecognised_file" in r.getMessage() for r in caplog.records) == 1
