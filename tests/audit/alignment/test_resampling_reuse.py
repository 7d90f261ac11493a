"""Subsample k-NN read from one full-set search (issue 20): equal to searching every subsample."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from monoculture.audit.alignment.metrics import cknna, mutual_knn
from monoculture.audit.alignment.neighbour_cache import NeighbourCache, SubsampleLists
from monoculture.audit.alignment.neighbours import neighbour_search
from monoculture.audit.alignment.resampling import resample
from monoculture.audit.alignment.stats import _draw
from monoculture.audit.neighbours import full_lists, list_length, subsample_search


def _models(n, d=24, n_models=3, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 5))
    return [np.tanh(Z @ rng.standard_normal((5, d))) + 0.1 * rng.standard_normal((n, d)) for _ in range(n_models)]


def _sets(idx):
    return [frozenset(r) for r in np.asarray(idx).tolist()]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_subsample_sets_equal_a_search_of_the_subsample(metric):
    X = _models(900, d=16, n_models=1)[0]
    k = 12
    lists = full_lists(X, list_length(k, 0.5, X.shape[0]), metric=metric)
    rng = np.random.default_rng(3)
    for _ in range(5):
        rows = _draw(rng, X.shape[0], "subsample", X.shape[0] // 2)
        got = subsample_search(lists, rows, k)
        ref = neighbour_search(X[rows], k, metric=metric, exact_values=True)
        assert _sets(got.search.indices) == _sets(ref.indices)
        np.testing.assert_allclose(got.search.d2, ref.d2, rtol=1e-12, atol=1e-12)
        assert got.search.points.shape == (rows.size, X.shape[1])


def test_unsorted_rows_and_forced_fallbacks():
    """Rows in any order; lists too short for many rows (fallback) still give the exact sets."""
    X = _models(400, d=8, n_models=1, seed=5)[0]
    k = 10
    short = full_lists(X, 14, metric="euclidean")  # about 7 members of a half subsample: most rows fall back
    rows = np.random.default_rng(1).permutation(400)[:200]
    got = subsample_search(short, rows, k)
    assert got.fallback.size > 50
    ref = neighbour_search(X[rows], k, exact_values=True)
    np.testing.assert_array_equal(got.search.indices, ref.indices)  # order too: ties to the lower position
    np.testing.assert_allclose(got.search.d2, ref.d2, rtol=1e-12, atol=1e-12)


def test_ties_at_the_kth_neighbour_fall_back_and_match():
    """Integer grid points: many exactly equal distances at the k-th neighbour, decided by position."""
    g = np.arange(6, dtype=np.float64)
    X = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)  # 216 points, d = 3
    k = 5
    lists = full_lists(X, list_length(k, 0.5, X.shape[0]))
    rng = np.random.default_rng(0)
    n_fallback = 0
    for _ in range(4):
        rows = _draw(rng, X.shape[0], "subsample", X.shape[0] // 2)
        got = subsample_search(lists, rows, k)
        ref = neighbour_search(X[rows], k, exact_values=True)
        n_fallback += got.fallback.size
        np.testing.assert_array_equal(got.search.indices, ref.indices)
        np.testing.assert_allclose(got.search.d2, ref.d2, atol=1e-12)
    assert n_fallback > 0  # the tie branch was exercised


def test_distinct_rows_required():
    X = _models(50, n_models=1)[0]
    lists = full_lists(X, 20)
    with pytest.raises(ValueError, match="distinct"):
        subsample_search(lists, np.array([0, 1, 1, 2, 3, 4, 5]), 2)
    with pytest.raises(ValueError, match="distinct"):
        NeighbourCache().register(X[:3], X, np.array([0, 0, 1]))


def test_list_length():
    assert list_length(25, 0.5, 10_000) == 81
    assert list_length(25, 0.5, 60) == 59  # at most n - 1
    assert list_length(10, 1.0, 1000) == 11  # the whole set: k + 1
    with pytest.raises(ValueError):
        list_length(5, 0.0, 100)


def test_cache_gives_metric_values_of_a_fresh_search():
    arrays = _models(600)
    X, Y = arrays[0], arrays[1]
    lists = SubsampleLists(0.5)
    rows = _draw(np.random.default_rng(2), 600, "subsample", 300)
    Xs, Ys = X[rows], Y[rows]
    cache = NeighbourCache(lists)
    cache.register(Xs, X, rows)
    cache.register(Ys, Y, rows)
    for unbiased in (True, False):
        assert cknna(Xs, Ys, k=25, unbiased=unbiased, cache=cache) == pytest.approx(
            cknna(Xs, Ys, k=25, unbiased=unbiased), abs=1e-12)
    assert mutual_knn(Xs, Ys, k=25, cache=cache) == mutual_knn(Xs, Ys, k=25)
    assert mutual_knn(Xs, Ys, k=25, metric="euclidean", cache=cache) == mutual_knn(Xs, Ys, k=25, metric="euclidean")
    assert lists.stats.derived >= 4 and lists.stats.full_lists >= 2


def test_resample_reuse_equals_from_scratch():
    arrays = _models(500)
    pairs = list(combinations(range(3), 2))
    a = resample(arrays, pairs, ("cknna", "mutual_knn"), 25, 50, 6, 7, reuse_neighbours=True)
    b = resample(arrays, pairs, ("cknna", "mutual_knn"), 25, 50, 6, 7, reuse_neighbours=False)
    for mt in ("cknna", "mutual_knn"):
        for p in b.reps[mt]:
            assert a.estimate[mt][p] == b.estimate[mt][p]
            np.testing.assert_allclose(a.reps[mt][p], b.reps[mt][p], rtol=0, atol=1e-12)
    assert a.searches.derived == 6 * 3 and a.searches.direct == 3  # subsamples read, full sets searched
    assert b.searches.derived == 0 and b.searches.direct == 7 * 3
    assert a.searches.fallback_rate < 0.01


def test_lists_shared_between_calls_serve_a_smaller_k():
    arrays = _models(300, n_models=2)
    lists = SubsampleLists(150 / 300)
    a = resample(arrays, [(0, 1)], ("mutual_knn",), 12, 5, 4, 3, lists=lists)
    b = resample(arrays, [(0, 1)], ("mutual_knn",), 6, 5, 4, 3, lists=lists)
    ref = resample(arrays, [(0, 1)], ("mutual_knn",), 6, 5, 4, 3, reuse_neighbours=False)
    assert a.searches.full_lists == 2 and b.searches.full_lists == 0 and b.searches.derived == 8
    np.testing.assert_array_equal(b.reps["mutual_knn"][(0, 1)], ref.reps["mutual_knn"][(0, 1)])
