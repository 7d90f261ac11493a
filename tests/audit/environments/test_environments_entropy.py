"""QUESTS entropy, differential entropy and overlap by truncated kernel sums, against the quests package."""
from __future__ import annotations

import numpy as np
import pytest

from monoculture.audit.environments import (
    QUESTS_BANDWIDTH,
    differential_entropy,
    environment_entropy,
    exact_delta_entropy,
    exact_entropy,
    merge_duplicates,
    overlap,
    resolve_bandwidth,
)

H = 0.015


@pytest.fixture(scope="module")
def real_environments(shared_samples):
    from monoculture.audit.environments.sets import read_environments
    from monoculture.datasets import open_dataset

    return read_environments(open_dataset(shared_samples / "mptrj_sample.json"))


def _clustered(base: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Copies of real environments with noise of 0, 0.3, 1, 3 and 10 bandwidths (total, over all columns)."""
    rng = np.random.default_rng(seed)
    d = base.shape[1]
    j = rng.integers(0, len(base), n)
    scale = rng.choice([0.0, 0.3, 1.0, 3.0, 10.0], size=(n, 1)) * H / np.sqrt(d)
    return (base[j] + rng.standard_normal((n, d)) * scale).astype(np.float32)


def test_default_bandwidth_is_quests():
    from quests.entropy import DEFAULT_BANDWIDTH

    assert QUESTS_BANDWIDTH == DEFAULT_BANDWIDTH
    assert resolve_bandwidth(None)[0] == DEFAULT_BANDWIDTH
    assert resolve_bandwidth(0.05) == (0.05, "given")
    from quests.entropy import get_bandwidth

    assert resolve_bandwidth("volume", 12.0)[0] == pytest.approx(float(get_bandwidth(12.0)))
    with pytest.raises(ValueError, match="positive"):
        resolve_bandwidth(-1.0)
    with pytest.raises(ValueError, match="volume"):
        resolve_bandwidth("volume", None)


def test_entropy_of_separated_copies_is_log_n():
    # 7 environments far apart (100 h), each repeated 5 times: p_i = 5 for every row, H = log(7) exactly
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(7, 63)) * 100 * H
    X = np.repeat(centres, 5, axis=0)
    res = environment_entropy(X, n_check=10)
    assert res["entropy_nats"] == pytest.approx(np.log(7), rel=1e-6)
    assert res["diversity_nats"] == pytest.approx(np.log(35 / 5), rel=1e-6)  # log sum_i 1 / p_i
    assert res["approximation"]["n_unique"] == 7
    assert res["measured_error"]["max_abs_log_p_error"] < 1e-6


def test_merge_keeps_near_copies_apart():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(1, 63))
    X = np.vstack([a, a + 1e-12, a + 0.1 * H / np.sqrt(63), rng.normal(size=(1, 63))])
    m = merge_duplicates(X, H)
    assert m.X.shape[0] == 3
    assert m.inverse[0] == m.inverse[1] != m.inverse[2]
    assert sorted(m.weights.tolist()) == [1.0, 1.0, 2.0]


@pytest.mark.parametrize("exact_max", [20_000, 100])  # exhaustive and IVF index
def test_entropy_within_2_percent_of_quests(real_environments, exact_max):
    X = _clustered(real_environments.X, 3000, seed=0)
    exact = exact_entropy(X)
    res = environment_entropy(X, exact_max=exact_max, n_check=64)
    assert res["entropy_nats"] == pytest.approx(exact, rel=0.02)
    from quests.entropy import diversity

    assert res["diversity_nats"] == pytest.approx(float(diversity(X.astype(np.float64), H)), rel=0.02)
    assert res["measured_error"]["mean_abs_log_p_error"] < 0.02


def test_differential_entropy_and_overlap_within_2_percent(real_environments):
    X = real_environments.X
    Y = _clustered(X, 1500, seed=3)
    exact = exact_delta_entropy(Y, X)
    dH, info = differential_entropy(Y, X, exact_max=100, n_check=32)
    assert dH.mean() == pytest.approx(exact.mean(), rel=0.02)
    far = np.abs(exact) > 1
    assert np.max(np.abs(dH - exact)[far] / np.abs(exact[far])) < 0.02
    ov = overlap(Y, X, exact_max=100)
    assert abs(ov["overlap"] - float(np.mean(exact < 1e-5))) < 0.02
    assert ov["novelty"] == pytest.approx(1 - ov["overlap"])
    assert "inside B's support" in ov["definition"]


def test_bad_input_is_one_line_error():
    with pytest.raises(ValueError, match="2-D"):
        environment_entropy(np.zeros(5))
    with pytest.raises(ValueError, match="same width"):
        differential_entropy(np.zeros((2, 3)), np.zeros((2, 4)))


@pytest.mark.slow
def test_50000_environments_within_2_percent(tmp_path):
    """50,000 environments of synthetic MPTrj-size frames (real QUESTS descriptors): approximate vs exact."""
    from monoculture.audit.environments.sets import read_environments
    from monoculture.datasets import open_dataset
    from monoculture.datasets.synth import synthesize

    synthesize("mptrj", 1716, tmp_path / "syn.json", seed=0, mean_atoms=31)  # as benchmarks/environments.py
    X = read_environments(open_dataset(tmp_path / "syn.json")).X[:50_000]
    assert X.shape[0] == 50_000
    res = environment_entropy(X, n_check=64)
    assert res["approximation"]["index"]["index"] == "IndexIVFFlat"
    assert res["entropy_nats"] == pytest.approx(exact_entropy(X), rel=0.02)
    Y, R = X[:10_000], X[10_000:]
    dH, _ = differential_entropy(Y, R, n_check=0)
    ex = exact_delta_entropy(Y, R)
    assert dH.mean() == pytest.approx(ex.mean(), rel=0.02)
    assert abs(np.mean(dH < 1e-5) - np.mean(ex < 1e-5)) < 0.02


def test_overlap_beside_radius_novelty_labelled(real_environments):
    from monoculture.audit.environments import overlap_and_radius_novelty

    X = real_environments.X
    far = X[:20] + 1.0  # every column shifted by 1: far from everything (|shift| = 7.9 >> h and the radius)
    both = overlap_and_radius_novelty(np.vstack([X[:50], far]), X)
    q, r = both["quests_overlap"], both["radius_novelty"]
    # the first 50 are rows of B (inside its support, not novel); the 20 shifted ones are outside by both rules
    assert q["overlap"] == pytest.approx(50 / 70)
    assert r["novelty_of_a"] == pytest.approx(20 / 70)
    assert "QUESTS overlap" in q["definition"] and "radius novelty" in r["definition"]


def test_sharded_and_dask_paths_agree(real_environments, tmp_path):
    X = _clustered(real_environments.X, 2000, seed=5)
    exact = exact_entropy(X)
    serial = environment_entropy(X, n_shards=3, n_check=0, workdir=str(tmp_path))
    assert serial["approximation"]["index"]["n_shards"] == 3
    assert serial["entropy_nats"] == pytest.approx(exact, rel=0.02)
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client:
        dask = environment_entropy(X, n_shards=3, client=client, n_check=0, workdir=str(tmp_path))
    assert dask["approximation"]["index"]["backend"] == "dask"
    assert dask["entropy_nats"] == pytest.approx(serial["entropy_nats"], rel=1e-9)
    assert list(tmp_path.iterdir()) == []  # the merged file is removed


def test_query_sample_estimate_within_its_standard_error(real_environments):
    X = _clustered(real_environments.X, 4000, seed=7)
    full = environment_entropy(X, n_check=0)
    est = environment_entropy(X, n_queries=1000, n_check=16)
    assert est["approximation"]["index"]["n_queries"] == 1000
    assert 0 < est["standard_error_nats"] < 0.2
    assert abs(est["entropy_nats"] - full["entropy_nats"]) < 4 * est["standard_error_nats"] + 0.01
    assert est["entropy_nats"] == pytest.approx(exact_entropy(X), rel=0.02)


def test_exact_kernel_sums_match_quests(real_environments):
    from quests.entropy import kernel_sum

    from monoculture.audit.environments import exact_kernel_sums

    X = real_environments.X.astype(np.float64)
    ours = exact_kernel_sums(X[:50], X, H, chunk=100)
    ref = kernel_sum(X[:50], X, h=H, batch_size=1000)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    # weights multiply each reference term: two copies of every row = twice every sum
    np.testing.assert_allclose(exact_kernel_sums(X[:5], X, H, weights=np.full(len(X), 2.0)), 2 * ref[:5], rtol=1e-6)
