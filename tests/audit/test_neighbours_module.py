"""One neighbour-search module for the audit (issue 21): monoculture.audit.neighbours and its re-exports."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest

import monoculture.audit.neighbours as nb
from monoculture.audit.alignment import neighbours as align_nb

cov_knn = importlib.import_module("monoculture.audit.coverage.knn")


def _brute(base, query, k, exclude_self=False):
    d2 = ((query[:, None, :] - base[None, :, :]) ** 2).sum(-1)
    if exclude_self:
        np.fill_diagonal(d2, np.inf)
    idx = np.lexsort((np.broadcast_to(np.arange(base.shape[0]), d2.shape), d2), axis=1)[:, :k]
    return np.sqrt(np.take_along_axis(d2, idx, axis=1)), idx


def test_every_consumer_gets_the_same_functions():
    for name in ("knn", "neighbour_search", "NeighbourSearch", "candidate_count", "l2_normalise_rows"):
        assert getattr(align_nb, name) is getattr(nb, name)
    assert align_nb.SweepNearest is nb.exact.SweepNearest
    assert align_nb._sorted_exact is nb.exact._sorted_exact
    assert cov_knn.knn is nb.knn_query and cov_knn.knn_self is nb.knn_self_indexed
    assert cov_knn.EXACT_MAX == nb.EXACT_MAX


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_exact_backend_matches_brute_force_with_ties(backend):
    rng = np.random.default_rng(0)
    A = rng.integers(-3, 4, size=(150, 4)).astype(np.float64)  # integers: many exactly equal distances
    A[10] = A[11]  # exact duplicates
    X = np.vstack([A, -A])  # column means exactly 0: centring keeps every distance exact
    dist, idx = nb.knn(X, 6, backend=backend)
    ref_d, ref_i = _brute(X, X, 6, exclude_self=True)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-12, atol=1e-12)
    assert idx[10, 0] == 11 and dist[10, 0] == 0.0


def test_indexed_backend_matches_brute_force():
    rng = np.random.default_rng(1)
    base, query = rng.normal(size=(400, 8)), rng.normal(size=(50, 8))
    dist, idx, info = nb.knn_query(base, query, 5)
    ref_d, ref_i = _brute(base, query, 5)
    assert info["exact"] and info["index"] == "IndexFlatL2"
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-6)
    d_self, i_self, _ = nb.knn_self_indexed(base, 3)
    assert not np.any(i_self == np.arange(400)[:, None])
    np.testing.assert_array_equal(i_self, _brute(base, base, 3, exclude_self=True)[1])


def test_indexed_backend_goes_approximate_above_exact_max():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(3000, 8)).astype(np.float32)
    dist, idx, info = nb.knn_query(base, base[:100], 4, exact_max=1000, seed=0)
    assert not info["exact"] and info["index"] == "IndexIVFFlat" and info["nprobe"] == nb.IVF_NPROBE
    ref_i = _brute(base.astype(np.float64), base[:100].astype(np.float64), 4)[1]
    recall = np.mean([len(set(a) & set(b)) / 4 for a, b in zip(idx.tolist(), ref_i.tolist())])
    assert recall > 0.9


@pytest.mark.parametrize("first", ["monoculture.audit.neighbours", "monoculture.audit.coverage",
                                   "monoculture.audit.alignment"])
def test_imports_in_any_order_and_stay_light(first):
    """No import cycle at run time; the neighbour module alone does not load the alignment package."""
    code = (f"import sys, numpy as np, importlib; importlib.import_module({first!r});"
            "light = 'monoculture.audit.alignment' not in sys.modules;"
            "import monoculture.audit.neighbours as nb, monoculture.audit.coverage, monoculture.audit.alignment;"
            "d, i = nb.knn(np.random.default_rng(0).normal(size=(50, 3)), 2);"
            "print(light, i.shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    light, shape = out.stdout.split(maxsplit=1)
    assert shape.strip() == "(50, 2)"
    if first == "monoculture.audit.neighbours":
        assert light == "True"


def test_one_index_builder_for_coverage_and_environments():
    """Coverage's indexed search and the environments' kernel index build their faiss index in one place."""
    from monoculture.audit.environments import kernel

    assert kernel.build_index is nb.indexed.build_index
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 6)).astype(np.float32)
    shift = X.mean(axis=0)
    a, info = nb.indexed.build_index(X, exact=False, nlist=20, nprobe=20, n_train=800, seed=1, niter=10, shift=shift)
    assert info == {"index": "IndexIVFFlat", "exact": False, "nlist": 20, "nprobe": 20, "n_train": 800}
    b, _ = nb.indexed.build_index(X - shift, exact=True)
    _, ia = a.search(X[:30] - shift, 3)  # every list probed: the IVF search is exhaustive
    _, ib = b.search(X[:30] - shift, 3)
    np.testing.assert_array_equal(ia, ib)
