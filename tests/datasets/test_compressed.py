"""Compressed files (.gz, .bz2, .xz) read like the plain file, through the reader of the format inside."""
from __future__ import annotations

import bz2
import gzip
import lzma

import ase.io
import numpy as np
import pyarrow as pa
import pytest
from ase.collections import dcdft, g2

from monoculture.datasets import concat_batches, open_dataset, sniff_format

COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
#: Columns that name the file (they differ between the plain and the compressed file by design).
NAMING = ("id", "source", "dataset")


def _write_plain(folder, kind: str):
    if kind == "extxyz":
        path = folder / "crystals.extxyz"
        frames = [dcdft[n] for n in list(dcdft.names)[:6]]
        for i, atoms in enumerate(frames):
            atoms.info["energy"] = -1.5 * len(atoms) - 0.1 * i  # eV
        ase.io.write(path, frames, format="extxyz")
    elif kind == "xyz":
        path = folder / "molecules.xyz"
        ase.io.write(path, [g2[n] for n in ("H2O", "CH4", "C6H6", "NH3")], format="xyz")
    elif kind == "cif":
        path = folder / "Si.cif"
        ase.io.write(path, dcdft["Si"])
    elif kind == "poscar":
        path = folder / "POSCAR"
        ase.io.write(path, dcdft["Fe"], format="vasp")
    return path


def _assert_tables_close(got: pa.Table, want: pa.Table) -> None:
    """Same frames: floats within 1e-9 relative (NaN = NaN), everything else equal; naming columns ignored."""
    assert got.num_rows == want.num_rows > 0
    for name in want.column_names:
        if name in NAMING:
            continue
        a, b = got.column(name), want.column(name)
        flat_type = a.type
        while pa.types.is_list(flat_type) or pa.types.is_fixed_size_list(flat_type):
            flat_type = flat_type.value_type
        if pa.types.is_floating(flat_type):
            fa = np.array([np.nan if v is None else v for v in np.ravel(_flat(a.to_pylist()))], dtype=float)
            fb = np.array([np.nan if v is None else v for v in np.ravel(_flat(b.to_pylist()))], dtype=float)
            np.testing.assert_allclose(fa, fb, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name)
        else:
            assert a.to_pylist() == b.to_pylist(), name


def _flat(values) -> list:
    out = []
    for v in values:
        if isinstance(v, list):
            out.extend(_flat(v))
        else:
            out.append(v)
    return out


@pytest.mark.parametrize("kind", ["extxyz", "xyz", "cif", "poscar"])
@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_compressed_reads_like_plain(tmp_path, kind, suffix):
    plain = _write_plain(tmp_path, kind)
    packed = plain.with_name(plain.name + suffix)
    packed.write_bytes(COMPRESSORS[suffix](plain.read_bytes()))
    plain_ds, packed_ds = open_dataset(plain, quiet=True), open_dataset(packed, quiet=True)
    assert packed_ds.format == plain_ds.format == "ase"
    want, got = concat_batches(plain_ds.batches()), concat_batches(packed_ds.batches())
    _assert_tables_close(got, want)
    assert packed_ds.accounting.to_dict()["read"] == plain_ds.accounting.read == want.num_rows
    assert packed_ds.accounting.failed == 0


def test_compressed_frames_hold_the_written_numbers(tmp_path):
    plain = _write_plain(tmp_path, "extxyz")
    packed = tmp_path / "crystals.extxyz.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    t = concat_batches(open_dataset(packed, quiet=True).batches())
    names = list(dcdft.names)[:6]
    assert t.column("n_atoms").to_pylist() == [len(dcdft[n]) for n in names]
    assert t.column("energy_eV").to_pylist() == pytest.approx([-1.5 * len(dcdft[n]) - 0.1 * i
                                                               for i, n in enumerate(names)])
    assert t.column("id").to_pylist() == [f"crystals.extxyz.gz:{i}" for i in range(6)]


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_compressed_mptrj_is_sniffed_by_its_content(tmp_path, shared_samples, truth, suffix):
    packed = tmp_path / f"shard_07.json{suffix}"  # no "mptrj" in the name; .json.bz2 is not Alexandria here
    packed.write_bytes(COMPRESSORS[suffix]((shared_samples / "mptrj_sample.json").read_bytes()))
    assert sniff_format(packed) == "mptrj"
    ds = open_dataset(packed, quiet=True)
    assert sum(b.num_rows for b in ds.batches()) == ds.accounting.read == truth["mptrj"]["frames"]


def test_alexandria_json_bz2_still_alexandria(tmp_path, shared_samples, truth):
    source = shared_samples / "alexandria_sample.json.bz2"
    assert sniff_format(source) == "alexandria"
    renamed = tmp_path / "entries_000.json.bz2"  # Alexandria content, any name
    renamed.write_bytes(source.read_bytes())
    regz = tmp_path / "entries_000.json.gz"
    regz.write_bytes(gzip.compress(bz2.decompress(source.read_bytes())))
    for path in (renamed, regz):
        assert sniff_format(path) == "alexandria"
        ds = open_dataset(path, quiet=True)
        assert sum(b.num_rows for b in ds.batches()) == ds.accounting.read == truth["alexandria"]["entries"]


def test_truncated_gzip_is_counted_not_raised(tmp_path):
    plain = _write_plain(tmp_path, "extxyz")
    data = gzip.compress(plain.read_bytes())
    packed = tmp_path / "cut.extxyz.gz"
    packed.write_bytes(data[: len(data) // 2])
    ds = open_dataset(packed, quiet=True)
    n = sum(b.num_rows for b in ds.batches())
    assert n == ds.accounting.read < 6
    assert dict(ds.accounting.failed_reasons) == {"truncated_or_corrupt_file": 1}


def test_empty_compressed_extxyz(tmp_path):
    packed = tmp_path / "empty.extxyz.gz"
    packed.write_bytes(gzip.compress(b""))
    ds = open_dataset(packed, quiet=True)
    assert list(ds.batches()) == [] and ds.accounting.total == 0
