import numpy as np
import pytest

from monoculture.audit.alignment import information_imbalance


def test_hand_value_four_points():
    X = np.array([[0.0], [1.0], [3.0], [7.0]])
    Y = np.array([[0.0], [2.0], [3.0], [10.0]])
    # nn_X = (1, 0, 1, 2); their ranks in Y: 1, 2, 1, 1 -> mean 1.25 -> 2/4 * 1.25
    # nn_Y = (1, 2, 1, 2); their ranks in X: 1, 2, 1, 1
    res = information_imbalance(X, Y)
    assert res.x_to_y == pytest.approx(0.625)
    assert res.y_to_x == pytest.approx(0.625)


def test_ties_get_mid_rank():
    X = np.array([[0.0], [1.0], [3.0], [7.0]])
    Y = np.array([[0.0], [1.0], [2.0], [10.0]])
    # i=1: nn_X is 0; in Y points 0 and 2 are both at distance 1 from point 1 -> rank 1.5
    assert information_imbalance(X, Y).x_to_y == pytest.approx(2 / 4 * (1 + 1.5 + 1 + 1) / 4)


@pytest.mark.parametrize("k", [1, 3, 20])
def test_identical_spaces_give_k_plus_one_over_n(k):
    X = np.random.default_rng(0).standard_normal((200, 5))
    res = information_imbalance(X, X.copy(), k=k)
    assert res.x_to_y == pytest.approx((k + 1) / 200)
    assert res.y_to_x == pytest.approx((k + 1) / 200)


def test_independent_spaces_near_one_and_subspace_asymmetry():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((1000, 4))
    res = information_imbalance(X, rng.standard_normal((1000, 4)))
    assert res.x_to_y == pytest.approx(1.0, abs=0.08)
    assert res.y_to_x == pytest.approx(1.0, abs=0.08)
    # the full space predicts a sub-space better than the other way round
    sub = information_imbalance(X, X[:, :2], k=1)
    assert sub.x_to_y < 0.1 < sub.y_to_x


def test_sort_path_agrees_with_compare_path():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 3))
    Y = X + 0.5 * rng.standard_normal((300, 3))
    # k = 1, 8 and 9 through the window counts of the blocked sweep, against ranks from dense distances
    from monoculture.audit.alignment.imbalance import _mean_rank

    r8 = _mean_rank(X, Y, 8, "numpy", 64)
    r9 = _mean_rank(X, Y, 9, "numpy", 64)
    r1 = _mean_rank(X, Y, 1, "numpy", 64)
    assert r8 < r9  # the 9th neighbour ranks worse on average
    from monoculture.audit.alignment import knn

    _, nn = knn(X, 9)
    D = np.sqrt(((Y[:, None] - Y[None]) ** 2).sum(-1))
    np.fill_diagonal(D, np.inf)
    ranks = np.array([[1 + (D[i] < D[i, j]).sum() for j in nn[i]] for i in range(300)])
    assert r9 == pytest.approx(ranks.mean())
    assert r8 == pytest.approx(ranks[:, :8].mean())
    assert r1 == pytest.approx(ranks[:, 0].mean())


def _brute_block_counts(V, row_ids, col_ids, win, tj):
    """Per row: sum over targets of values below the window start; window entries other than the target's own."""
    less, entries = {}, set()
    for r, i in enumerate(row_ids):
        v = V[r]
        less[i] = int((v[None, :] < win[i, :, 0, None]).sum())
        inside = (v[None, :] >= win[i, :, 0, None]) & (v[None, :] <= win[i, :, 1, None])
        for t, c in zip(*np.nonzero(inside)):
            if tj[i, t] != col_ids[c]:
                entries.add((i, int(col_ids[c]), int(t)))
    return less, entries


@pytest.mark.parametrize("cap", [4, 100_000])
def test_rank_kernels_row_and_column_sides_equal_brute_force(cap):
    """count_rows on a block's rows and on its column side (transposed, as the sweep feeds it) against a
    brute-force count, with values tied to window ends, rows listing few values (binary searches) and many
    (vectorised counts), window-entry overflow (small capacity, recorded again with count=False) and
    candidate buffers."""
    from monoculture.audit.alignment._rank_kernels import count_rows

    rng = np.random.default_rng(7)
    n, k, m, b = 90, 6, 9, 23  # block rows [0, b) against columns [0, n): column side of width n - b = 67
    D = rng.integers(0, 40, (b, n)).astype(np.float32)  # small integers: many exact ties
    D[np.arange(b), np.arange(b)] = np.inf
    tj = np.array([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])
    starts = np.sort(rng.integers(0, 35, (n, k)), axis=1).astype(np.float32)
    starts[::3] = np.sort(rng.integers(0, 2, (len(starts[::3]), k)), axis=1)  # rows listing very few values
    win = np.stack([starts, starts + rng.integers(0, 3, (n, k))], axis=2).astype(np.float32)
    win[:, :, 1] = np.maximum.accumulate(win[:, :, 1], axis=1)  # both ends ascending
    himax = np.ascontiguousarray(win[:, -1, 1])

    def run(kernel, D, *where):
        less = np.zeros(n, dtype=np.int64)
        hv = np.full((n, 2 * m), np.inf, dtype=np.float32)
        hid = np.full(hv.shape, -1, dtype=np.int64)
        cnt, top = np.zeros(n, dtype=np.int64), np.full(n, np.inf, dtype=np.float32)
        wi, wj, wt = (np.empty(cap, dtype=np.int64) for _ in range(3))
        nw = kernel(D, *where, win, himax, tj, less, wi, wj, wt, 0, True, hv, hid, cnt, top, m, True)
        if nw > cap:  # overflow: counts done, entries recorded again into larger arrays
            wi, wj, wt = (np.empty(nw, dtype=np.int64) for _ in range(3))
            assert kernel(D, *where, win, himax, tj, np.zeros(n, dtype=np.int64), wi, wj, wt, 0, False,
                          hv, hid, cnt, top, m, True) == nw
        return less, set(zip(wi[:nw].tolist(), wj[:nw].tolist(), wt[:nw].tolist())), hv, cnt

    less, entries, hv, cnt = run(count_rows, D, 0, 0)
    want_less, want_entries = _brute_block_counts(D, range(b), np.arange(n), win, tj)
    assert [less[i] for i in range(b)] == [want_less[i] for i in range(b)]
    assert entries == want_entries
    for r in range(b):  # the buffer holds the m smallest values of the row
        assert np.sort(hv[r, : cnt[r]])[:m].tolist() == np.sort(D[r])[:m].tolist()

    less, entries, hv, cnt = run(count_rows, np.ascontiguousarray(D[:, b:].T), b, 0)
    want_less, want_entries = _brute_block_counts(D[:, b:].T, range(b, n), np.arange(b), win, tj)
    assert [less[i] for i in range(b, n)] == [want_less[i] for i in range(b, n)]
    assert entries == want_entries
    assert len(entries) > (cap if cap < 100 else 0)  # the overflow path ran where the capacity is small
    for i in range(b, n):
        assert np.sort(hv[i, : cnt[i]])[:m].tolist() == np.sort(D[:, i])[:m].tolist()


@pytest.mark.parametrize("guess", ["sampled", "too_low"])
def test_candidate_buffers_with_guessed_thresholds_keep_the_m_smallest(guess):
    """Candidate buffers started from guessed thresholds give the same candidate rows as buffers started
    from +inf; rows whose guess was below their m-th smallest value (all rows, with a zero guess) are
    searched again in full."""
    from monoculture.audit.alignment._pairwise import augmented_rows, sweep
    from monoculture.audit.alignment.imbalance import _sampled_top, _SweepCounter

    rng = np.random.default_rng(5)
    n, m = 4500, 12
    Z = rng.standard_normal((n, 3))
    rows = augmented_rows(np.tanh(Z @ rng.standard_normal((3, 8))) + 0.05 * rng.standard_normal((n, 8)), np.float32)
    top = _sampled_top(rows, m) if guess == "sampled" else np.zeros(n, dtype=np.float32)
    assert top is not None
    (plain,) = sweep(rows, lambda: [_SweepCounter(n, np.float32, None, m)], 256)
    (guessed,) = sweep(rows, lambda: [_SweepCounter(n, np.float32, None, m, top)], 256)
    v0, i0 = plain.candidates(rows)
    v1, i1 = guessed.candidates(rows)
    same = (np.sort(i0, axis=1) == np.sort(i1, axis=1)).all(axis=1)
    assert same.mean() > 0.99  # rows recomputed in full may swap a near-tie at the m-th value (rounding)
    bound = rows.row_bound()[:, None]
    assert np.all(np.abs(v0 - v1) <= 2 * bound)  # the same searched values, up to the float32 rounding bound
    assert np.isfinite(v1).all()


def _store_data(kind, n=4096, d=24):
    """Paired data at the fused path's smallest size: aligned (Y a noisy non-linear map of X's latent),
    random (Y unrelated: most rows' targets lie far beyond the stores) or duplicate-heavy (half of the
    rows exact copies of the other half in both spaces, Y on a coarse lattice: exact ties everywhere)."""
    rng = np.random.default_rng({"aligned": 21, "random": 22, "duplicates": 23}[kind])
    Z = rng.standard_normal((n, 4))
    X = Z @ rng.standard_normal((4, d)) + 0.1 * rng.standard_normal((n, d))
    if kind == "random":
        return X, rng.standard_normal((n, d))
    Y = np.tanh(Z @ rng.standard_normal((4, d))) + 0.1 * rng.standard_normal((n, d))
    if kind == "duplicates":
        Y = np.round(Y * 2.0)
        X[n // 2:], Y[n // 2:] = X[: n // 2], Y[: n // 2]
    return X, Y


def _spy(monkeypatch):
    """Count the sweeps of the fused path and the rows counted from stores and from full rows."""
    from monoculture.audit.alignment import imbalance as im

    seen = {"sweeps": 0, "stored": 0, "full_rows": 0}
    sweep, add_stored, add_rows = im.sweep, im._SweepCounter.add_stored, im._SweepCounter.add_rows

    def spy_sweep(*a, **kw):
        seen["sweeps"] += 1
        return sweep(*a, **kw)

    def spy_stored(self, ids, store):
        seen["stored"] += ids.size
        return add_stored(self, ids, store)

    def spy_rows(self, ids, rows, *a):
        seen["full_rows"] += ids.size
        return add_rows(self, ids, rows, *a)

    monkeypatch.setattr(im, "sweep", spy_sweep)
    monkeypatch.setattr(im._SweepCounter, "add_stored", spy_stored)
    monkeypatch.setattr(im._SweepCounter, "add_rows", spy_rows)
    return seen


@pytest.mark.parametrize("kind", ["aligned", "random", "duplicates"])
def test_stored_counts_equal_three_sweeps_bit_for_bit(kind, monkeypatch):
    """The X -> Y counts from the first sweep's stores (third sweep skipped) give the same floats as the
    three-sweep path and as the separate path (neighbour search, then one count sweep per direction)."""
    from monoculture.audit.alignment import imbalance as im

    X, Y = _store_data(kind)
    k = 7 if kind == "duplicates" else 20
    seen = _spy(monkeypatch)
    stored = information_imbalance(X, Y, k)
    used = dict(seen)
    monkeypatch.setattr(im, "_STORE", False)
    seen.update(sweeps=0, stored=0, full_rows=0)
    three = information_imbalance(X, Y, k)
    assert seen == {"sweeps": 3, "stored": 0, "full_rows": 0}
    assert stored == three  # equal floats, both directions
    assert stored == information_imbalance(X, Y, k, backend="faiss")
    if kind == "random":  # targets far beyond the stores: a third sweep, masked for the few stored rows
        assert used["sweeps"] == 3 and used["full_rows"] == 0
    else:  # most rows from their stores, the others from their full rows: two sweeps only
        assert used["sweeps"] == 2
        assert used["stored"] > 0.5 * len(X)
        assert used["stored"] + used["full_rows"] == len(X)


@pytest.mark.parametrize("setting", ["overflow_rows", "overflow_sweep", "zero_guess"])
def test_store_fallbacks_equal_three_sweeps(setting, monkeypatch):
    """Stores too small to hold their rows (every row overflows; counted from full rows, or by a masked
    third sweep) and thresholds from a zero guess (no row stored: candidates searched again in full)."""
    from monoculture.audit.alignment import imbalance as im

    X, Y = _store_data("duplicates")
    monkeypatch.setattr(im, "_STORE", False)
    want = information_imbalance(X, Y, 12)
    monkeypatch.setattr(im, "_STORE", True)
    if setting == "zero_guess":
        monkeypatch.setattr(im, "_STORE_TAU_SCALE", 0.0)
    else:
        monkeypatch.setattr(im, "_STORE_SLACK", 1e-3)  # 16 values a row and worker
        monkeypatch.setattr(im, "_STORE_MAX_FAIL", 1.0 if setting == "overflow_rows" else 0.0)
    seen = _spy(monkeypatch)
    assert information_imbalance(X, Y, 12) == want
    if setting == "overflow_rows":
        assert seen == {"sweeps": 2, "stored": 0, "full_rows": len(X)}
    else:
        assert seen["sweeps"] == 3 and seen["full_rows"] == 0


def test_row_store_is_off_above_its_memory_bound(monkeypatch):
    """The stores are only built while they fit in _STORE_MAX_BYTES (else the three sweeps run)."""
    from monoculture.audit.alignment import imbalance as im
    from monoculture.audit.alignment._pairwise import augmented_rows

    rows = augmented_rows(_store_data("aligned")[1], np.float32)
    store = im._row_store(rows, 512)
    assert store is not None and store.sv.nbytes + store.sid.nbytes <= im._STORE_MAX_BYTES
    assert np.all(store.scap >= 16)
    monkeypatch.setattr(im, "_STORE_MAX_BYTES", store.sv.nbytes)
    assert im._row_store(rows, 512) is None
