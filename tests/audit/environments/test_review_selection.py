"""select / prune results carry what the reports need (review findings): the pool index and the new element
pairs of every ranked structure, and prune's curve measured with the run's own entropies."""
from __future__ import annotations

import numpy as np
import pytest

from monoculture.audit.environments import selection
from monoculture.audit.environments.selection import prune_structures, select_structures
from monoculture.audit.environments.sets import read_environments


def _set(atoms_list, path):
    import ase.io

    from monoculture.datasets import open_dataset

    ase.io.write(path, atoms_list, format="extxyz")
    return read_environments(open_dataset(str(path), quiet=True))


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Training: fcc Cu and Al. Pool: rattled Cu, NaCl (new Na, Cl and pair Cl-Na), Al, MgO (new Mg, O, pair
    O-Mg), and NaCl again under the same id."""
    from ase.build import bulk

    d = tmp_path_factory.mktemp("sel")
    training = [bulk("Cu", "fcc", a=3.6), bulk("Al", "fcc", a=4.05)]
    pool = [bulk("Cu", "fcc", a=3.6).repeat(2), bulk("NaCl", "rocksalt", a=5.64), bulk("Al", "fcc", a=4.05),
            bulk("MgO", "rocksalt", a=4.2), bulk("NaCl", "rocksalt", a=5.64).repeat((2, 1, 1))]
    for i, a in enumerate(pool):
        a.info["id"] = "dup" if i in (1, 4) else f"p{i}"
        if i == 0:
            a.rattle(0.05, seed=1)
    return _set(pool, d / "pool.extxyz"), _set(training, d / "training.extxyz")


def test_select_table_keeps_index_and_new_pairs(sets):
    pool, training = sets
    t = select_structures(pool, training, budget=5).table
    assert list(t.columns[:3]) == ["rank", "id", "index"]
    for _, row in t.iterrows():
        assert str(pool.ids[row["index"]]) == row["id"]
        pairs = row["new_pairs"].split()
        assert len(pairs) == row["n_new_pairs"]
        from ase.data import chemical_symbols

        symbols = {chemical_symbols[z] for z in pool.species[row["index"]]}
        for q in pairs:
            assert set(q.split("-")) <= symbols
    by_index = {int(r["index"]): r for _, r in t.iterrows()}
    assert set(by_index[1]["new_pairs"].split()) == {"Na-Cl"}  # lighter element first
    assert set(by_index[3]["new_pairs"].split()) == {"O-Mg"}
    assert len(t["index"]) == len(set(t["index"]))


def test_prune_curve_reuses_the_run_entropies(sets, monkeypatch):
    pool, _ = sets
    calls = []
    real = selection.environment_entropy
    monkeypatch.setattr(selection, "environment_entropy", lambda X, *a, **k: calls.append(len(X)) or real(X, *a, **k))
    res = prune_structures(pool, keep=0.9)
    s, c, t = res.summary, res.curve, res.table
    assert sorted(t["index"]) == list(range(pool.n_structures))  # the greedy order, every structure once
    assert c["n_structures"] == sorted(set(c["n_structures"])) and c["n_structures"][-1] == pool.n_structures
    k = c["n_structures"].index(s["n_kept"])
    assert c["entropy_nats"][k] == s["entropy_kept_nats"] and c["entropy_share"][k] == s["entropy_share"]
    assert c["entropy_nats"][-1] == s["entropy_full_nats"] and c["entropy_share"][-1] == 1.0
    assert c["n_elements"][k] == s["n_elements_kept"] and c["element_share"][-1] == 1.0
    # one entropy per distinct prefix length (the full set measured once), none measured twice
    full = pool.n_environments
    assert calls.count(full) == 1 and len(calls) == len(set(calls))
    # the curve's prefixes are those of the table's order
    for n, els in zip(c["n_structures"], c["n_elements"]):
        sub = pool.subset(np.asarray(t["index"][:n], dtype=np.int64))
        assert els == len({int(z) for sp in sub.species for z in sp})
