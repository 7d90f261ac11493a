"""The default `monoculture audit` on public data nobody on the project wrote (issue #18's table, row by row).

Inputs are built at test time from what ships with the dependencies: ASE's ``dcdft`` elemental solids (71,
noble gases included) and ``g2`` molecules, RDKit's NCI SMILES library, and small sets made from those.
Each test runs the command line in-process (``monoculture.cli.main``) and reads the JSON it wrote.
"""
from __future__ import annotations

import bz2
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from monoculture.cli import EXIT_INTERRUPTED, EXIT_NOTHING_AUDITED, EXIT_USAGE, main

ISOMER_SET = ["CCCCCC", "CC(C)CCC", "CCC(C)CC", "CC(C)(C)CC", "CC(C)C(C)C",  # five hexane isomers
              "c1ccccc1", "c1ccccc1", "CCO", "OCC", "CC(=O)O", "CC(=O)O",  # three molecules written twice
              "CCN", "CCCl", "C1CCCCC1", "O=C=O", "N#N"]


@pytest.fixture(scope="module")
def public(tmp_path_factory) -> Path:
    import ase.io
    from ase.collections import dcdft, g2

    root = tmp_path_factory.mktemp("public")
    ase.io.write(root / "dcdft.extxyz", list(dcdft), format="extxyz")
    ase.io.write(root / "g2.extxyz", list(g2), format="extxyz")
    (root / "empty.extxyz").write_text("")
    (root / "isomers.smi").write_text("\n".join(ISOMER_SET) + "\n")
    # 71 frames of three compositions: rattled copies of three cells (a narrow set of the same size)
    rng = np.random.default_rng(0)
    from ase.build import bulk

    protos = [bulk("Cu", "fcc", a=3.6, cubic=True), bulk("NaCl", "rocksalt", a=5.64), bulk("Si", "diamond", a=5.43)]
    narrow = []
    for i in range(71):
        a = protos[i % 3].copy()
        a.positions += rng.normal(scale=0.03, size=a.positions.shape)
        narrow.append(a)
    ase.io.write(root / "narrow.extxyz", narrow, format="extxyz")
    return root


def _audit(tmp_path, *args) -> tuple[int, dict | None]:
    out = tmp_path / "out.json"
    out.unlink(missing_ok=True)
    rc = main(["audit", *map(str, args), "--no-umap", "--quiet", "--json", str(out)])
    return rc, (json.loads(out.read_text()) if out.exists() else None)


def _space(doc: dict, i: int = 0) -> dict:
    return doc["datasets"][i]["coverage"]["chemical_space"]


def test_dcdft_solids_with_noble_gases_audit(public, tmp_path):
    rc, doc = _audit(tmp_path, public / "dcdft.extxyz")
    assert rc == 0
    assert doc["parameters"]["descriptor"] == "composition+structure"
    assert "periodic" in doc["parameters"]["descriptor_rule"]
    cs = _space(doc)
    assert cs["sample"]["size"] == 71 and cs["descriptor_skipped"]["frames"] == 0
    assert all(math.isfinite(v) for v in cs["knn"]["nn1_quantiles"].values())


@pytest.mark.parametrize("descriptor", ["structure", "regime", "auto"])
def test_g2_molecules_without_labels(public, tmp_path, descriptor):
    rc, doc = _audit(tmp_path, public / "g2.extxyz", "--descriptor", descriptor)
    assert rc == 0
    cs = _space(doc)
    assert "knn" in cs and all(math.isfinite(v) for v in cs["knn"]["nn1_quantiles"].values())
    if descriptor == "auto":  # molecules get the molecular descriptor, and the JSON says so
        assert doc["parameters"]["descriptor"] == "molecule" and cs["sample"]["descriptor"] == "molecule"


def test_isomers_and_repeats_are_told_apart(public, tmp_path):
    rc, doc = _audit(tmp_path, public / "isomers.smi")
    assert rc == 0 and doc["parameters"]["descriptor"] == "molecule"
    dup = doc["datasets"][0]["coverage"]["duplicates"]
    # benzene, ethanol (CCO / OCC) and acetic acid are each written twice: 3 exact duplicates
    assert dup["n_duplicates"] == 3 and dup["n_groups"] == 3 and dup["rules"] == {"molecule": 16}
    near = _space(doc)["near_duplicates"]
    assert near["n"] == 0 and near["complete"]  # the hexane isomers are not duplicates of each other


def test_nci_library_duplicates_are_the_real_ones(tmp_path):
    import rdkit

    nci = Path(rdkit.__file__).parent / "Data" / "NCI" / "first_5K.smi"
    lines = nci.read_text().splitlines()[:1500]
    subset = tmp_path / "nci.smi"
    subset.write_text("\n".join(lines) + "\n")
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():
        keys = [Chem.MolToInchiKey(m) for m in (Chem.MolFromSmiles(ln.split()[0]) for ln in lines) if m is not None]
    expected = len(keys) - len(set(keys))  # repeats by InChIKey, computed here independently
    rc, doc = _audit(tmp_path, subset)
    assert rc == 0
    ds = doc["datasets"][0]
    assert ds["coverage"]["duplicates"]["n_duplicates"] == expected
    assert _space(doc)["near_duplicates"]["share"] < 0.05
    assert not any(r["item"] == "near-duplicates" for r in ds["coverage"]["priorities"])


def test_diverse_set_scores_above_narrow_set(public, tmp_path):
    _, wide = _audit(tmp_path, public / "dcdft.extxyz")
    _, narrow = _audit(tmp_path, public / "narrow.extxyz")
    w, n = _space(wide), _space(narrow)
    # 71 different elemental solids against 71 rattled copies of three cells, same descriptor
    assert wide["parameters"]["descriptor"] == narrow["parameters"]["descriptor"]
    assert w["vendi"]["score"] > 2 * n["vendi"]["score"]
    assert n["vendi"]["score"] < 4
    # entropy at the fixed bandwidth of 1 standard deviation: about 71 effective frames against about 3
    assert w["entropy"]["effective_environments"] > 60 and n["entropy"]["effective_environments"] < 3.5
    # a rattle changes no cell-size-invariant structure column: the copies of a cell coincide
    assert n["knn"]["nn1_quantiles"]["q0.50"] == 0 and w["knn"]["nn1_quantiles"]["q0.50"] > 1
    assert w["scaling"]["rule"].startswith("standardised")


def test_empty_input_exits_non_zero(public, tmp_path, capsys):
    rc, doc = _audit(tmp_path, public / "empty.extxyz")
    assert rc == EXIT_NOTHING_AUDITED
    err = capsys.readouterr().err
    assert err.count("no record could be audited") == 1


def test_table_without_smiles_column_one_error(tmp_path, capsys):
    table = tmp_path / "table.csv"
    table.write_text("name,value\nwater,1\n")
    rc = main(["audit", str(table), "--no-umap"])
    err = capsys.readouterr().err
    assert rc != 0 and len([ln for ln in err.splitlines() if "error" in ln]) == 1


@pytest.mark.parametrize("value", ["0", "-5", "1", "x"])
def test_sample_size_validated(public, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["audit", str(public / "g2.extxyz"), "--sample-size", value])
    assert exc.value.code == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sample-size" in err[0]


def test_featurize_nothing_featurized_exits_non_zero(public, tmp_path, capsys):
    rc = main(["featurize", str(public / "isomers.smi"), "--descriptor", "soap", "--n-jobs", "1",
               "--out", str(tmp_path / "x.parquet")])
    assert rc == EXIT_NOTHING_AUDITED
    assert "no record could be featurized" in capsys.readouterr().err


def test_compressed_and_folder_inputs(public, tmp_path):
    gz = tmp_path / "g2.extxyz.gz"
    gz.write_bytes(gzip.compress((public / "g2.extxyz").read_bytes()))
    rc, doc = _audit(tmp_path, gz)
    assert rc == 0 and doc["datasets"][0]["n_frames"] == 162
    import ase.io
    from ase.collections import dcdft

    cifs = tmp_path / "cifs"
    cifs.mkdir()
    for i, atoms in enumerate(list(dcdft)[:12]):
        ase.io.write(cifs / f"{i:02d}_{atoms.get_chemical_formula()}.cif", atoms)
    rc, doc = _audit(tmp_path, cifs)
    assert rc == 0 and doc["datasets"][0]["n_frames"] == 12
    bz = tmp_path / "dcdft.xyz.bz2"
    bz.write_bytes(bz2.compress((public / "dcdft.extxyz").read_bytes()))
    rc, doc = _audit(tmp_path, bz)
    assert rc == 0 and doc["datasets"][0]["n_frames"] == 71


def test_interrupt_prints_one_line_and_keeps_outputs_whole(public, tmp_path, capsys, monkeypatch):
    report = tmp_path / "report"
    assert main(["audit", str(public / "g2.extxyz"), "--no-umap", "--quiet", "--report", str(report)]) == 0
    before = sorted(p.relative_to(report) for p in report.rglob("*"))
    (report / "figures" / "stale_from_an_older_run.png").write_bytes(b"old")
    capsys.readouterr()

    import monoculture.audit.run as run_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "run_audit", interrupted)
    rc = main(["audit", str(public / "g2.extxyz"), "--report", str(report), "--json", str(tmp_path / "x.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_INTERRUPTED and len(err) == 1 and "interrupted" in err[0]
    assert not (tmp_path / "x.json").exists()
    assert (report / "figures" / "stale_from_an_older_run.png").exists()  # untouched by the interrupted run
    monkeypatch.undo()
    # a finished second run replaces the folder whole: no figure of the older run survives
    assert main(["audit", str(public / "g2.extxyz"), "--no-umap", "--quiet", "--report", str(report)]) == 0
    assert sorted(p.relative_to(report) for p in report.rglob("*")) == before
    assert not list(tmp_path.glob(".report.*"))  # no temporary folder left behind


def test_report_folder_with_other_files_is_refused(public, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    rc = main(["audit", str(public / "g2.extxyz"), "--no-umap", "--quiet", "--report", str(folder)])
    assert rc == EXIT_USAGE and (folder / "notes.txt").read_text() == "mine"
    assert "not a report" in capsys.readouterr().err


def test_steps_are_timed_and_shown(public, capsys):
    from monoculture.audit.run import AuditOptions, run_audit

    doc = run_audit([str(public / "isomers.smi")], AuditOptions(umap=False, progress=True, quiet=True))
    steps = doc["run"]["steps_s"]
    assert any(k.startswith("read and describe") for k in steps) and any(k.startswith("analyse") for k in steps)
    assert all(v >= 0 for v in steps.values())
    err = capsys.readouterr().err
    assert "monoculture: analyse isomers" in err and " s\n" in err
