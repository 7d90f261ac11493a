"""SVCCA (monoculture.audit.alignment.metric_registry.svcca): the metric added through the registry alone.

Pinned against a re-implementation of the published recipe (platonic-rep's ``AlignmentMetrics.svcca``:
standardised columns, top ``cca_dim`` left singular vectors, scikit-learn's iterative CCA, mean correlation
of the canonical variates), against principal angles (scipy), and on known answers.
"""
import json

import numpy as np
import pytest
from scipy.linalg import subspace_angles

from monoculture.audit.alignment.analysis import align
from monoculture.audit.alignment.metric_registry import get_metric, metric_names
from monoculture.audit.alignment.metric_registry.svcca import svcca


def published_recipe(X, Y, cca_dim=10):
    """The reference's steps with scikit-learn's CCA (exact SVD instead of the randomised one)."""
    from sklearn.cross_decomposition import CCA

    def prep(A):
        A = A - A.mean(axis=0)
        return A / (A.std(axis=0, ddof=1) + 1e-8)

    U1 = np.linalg.svd(prep(X), full_matrices=False)[0][:, :cca_dim]
    U2 = np.linalg.svd(prep(Y), full_matrices=False)[0][:, :cca_dim]
    cca = CCA(n_components=cca_dim, max_iter=20_000, tol=1e-12).fit(U1, U2)
    a, b = cca.transform(U1, U2)
    return float(np.mean([np.corrcoef(a[:, i], b[:, i])[0, 1] for i in range(cca_dim)]))


def related_pair(seed, n=300, d_x=20, d_y=16, noise=0.6):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 12)) * np.linspace(3.0, 0.5, 12)
    X = Z @ rng.standard_normal((12, d_x)) + 0.1 * rng.standard_normal((n, d_x))
    Y = np.tanh(Z @ rng.standard_normal((12, d_y)) / 3) + noise * rng.standard_normal((n, d_y))
    return X, Y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_published_recipe_with_iterative_cca(seed):
    X, Y = related_pair(seed)
    ref = published_recipe(X, Y)
    got = svcca(X, Y)
    assert 0.2 < got < 0.99  # a partial alignment, not a trivial value
    assert got == pytest.approx(ref, abs=1e-8)  # measured: 1e-13


def test_equals_the_mean_cosine_of_the_principal_angles():
    X, Y = related_pair(5)

    def basis(A):
        A = A - A.mean(axis=0)
        return np.linalg.svd(A / (A.std(axis=0, ddof=1) + 1e-8), full_matrices=False)[0][:, :10]

    expected = float(np.mean(np.cos(subspace_angles(basis(X), basis(Y)))))
    assert svcca(X, Y) == pytest.approx(expected, abs=1e-10)


def test_an_orthogonal_transform_gives_one():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((250, 10)) @ rng.standard_normal((10, 30))  # rank 10 = cca_dim in 30 features
    Q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    assert svcca(X, X @ Q) == pytest.approx(1.0, abs=1e-8)
    full = rng.standard_normal((250, 24))
    assert svcca(full, full.copy()) == pytest.approx(1.0, abs=1e-10)
    assert svcca(full, 3.0 * full + 2.0) == pytest.approx(1.0, abs=1e-10)


def test_independent_data_gives_a_low_value():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((800, 20)), rng.standard_normal((800, 20))
    v = svcca(X, Y)
    assert 0.0 <= v < 0.15
    # a planted shared 10-d latent (different random maps, small noise) raises it far above chance
    S = rng.standard_normal((800, 10))
    A = S @ rng.standard_normal((10, 20)) + 0.1 * rng.standard_normal((800, 20))
    B = S @ rng.standard_normal((10, 16)) + 0.1 * rng.standard_normal((800, 16))
    assert svcca(A, B) > 0.9 > 0.15 > v


def test_cca_dim_is_capped_and_checked():
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((40, 4)), rng.standard_normal((40, 6))
    assert 0.0 <= svcca(X, Y, cca_dim=10) <= 1.0
    assert svcca(X, X @ rng.standard_normal((4, 4)), cca_dim=10) == pytest.approx(1.0, abs=1e-8)
    with pytest.raises(ValueError, match="cca_dim"):
        svcca(X, Y, cca_dim=0)


def test_registered_as_an_optional_pair_metric():
    m = get_metric("svcca")
    assert m.kind == "pair" and m.higher_is_more_aligned and not m.default and m.verdict_rank is None
    assert m.default_variant == "platonic-rep" and m.variants["platonic-rep"].kwargs["cca_dim"] == 10
    assert "svcca" in metric_names() and "svcca" not in metric_names(default=True)
    assert m.pair_function()(*related_pair(0), 25, 50) == pytest.approx(svcca(*related_pair(0)))


def test_align_computes_it_when_asked_and_writes_it_to_the_json():
    rng = np.random.default_rng(7)
    n = 120
    ids = [f"s{i:03d}" for i in range(n)]
    Z = rng.standard_normal((n, 6))
    emb = {f"m{j}": (ids, np.tanh(Z @ rng.standard_normal((6, 14))) + 0.05 * rng.standard_normal((n, 14)))
           for j in range(3)}
    fast = dict(n_boot=4, repeats=2, n_perm=2, n_calibration=9, reconstruction=False)
    sec = align(emb, ids[:60], ids[60:], metrics=["svcca"], variants={"svcca": "centred"}, **fast)
    entry = sec["metrics"]["svcca"]
    assert entry["variant"] == "centred" and sec["parameters"]["variants"]["svcca"] == "centred"
    M = np.array(entry["id"], dtype=float)
    assert M.shape == (3, 3) and np.allclose(np.diag(M), 1.0) and np.allclose(M, M.T)
    arrays = [np.asarray(emb[f"m{j}"][1])[:60] for j in range(3)]
    assert M[0, 1] == pytest.approx(svcca(arrays[0], arrays[1], standardise=False), abs=1e-12)
    assert {"intervals", "mean_over_pairs", "calibration", "difference", "comparison"} <= set(entry)
    assert "svcca" not in sec["verdicts"]["global"]["supporting"]
    from monoculture.reports import schema_errors

    doc = {"schema_version": "1", "monoculture_version": "0.1.0", "run": {}, "datasets": [], "alignment": sec}
    assert schema_errors(doc) == []
    json.dumps(sec, allow_nan=False)
    default = align(emb, ids[:60], ids[60:], **fast)
    assert "svcca" not in default["metrics"] and "svcca" not in default["parameters"]["variants"]
    with pytest.raises(ValueError, match="unknown alignment metric"):
        align(emb, metrics=["nope"], **fast)
