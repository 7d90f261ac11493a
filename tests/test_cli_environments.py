"""End to end: `monoculture select` / `prune` on public data (bundled crystals, ASE's dcdft solids)."""
from __future__ import annotations

import json

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
