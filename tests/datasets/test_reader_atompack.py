"""Atompack stores (.atp): absent properties stay absent, units and signs, shard folders with a manifest,
level of theory from the card, and ``monoculture audit`` of a store."""
from __future__ import annotations

import json

import numpy as np
import pytest

atompack = pytest.importorskip("atompack", reason="the Atompack reader needs the optional extra "
                                                   "(pip install 'monoculture[atompack]': atompack-db)")

from ase.build import bulk, molecule  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402

from monoculture.datasets import concat_batches, open_dataset, sniff_format  # noqa: E402

from parquet_files import GPa_PER_EV_A3, assert_row, expected_row, voigt  # noqa: E402

STRESS = np.array([0.01, 0.02, -0.03, 0.004, 0.005, 0.006])  # eV/Å^3, ASE sign (Voigt)


def _structures():
    """A Cu crystal with a non-symmetric cell, energy, forces and stress; water (charge -1, spin 2) with
    energy and forces only; a bare N2 without any label."""
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    cu.set_cell(cu.cell.array + np.array([[0, 0.2, 0.1], [0.3, 0, 0.05], [0.0, 0.4, 0]]), scale_atoms=True)
    cu.rattle(0.01, seed=1)
    forces = np.arange(12, dtype=float).reshape(4, 3) / 100
    cu.calc = SinglePointCalculator(cu, energy=-14.5, forces=forces, stress=STRESS)
    water = molecule("H2O")
    water.info.update(charge=-1, spin=2)
    water.calc = SinglePointCalculator(water, energy=-2080.0, forces=np.full((3, 3), 0.05))
    n2 = molecule("N2")
    return cu, water, n2


def _write(path, atoms):
    db = atompack.Database(str(path), overwrite=True)
    for a in atoms:  # one per call: atompack-db 0.4.1's batch fast path refuses stacked stresses
        if a.calc is not None or a.info:
            atompack.add_ase_batch(db, [a])
    for a in atoms:
        if a.calc is None and not a.info:
            db.add_molecule(atompack.Molecule.from_arrays(a.positions.astype(np.float32),
                                                          a.numbers.astype(np.uint8)))
    db.flush()
    return path


def test_atompack_every_column(tmp_path):
    cu, water, n2 = _structures()
    path = _write(tmp_path / "data.atp", [cu, water, n2])
    assert sniff_format(path) == "atompack"
    ds = open_dataset(path, quiet=True)
    rows = concat_batches(ds.batches()).to_pylist()
    assert ds.accounting.to_dict()["read"] == 3 and [r["id"] for r in rows] == ["data.atp:0", "data.atp:1",
                                                                                   "data.atp:2"]
    r_cu, r_w, r_n2 = rows
    # positions are float32 in the store: compared to 1e-5 Å
    assert_row(r_cu, expected_row(cu.numbers, cu.positions, cu.cell.array, [True] * 3, -14.5,
                                  cu.calc.results["forces"], list(GPa_PER_EV_A3 * STRESS)), atol=1e-5)
    assert r_cu["stress_GPa"][2] == pytest.approx(-0.03 * GPa_PER_EV_A3)  # ASE sign kept: compressive zz < 0
    assert_row(r_w, expected_row(water.numbers, water.positions, None, [False] * 3, -2080.0,
                                 np.full((3, 3), 0.05), None), atol=1e-5)
    assert (r_w["charge"], r_w["spin"]) == (-1, 2)
    # absent stays absent: no energy, forces, stress, charge, spin for N2; no charge for Cu
    assert_row(r_n2, expected_row(n2.numbers, n2.positions, None, [False] * 3, None, None, None), atol=1e-5)
    assert r_n2["charge"] is None and r_n2["spin"] is None and r_cu["charge"] is None
    assert {r["level_of_theory"] for r in rows} == {"unknown"}  # no card, nothing in the store


def test_shard_folder_manifest_card_and_audit(tmp_path):
    from monoculture.cli import main

    cu, water, n2 = _structures()
    folder = tmp_path / "Atompack" / "omat" / "train"
    folder.mkdir(parents=True)
    _write(folder / "part_0000.atp", [cu, cu])
    _write(folder / "part_0001.atp", [cu])
    (folder / "manifest.json").write_text(json.dumps({"dataset": "omat", "variant": "train", "n_samples": 3,
                                                      "n_files": 2}))
    assert sniff_format(folder) == "atompack"
    ds = open_dataset(folder, quiet=True)
    assert ds.card.name == "omat24"
    t = concat_batches(ds.batches())
    assert t.column("id").to_pylist() == ["part_0000.atp:0", "part_0000.atp:1", "part_0001.atp:0"]
    assert set(t.column("level_of_theory").to_pylist()) == {"PBE"}  # from the card (Cu: no +U)
    units = ds.shards(4)
    got = [i for u in units for i in concat_batches(ds.batches(u)).column("id").to_pylist()]
    assert got == t.column("id").to_pylist()
    out = tmp_path / "a.json"
    assert main(["audit", str(folder), "--json", str(out), "--quiet", "--no-umap", "--descriptor", "none"]) == 0
    (doc,) = json.loads(out.read_text())["datasets"]
    assert doc["format"] == "atompack" and doc["name"] == "omat24"
    assert doc["records"]["read"] == 3 and doc["level_of_theory"] == {"PBE": 3}


def test_stress_is_voigt_of_the_stored_tensor(tmp_path):
    """A tensor written directly (not through ASE): the builder takes the upper triangle as Voigt."""
    m = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 5.0], [3.0, 5.0, 6.0]]) * 1e-3
    db = atompack.Database(str(tmp_path / "s.atp"), overwrite=True)
    db.add_molecule(atompack.Molecule.from_arrays(np.zeros((1, 3), np.float32), np.array([29], np.uint8),
                                                  cell=np.diag([2.0, 3.0, 4.0]), stress=m, pbc=(True,) * 3))
    db.flush()
    (row,) = concat_batches(open_dataset(tmp_path / "s.atp", quiet=True).batches()).to_pylist()
    assert row["stress_GPa"] == pytest.approx([GPa_PER_EV_A3 * v for v in voigt(m)])
    assert row["volume_A3"] == pytest.approx(24.0) and row["energy_eV"] is None and row["forces"] is None
