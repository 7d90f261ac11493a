"""Synthetic data: the audit reproduces the truth sidecar exactly, and the files are valid native format."""
import json

from monoculture.audit.summary import BasicCounts
from monoculture.cli import main
from monoculture.datasets import open_dataset


def _audit(path):
    ds = open_dataset(path, quiet=True)
    counts = BasicCounts()
    for batch in ds.batches():
        counts.update(batch)
    return ds, counts.result()


def _check(result, truth):
    assert result["n_frames"] == truth["frames"]
    assert result["elements"]["structures_per_element"] == truth["structures_per_element"]
    assert result["elements"]["atoms_per_element"] == truth["atoms_per_element"]
    assert result["level_of_theory"] == truth["level_of_theory"]
    assert result["method"] == truth["method"]
    assert result["temperature_K"] == truth["temperature_K"]


def test_synth_mptrj_matches_truth(tmp_path):
    out = tmp_path / "syn_mptrj.json"
    assert main(["synth", "--like", "mptrj", "--frames", "300", "--out", str(out), "--seed", "3"]) == 0
    truth = json.loads((tmp_path / "syn_mptrj.json.truth.json").read_text())
    ds, result = _audit(out)
    assert ds.format == "mptrj"
    _check(result, truth)
    assert truth["frames"] == 300 and len(truth["structures_per_element"]) > 10


def test_synth_omat24_matches_truth_and_ase_reads_it(tmp_path):
    from ase_db_backends.aselmdb import LMDBDatabase

    out = tmp_path / "omat"
    assert main(["synth", "--like", "omat24", "--frames", "110", "--out", str(out)]) == 0
    truth = json.loads((out / "truth.json").read_text())
    ds, result = _audit(out)
    assert ds.card.name == "omat24"
    _check(result, truth)
    db = LMDBDatabase(out / "aimd-from-PBE-3000-nvt" / "data.0000.aselmdb", readonly=True)
    assert len(db) == 10 and db.get(1).toatoms().get_potential_energy() < 0
    db.close()


def test_synth_is_deterministic(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    main(["synth", "--like", "mptrj", "--frames", "50", "--out", str(a), "--seed", "7"])
    main(["synth", "--like", "mptrj", "--frames", "50", "--out", str(b), "--seed", "7"])
    assert a.read_bytes() == b.read_bytes()


def test_synth_mean_atoms_sizes_frames_and_matches_truth(tmp_path):
    """``--mean-atoms 31`` (the real MPTrj's mean) gives frames of about that size, with the truth exact."""
    out = tmp_path / "big_cells.json"
    assert main(["synth", "--like", "mptrj", "--frames", "400", "--out", str(out), "--mean-atoms", "31"]) == 0
    truth = json.loads((tmp_path / "big_cells.json.truth.json").read_text())
    ds, result = _audit(out)
    _check(result, truth)
    mean = sum(truth["atoms_per_element"].values()) / truth["frames"]
    assert 25 <= mean <= 37
