"""End to end: `monoculture select` / `prune` on public data (bundled crystals, ASE's dcdft solids)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from monoculture.cli import main


@pytest.fixture(scope="module")
def dcdft_pool(tmp_path_factory):
    import ase.io
    from ase.collections import dcdft

    path = tmp_path_factory.mktemp("pool") / "dcdft.extxyz"
    ase.io.write(path, list(dcdft), format="extxyz")
    return path


def test_select_dcdft_against_bundled_crystals(dcdft_pool, shared_samples, tmp_path, capsys):
    out = tmp_path / "ranked.csv"
    rc = main(["select", str(dcdft_pool), "--against", str(shared_samples / "mptrj_sample.json"),
               "--budget", "8", "--out", str(out), "--json", str(tmp_path / "s.json")])
    assert rc == 0
    t = pd.read_csv(out)
    assert list(t["rank"]) == list(range(1, 9))
    assert {"id", "gain_nats", "why"} <= set(t.columns)
    # the training crystals hold no B, Be, H, Kr...: every ranked structure brings an absent element
    assert (t["n_new_elements"] >= 1).all()
    assert t["why"].str.startswith("It adds").all()
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["n_selected"] == 8 and summary["bandwidth"] == 0.015
    assert 0 <= summary["pool_overlap"]["overlap"] <= 1
    assert "selected 8 of 71" in capsys.readouterr().out


def test_prune_writes_parquet_with_kept_share(shared_samples, tmp_path, capsys):
    out = tmp_path / "pruned.parquet"
    rc = main(["prune", str(shared_samples / "mptrj_sample.json"), "--keep", "0.9", "--out", str(out)])
    assert rc == 0
    t = pd.read_parquet(out)
    assert len(t) == 83 and t["kept"].dtype == bool
    assert 0 < t["kept"].sum() < 83
    printed = capsys.readouterr().out
    assert "kept" in printed and "share" in printed


def test_usage_errors_are_one_line(shared_samples, tmp_path, capsys):
    assert main(["prune", str(shared_samples / "mptrj_sample.json"), "--out", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and ".csv or .parquet" in err
    assert main(["select", str(tmp_path / "missing.xyz"), "--against", str(shared_samples / "mptrj_sample.json"),
                 "--budget", "3", "--out", str(tmp_path / "x.csv")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["prune", "x", "--keep", "1.5", "--out", "a.csv"])
    assert exc.value.code == 2


def test_read_options_match_the_other_dataset_commands():
    from monoculture.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    own = {"--descriptor", "--n-jobs", "--out", "--cache-dir", "--param", "-h", "--help"}
    featurize = {o for a in sub.choices["featurize"]._actions for o in a.option_strings} - own
    for name in ("select", "prune"):
        opts = {o for a in sub.choices[name]._actions for o in a.option_strings}
        assert featurize <= opts, f"{name} lacks {featurize - opts}"


def test_pool_with_nothing_describable_exits_3(shared_samples, tmp_path, capsys):
    import ase.io
    from ase.build import fcc111

    slab = fcc111("Cu", size=(2, 2, 3), vacuum=5.0)  # pbc (True, True, False): quests has no slab kernel
    slab.info.pop("adsorbate_info", None)
    pool = tmp_path / "slab.extxyz"
    ase.io.write(pool, [slab], format="extxyz")
    rc = main(["select", str(pool), "--against", str(shared_samples / "mptrj_sample.json"), "--budget", "2",
               "--out", str(tmp_path / "r.csv")])
    assert rc == 3
    assert "no structure of POOL" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()


# -- align-environments -------------------------------------------------------------------------------------
BUNDLED_MPTRJ = Path(__file__).resolve().parents[1] / "datasets" / "data" / "samples" / "mptrj_sample.json"


def _write_atom_file(path, ids, index, numbers, X, pooling="atoms", model="m"):
    import pyarrow.parquet as pq

    from monoculture.descriptors.embedding_files import embeddings_table

    pq.write_table(embeddings_table(list(ids), X, {"model": model, "pooling": pooling}, index, numbers), path)


@pytest.fixture(scope="module")
def atom_files(tmp_path_factory):
    """Two per-atom 'models' of the bundled crystals: a rotation of their QUESTS descriptors, and the same
    plus noise on the oxygen atoms only."""
    import numpy as np

    from monoculture.audit.environments.alignment_io import read_atom_environments
    from monoculture.datasets import open_dataset

    env, _ = read_atom_environments(open_dataset(str(BUNDLED_MPTRJ)))
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(env.X.shape[1], env.X.shape[1])))
    a = env.X @ q
    b = env.X.astype(float).copy()
    ox = env.atomic_numbers == 8
    b[ox] += 5.0 * np.abs(env.X).max() * rng.normal(size=(ox.sum(), b.shape[1]))
    d = tmp_path_factory.mktemp("atoms")
    paths = d / "a.parquet", d / "b.parquet"
    _write_atom_file(paths[0], env.ids, env.atom_index, env.atomic_numbers, a, model="rotated")
    last = np.flatnonzero((env.atom_index > 0) & (np.append(env.atom_index[1:], 0) == 0))[0]
    keep = np.arange(len(b)) != last  # model b lacks the last atom of one structure
    _write_atom_file(paths[1], env.ids[keep], env.atom_index[keep], env.atomic_numbers[keep], b[keep],
                     model="noisy-O")
    return paths, env


def test_align_environments_end_to_end(atom_files, tmp_path, capsys):
    (pa_, pb), env = atom_files
    out, js = tmp_path / "t.csv", tmp_path / "r.json"
    rc = main(["align-environments", str(pa_), str(pb), "--structures", str(BUNDLED_MPTRJ), "--against",
               str(BUNDLED_MPTRJ), "--min-environments", "20", "--clusters", "4", "--permutations", "50",
               "--json", str(js), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"{len(env.ids) - 1} of {len(env.ids)} atoms present in every input" in printed
    assert "noisy-O lacks 1" in printed and "Over all" in printed
    doc = json.loads(js.read_text())
    assert doc["models"] == ["rotated", "noisy-O"] and doc["atoms"]["missing"]["noisy-O"] == 1
    assert doc["coverage"]["overlap_all"] == pytest.approx(1.0)  # the training set holds the same atoms
    groups = {g["label"]: g for g in doc["groups"]}
    assert groups["O"]["pairs"][0]["cknna"]["calibrated"] < 0.3  # noise on every O atom
    others = [g for g in doc["groups"] if g["kind"] == "element" and g["label"] != "O"]
    assert all(g["pairs"][0]["cknna"]["calibrated"] > 0.9 for g in others)
    t = pd.read_csv(out)
    assert len(t) == len(doc["groups"]) and set(t["group"]) == set(groups)


def test_align_environments_errors(atom_files, tmp_path, capsys):
    (pa_, pb), env = atom_files
    assert main(["align-environments", str(pa_)]) == 2
    assert "two or more" in capsys.readouterr().err
    assert main(["align-environments", str(pa_), str(pb), "--against", str(BUNDLED_MPTRJ)]) == 2
    assert "--against needs --structures" in capsys.readouterr().err
    pooled = tmp_path / "pooled.parquet"
    import pyarrow.parquet as pq

    from monoculture.descriptors.embedding_files import embeddings_table

    pq.write_table(embeddings_table(["x", "y"], env.X[:2], {"model": "p", "pooling": "mean"}), pooled)
    assert main(["align-environments", str(pa_), str(pooled)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--pooling atoms" in err
    other = tmp_path / "other.parquet"  # no atom in common: nothing to align, exit 3
    _write_atom_file(other, [f"z{i}" for i in range(len(env.ids))], env.atom_index, env.atomic_numbers, env.X)
    assert main(["align-environments", str(pa_), str(other)]) == 3
    assert "nothing could be aligned" in capsys.readouterr().err
