"""The select / prune documents take what each structure added from the result's table (its pool ``index``,
``new_elements``, ``new_pairs``), not from a second count (review finding); ids given twice stay apart."""
from __future__ import annotations

import pytest

from monoculture.audit.environments.selection import prune_structures, select_structures
from monoculture.audit.environments.sets import read_environments
from monoculture.reports import schema_errors


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Training: Cu, Al. Pool: Cu, NaCl and KBr under one id, Al, MgO."""
    import ase.io
    from ase.build import bulk

    from monoculture.datasets import open_dataset

    d = tmp_path_factory.mktemp("seldoc")
    pool = [bulk("Cu", "fcc", a=3.6), bulk("NaCl", "rocksalt", a=5.64), bulk("Al", "fcc", a=4.05),
            bulk("KBr", "rocksalt", a=6.6), bulk("MgO", "rocksalt", a=4.2)]
    for i, a in enumerate(pool):
        a.info["id"] = "dup" if i in (1, 3) else f"p{i}"
    ase.io.write(d / "pool.extxyz", pool, format="extxyz")
    ase.io.write(d / "training.extxyz", [bulk("Cu", "fcc", a=3.6), bulk("Al", "fcc", a=4.05)], format="extxyz")
    return tuple(read_environments(open_dataset(str(d / n), quiet=True)) for n in ("pool.extxyz", "training.extxyz"))


def test_selection_document_follows_the_table(sets):
    from monoculture.reports.sections.selection import selection_document

    pool, training = sets
    res = select_structures(pool, training, budget=4)
    doc = selection_document(res, pool, training, parameters={"budget": 4}, seed=3)
    assert schema_errors(doc) == []
    assert doc["run"]["seed"] == 3 and doc["datasets"] == [] and doc["parameters"] == {"budget": 4}
    sel = doc["selection"]
    rows = sel["rows"]
    assert {r["elements"] for r in rows if r["id"] == "dup"} == {"Na Cl", "K Br"}  # same id, own elements
    new_el = [e for r in rows for e in r["new_elements"].split()]
    assert [e["element"] for e in sel["added"]["elements"]] == new_el
    assert {e["element"] for e in sel["added"]["elements"]} == {"Na", "Cl", "K", "Br", "Mg", "O"}
    assert all(e["n_selected"] == 1 for e in sel["added"]["elements"])
    assert sorted(p["pair"] for p in sel["added"]["pairs"]) == ["K-Br", "Na-Cl", "O-Mg"]
    assert sel["cumulative"]["new_pairs"][-1] == sum(r["n_new_pairs"] for r in rows) == 3
    assert sel["cumulative"]["gain_nats"][-1] == pytest.approx(sum(r["gain_nats"] for r in rows))
    assert sel["elements_selected"] == {e: 1 for e in ("Na", "Cl", "K", "Br", "Mg", "O")}


def test_pruning_document_carries_the_run_curve(sets):
    from monoculture.reports.sections.pruning import pruning_document

    pool, _ = sets
    res = prune_structures(pool, keep=0.9)
    doc = pruning_document(res, pool, path="pool.extxyz", parameters={"keep": 0.9})
    assert schema_errors(doc) == []
    p = doc["pruning"]
    assert p["curve"] == res.curve
    assert [r["id"] for r in p["rows"]] == list(res.table["id"][res.table["kept"]])
    assert list(p) == ["dataset", "summary", "curve", "rows"]
