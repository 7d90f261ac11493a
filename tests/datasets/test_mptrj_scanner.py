"""The compiled MPTrj scanner reads exactly what the reference reader reads.

The scanner (``datasets/readers/_mptrj_scan.py``) is used for files of ``SCAN_MIN_BYTES`` or more; here
that threshold is set to 0 so the small bundled and edge-case files go through it, and the batches and
accounting must equal the stored reference of ``test_frame_reference.py`` byte for byte: plain and
compressed files, with blocks far smaller than a material, with output buffers so small that every scan
stops full and grows them, and in shards.
The number converter is compared with Python's ``float`` bit for bit.
"""
from __future__ import annotations

import functools
import gzip
import json
import math
import struct

import numpy as np
import pytest
from test_frame_reference import _build_case, _check, _digest, _run

from monoculture.datasets import open_dataset
from monoculture.datasets.readers import _mptrj_scan, mptrj
from monoculture.datasets.readers._json_numbers import POW5_HI, POW5_LO, decimal_to_double
from monoculture.datasets.samples import sample_dir

MPTRJ_CASES = ["sample:mptrj_sample.json", "mptrj-edge", "mptrj-edge-compact", "mptrj-truncated",
               "mptrj-corrupt-middle", "mptrj-card-override"]


@pytest.fixture
def scanner_on(monkeypatch):
    monkeypatch.setattr(mptrj, "SCAN_MIN_BYTES", 0)


class _TinyScanner(_mptrj_scan.Scanner):
    """Buffers for one frame of two atoms: every scan of a real material stops full and grows them."""

    def __init__(self):
        super().__init__(frames=1, atoms=2, materials=1, slow=1)


@pytest.mark.parametrize("name", MPTRJ_CASES)
def test_scanner_equals_reference(tmp_path, scanner_on, name):
    _check(name, _run(name, tmp_path))


@pytest.mark.parametrize("name", ["sample:mptrj_sample.json", "mptrj-edge"])
def test_scanner_shards_equal_reference(tmp_path, scanner_on, name):
    _check(name + " (3 shards)", _run(name, tmp_path, shards=3))


@pytest.mark.parametrize("name", ["sample:mptrj_sample.json", "mptrj-edge", "mptrj-corrupt-middle"])
def test_scanner_with_full_buffers_equals_reference(tmp_path, scanner_on, monkeypatch, name):
    monkeypatch.setattr(_mptrj_scan, "Scanner", _TinyScanner)
    _check(name, _run(name, tmp_path))


@pytest.mark.parametrize("name", ["mptrj-edge", "mptrj-truncated", "mptrj-corrupt-middle"])
@pytest.mark.parametrize("block", [64, 1 << 20])
def test_block_reader_equals_reference(tmp_path, scanner_on, monkeypatch, name, block):
    """Compressed files are scanned block by block; materials cross block boundaries."""
    path, kwargs = _build_case(name, tmp_path)
    packed = tmp_path / (path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes()))
    monkeypatch.setattr(mptrj, "_scanned", functools.partial(mptrj._scanned, block_size=block))
    ds = open_dataset(packed, quiet=True, progress=False, **kwargs)
    roots = [str(packed), str(packed.parent)]
    got = {"batches": _digest(ds.batches(), roots)}
    text = json.dumps(ds.accounting.to_dict(), sort_keys=True)
    for root in roots:
        text = text.replace(root, "<root>")
    got["accounting"] = json.loads(text)
    _check(name, got)


def _both(path, **kwargs) -> tuple:
    """(digest, accounting) of the reference reader and of the scanner on one file."""
    out = []
    saved = mptrj.SCAN_MIN_BYTES
    try:
        for threshold in (1 << 62, 0):
            mptrj.SCAN_MIN_BYTES = threshold
            ds = open_dataset(path, quiet=True, progress=False, format="mptrj", **kwargs)
            out.append((_digest(ds.batches(), [str(path)]), ds.accounting.to_dict()))
    finally:
        mptrj.SCAN_MIN_BYTES = saved
    return out


def _sample_doc() -> dict:
    return json.loads((sample_dir() / "mptrj_sample.json").read_text())


def test_numbers_python_converts_equal_reference(tmp_path):
    """Numbers the compiled converter leaves to Python (over 19 digits, subnormal, overflowing) and
    -0.0, exponents and integers give the same frames as the reference reader."""
    doc = _sample_doc()
    frames = [f for m in doc.values() for f in m.values()]
    frames[0]["structure"]["sites"][0]["xyz"][0] = "SUB"
    frames[1]["force"][0] = ["LONG", "NEGZERO", "EXP"]
    frames[2]["uncorrected_total_energy"] = "HUGE"
    frames[3]["stress"][1][1] = "TINY"
    frames[4]["structure"]["lattice"]["matrix"][0][0] = "INTEXP"
    text = json.dumps(doc)
    for token, number in [("SUB", "4.9406564584124654e-324"), ("LONG", "0.1234567890123456789012345"),
                          ("NEGZERO", "-0.0"), ("EXP", "1.5E+2"), ("HUGE", "1e400"), ("TINY", "2.5e-320"),
                          ("INTEXP", "3e0")]:
        text = text.replace(f'"{token}"', number)
    path = tmp_path / "numbers.json"
    path.write_text(text)
    reference, scanned = _both(path)
    assert scanned == reference
    assert reference[1]["read"] >= 80


def test_regular_variants_equal_reference(tmp_path):
    """What the scanner itself must read like the reference: a non-periodic axis, null or missing forces
    and stress, the corrected energy when the uncorrected one is null, integer energies, an unknown
    element, keys in another order, unknown keys holding nested values, an empty material."""
    doc = _sample_doc()
    ids = list(doc)
    firsts = [doc[i][next(iter(doc[i]))] for i in ids]
    firsts[-1]["structure"]["lattice"]["pbc"] = [True, True, False]
    firsts[-2]["stress"] = None
    del firsts[-3]["force"]
    firsts[-4]["uncorrected_total_energy"] = None
    firsts[-5]["uncorrected_total_energy"] = -12
    firsts[-6]["structure"]["sites"][0]["species"][0]["element"] = "Xx"
    firsts[-7]["extra"] = {"a": [1, {"b": [True, False, None]}, "x"], "c": -1.5e-3}
    last = ids[-8]
    frame_id = next(iter(doc[last]))
    rec = doc[last][frame_id]
    doc[last][frame_id] = {"force": rec["force"], "stress": rec["stress"], "mp_id": rec["mp_id"],
                           "corrected_total_energy": rec["corrected_total_energy"],
                           "uncorrected_total_energy": rec["uncorrected_total_energy"],
                           "structure": rec["structure"]}
    doc["mps-none"] = {}
    path = tmp_path / "variants.json"
    path.write_text(json.dumps(doc))
    reference, scanned = _both(path)
    assert scanned == reference
    assert reference[1]["skipped_reasons"] == {"unknown_element": 1}


def test_irregular_materials_go_to_the_reference_reader(tmp_path):
    """Escapes, non-ASCII text, NaN tokens, duplicate keys and frame ids, booleans where numbers are
    expected: each such material is read by the reference reader, the rest by the scanner."""
    doc = _sample_doc()
    ids = list(doc)
    doc[ids[0]][next(iter(doc[ids[0]]))]["mp_id"] = "caf\u00e9 \"quoted\""
    first = doc[ids[1]][next(iter(doc[ids[1]]))]
    first["structure"]["sites"][0]["label"] = "Fe\u2082"
    doc[ids[2]][next(iter(doc[ids[2]]))]["structure"]["lattice"]["pbc"] = [1, 1, 1]
    doc[ids[3]][next(iter(doc[ids[3]]))]["structure"]["sites"][0]["species"][0]["occu"] = True
    doc[ids[4]][next(iter(doc[ids[4]]))]["bandgap"] = float("nan")
    doc[ids[5]][next(iter(doc[ids[5]]))]["uncorrected_total_energy"] = float("inf")
    text = json.dumps(doc)  # Python writes NaN / Infinity tokens for the last two
    key = next(iter(doc[ids[6]]))
    text = text.replace(f'"{key}": {{', f'"{key}": {{"stress": null, ', 1)  # stress given twice
    frame_ids = list(doc[ids[7]])
    text = text.replace(f'"{frame_ids[1]}"', f'"{frame_ids[0]}"', 1)  # a frame id given twice
    path = tmp_path / "irregular.json"
    path.write_text(text)
    reference, scanned = _both(path)
    assert scanned == reference
    assert reference[1]["skipped_reasons"].get("nan_energy", 0) >= 1


def test_pretty_printed_and_empty_files(tmp_path):
    doc = _sample_doc()
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(doc, indent=4))
    reference, scanned = _both(pretty)
    assert scanned == reference and reference[1]["read"] == sum(map(len, doc.values()))
    for text in ["{}", "  {\n}\n", '{"mps-x": {}}']:
        path = tmp_path / "empty.json"
        path.write_text(text)
        reference, scanned = _both(path)
        assert scanned == reference and reference[1]["read"] == 0


def _decimal_parts(text: str):
    """(mantissa, power of ten, negative) of a decimal string with at most 19 significant digits."""
    negative = text.startswith("-")
    mantissa, _, exponent = text.lstrip("-").lower().partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0") or "0"
    if len(digits) > 19:
        return None
    return int(digits), int(exponent or 0) - len(fraction), negative


def test_decimal_to_double_is_correctly_rounded():
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**63, size=20000, dtype=np.uint64) * 2 + rng.integers(0, 2, size=20000, dtype=np.uint64)
    texts = [repr(x) for x in bits.view(np.float64).tolist() if math.isfinite(x)]
    texts += [repr(float(x)) for x in rng.normal(scale=5.0, size=20000)]
    texts += [f"{x:.{int(k)}e}" for x, k in zip(rng.uniform(-1e6, 1e6, 20000), rng.integers(0, 19, 20000))]
    texts += ["0", "-0.0", "1", "9007199254740993", "9007199254740992", "1e23", "2.2250738585072014e-308",
              "2.2250738585072011e-308", "1.7976931348623157e308", "1.7976931348623159e308", "0.1",
              "0.30000000000000004", "1e-300", "9999999999999999999", "1e-342", "7.038531e-26",
              "9007199254740993e-3", "123456789012345678e-20", "5e-324", "1e-400"]
    exact = 0
    for text in texts:
        parts = _decimal_parts(text)
        if parts is None:
            continue
        ok, value = decimal_to_double(np.uint64(parts[0]), parts[1], parts[2], POW5_HI, POW5_LO)
        if ok:
            exact += 1
            assert struct.pack("<d", value) == struct.pack("<d", float(text)), text
    assert exact > 0.95 * len(texts)


@pytest.mark.parametrize("name", ["mptrj-edge", "mptrj-corrupt-middle"])
def test_plain_file_in_small_blocks_equals_reference(tmp_path, scanner_on, monkeypatch, name):
    """A plain file (and its shards) scanned in 4 kB blocks, far smaller than its materials."""
    monkeypatch.setattr(mptrj, "_scanned", functools.partial(mptrj._scanned, block_size=4096))
    _check(name, _run(name, tmp_path))
    if name == "mptrj-edge":
        _check(name + " (3 shards)", _run(name, tmp_path, shards=3))
