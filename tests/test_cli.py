"""The command line: JSON shape, exit codes, entry points."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from monoculture.cli import main


def test_audit_json_shape(tmp_path, shared_samples, truth):
    out = tmp_path / "audit.json"
    rc = main(["audit", str(shared_samples / "mptrj_sample.json"), str(shared_samples / "omat24_sample"),
               "--json", str(out), "--quiet"])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == "1"
    assert isinstance(doc["monoculture_version"], str)
    assert set(doc["run"]) >= {"started", "elapsed_s", "host", "backend"}
    mptrj, omat = doc["datasets"]
    assert mptrj["name"] == "mptrj" and mptrj["format"] == "mptrj"
    assert mptrj["records"] == {"read": 83, "skipped": 0, "failed": 0, "skipped_reasons": {},
                                "failed_reasons": {}, "examples": []}
    assert mptrj["elements"]["structures_per_element"] == truth["mptrj"]["structures_per_element"]
    assert mptrj["level_of_theory"] == {"PBE": 74, "PBE+U": 9}
    assert mptrj["method"] == {"relax": 83}
    assert mptrj["temperature_K"] == {"values": {}, "unknown": 83}
    assert omat["temperature_K"]["values"] == {"300": 6, "1000": 12, "3000": 6}
    assert omat["temperature_K"]["unknown"] == 6
    assert omat["method"] == {"md": 12, "rattled": 12, "relax": 6}


def test_datasets_section_is_deterministic(tmp_path, shared_samples):
    docs = []
    for i in range(2):
        out = tmp_path / f"a{i}.json"
        assert main(["audit", str(shared_samples / "mixed_sample.extxyz"), "--json", str(out), "--quiet"]) == 0
        docs.append(json.loads(out.read_text()))
    assert docs[0]["datasets"] == docs[1]["datasets"]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["audit", "does-not-exist.json"], "no such file"),
        (["audit", "{sample}", "--format", "nope"], "unknown format"),
        (["audit", "{sample}", "--dataset-card", "nope"], "unknown dataset card"),
    ],
)
def test_user_errors_exit_2_with_one_line(capsys, shared_samples, argv, needle):
    argv = [a.replace("{sample}", str(shared_samples / "mptrj_sample.json")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]


def test_unknown_extension_exit_2(tmp_path, capsys):
    p = tmp_path / "x.weird"
    p.write_text("hello")
    assert main(["audit", str(p)]) == 2
    assert "no reader recognises" in capsys.readouterr().err


def test_python_m_monoculture_audit(shared_samples, tmp_path):
    out = tmp_path / "a.json"
    proc = subprocess.run(
        [sys.executable, "-m", "monoculture.audit", str(shared_samples / "alexandria_sample.json.bz2"),
         "--json", str(out)], capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["datasets"][0]["records"]["read"] == 14


def test_formats_lists_every_reader(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    for name in ("mptrj", "aselmdb", "alexandria", "ase", "smiles", "sdf", "qm9"):
        assert name in out


def test_cards_lists_required_datasets(capsys):
    assert main(["cards"]) == 0
    out = capsys.readouterr().out
    for name in ("mptrj", "salex", "omat24", "omol25", "alexandria-pbe", "alexandria-pbesol", "alexandria-scan",
                 "matpes-pbe", "matpes-r2scan", "qm9", "ani-1x", "spice", "oc20", "oc22"):
        assert name in out


def test_featurize_writes_parquet_and_resumes_from_cache(tmp_path, shared_samples):
    from monoculture.descriptors import read_features

    out = tmp_path / "f.parquet"
    argv = ["featurize", str(shared_samples / "mptrj_sample.json"), "--descriptor", "composition",
            "--n-jobs", "1", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    ids, X, meta = read_features(out)
    assert len(ids) == 83 and X.shape == (83, meta["n_features"])
    first = out.read_bytes()
    assert main(argv) == 0  # second run: every batch from the cache, same rows
    ids2, X2, _ = read_features(out)
    assert ids2 == ids and (X2 == X).all()
    assert any((tmp_path / "cache").rglob("*.parquet")) and first[:4] == b"PAR1"


def test_featurize_unknown_descriptor_exit_2(tmp_path, shared_samples, capsys):
    rc = main(["featurize", str(shared_samples / "mptrj_sample.json"), "--descriptor", "nope",
               "--out", str(tmp_path / "f.parquet")])
    assert rc == 2 and "nope" in capsys.readouterr().err


def test_align_reference_model_from_error_column(tmp_path, capsys):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    ids = [f"s{i:03d}" for i in range(60)]
    latent = rng.normal(size=(60, 4))
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    for name, width in (("alpha", 8), ("beta", 6), ("gamma", 5)):
        X = (latent @ rng.normal(size=(4, width)) + 0.1 * rng.normal(size=(60, width))).astype(np.float32)
        col = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), width)
        pq.write_table(pa.table({"id": ids, "embedding": col}), zoo / f"{name}.parquet")
    errors = tmp_path / "errors.csv"
    errors.write_text("model,energy_mae_eV_per_atom,force_mae_eV_per_A\n"
                      "alpha,0.030,0.08\nbeta,0.021,0.11\ngamma,0.045,0.06\n")
    out = tmp_path / "align.json"
    base = ["align", "--embeddings", str(zoo), "--n-boot", "4", "--repeats", "2", "--k", "5",
            "--model-errors", str(errors)]
    assert main(base + ["--error-column", "energy_mae_eV_per_atom", "--json", str(out)]) == 0
    section = json.loads(out.read_text())["alignment"]
    assert section["reference_model"] == "beta"
    assert section["reference_model_rule"] == "lowest energy_mae_eV_per_atom in errors.csv"
    assert section["reference_comparison"]["model"] == "beta"
    assert main(base + ["--error-column", "force_mae_eV_per_A", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["alignment"]["reference_model"] == "gamma"
    capsys.readouterr()
    # an unknown column is a one-line user error naming the file and the column
    assert main(base + ["--error-column", "stress_mae", "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "errors.csv" in err[0] and "stress_mae" in err[0]
