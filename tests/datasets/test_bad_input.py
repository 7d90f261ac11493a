"""Bad input: every record ends up read, skipped or failed with a reason; corrupt bytes never crash."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monoculture.datasets import open_dataset


def _consume(path, **kw):
    ds = open_dataset(path, quiet=True, **kw)
    n = sum(t.num_rows for t in ds.batches())
    assert n == ds.accounting.read
    return ds.accounting


@pytest.fixture()
def mptrj_doc(shared_samples):
    return json.loads((shared_samples / "mptrj_sample.json").read_text())


def _first_frames(doc, n):
    out = []
    for mp_id, frames in doc.items():
        for fid in frames:
            out.append((mp_id, fid))
            if len(out) == n:
                return out
    return out


def test_mptrj_nan_energy_unknown_element_and_broken_structure(tmp_path, mptrj_doc):
    (a_mp, a_f), (b_mp, b_f), (c_mp, c_f), (d_mp, d_f) = _first_frames(mptrj_doc, 4)
    # Strict JSON has no NaN literal: writers emit a "NaN" string or null.
    mptrj_doc[a_mp][a_f]["uncorrected_total_energy"] = "NaN"
    mptrj_doc[d_mp][d_f]["uncorrected_total_energy"] = None
    mptrj_doc[d_mp][d_f]["corrected_total_energy"] = None
    mptrj_doc[b_mp][b_f]["structure"]["sites"][0]["species"][0]["element"] = "Xx"
    del mptrj_doc[c_mp][c_f]["structure"]["lattice"]
    path = tmp_path / "mptrj_bad.json"
    path.write_text(json.dumps(mptrj_doc))
    acc = _consume(path)
    total = sum(len(f) for f in mptrj_doc.values())
    assert acc.total == total
    assert acc.skipped_reasons == {"nan_energy": 1, "unknown_element": 1, "missing_energy": 1}
    assert acc.failed_reasons == {"bad_structure": 1}
    keys = {e.key for e in acc.examples}
    assert f"{a_mp}/{a_f}" in keys and f"{b_mp}/{b_f}" in keys and f"{c_mp}/{c_f}" in keys
    assert all(e.file == str(path) for e in acc.examples)


def test_mptrj_bare_nan_and_infinity_are_frames_not_a_broken_material(tmp_path, mptrj_doc):
    """Python's json and pymatgen's encoder write float('nan') as a bare NaN token (not strict JSON): the frame
    is skipped for its energy and the other frames of its material are still read."""
    (a_mp, a_f), = _first_frames(mptrj_doc, 1)
    n_frames_a = len(mptrj_doc[a_mp])
    assert n_frames_a > 1
    mptrj_doc[a_mp][a_f]["uncorrected_total_energy"] = float("nan")
    last_mp = list(mptrj_doc)[-1]
    last_f = list(mptrj_doc[last_mp])[-1]
    mptrj_doc[last_mp][last_f]["uncorrected_total_energy"] = float("inf")
    path = tmp_path / "mptrj_nan.json"
    path.write_text(json.dumps(mptrj_doc))  # allow_nan: NaN and Infinity tokens
    assert b"NaN" in path.read_bytes() and b"Infinity" in path.read_bytes()
    acc = _consume(path)
    total = sum(len(f) for f in mptrj_doc.values())
    assert acc.total == total and acc.failed == 0
    assert acc.read == total - 2 and acc.skipped_reasons == {"nan_energy": 2}  # non-finite energies
    keys = {e.key for e in acc.examples}
    assert f"{a_mp}/{a_f}" in keys and f"{last_mp}/{last_f}" in keys


def test_mptrj_truncated_file_reads_what_it_can(tmp_path, shared_samples):
    data = (shared_samples / "mptrj_sample.json").read_bytes()
    path = tmp_path / "mptrj_trunc.json"
    path.write_bytes(data[: len(data) // 2])
    acc = _consume(path, format="mptrj")
    assert acc.read > 0
    assert acc.failed_reasons == {"truncated_or_corrupt_file": 1}


def test_aselmdb_truncated_shard_is_counted_and_others_read(tmp_path, shared_samples):
    src = shared_samples / "omat24_sample"
    dst = tmp_path / "omat24"
    shutil.copytree(src, dst)
    shard = sorted(dst.rglob("*.aselmdb"))[0]
    shard.write_bytes(shard.read_bytes()[:5000])
    acc = _consume(dst)
    assert acc.read == 24
    assert acc.failed == 1
    (reason,) = acc.failed_reasons
    assert reason in {"truncated_container", "unreadable_container", "truncated_or_corrupt_container"}


def test_aselmdb_garbage_file_fails_cleanly(tmp_path):
    path = tmp_path / "junk.aselmdb"
    path.write_bytes(b"not an lmdb file at all" * 200)
    acc = _consume(path)
    assert acc.read == 0 and acc.failed == 1


def test_extxyz_bad_frame_in_the_middle(tmp_path):
    text = (
        "1\nLattice=\"3 0 0 0 3 0 0 0 3\" Properties=species:S:1:pos:R:3 energy=-1.0 pbc=\"T T T\"\nCu 0 0 0\n"
        "1\nLattice=\"3 0 0 0 3 0 0 0 3\" Properties=species:S:1:pos:R:3 energy=-1.0 pbc=\"T T T\"\nQq 0 0 0\n"
        "1\nLattice=\"3 0 0 0 3 0 0 0 3\" Properties=species:S:1:pos:R:3 energy=nan pbc=\"T T T\"\nAl 0 0 0\n"
        "1\nLattice=\"3 0 0 0 3 0 0 0 3\" Properties=species:S:1:pos:R:3 energy=-2.0 pbc=\"T T T\"\nNi 0 0 0\n"
    )
    path = tmp_path / "bad.extxyz"
    path.write_text(text)
    acc = _consume(path)
    assert acc.read == 2
    assert acc.total == 4
    assert acc.skipped_reasons == {"nan_energy": 1}
    assert sum(acc.failed_reasons.values()) == 1


def test_nan_forces_and_wrong_shape(tmp_path):
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    a = bulk("NaCl", "rocksalt", a=5.64)
    b = a.copy()
    f = np.zeros((2, 3))
    f[0, 0] = np.nan
    a.calc = SinglePointCalculator(a, energy=-1.0, forces=f)
    b.calc = SinglePointCalculator(b, energy=-1.0, forces=np.ones((2, 3)))
    path = tmp_path / "f.extxyz"
    write(path, [a, b])
    acc = _consume(path)
    assert acc.read == 1 and acc.skipped_reasons == {"nan_forces": 1}


def _mutate(data: bytes, cut: float, flips: list[tuple[float, int]]) -> bytes:
    out = bytearray(data[: max(1, int(len(data) * cut))])
    for pos, value in flips:
        out[int(pos * (len(out) - 1))] = value
    return bytes(out)


_mutation = st.tuples(
    st.floats(0.0, 1.0),
    st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8),
)


@pytest.mark.parametrize(
    "name,fmt",
    [
        ("mptrj_sample.json", "mptrj"),
        ("alexandria_sample.json.bz2", "alexandria"),
        ("mixed_sample.extxyz", "ase"),
        ("omat24_sample/rattled-1000/data.0000.aselmdb", "aselmdb"),
    ],
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutation)
def test_corrupted_bytes_never_crash(tmp_path, shared_samples, name, fmt, mutation):
    data = (shared_samples / name).read_bytes()
    path = tmp_path / ("corrupt_" + name.replace("/", "_"))
    path.write_bytes(_mutate(data, *mutation))
    acc = _consume(path, format=fmt)
    assert acc.read >= 0 and acc.skipped >= 0 and acc.failed >= 0
