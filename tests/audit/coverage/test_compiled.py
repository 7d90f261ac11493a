"""The audit's compiled kernels: the warm-up process caches exactly what the audit then loads, and the map drawn
in its own thread is the map drawn in sequence."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from monoculture.audit.coverage import compiled
from monoculture.audit.coverage.chemical_space import ChemicalSpaceCoverage, pairwise_pass

from coverage_testframes import random_frames

# the audit's analysis of a small sample in a fresh process: which kernels numba compiled there (cache misses)
# and which it loaded from the cache (hits)
_AUDIT_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from monoculture.audit.coverage import compiled
    from monoculture.audit.coverage.chemical_space import ChemicalSpaceCoverage, pairwise_pass
    sys.path.insert(0, sys.argv[1])
    from coverage_testframes import random_frames
    batch = random_frames(0, 60)
    cs = ChemicalSpaceCoverage(sample_size=60, quests_crosscheck=True).update(batch, np.random.default_rng(0).normal(size=(60, 6)))
    res = cs.result()
    assert "x" in res["umap"] and "quests_entropy_nats" in res["entropy"], res["entropy"]
    out = {}
    for name in compiled.KERNELS:
        stats = compiled._dispatcher(name).stats
        out[name] = {"misses": sum(stats.cache_misses.values()), "hits": sum(stats.cache_hits.values())}
    out["cached"] = [compiled.cached(n) for n in compiled.KERNELS]
    print(json.dumps(out))
""")


def _audit_in_fresh_process(cache_dir) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), MONOCULTURE_WARMUP="never")
    here = os.path.dirname(__file__)
    out = subprocess.run([sys.executable, "-c", _AUDIT_CHILD, here], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_warm_up_caches_the_signatures_the_audit_calls(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    warm = compiled.WarmUp(list(compiled.KERNELS))  # what `audit` starts when the cache is empty
    try:
        assert warm.wait("quests") and warm.wait("map")  # out of order: "map" came first, kept as ready
        assert warm.ready == set(compiled.KERNELS)
    finally:
        warm.close()
    got = _audit_in_fresh_process(tmp_path)
    for name in compiled.KERNELS:  # loaded from the cache, nothing compiled by the audit itself
        assert got[name] == {"misses": 0, "hits": 1}, (name, got)
    assert got["cached"] == [True, True]


def test_an_empty_cache_is_seen_as_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "empty"))
    # numba reads NUMBA_CACHE_DIR when a dispatcher's cache is made: ask a fresh process
    code = "from monoculture.audit.coverage import compiled; print([compiled.cached(n) for n in compiled.KERNELS])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[False, False]"


def test_a_failed_warm_up_does_not_block_the_audit():
    warm = compiled.WarmUp(["no-such-kernel"])  # the process exits with an error, printing no `ready`
    try:
        assert warm.wait("no-such-kernel", limit_s=120) is False
        assert warm.wait("map") is False  # not asked of it: no wait
    finally:
        warm.close()
    assert warm.proc.returncode not in (None, 0)


def test_nothing_is_started_without_kernels_or_when_disabled(monkeypatch):
    with compiled.warm_up([]) as w:
        assert w is None
    monkeypatch.setenv("MONOCULTURE_WARMUP", "never")
    with compiled.warm_up(["map"]) as w:
        assert w is None
    compiled.wait("map")  # no active warm-up: returns at once


def test_the_warm_up_runs_only_while_a_core_is_free(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.delenv("MONOCULTURE_WARMUP", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.4, 0.0, 0.0))
    assert compiled._wanted()
    monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 0.0, 0.0))  # every core busy: it would only compete
    assert not compiled._wanted()
    monkeypatch.setenv("MONOCULTURE_WARMUP", "always")
    assert compiled._wanted()
    monkeypatch.setenv("MONOCULTURE_WARMUP", "never")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert not compiled._wanted()


def test_the_map_drawn_in_its_thread_is_the_map_drawn_in_sequence():
    batch = random_frames(3, 80)
    X = np.random.default_rng(3).normal(size=(80, 5))
    cs = ChemicalSpaceCoverage(sample_size=80, seed=7, quests_crosscheck=False).update(batch, X)
    threaded = cs.result()["umap"]  # drawn in the map's thread, beside the near-duplicate checks
    s = cs.sample()
    Xs = cs.scaler().transform(s.X)
    pw = pairwise_pass(Xs, 14, None)  # the graph result() maps: its k-NN step's
    direct = cs._umap(s, Xs, neighbours=(pw["dist"], pw["idx"]))  # in this thread
    assert threaded["x"] == direct["x"] and threaded["y"] == direct["y"]
    assert threaded["n"] == 80
