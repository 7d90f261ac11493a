"""Readers on real-format files: bundled samples and ../shared/samples (expected counts in TRUTH.json)."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from monoculture.audit.summary import BasicCounts
from monoculture.datasets import FRAME_SCHEMA, open_dataset, read_frames, sniff_format


def _read(path, **kw):
    ds = open_dataset(path, quiet=True, **kw)
    table = pa.concat_tables(list(ds.batches()))
    return ds, table


def test_mptrj_shared_sample_matches_truth(shared_samples, truth):
    ds, t = _read(shared_samples / "mptrj_sample.json")
    assert ds.format == "mptrj" and ds.card.name == "mptrj"
    assert t.schema.equals(FRAME_SCHEMA)
    assert ds.accounting.read == truth["mptrj"]["frames"] == t.num_rows
    counts = BasicCounts().update(t).result()
    assert counts["elements"]["structures_per_element"] == truth["mptrj"]["structures_per_element"]
    assert counts["elements"]["atoms_per_element"] == truth["mptrj"]["atoms_per_element"]
    assert counts["level_of_theory"] == truth["mptrj"]["level_of_theory"]
    assert set(t.column("method").to_pylist()) == {"relax"}


def test_mptrj_stress_is_converted_from_vasp_kbar(shared_samples):
    raw = json.loads((shared_samples / "mptrj_sample.json").read_text())
    mp_id, frames = next(iter(raw.items()))
    frame_id, rec = next(iter(frames.items()))
    _, t = _read(shared_samples / "mptrj_sample.json")
    row = t.filter(pa.compute.equal(t.column("id"), frame_id)).to_pylist()[0]
    s = np.asarray(rec["stress"])  # kBar, positive = compressive
    expected = -0.1 * np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    assert np.allclose(row["stress_GPa"], expected)
    assert row["pressure_GPa"] == pytest.approx(0.1 * np.trace(s) / 3)
    assert row["energy_eV"] == pytest.approx(rec["uncorrected_total_energy"])
    assert row["energy_per_atom_eV"] == pytest.approx(rec["uncorrected_total_energy"] / len(rec["force"]))


def test_aselmdb_omat24_subsets(shared_samples, truth):
    ds, t = _read(shared_samples / "omat24_sample")
    assert ds.format == "aselmdb" and ds.card.name == "omat24"
    df = t.to_pandas()
    for subset, exp in truth["omat24"].items():
        rows = df[df.subset == subset]
        assert len(rows) == exp["rows"], subset
        assert set(rows.method) == {exp["method"]}
        temps = set(rows.temperature_K.dropna())
        assert temps == ({float(exp["temperature_K"])} if exp["temperature_K"] is not None else set())
    assert ds.accounting.failed == 0 and ds.accounting.skipped == 0


def test_aselmdb_stress_units_match_ase(shared_samples):
    from ase_db_backends.aselmdb import LMDBDatabase

    shard = next((shared_samples / "omat24_sample").rglob("*.aselmdb"))
    db = LMDBDatabase(shard, readonly=True)
    row = next(db.select())
    db.close()  # LMDB allows one open environment per file and process
    ref = np.asarray(row.stress) * 160.21766208  # eV/Å^3 -> GPa
    _, t = _read(shard)
    sid = row.data["sid"]
    mine = t.filter(pa.compute.equal(t.column("id"), sid)).to_pylist()[0]
    assert np.allclose(mine["stress_GPa"], ref)
    assert mine["energy_eV"] == pytest.approx(row.energy)
    assert mine["fmax_eV_A"] == pytest.approx(np.linalg.norm(row.forces, axis=1).max())


def test_alexandria(shared_samples, truth):
    ds, t = _read(shared_samples / "alexandria_sample.json.bz2")
    assert ds.format == "alexandria" and ds.card.name == "alexandria-pbe"
    assert t.num_rows == truth["alexandria"]["entries"]
    assert t.column("id").to_pylist()[0].startswith("agm-")


def test_extxyz_mixed(shared_samples, truth):
    ds, t = _read(shared_samples / "mixed_sample.extxyz")
    assert ds.format == "ase"
    assert t.num_rows == truth["extxyz"]["frames"]
    pbc = np.asarray(t.column("pbc").to_pylist())
    assert pbc.all(axis=1).sum() == 8 and (~pbc.any(axis=1)).sum() == 6
    # Unlabelled molecules: no energy, no volume; the level of theory is not guessed.
    mol = t.filter(pa.compute.invert(pa.compute.list_element(t.column("pbc"), 0)))
    assert mol.column("energy_eV").null_count == 6 and mol.column("volume_A3").null_count == 6
    assert set(t.column("level_of_theory").to_pylist()) == {"unknown"}


def test_bundled_samples_read_completely(bundled_samples):
    from monoculture.datasets.samples import sample_paths

    paths = sample_paths(include_smiles=False)
    assert len(paths) == 4
    for p in paths:
        ds, t = _read(p)
        acc = ds.accounting
        assert acc.read == t.num_rows > 0
        assert acc.failed == 0
    ds, _ = _read(bundled_samples / "mixed_sample.extxyz")
    assert ds.accounting.skipped_reasons == {"nan_energy": 1}


def test_level_of_theory_override_and_card(shared_samples):
    _, t = _read(shared_samples / "mixed_sample.extxyz", level_of_theory="wB97M-V/def2-TZVPD")
    assert set(t.column("level_of_theory").to_pylist()) == {"wB97M-V/def2-TZVPD"}
    assert set(t.column("functional").to_pylist()) == {"wB97M-V"}
    _, t = _read(shared_samples / "mixed_sample.extxyz", dataset_card="matpes-r2scan")
    assert set(t.column("level_of_theory").to_pylist()) == {"r2SCAN"}


def test_sniffing(shared_samples):
    assert sniff_format(shared_samples / "mptrj_sample.json") == "mptrj"
    assert sniff_format(shared_samples / "alexandria_sample.json.bz2") == "alexandria"
    assert sniff_format(shared_samples / "omat24_sample") == "aselmdb"
    assert sniff_format(shared_samples / "mixed_sample.extxyz") == "ase"


def test_read_frames_positions_roundtrip(shared_samples):
    from ase.io import read

    t = read_frames(shared_samples / "mixed_sample.extxyz")
    ref = read(shared_samples / "mixed_sample.extxyz", index=":")
    from monoculture.datasets import iter_ase_atoms

    for a, b in zip(iter_ase_atoms(t), ref):
        assert (a.numbers == b.numbers).all()
        assert np.allclose(a.positions, b.positions)
        assert np.allclose(a.cell[:], b.cell[:])
        if b.calc is not None:
            assert a.get_potential_energy() == pytest.approx(b.get_potential_energy())


def test_ase_db(tmp_path):
    import ase.db
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    path = tmp_path / "x.db"
    db = ase.db.connect(path)
    for i, el in enumerate(("Cu", "Al")):
        a = bulk(el)
        a.calc = SinglePointCalculator(a, energy=-1.0 - i, forces=np.zeros((1, 3)), stress=np.full(6, 0.01))
        db.write(a, temperature=300.0)
    ds, t = _read(path)
    assert ds.format == "ase" and t.num_rows == 2
    assert t.column("temperature_K").to_pylist() == [300.0, 300.0]
    assert t.column("stress_GPa").to_pylist()[0] == pytest.approx([0.01 * 160.21766208] * 6)
    assert t.column("pressure_GPa").to_pylist()[0] == pytest.approx(-0.01 * 160.21766208)
    assert Counter(t.column("formula").to_pylist()) == Counter({"Cu": 1, "Al": 1})
