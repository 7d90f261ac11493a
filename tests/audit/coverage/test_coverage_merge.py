"""merge(a, b) == one pass over a + b, for every accumulator, whatever the split and merge order."""
from __future__ import annotations

import json

import numpy as np
import pytest
from coverage_testframes import random_frames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monoculture.audit.coverage import (
    CoverageAudit,
    DescriptorReservoir,
    ElementCoverage,
    LevelOfTheoryCoverage,
    RegimeCoverage,
)

TABLE = random_frames(seed=3, n=120)
X = np.random.default_rng(3).normal(size=(TABLE.num_rows, 4)).astype(np.float32)


def _parts(cuts):
    edges = [0, *sorted(set(cuts)), TABLE.num_rows]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(1, 119), max_size=6), order=st.randoms(use_true_random=False))
def test_exact_accumulators_merge(cuts, order):
    for cls in (ElementCoverage, LevelOfTheoryCoverage, RegimeCoverage):
        whole = cls().update(TABLE).result()
        accs = [cls().update(TABLE.slice(a, b - a)) for a, b in _parts(cuts)]
        order.shuffle(accs)
        while len(accs) > 1:  # random merge tree: associativity and commutativity
            i = order.randrange(len(accs) - 1)
            accs[i : i + 2] = [accs[i].merge(accs[i + 1])]
        assert json.dumps(accs[0].result()) == json.dumps(whole), cls.__name__


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(1, 119), max_size=6), capacity=st.integers(1, 150),
       order=st.randoms(use_true_random=False))
def test_reservoir_merge(cuts, capacity, order):
    whole = DescriptorReservoir(capacity, seed=7).update(TABLE, X).sample()
    parts = [DescriptorReservoir(capacity, seed=7).update(TABLE.slice(a, b - a), X[a:b]) for a, b in _parts(cuts)]
    order.shuffle(parts)
    acc = parts[0]
    for p in parts[1:]:
        acc = acc.merge(p)
    got = acc.sample()
    assert len(got) == min(capacity, TABLE.num_rows)
    assert got.n_seen == whole.n_seen == TABLE.num_rows
    assert list(got.ids) == list(whole.ids)
    assert np.array_equal(got.X, whole.X)
    assert list(got.formulas) == list(whole.formulas) and got.species == whole.species
    # the sampled descriptor rows are the rows of those ids
    pos = {i: k for k, i in enumerate(TABLE.column("id").to_pylist())}
    assert np.array_equal(got.X, X[[pos[i] for i in got.ids]])


def test_reservoir_seed_changes_sample_and_is_uniform():
    a = DescriptorReservoir(30, seed=0).update(TABLE, X).sample()
    b = DescriptorReservoir(30, seed=1).update(TABLE, X).sample()
    assert set(a.ids) != set(b.ids)
    # bottom-k of a hash: over many seeds every frame is picked about 30/120 = 25 % of the time
    hits = np.zeros(TABLE.num_rows)
    pos = {i: k for k, i in enumerate(TABLE.column("id").to_pylist())}
    for seed in range(200):
        for i in DescriptorReservoir(30, seed=seed).update(TABLE, X).sample().ids:
            hits[pos[i]] += 1
    assert abs(hits.mean() / 200 - 0.25) < 1e-12
    assert hits.min() > 25 and hits.max() < 80  # binomial(200, 0.25): mean 50, sd 6.1


def test_audit_merge_equals_single_pass():
    whole = CoverageAudit(descriptor_sample_size=50, seed=2, umap=False, quests_crosscheck=False)
    whole.update(TABLE, X)
    parts = []
    for a, b in _parts([17, 60, 61, 100]):
        parts.append(CoverageAudit(descriptor_sample_size=50, seed=2, umap=False, quests_crosscheck=False)
                     .update(TABLE.slice(a, b - a), X[a:b]))
    acc = parts[3].merge(parts[1]).merge(parts[0].merge(parts[2])).merge(parts[4])
    assert json.dumps(acc.result()) == json.dumps(whole.result())


def test_reservoir_rejects_bad_shapes():
    with pytest.raises(ValueError):
        DescriptorReservoir(5).update(TABLE, X[:-1])
    r = DescriptorReservoir(5).update(TABLE, X)
    with pytest.raises(ValueError):
        r.update(TABLE, np.zeros((TABLE.num_rows, 3)))
