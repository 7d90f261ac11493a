"""File-level alignment (what `monoculture align` runs): embeddings on disk + sets given as datasets."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monoculture.audit.alignment.runner import load_embeddings, run_alignment, set_frames_metadata
from monoculture.cli import main
from monoculture.datasets import read_frames


def _write(path, ids, X):
    col = pa.FixedSizeListArray.from_arrays(pa.array(X.astype(np.float32).ravel()), X.shape[1])
    pq.write_table(pa.table({"id": ids, "embedding": col}), path)


@pytest.fixture()
def zoo(tmp_path, shared_samples):
    """Two 'models' and a descriptor over the OMat24 sample (ID) and the extxyz molecules + crystals (OOD)."""
    id_ids = read_frames(shared_samples / "omat24_sample").column("id").to_pylist()
    ood_ids = read_frames(shared_samples / "mixed_sample.extxyz").column("id").to_pylist()
    ids = id_ids + ood_ids
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(len(ids), 6))
    folder = tmp_path / "zoo"
    folder.mkdir()
    _write(folder / "model-a.parquet", ids, latent @ rng.normal(size=(6, 16)))
    _write(folder / "model-b.parquet", ids, latent @ rng.normal(size=(6, 12)) + 0.1 * rng.normal(size=(len(ids), 12)))
    _write(folder / "composition.parquet", ids, latent[:, :4])
    return folder, id_ids, ood_ids


def test_load_zoo_and_metadata(zoo, shared_samples):
    folder, id_ids, ood_ids = zoo
    models = load_embeddings(folder)
    assert sorted(models) == ["composition", "model-a", "model-b"]
    md = set_frames_metadata([shared_samples / "mixed_sample.extxyz"])
    assert len(md) == 14 and md["periodic"].sum() == 8
    assert md.loc[md.n_atoms == 3, "elements"].iloc[0] == "H-O"


def test_align_cli_writes_section(zoo, shared_samples, tmp_path):
    folder, _, _ = zoo
    out = tmp_path / "align.json"
    rc = main(["align", "--embeddings", str(folder), "--id-set", str(shared_samples / "omat24_sample"),
               "--ood-set", str(shared_samples / "mixed_sample.extxyz"), "--descriptor-model", "composition",
               "--n-boot", "10", "--repeats", "3", "--k", "5", "--json", str(out)])
    assert rc == 0
    section = json.loads(out.read_text())["alignment"]
    assert section["models"] == ["model-a", "model-b"]
    assert {"local", "global"} <= set(section["verdicts"])
    for v in section["verdicts"].values():
        assert len(v["interval"]) == 2
    assert section["parameters"]["k"] == 5 and section["parameters"]["normalisation"] == "none"
    assert section["parameters"]["variants"]["cknna"] == "unbiased"
    assert {"gfre", "lfre"} <= set(section["metrics"])


def _write_embed_style(path, ids, X, skip_reasons):
    """Like `monoculture embed`: skipped structures left out, their reasons counted in the metadata."""
    col = pa.FixedSizeListArray.from_arrays(pa.array(X.astype(np.float32).ravel()), X.shape[1])
    meta = {"monoculture.embedding": json.dumps({"skip_reasons": skip_reasons})}
    pq.write_table(pa.table({"id": ids, "embedding": col}).replace_schema_metadata(meta), path)


def test_models_that_skip_different_structures_align_on_the_common_ones(zoo, shared_samples, tmp_path, capsys):
    folder, id_ids, ood_ids = zoo
    ids = id_ids + ood_ids
    rng = np.random.default_rng(5)
    latent = rng.normal(size=(len(ids), 6))
    zoo2 = tmp_path / "zoo2"
    zoo2.mkdir()
    # model-a skips the first two OOD structures, model-b the last ID structure
    a_ids = [i for i in ids if i not in ood_ids[:2]]
    b_ids = [i for i in ids if i != id_ids[-1]]
    _write_embed_style(zoo2 / "model-a.parquet", a_ids, latent[[ids.index(i) for i in a_ids]] @ rng.normal(size=(6, 10)),
                       {"isolated atom": 2})
    _write_embed_style(zoo2 / "model-b.parquet", b_ids, latent[[ids.index(i) for i in b_ids]] @ rng.normal(size=(6, 8)),
                       {"element outside the model's table": 1})
    out = tmp_path / "align.json"
    args = ["align", "--embeddings", str(zoo2), "--id-set", str(shared_samples / "omat24_sample"),
            "--ood-set", str(shared_samples / "mixed_sample.extxyz"), "--n-boot", "4", "--repeats", "2", "--k", "3",
            "--json", str(out), "--pairwise-ids"]
    assert main(args) == 0
    section = json.loads(out.read_text())["alignment"]
    per = section["structures"]["per_model"]
    assert per["model-a"]["n_not_listed"] == 2 and per["model-a"]["n_dropped_for_other_models"] == 1
    assert per["model-b"]["n_not_listed"] == 1 and per["model-b"]["n_dropped_for_other_models"] == 2
    assert "isolated atom: 2" in per["model-a"]["why"]
    assert "element outside the model's table: 1" in per["model-b"]["why"]
    assert per["model-a"]["n_analysed"] == len(ids) - 3
    assert section["sets"]["id"]["n_skipped_by_a_model"] == 1 and section["sets"]["ood"]["n_skipped_by_a_model"] == 2
    err = capsys.readouterr().err
    assert "model-a:" in err and "isolated atom: 2" in err
    # pairwise intersections: each pair on the structures both embedded (here the same 3 are lost)
    pw = section["metrics_pairwise_ids"]
    assert pw["n"]["id"][0][1] == len(id_ids) - 1 and pw["n"]["ood"][0][1] == len(ood_ids) - 2
    assert pw["cknna"]["id"][0][1] is not None
    # the strict mode still refuses
    assert main(args[:-1] + ["--same-ids"]) == 2


def test_align_needs_both_sets(zoo, shared_samples):
    folder, _, _ = zoo
    with pytest.raises(ValueError, match="both"):
        run_alignment(folder, id_set=[shared_samples / "omat24_sample"], ood_set=None)


# -- reference model chosen by an error column ----------------------------------------------------------
def _errors_csv(path, text):
    path.write_text(text)
    return path


def test_reference_model_by_error_lowest_value_ties_by_name(tmp_path):
    from monoculture.audit.alignment.runner import reference_model_by_error

    csv = _errors_csv(tmp_path / "errors.csv",
                      "model,energy_mae_eV_per_atom,force_mae\n"
                      "model-b,0.031,0.05\nmodel-a,0.040,0.02\nmodel-c,0.031,0.09\nnot-loaded,0.001,0.01\n")
    models = ["model-a", "model-b", "model-c"]
    # model-b and model-c tie at 0.031: the alphabetically first wins; the unloaded model is ignored
    assert reference_model_by_error(csv, "energy_mae_eV_per_atom", models) == (
        "model-b", "lowest energy_mae_eV_per_atom in errors.csv")
    assert reference_model_by_error(csv, "force_mae", models)[0] == "model-a"
    assert reference_model_by_error(csv, "force_mae", ["model-c", "model-b"])[0] == "model-b"


@pytest.mark.parametrize("text,column,needle,names_column", [
    ("model,mae\nmodel-a,0.1\n", "mae", "no row for model(s) ['model-b']", True),
    ("model,mae\nmodel-a,0.1\nmodel-b,\n", "mae", "no finite value", True),
    ("model,mae\nmodel-a,0.1\nmodel-b,nan\n", "mae", "no finite value", True),
    ("model,mae\nmodel-a,0.1\nmodel-b,0.2\n", "rmse", "no error column 'rmse'", True),
    ("model,mae\nmodel-a,0.1\nmodel-b,0.2\n", "model", "no error column 'model'", True),
    ("name,mae\nmodel-a,0.1\nmodel-b,0.2\n", "mae", "no 'model' column", False),
    ("model,mae\nmodel-a,0.1\nmodel-b,low\n", "mae", "not numeric for model(s) ['model-b']", True),
    ("model,mae\nmodel-a,0.1\nmodel-b,0.2\nmodel-a,0.3\n", "mae", "more than once", False),
])
def test_reference_model_by_error_clear_errors(tmp_path, text, column, needle, names_column):
    from monoculture.audit.alignment.runner import reference_model_by_error

    csv = _errors_csv(tmp_path / "errs.csv", text)
    with pytest.raises(ValueError) as info:
        reference_model_by_error(csv, column, ["model-a", "model-b"])
    message = str(info.value)
    assert needle in message and "errs.csv" in message
    assert not names_column or repr(column) in message


def test_reference_model_by_error_missing_file(tmp_path):
    from monoculture.audit.alignment.runner import reference_model_by_error

    with pytest.raises(FileNotFoundError, match="nope.csv"):
        reference_model_by_error(tmp_path / "nope.csv", "mae", ["model-a"])


def test_run_alignment_records_reference_chosen_by_error(zoo, tmp_path):
    folder, _, _ = zoo
    # the descriptor entry (composition) is not a model: it needs no row in the table
    csv = _errors_csv(tmp_path / "errors.csv", "model,energy_mae_eV_per_atom\nmodel-a,0.05\nmodel-b,0.02\n")
    fast = dict(n_boot=4, repeats=2, n_perm=3, spearman_n_perm=9, k=5)
    section = run_alignment(folder, descriptor="composition", model_errors=csv,
                            error_column="energy_mae_eV_per_atom", **fast)
    assert section["reference_model"] == "model-b"
    assert section["reference_model_rule"] == "lowest energy_mae_eV_per_atom in errors.csv"
    assert section["reference_comparison"]["model"] == "model-b"
    assert "model-a" in section["reference_comparison"]["information_imbalance"]["all"]
    named = run_alignment(folder, descriptor="composition", reference_model="model-a", **fast)
    assert (named["reference_model"], named["reference_model_rule"]) == ("model-a", "given by name")
    with pytest.raises(ValueError, match="not both"):
        run_alignment(folder, descriptor="composition", reference_model="model-a", model_errors=csv,
                      error_column="energy_mae_eV_per_atom")
    with pytest.raises(ValueError, match="both --model-errors and --error-column"):
        run_alignment(folder, descriptor="composition", model_errors=csv)
