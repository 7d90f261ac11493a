"""select / prune on built cases with a known answer."""
from __future__ import annotations

import pytest

from monoculture.audit.environments.selection import prune_structures, select_structures
from monoculture.audit.environments.sets import read_environments


def _frames(shared_samples):
    from monoculture.datasets import read_frames

    return read_frames(shared_samples / "mptrj_sample.json")


def _extxyz(atoms_list, path):
    import ase.io

    ase.io.write(path, atoms_list, format="extxyz")
    from monoculture.datasets import open_dataset

    return read_environments(open_dataset(path))


@pytest.fixture(scope="module")
def training(shared_samples):
    return read_environments(_frames(shared_samples), name="training")


def test_pool_of_training_copies_gains_nothing(training):
    res = select_structures(training, training, budget=20)
    assert len(res.table) == 0
    assert res.summary["n_selected"] == 0
    assert res.summary["pool_overlap"]["overlap"] == pytest.approx(1.0)


def test_new_element_ranks_first(training, shared_samples, tmp_path):
    from ase.build import bulk

    from monoculture.datasets import iter_ase_atoms

    known = list(iter_ase_atoms(_frames(shared_samples)))[:10]
    strained = [a.copy() for a in known[:3]]
    for k, a in enumerate(strained):
        a.set_cell(a.cell * 1.07, scale_atoms=True)
        a.info["id"] = f"strained-{k}"
    kr = bulk("Kr", "fcc", a=5.7)
    kr.info["id"] = "krypton"
    pool = _extxyz(known + strained + [kr], tmp_path / "pool.extxyz")
    res = select_structures(pool, training, budget=5)
    first = res.table.iloc[0]
    assert first["new_elements"] == "Kr"
    assert first["id"] == "krypton"
    assert "Kr" in first["why"]
    # the unchanged copies of training structures are never ranked
    assert not set(res.table["id"]) & set(pool.ids[:10])
    # the strained copies are ranked after Kr, for their environments only
    rest = res.table.iloc[1:]
    assert set(rest["id"]) <= {"strained-0", "strained-1", "strained-2"}
    assert (rest["n_new_elements"] == 0).all() and (rest["gain_nats"] > 0).all()


def test_prune_drops_exact_duplicates_first(shared_samples, tmp_path):
    from monoculture.datasets import iter_ase_atoms

    atoms = list(iter_ase_atoms(_frames(shared_samples)))
    unique = [atoms[i].copy() for i in range(0, len(atoms), 3)]  # one frame of most materials
    for k, a in enumerate(unique):
        a.info["id"] = f"s{k}"
    dups = [a.copy() for a in unique[:6]]
    for k, a in enumerate(dups):
        a.info["id"] = f"s{k}-copy"
    ds = _extxyz(unique + dups, tmp_path / "dups.extxyz")
    res = prune_structures(ds, keep=0.95)
    t = res.table
    adds = (t["gain_nats"] > 0) | (t["n_new_elements"] > 0) | (t["n_new_pairs"] > 0)
    zero = set(t["id"][~adds])
    # adding nothing puts a structure after every one that adds something
    assert adds.iloc[: int(adds.sum())].all()
    kept = set(t["id"][t["kept"]])
    for k in range(6):
        pair = {f"s{k}", f"s{k}-copy"}
        assert len(pair & zero) >= 1, "neither copy was found to add nothing"
        assert not pair <= kept, "both copies kept"
    s = res.summary
    assert s["element_share"] >= 0.95 and s["entropy_share"] >= 0.95
    assert s["n_kept"] <= len(unique)


def test_prune_rejects_bad_keep(training):
    with pytest.raises(ValueError, match="keep"):
        prune_structures(training, keep=0.0)
