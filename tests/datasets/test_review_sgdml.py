"""The sGDML ``.npz`` reader on damaged compressed archives, and how many times it reads a file per open.

A ``np.savez_compressed`` archive whose deflate stream is damaged raises ``zlib.error`` (or a header parse
error) from numpy, not an ``OSError``: opening it must still give the one-line error naming the file, and
inside a folder it is one failed record ``unreadable_npz`` (not the folder's generic ``reader_error``).
"""
from __future__ import annotations

import gzip
import re
import zipfile

import numpy as np
import pyarrow as pa
import pytest
from ase.build import molecule

from monoculture.datasets import open_dataset, sniff_format
from monoculture.datasets.errors import DatasetOpenError
from monoculture.datasets.readers import sgdml_npz

KCAL_MOL_EV = 0.0433641  # 1 kcal/mol in eV


def _arrays(n: int = 12) -> dict:
    atoms = molecule("CH3CH2OH")
    rng = np.random.default_rng(7)
    return {"R": atoms.positions[None] + rng.normal(scale=0.05, size=(n, len(atoms), 3)), "z": atoms.numbers,
            "E": -97_000.0 + rng.normal(size=(n, 1)), "F": rng.normal(scale=20.0, size=(n, len(atoms), 3)),
            "name": "ethanol_dft", "theory": "DFT: PBE+TS"}


def _member_data(path, member: str) -> tuple[int, int]:
    """(offset, size) in bytes of the compressed data of one member of a zip archive."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    raw = path.read_bytes()
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def _damaged(valid: bytes, offset: int) -> bytes:
    out = bytearray(valid)
    for k in range(offset, min(offset + 4, len(out))):
        out[k] ^= 0xA5
    return bytes(out)


def _offsets(path) -> list[int]:
    """Offsets inside the deflate streams of R and F (start, a quarter, middle, near the end), and an even
    sweep over the whole file (zip headers and directory included)."""
    out = []
    for member in ("R.npy", "F.npy"):
        start, size = _member_data(path, member)
        out += [start, start + size // 4, start + size // 2, start + size - 8]
    n = path.stat().st_size
    return sorted(set(out + list(range(0, n, max(n // 40, 1)))))


def test_damaged_compressed_archive_is_one_line_error_or_read(tmp_path):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, **_arrays())
    valid = good.read_bytes()
    errors = 0
    for offset in _offsets(good):
        path = tmp_path / f"damaged_{offset}.npz"
        path.write_bytes(_damaged(valid, offset))
        try:
            ds = open_dataset(path, format="sgdml-npz", quiet=True, progress=False)
        except DatasetOpenError as exc:  # anything else (zlib.error, TokenError...) fails the test
            text = str(exc)
            assert str(path) in text and "\n" not in text, (offset, text)
            assert "not a readable .npz archive" in text or "unreadable sGDML .npz" in text or \
                "not an sGDML dataset" in text, (offset, text)
            errors += 1
            continue
        t = pa.concat_tables(list(ds.batches()))  # bytes the reading does not use (a timestamp...): all read
        assert t.num_rows == ds.accounting.read == 12 and ds.accounting.failed == 0, offset
    assert errors >= 8  # every flip inside the R and F deflate streams is detected


def test_damaged_deflate_stream_is_named_with_its_error(tmp_path):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, **_arrays())
    start, size = _member_data(good, "R.npy")
    path = tmp_path / "damaged.npz"
    path.write_bytes(_damaged(good.read_bytes(), start + size // 2))
    with pytest.raises(DatasetOpenError) as err:
        open_dataset(path, format="sgdml-npz", quiet=True)
    text = str(err.value)
    assert text.startswith(f"{path}: unreadable sGDML .npz (") and "\n" not in text
    assert re.search(r"\(\w+: .+\)$", text), text  # the exception named: (zlib.error: ...), (BadZipFile: ...)


def test_damaged_archive_in_a_folder_is_counted_unreadable_npz(tmp_path):
    folder = tmp_path / "md"
    folder.mkdir()
    good = folder / "a_good.npz"
    np.savez_compressed(good, **_arrays())
    start, size = _member_data(good, "F.npy")
    for i, offset in enumerate((start, start + size // 2)):
        (folder / f"b_damaged_{i}.npz").write_bytes(_damaged(good.read_bytes(), offset))
    (folder / "c_bad_gzip.npz.gz").write_bytes(_damaged(gzip.compress(good.read_bytes()), 200))
    ds = open_dataset(folder, format="sgdml-npz", quiet=True, progress=False)
    t = pa.concat_tables(list(ds.batches()))
    assert t.num_rows == ds.accounting.read == 12
    assert ds.accounting.failed == 3 and dict(ds.accounting.failed_reasons) == {"unreadable_npz": 3}


def test_damaged_gzip_around_an_archive_is_one_line(tmp_path):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, **_arrays())
    path = tmp_path / "water.npz.gz"
    path.write_bytes(_damaged(gzip.compress(good.read_bytes()), 200))
    with pytest.raises(DatasetOpenError) as err:
        open_dataset(path, format="sgdml-npz", quiet=True)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("suffix", [".npz", ".npz.gz"])
def test_one_open_and_read_loads_the_archive_once(tmp_path, monkeypatch, suffix):
    """sniff, check, detect_card and the reading share one full load of the file (the sniffing and the card
    use a cached member list); a second pass reads the file again, with the same frames."""
    path = tmp_path / f"ethanol{suffix}"
    plain = tmp_path / "plain.npz"
    arrays = _arrays()
    np.savez(plain, **arrays)
    path.write_bytes(gzip.compress(plain.read_bytes()) if suffix.endswith(".gz") else plain.read_bytes())
    loads = []
    real = sgdml_npz._load
    monkeypatch.setattr(sgdml_npz, "_load", lambda p: loads.append(p) or real(p))
    ds = open_dataset(path, quiet=True, progress=False)  # sniffed: no format given
    assert ds.format == "sgdml-npz" and ds.card is not None and ds.card.name == "md17"
    first = pa.concat_tables(list(ds.batches()))
    assert len(loads) == 2  # the member list (sniff, card), then every array (check, reading)
    second = pa.concat_tables(list(ds.batches()))
    assert len(loads) == 3  # nothing is held after a pass: the second one reads again
    assert first.equals(second) and first.num_rows == 12
    np.testing.assert_allclose(first.column("energy_eV").to_numpy(), arrays["E"][:, 0] * KCAL_MOL_EV, rtol=1e-6)


def test_a_file_changed_after_open_is_read_as_it_is_now(tmp_path):
    path = tmp_path / "ethanol.npz"
    arrays = _arrays()
    np.savez(path, **arrays)
    ds = open_dataset(path, quiet=True, progress=False)
    changed = dict(arrays, E=arrays["E"][:5], R=arrays["R"][:5], F=arrays["F"][:5])
    np.savez(path, **changed)
    t = pa.concat_tables(list(ds.batches()))
    assert t.num_rows == ds.accounting.read == 5


def test_object_array_member_is_sniffed_and_refused_in_one_line(tmp_path):
    """A ``name`` stored as an object array (pickled) keeps the file recognised as sGDML; opening it refuses
    to unpickle, in one line naming the file."""
    path = tmp_path / "pickled.npz"
    np.savez(path, **dict(_arrays(), name=np.array([{"a": 1}], dtype=object)))
    assert sniff_format(path) == "sgdml-npz"
    with pytest.raises(DatasetOpenError) as err:
        open_dataset(path, quiet=True)
    text = str(err.value)
    assert text.startswith(f"{path}: unreadable sGDML .npz (ValueError: ") and "\n" not in text
