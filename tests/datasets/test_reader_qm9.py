"""QM9 xyz reader: parsing, Hartree -> eV, folders, tar archives, malformed and corrupted files."""
from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from corrupt_bytes import corruptions

from monoculture.datasets import open_dataset
from monoculture.datasets.frames import concat_batches
from monoculture.datasets.readers import qm9
from monoculture.datasets.registry import sniff_format

# Hand-written in QM9's layout (tab separated, trailing tab on the tag and SMILES lines as in the release),
# with the property values of QM9 entries gdb 1 (methane) and gdb 3 (water); water uses Mathematica
# exponents ("*^") the way the release writes small numbers.
METHANE = (
    "5\n"
    "gdb 1\t157.7118\t157.70997\t157.70699\t0.\t13.21\t-0.3877\t0.1171\t0.5048\t35.3641\t0.044749\t"
    "-40.47893\t-40.476062\t-40.475117\t-40.498597\t6.469\t\n"
    "C\t-0.0126981359\t 1.0858041578\t 0.0080009958\t-0.535689\n"
    "H\t 0.002150416\t-0.0060313176\t 0.0019761204\t 0.133921\n"
    "H\t 1.0117308433\t 1.4637511618\t 0.0002765748\t 0.133922\n"
    "H\t-0.540815069\t 1.4475266138\t-0.8766437152\t 0.133923\n"
    "H\t-0.5238136345\t 1.4379326443\t 0.9063972942\t 0.133923\n"
    "1341.307\t1341.3284\t1341.365\t1562.6731\t1562.7453\t3038.3205\t3151.6034\t3151.6788\t3151.7078\n"
    "C\tC\t\n"
    "InChI=1S/CH4/h1H4\tInChI=1S/CH4/h1H4\n"
)
WATER = (
    "3\n"
    "gdb 3\t799.58812\t437.90386\t282.94545\t1.8511\t6.31\t-0.2928\t0.0687\t0.3615\t19.0002\t0.021375\t"
    "-76.404702\t-76.401867\t-76.400922\t-76.422349\t6.002\t\n"
    "O\t-0.0343604951\t 0.9775395708\t 7.6015923*^-3\t-0.589706\n"
    "H\t 0.0647664923\t 0.0205721527\t 1.5346212*^-3\t 0.294853\n"
    "H\t 0.8717903737\t 1.3007924048\t 6.931336*^-4\t 0.294853\n"
    "1636.8748\t3874.6089\t3948.5153\n"
    "O\tO\t\n"
    "InChI=1S/H2O/h1H2\tInChI=1S/H2O/h1H2\n"
)
HARTREE_EV = 27.211386024367243  # ase.units.Hartree (CODATA 2014)


def _write(folder, name, text):
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _read(path, **kw):
    ds = open_dataset(path, quiet=True, **kw)
    return concat_batches(ds.batches()), ds.accounting


def test_single_file_frame(tmp_path):
    path = _write(tmp_path, "dsgdb9nsd_000001.xyz", METHANE)
    assert sniff_format(path) == "qm9"
    table, acc = _read(path)
    assert (acc.read, acc.skipped, acc.failed) == (1, 0, 0)
    row = table.to_pylist()[0]
    assert row["id"] == "gdb_1"
    assert row["dataset"] == "qm9"
    assert row["formula"] == "CH4" and row["n_atoms"] == 5
    assert row["smiles"] == "C"
    assert row["method"] == "relax"
    assert (row["charge"], row["spin"]) == (0, 1)
    assert row["pbc"] == [False, False, False]
    assert row["level_of_theory"] == "B3LYP/6-31G(2df,p)"
    np.testing.assert_allclose(row["positions"][0], [-0.0126981359, 1.0858041578, 0.0080009958])
    np.testing.assert_allclose(row["positions"][4], [-0.5238136345, 1.4379326443, 0.9063972942])


def test_u0_hartree_to_ev(tmp_path):
    table, _ = _read(_write(tmp_path, "dsgdb9nsd_000001.xyz", METHANE))
    energy = table.column("energy_eV")[0].as_py()
    assert energy == pytest.approx(-40.47893 * HARTREE_EV, rel=1e-12)
    assert energy == pytest.approx(-1101.4877, abs=1e-3)  # U0 of methane in eV
    assert table.column("energy_per_atom_eV")[0].as_py() == pytest.approx(energy / 5)


def test_mathematica_exponents_and_relaxed_smiles():
    assert qm9.qm9_float("7.6015923*^-3") == pytest.approx(7.6015923e-3)
    assert qm9.qm9_float("-1.2*^5") == -1.2e5
    text = WATER.replace("O\tO\t\n", "O\t[OH2]\t\n")
    frame = qm9.parse_qm9_xyz(text, "w.xyz")
    assert frame.smiles == "[OH2]"  # the second (relaxed-geometry) SMILES
    np.testing.assert_allclose(np.asarray(frame.positions)[:, 2], [7.6015923e-3, 1.5346212e-3, 6.931336e-4])
    assert frame.energy_eV == pytest.approx(-76.404702 * HARTREE_EV)


def test_sniff():
    assert qm9.sniff(None, METHANE.encode()[:100])
    assert not qm9.sniff(None, b"3\nProperties=species:S:1:pos:R:3 energy=-1.0\nO 0 0 0\n")
    assert not qm9.sniff(None, b"gdb 1\n5\n")
    assert not qm9.sniff(None, b"")


def test_folder_sorted(tmp_path):
    folder = tmp_path / "qm9_xyz"
    folder.mkdir()
    _write(folder, "dsgdb9nsd_000003.xyz", WATER)
    _write(folder, "dsgdb9nsd_000001.xyz", METHANE)
    _write(folder, "README.txt", "not a molecule")
    assert sniff_format(folder) == "qm9"
    table, acc = _read(folder)
    assert (acc.read, acc.failed) == (2, 0)
    assert table.column("id").to_pylist() == ["gdb_1", "gdb_3"]
    assert table.column("formula").to_pylist() == ["CH4", "H2O"]
    assert table.column("source").to_pylist()[1].endswith("::dsgdb9nsd_000003.xyz")


def _tar_bz2(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        for name, text in members:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tar_bz2_archive_order(tmp_path):
    data = _tar_bz2([("dsgdb9nsd_000003.xyz", WATER), ("dsgdb9nsd_000001.xyz", METHANE)])
    path = _write(tmp_path, "qm9_mini.tar.bz2", data)
    assert sniff_format(path) == "qm9"
    table, acc = _read(path)
    assert (acc.read, acc.skipped, acc.failed) == (2, 0, 0)
    assert table.column("id").to_pylist() == ["gdb_3", "gdb_1"]  # archive order, not sorted
    assert table.column("energy_eV").to_pylist()[0] == pytest.approx(-76.404702 * HARTREE_EV)


def test_truncated_file_fails(tmp_path):
    path = _write(tmp_path, "dsgdb9nsd_000001.xyz", METHANE[: METHANE.index("H\t 1.01")])
    table, acc = _read(path, format="qm9")
    assert (acc.read, acc.skipped, acc.failed) == (0, 0, 1)
    assert dict(acc.failed_reasons) == {"malformed_qm9_file": 1}
    assert acc.examples[0].file == str(path)
    assert table.num_rows == 0


def test_malformed_file_in_folder(tmp_path):
    _write(tmp_path, "dsgdb9nsd_000001.xyz", METHANE)
    _write(tmp_path, "dsgdb9nsd_000002.xyz", METHANE.replace("0.0080009958", "0.008x"))
    _write(tmp_path, "dsgdb9nsd_000003.xyz", WATER.replace("gdb 3", "xyz 3"))
    table, acc = _read(tmp_path, format="qm9")
    assert (acc.read, acc.failed) == (1, 2)
    assert sorted(e.key for e in acc.examples) == ["dsgdb9nsd_000002.xyz", "dsgdb9nsd_000003.xyz"]


def test_truncated_archive_fails_cleanly(tmp_path):
    data = _tar_bz2([(f"dsgdb9nsd_{i:06d}.xyz", METHANE) for i in range(1, 40)])
    path = _write(tmp_path, "qm9_cut.tar.bz2", data[: len(data) // 2])
    table, acc = _read(path)
    assert acc.failed == 1
    assert dict(acc.failed_reasons) == {"truncated_or_corrupt_archive": 1}
    assert table.num_rows == acc.read < 39


@settings(max_examples=30, deadline=None)
@given(data=corruptions(METHANE.encode()))
def test_corrupt_file_counted_once(tmp_path_factory, data):
    path = _write(tmp_path_factory.mktemp("qm9fuzz"), "dsgdb9nsd_000001.xyz", data)
    table, acc = _read(path, format="qm9")
    assert table.num_rows == acc.read
    assert acc.read + acc.skipped + acc.failed == 1


@settings(max_examples=30, deadline=None)
@given(data=corruptions(_tar_bz2([("dsgdb9nsd_000001.xyz", METHANE), ("dsgdb9nsd_000003.xyz", WATER)])))
def test_corrupt_archive_never_raises(tmp_path_factory, data):
    path = _write(tmp_path_factory.mktemp("qm9fuzz"), "qm9_fuzz.tar.bz2", data)
    table, acc = _read(path, format="qm9")
    assert table.num_rows == acc.read <= 2
    assert min(acc.read, acc.skipped, acc.failed) >= 0
    assert acc.read + acc.skipped + acc.failed >= 1  # an unreadable archive still counts one failure
