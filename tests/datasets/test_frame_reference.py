"""Frame batches equal a stored reference, byte for byte, on the bundled samples and on edge-case files.

``data/frame_reference.json`` holds, per case, the number of rows of every batch, a SHA-256 of every
batch's columns (values as JSON, floats by ``repr``, so exact) and the record accounting. It was written
by the per-record reader and builder (before the columnar fast path); the fast path must reproduce it.
Columns computed by arithmetic whose last bits depend on the CPU's kernels (:data:`CPU_DEPENDENT`: a
determinant, sums of squares, a fractional-to-Cartesian product) enter the hash rounded to
:data:`CPU_DEPENDENT_DIGITS` significant digits; every parsed value stays exact. (A cofactor volume instead
of LAPACK's determinant moved 84 of 108 MPTrj volumes by up to 2.5 ulp: a bitwise hash of those columns
would only pass on the CPU that wrote it.) The reference was rewritten with that rounding on 2026-12-06 by
the code of that day, whose unrounded hashes still equalled the per-record reader's.
The edge cases are built here, deterministically, from the bundled samples: every validation rule, the
fallbacks for irregular values (flat forces, ``null`` inside arrays, 9-component stress, non-integer
atomic numbers...) and failures (undecodable rows, truncated JSON), in small batches so that batch
boundaries are exercised too.

Regenerate (only when an output change is intended): ``MONOCULTURE_WRITE_FRAME_REFERENCE=1 pytest
tests/datasets/test_frame_reference.py``.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import zlib
from pathlib import Path

import pytest

from monoculture.datasets import FRAME_SCHEMA, open_dataset
from monoculture.datasets.samples import sample_dir

REFERENCE = Path(__file__).parent / "data" / "frame_reference.json"
WRITE = os.environ.get("MONOCULTURE_WRITE_FRAME_REFERENCE") == "1"


# -- edge-case inputs ----------------------------------------------------------------------------------
def _mptrj_edge_doc() -> dict:
    """The bundled MPTrj sample with one irregularity per frame for its first frames."""
    doc = json.loads((sample_dir() / "mptrj_sample.json").read_text())
    frames = [(m, f) for m, fr in doc.items() for f in fr]

    def rec(i):
        m, f = frames[i]
        return doc[m][f]

    rec(0)["uncorrected_total_energy"] = "NaN"                        # nan_energy
    rec(1)["uncorrected_total_energy"] = None                         # missing_energy
    rec(1)["corrected_total_energy"] = None
    rec(2)["structure"]["sites"][0]["species"][0]["element"] = "Xx"   # unknown_element
    del rec(3)["structure"]["lattice"]                                # bad_structure
    rec(4)["structure"]["sites"][0]["species"].append({"element": "K", "occu": 0.5})  # disordered
    rec(5)["structure"]["sites"][0]["species"][0]["occu"] = 0.5       # partial occupancy
    del rec(6)["structure"]["sites"][0]["xyz"]                        # positions from abc
    rec(7)["force"] = rec(7)["force"][:-1]                            # bad_forces
    rec(8)["force"][0][1] = None                                      # nan_forces
    rec(9)["force"] = [x for row in rec(9)["force"] for x in row]     # flat forces (accepted)
    del rec(10)["force"]                                              # no forces
    del rec(11)["stress"]                                             # no stress
    s = rec(12)["stress"]
    rec(12)["stress"] = [s[0][0], s[1][1], s[2][2], s[1][2], s[0][2], s[0][1]]  # Voigt stress
    rec(13)["stress"][0][0] = None                                    # nan_stress
    rec(14)["stress"] = [[1.0, 2.0], [3.0, 4.0]]                      # bad_structure (stress shape)
    m, f = frames[15]
    doc[m][f] = 17                                                    # bad_record
    rec(16)["structure"]["lattice"]["pbc"] = [True, True, False]      # not periodic: no volume
    rec(17)["uncorrected_total_energy"] = -7                          # integer energy
    rec(18)["uncorrected_total_energy"] = None                        # corrected energy used
    rec(19)["structure"]["sites"] = []                                # no_atoms
    rec(20)["structure"]["lattice"]["matrix"] = [[1, 0, 0], [2, 0, 0], [0, 0, 1]]  # singular cell
    rec(21)["structure"]["sites"][0]["xyz"] = [None, 0.0, 0.0]        # nan_positions
    rec(22)["structure"]["sites"][0]["species"][0]["element"] = "X"   # dummy species
    rec(25)["uncorrected_total_energy"] = "not a number"              # bad_structure (energy)
    rec(26)["stress"] = None
    rec(27)["structure"]["lattice"]["matrix"] = [[1, 0, 0], [0, 1, 0]]  # bad_structure (cell)
    rec(28)["structure"]["sites"][0]["species"][0]["occu"] = "1"      # occupancy as text
    doc["mps-empty"] = {}                                             # a material without frames
    doc["mps-list"] = [1, 2]                                          # bad_record (material)
    return doc


def _aselmdb_value(d: dict) -> bytes:
    import orjson

    return zlib.compress(orjson.dumps(d))


def _nd(values, shape, dtype="float64"):
    return {"__ndarray__": [list(shape), dtype, values]}


def _aselmdb_edge_rows() -> list[bytes]:
    """Rows in ASE's LMDB JSON encoding, one irregularity each (after three regular rows)."""
    base = {
        "numbers": _nd([26, 8], [2], "int64"),
        "positions": _nd([0.0, 0.1, 0.0, 1.9, 2.0, 2.1], [2, 3]),
        "cell": _nd([0.0, 2.0, 2.0, 2.0, 0.0, 2.0, 2.0, 2.0, 0.0], [3, 3]),
        "pbc": _nd([True, True, True], [3], "bool"),
        "energy": -10.5,
        "forces": _nd([0.1, -0.2, 0.3, -0.1, 0.2, -0.3], [2, 3]),
        "stress": _nd([0.01, 0.02, 0.03, 0.001, 0.002, 0.003], [6]),
        "unique_id": "u", "ctime": 0.0, "mtime": 0.0, "user": None,
        "calculator": "unknown", "calculator_parameters": {},
        "data": {"sid": "rattled-300-subsampled-7-1"},
    }
    rows = []

    def row(**changes):
        d = copy.deepcopy(base)
        for k, v in changes.items():
            if v is _DELETE:
                d.pop(k, None)
            else:
                d[k] = v
        rows.append(_aselmdb_value(d))

    row()
    row(data={"sid": "aimd-from-PBE-3000-nvt-2-5"}, energy=-3)
    row(data={"sid": "rattled-relax-1-0", "charge": 1, "spin": 2})
    row(energy=None)                                                   # no energy
    row(numbers=_nd([26, 200], [2], "int64"))                          # unknown_element
    row(numbers=[26.0, 8.0])                                           # non-integer numbers
    row(stress=_nd([0.01, 0.0, 0.0, 0.0, 0.02, 0.0, 0.0, 0.0, 0.03], [3, 3]))  # 3x3 stress
    row(stress=_nd([0.01, None, 0.0, 0.0, 0.0, 0.0], [6]))             # undecodable (None * float)
    row(positions=_DELETE)                                             # undecodable (KeyError)
    row(forces=_DELETE, stress=_DELETE)                                # no forces, no stress
    row(cell=_DELETE)                                                  # no cell, periodic: bad_cell
    row(pbc=_DELETE)                                                   # not periodic
    row(data={}, key_value_pairs={"charge": -1})                       # no sid: subset from folder
    row(positions=_nd([0.0, 0.1, 0.0, 1.9], [2, 2]))                   # bad_positions
    row(numbers=_nd([], [0], "int64"), positions=_nd([], [0, 3]), forces=_DELETE)  # no_atoms
    row(forces=_nd([0.1, None, 0.3, -0.1, 0.2, -0.3], [2, 3]))         # nan_forces
    row(forces=[[0.1, 0.2, 0.3], [0.0, 0.0, 0.0]])                     # nested forces
    row(pbc=[True, True, False])
    row(stress=[0.01, 0.02])                                           # bad_stress
    row(positions=[0.0, 0.1, 0.0, 1.9, 2.0, None])                     # nan_positions
    row(data={"sid": "some-other-thing-1"}, charge=3)
    rows.append(b"this is not zlib")                                   # undecodable
    row(cell=_nd([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0], [10]))  # bad_cell (size)
    row(energy=-2.5, numbers=_nd([1, 1], [2], "int64"))               # H2
    return rows


class _Delete:
    pass


_DELETE = _Delete()


def _write_lmdb(path: Path, rows: list[bytes]) -> None:
    import lmdb

    env = lmdb.open(str(path), subdir=False, map_size=1 << 24, lock=False)
    with env.begin(write=True) as txn:
        for i, value in enumerate(rows, start=1):
            txn.put(str(i).encode(), value)
        txn.put(b"nextid", zlib.compress(str(len(rows) + 1).encode()))
        txn.put(b"metadata", zlib.compress(b"{}"))
    env.close()


def _build_case(name: str, root: Path) -> tuple[Path, dict]:
    """(path, open_dataset keyword arguments) of one case; files are written under ``root``."""
    samples = sample_dir()
    if name.startswith("sample:"):
        return samples / name.split(":", 1)[1], {}
    if name == "mptrj-edge":
        path = root / "mptrj_edge.json"
        path.write_text(json.dumps(_mptrj_edge_doc()))
        return path, {"format": "mptrj", "batch_size": 7}
    if name == "mptrj-edge-compact":
        import orjson

        path = root / "mptrj_edge_compact.json"
        path.write_bytes(orjson.dumps(_mptrj_edge_doc()))
        return path, {"format": "mptrj", "batch_size": 5}
    if name == "mptrj-truncated":
        path = root / "mptrj_truncated.json"
        data = (samples / "mptrj_sample.json").read_bytes()
        path.write_bytes(data[: int(len(data) * 0.61)])
        return path, {"format": "mptrj", "batch_size": 16}
    if name == "mptrj-corrupt-middle":
        path = root / "mptrj_corrupt.json"
        data = bytearray((samples / "mptrj_sample.json").read_bytes())
        colon = data.index(b'": ', len(data) // 3) + 1
        data[colon] = ord("@")                                        # breaks one material
        path.write_bytes(bytes(data))
        return path, {"format": "mptrj", "batch_size": 16}
    if name == "mptrj-card-override":
        return samples / "mptrj_sample.json", {"level_of_theory": "r2SCAN", "batch_size": 50}
    if name == "aselmdb-edge":
        folder = root / "omat_edge" / "rattled-500"
        folder.mkdir(parents=True)
        _write_lmdb(folder / "data.0000.aselmdb", _aselmdb_edge_rows())
        other = root / "omat_edge" / "aimd-from-PBE-1000-npt"
        shutil.copytree(samples / "omat24_sample" / "aimd-from-PBE-1000-nvt", other)
        return root / "omat_edge", {"format": "aselmdb", "batch_size": 6}
    if name == "aselmdb-sample-small-batches":
        return samples / "omat24_sample", {"batch_size": 5}
    raise KeyError(name)


CASES = [
    "sample:mptrj_sample.json",
    "sample:omat24_sample",
    "sample:alexandria_sample.json.bz2",
    "sample:mixed_sample.extxyz",
    "mptrj-edge",
    "mptrj-edge-compact",
    "mptrj-truncated",
    "mptrj-corrupt-middle",
    "mptrj-card-override",
    "aselmdb-edge",
    "aselmdb-sample-small-batches",
]


# -- digests -------------------------------------------------------------------------------------------
def _normalise(text: str, roots: list[str]) -> str:
    for root in roots:
        text = text.replace(root, "<root>")
    return text


#: Float columns whose last bits depend on the CPU (see the module docstring).
CPU_DEPENDENT = frozenset({"positions", "volume_A3", "pressure_GPa", "energy_per_atom_eV", "fmax_eV_A", "frms_eV_A"})
#: Significant digits of those columns in the hash (a 2.5-ulp difference flips a 10-digit rounding with a
#: probability of about 1e-6 per value).
CPU_DEPENDENT_DIGITS = 10


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.{CPU_DEPENDENT_DIGITS}g}")
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _digest(batches, roots) -> list[dict]:
    out = []
    for table in batches:
        assert table.schema.equals(FRAME_SCHEMA)
        h = hashlib.sha256()
        for name in FRAME_SCHEMA.names:
            values = table.column(name).to_pylist()
            if name in CPU_DEPENDENT:
                values = _rounded(values)
            if name == "source":
                values = [_normalise(v, roots) for v in values]
            h.update(name.encode())
            h.update(json.dumps(values, allow_nan=True).encode())
        out.append({"rows": table.num_rows, "sha256": h.hexdigest()})
    return out


def _run(name: str, root: Path, shards: int | None = None) -> dict:
    path, kwargs = _build_case(name, root)
    ds = open_dataset(path, quiet=True, progress=False, **kwargs)
    roots = [str(path), str(path.parent)]
    if shards is None:
        batches = _digest(ds.batches(), roots)
        accounting = ds.accounting.to_dict()
    else:
        batches, accounting = [], None
        for unit in ds.shards(shards):
            batches += _digest(ds.batches(unit), roots)
            accounting = ds.accounting if accounting is None else accounting.merge(ds.accounting)
        accounting = accounting.to_dict()
    text = _normalise(json.dumps(accounting, sort_keys=True), roots)
    return {"batches": batches, "accounting": json.loads(text)}


def _reference() -> dict:
    return json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}


def _check(key: str, got: dict) -> None:
    if WRITE:
        ref = _reference()
        ref[key] = got
        REFERENCE.parent.mkdir(exist_ok=True)
        REFERENCE.write_text(json.dumps(ref, indent=1, sort_keys=True) + "\n")
        return
    ref = _reference()
    assert key in ref, f"no reference for {key}"
    assert got["accounting"] == ref[key]["accounting"]
    assert [b["rows"] for b in got["batches"]] == [b["rows"] for b in ref[key]["batches"]]
    assert got["batches"] == ref[key]["batches"]


@pytest.mark.parametrize("name", CASES)
def test_batches_equal_reference(tmp_path, name):
    _check(name, _run(name, tmp_path))


@pytest.mark.parametrize("name", ["sample:mptrj_sample.json", "sample:omat24_sample", "mptrj-edge"])
def test_shards_equal_reference(tmp_path, name):
    _check(name + " (3 shards)", _run(name, tmp_path, shards=3))


def test_edge_cases_cover_every_rule():
    """The edge cases exercise each validation rule and failure reason they are meant to."""
    if WRITE:
        pytest.skip("writing the reference")
    ref = _reference()
    mptrj = ref["mptrj-edge"]["accounting"]
    assert set(mptrj["skipped_reasons"]) >= {"nan_energy", "missing_energy", "unknown_element", "bad_forces",
                                             "nan_forces", "nan_stress", "no_atoms", "bad_cell", "nan_positions"}
    assert set(mptrj["failed_reasons"]) == {"bad_structure", "bad_record"}
    lmdb_acc = ref["aselmdb-edge"]["accounting"]
    assert set(lmdb_acc["skipped_reasons"]) >= {"unknown_element", "bad_cell", "bad_positions", "no_atoms",
                                                "nan_forces", "bad_stress", "nan_positions"}
    assert set(lmdb_acc["failed_reasons"]) == {"undecodable_row"}
    assert ref["mptrj-truncated"]["accounting"]["failed_reasons"] == {"truncated_or_corrupt_file": 1}
    assert ref["mptrj-corrupt-middle"]["accounting"]["failed_reasons"] == {"truncated_or_corrupt_file": 1}
