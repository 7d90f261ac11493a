"""The sGDML / MD17 ``.npz`` reader, on files built here from ASE's g2 molecules with known numbers.

The worked example of issue #21: the format is one module (``datasets/readers/sgdml_npz.py``) found by the
registry without any list naming it; these tests check it is sniffed, listed by ``monoculture formats``,
read with the units converted, its level of theory and card carried, and that bad files fail clearly.
"""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from ase.build import molecule

from monoculture.datasets import READERS, load_cards, open_dataset, sniff_format
from monoculture.datasets.errors import DatasetOpenError
from monoculture.datasets.registry import bundled_modules

KCAL_MOL_EV = 0.0433641  # 1 kcal/mol in eV (CODATA: 4184 J / 6.02214076e23 / 1.602176634e-19 J)
HARTREE_EV = 27.211386
BOHR_A = 0.529177


def _write(path, mol="H2O", n=4, name=None, theory="DFT: PBE+TS", energies=None, **extra):
    """An sGDML dataset .npz of ``n`` rattled copies of a g2 molecule; returns (atoms, R, E, F)."""
    atoms = molecule(mol)
    rng = np.random.default_rng(3)
    R = atoms.positions[None] + rng.normal(scale=0.02, size=(n, len(atoms), 3))
    E = np.array(energies if energies is not None else [-47_000.0 - 1.5 * i for i in range(n)])[:, None]
    F = rng.normal(scale=10.0, size=(n, len(atoms), 3))
    arrays = {"type": "d", "name": name or mol, "R": R, "z": atoms.numbers, "E": E, "F": F, "md5": b"0" * 32}
    if theory is not None:
        arrays["theory"] = theory
    arrays.update(extra)
    np.savez(path, **arrays)
    return atoms, R, E, F


def _read(path, **kwargs):
    ds = open_dataset(path, quiet=True, progress=False, **kwargs)
    return ds, pa.concat_tables(list(ds.batches()))


def test_registered_by_its_module_alone_and_listed(capsys):
    assert "sgdml_npz" in bundled_modules() and "sgdml-npz" in READERS
    names = list(READERS)
    assert names.index("sgdml-npz") < names.index("ase")  # sniffed before the catch-all ASE reader
    assert load_cards()["md17"].functional == "PBE+TS"  # the card its module adds
    from monoculture.cli import main

    assert main(["formats"]) == 0
    assert any(line.split()[0] == "sgdml-npz" for line in capsys.readouterr().out.splitlines())


def test_water_in_kcal_mol_is_read_in_ev(tmp_path):
    path = tmp_path / "water_dft.npz"
    atoms, R, E, F = _write(path)
    assert sniff_format(path) == "sgdml-npz"
    ds, t = _read(path)
    assert ds.format == "sgdml-npz" and ds.accounting.read == 4 and ds.accounting.skipped == 0
    assert t.column("formula").to_pylist() == ["H2O"] * 4
    assert t.column("numbers").to_pylist()[0] == [8, 1, 1]
    np.testing.assert_allclose(t.column("energy_eV").to_numpy(), E[:, 0] * KCAL_MOL_EV, rtol=1e-6)
    assert t.column("energy_eV")[0].as_py() == pytest.approx(-47_000.0 * KCAL_MOL_EV, rel=1e-6)  # -2038.11 eV
    np.testing.assert_allclose(np.array(t.column("positions")[2].as_py()), R[2], atol=1e-12)
    np.testing.assert_allclose(np.array(t.column("forces")[1].as_py()), F[1] * KCAL_MOL_EV, rtol=1e-6)
    fmax = np.linalg.norm(F[0] * KCAL_MOL_EV, axis=1).max()
    assert t.column("fmax_eV_A")[0].as_py() == pytest.approx(fmax, rel=1e-6)
    assert t.column("level_of_theory").to_pylist() == ["PBE+TS"] * 4
    assert t.column("method").to_pylist() == ["md"] * 4
    assert t.column("id").to_pylist()[:2] == ["H2O:0", "H2O:1"]
    assert t.column("volume_A3").null_count == 4 and not any(t.column("pbc")[0].as_py())
    assert ds.card is None  # not an MD17 molecule: no card is guessed


def test_units_from_the_file_and_theory_with_a_basis(tmp_path):
    path = tmp_path / "co2.npz"
    atoms, R, E, F = _write(path, mol="CO2", n=3, theory="CCSD(T)/cc-pVDZ", energies=[-188.5, -188.4, -188.3],
                            e_unit="Hartree", r_unit="bohr")
    ds, t = _read(path)
    np.testing.assert_allclose(t.column("energy_eV").to_numpy(), E[:, 0] * HARTREE_EV, rtol=1e-6)
    np.testing.assert_allclose(np.array(t.column("positions")[0].as_py()), R[0] * BOHR_A, rtol=1e-6)
    np.testing.assert_allclose(np.array(t.column("forces")[0].as_py()), F[0] * HARTREE_EV / BOHR_A, rtol=1e-6)
    assert t.column("level_of_theory").to_pylist() == ["CCSD(T)/cc-pVDZ"] * 3
    assert t.column("basis").to_pylist() == ["cc-pVDZ"] * 3


def test_md17_card_when_the_file_has_no_theory(tmp_path):
    path = tmp_path / "md17_ethanol.npz"
    _write(path, mol="CH3CH2OH", name="ethanol", theory=None)
    ds, t = _read(path)
    assert ds.card is not None and ds.card.name == "md17" and ds.name == "md17"
    assert t.column("level_of_theory").to_pylist() == ["PBE+TS"] * 4  # from the card
    ds, t = _read(path, level_of_theory="PBE0/def2-TZVP")  # an override wins over the card
    assert set(t.column("level_of_theory").to_pylist()) == {"PBE0/def2-TZVP"}


def test_nan_energy_is_skipped_with_its_reason(tmp_path):
    path = tmp_path / "water_nan.npz"
    _write(path, energies=[-47_000.0, float("nan"), -47_001.0, -47_002.0])
    ds, t = _read(path)
    assert t.num_rows == 3 and t.column("id").to_pylist() == ["H2O:0", "H2O:2", "H2O:3"]
    assert ds.accounting.skipped == 1 and ds.accounting.skipped_reasons == {"nan_energy": 1}
    assert "energy is nan" in json.dumps(ds.accounting.to_dict())


@pytest.mark.parametrize("content,message", [
    (b"PK\x03\x04 this is not a zip archive", "not a readable .npz archive"),
    (b"", "not a readable .npz archive"),
])
def test_corrupt_file_raises_one_line_naming_it(tmp_path, content, message):
    path = tmp_path / "broken.npz"
    path.write_bytes(content)
    with pytest.raises(DatasetOpenError) as err:
        open_dataset(path, quiet=True)
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text


def test_wrong_layout_and_unknown_unit_are_one_line_errors(tmp_path):
    other = tmp_path / "embeddings.npz"
    np.savez(other, X=np.zeros((3, 4)))
    with pytest.raises(DatasetOpenError, match=r"embeddings\.npz: not an sGDML dataset \.npz, no R or z"):
        open_dataset(other, format="sgdml-npz", quiet=True)
    bad = tmp_path / "bad_shapes.npz"
    _write(bad, F=np.zeros((4, 2, 3)))
    with pytest.raises(DatasetOpenError, match=r"bad_shapes\.npz: F must be \(4, 3, 3\) like R"):
        open_dataset(bad, quiet=True)
    unit = tmp_path / "unit.npz"
    _write(unit, e_unit="furlongs")
    with pytest.raises(DatasetOpenError, match=r"unit\.npz: unknown e_unit 'furlongs'"):
        open_dataset(unit, quiet=True)


def test_compressed_file_and_folder(tmp_path):
    path = tmp_path / "water.npz"
    _write(path)
    packed = tmp_path / "packed" / "water.npz.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(path.read_bytes()))
    (packed.parent / "broken.npz").write_bytes(b"PK\x03\x04 no")
    assert sniff_format(packed) == "sgdml-npz"
    _, t = _read(path)
    _, tz = _read(packed)
    assert tz.column("energy_eV").to_pylist() == t.column("energy_eV").to_pylist()
    ds, tf = _read(packed.parent)  # a folder: the broken file is one failure, the good one is read
    assert tf.num_rows == 4 and ds.accounting.failed == 1


def test_audit_command_reads_it(tmp_path):
    """``monoculture audit file.npz`` in a fresh process: exit 0, the JSON names the card-less dataset; a
    corrupt file exits non-zero with one line naming it."""
    path = tmp_path / "water_dft.npz"
    _write(path, n=6)
    out = tmp_path / "audit.json"
    run = subprocess.run([sys.executable, "-m", "monoculture", "audit", str(path), "--json", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    doc = json.loads(out.read_text())
    assert doc["datasets"][0]["records"]["read"] == 6
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 no")
    run = subprocess.run([sys.executable, "-m", "monoculture", "audit", str(broken), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and str(broken) in run.stderr and len(run.stderr.strip().splitlines()) == 1
