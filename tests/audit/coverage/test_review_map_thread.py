"""ChemicalSpaceCoverage.result: an error (or Ctrl-C) while the map is drawn in its thread returns at once,
without waiting for the map's optimisation; on success the map is waited for."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from coverage_testframes import five_frames

from monoculture.audit.coverage import chemical_space
from monoculture.audit.coverage.chemical_space import ChemicalSpaceCoverage

X5 = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, 5.0]], dtype=np.float32)


def _slow_map(release: threading.Event, started: threading.Event, result: dict):
    def umap(self, s, X, neighbours=None):
        started.set()
        release.wait(timeout=30)
        return result

    return umap


def test_an_error_beside_the_map_does_not_wait_for_it(monkeypatch):
    release, started = threading.Event(), threading.Event()
    monkeypatch.setattr(ChemicalSpaceCoverage, "_umap", _slow_map(release, started, {"x": []}))

    def failing(*args, **kwargs):
        assert started.wait(timeout=10)  # the map is running in its thread
        raise KeyboardInterrupt

    monkeypatch.setattr(chemical_space, "near_duplicates", failing)
    cov = ChemicalSpaceCoverage(sample_size=10, k=2, umap=True, quests_crosscheck=False).update(five_frames(), X5)
    t = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            cov.result()
        assert time.perf_counter() - t < 10  # the map thread is still waiting for `release` (30 s)
    finally:
        release.set()


def test_on_success_the_map_is_waited_for(monkeypatch):
    release, started = threading.Event(), threading.Event()
    monkeypatch.setattr(ChemicalSpaceCoverage, "_umap", _slow_map(release, started, {"x": [1.0]}))
    timer = threading.Timer(0.3, release.set)
    timer.start()
    r = ChemicalSpaceCoverage(sample_size=10, k=2, umap=True, quests_crosscheck=False).update(five_frames(), X5).result()
    timer.join()
    assert r["umap"] == {"x": [1.0]} and release.is_set()
