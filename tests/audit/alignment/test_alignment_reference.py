"""The default variants against re-implementations of the reference code the study used.

The references are transcribed here from the published code, formula by formula, in plain dense numpy:
platonic-rep's ``AlignmentMetrics.cknna`` / ``mutual_knn`` / ``hsic_biased`` / ``hsic_unbiased`` (applied,
as its ``measure_alignment.compute_score`` does, to L2-normalised rows), and scikit-matter's default
``global_reconstruction_error`` / ``local_reconstruction_error`` procedure (split, flexible scaler,
2-fold-CV cutoff ridge). Nothing is compared with hard-coded numbers.
"""
import numpy as np
import pytest
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import KFold, train_test_split

from monoculture.audit.alignment import cknna, mutual_knn
from monoculture.audit.alignment.analysis import align
from monoculture.audit.alignment.reconstruction import global_reconstruction_error, local_reconstruction_error

# -- platonic-rep, transcribed ------------------------------------------------------------------------------


def _normalize(F):  # torch.nn.functional.normalize(p=2, dim=-1)
    return F / np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-12)


def _topk_indices(S, k):  # torch.topk(S, k, dim=1) / argsort(descending); ties: lower index first here
    n = S.shape[0]
    return np.stack([np.lexsort((np.arange(n), -S[i]))[:k] for i in range(n)])


def ref_hsic_unbiased(K, L):
    m = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    v = np.sum(Kt * Lt.T) + np.sum(Kt) * np.sum(Lt) / ((m - 1) * (m - 2)) - 2 * np.sum(Kt @ Lt) / (m - 2)
    return v / (m * (m - 3))


def ref_hsic_biased(K, L):
    H = np.eye(K.shape[0]) - 1 / K.shape[0]
    return np.trace(K @ H @ L @ H)


def ref_cknna(feats_A, feats_B, topk, unbiased=True):
    A, B = _normalize(feats_A), _normalize(feats_B)
    n = A.shape[0]
    K, L = A @ A.T, B @ B.T

    def similarity(K, L):
        K_hat, L_hat = K.copy(), L.copy()
        if unbiased:
            np.fill_diagonal(K_hat, -np.inf)
            np.fill_diagonal(L_hat, -np.inf)
        mask_K, mask_L = np.zeros((n, n)), np.zeros((n, n))
        np.put_along_axis(mask_K, _topk_indices(K_hat, topk), 1.0, axis=1)
        np.put_along_axis(mask_L, _topk_indices(L_hat, topk), 1.0, axis=1)
        mask = mask_K * mask_L
        return (ref_hsic_unbiased if unbiased else ref_hsic_biased)(mask * K, mask * L)

    return similarity(K, L) / (np.sqrt(similarity(K, K) * similarity(L, L)) + 1e-6)


def ref_mutual_knn(feats_A, feats_B, topk):
    A, B = _normalize(feats_A), _normalize(feats_B)
    n = A.shape[0]

    def nn(F):
        S = F @ F.T
        np.fill_diagonal(S, -1e8)
        return _topk_indices(S, topk)

    mA, mB = np.zeros((n, n)), np.zeros((n, n))
    np.put_along_axis(mA, nn(A), 1.0, axis=1)
    np.put_along_axis(mB, nn(B), 1.0, axis=1)
    return float(((mA * mB).sum(axis=1) / topk).mean())


def _pair(n, seed, d=(16, 24)):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 6))
    X = Z @ rng.standard_normal((6, d[0])) + 0.3 * rng.standard_normal((n, d[0])) + 2.0
    Y = np.tanh(Z @ rng.standard_normal((6, d[1]))) + 0.3 * rng.standard_normal((n, d[1]))
    return X, Y


@pytest.mark.parametrize("n", [300, 1600])  # 1600: the float32 search path
def test_default_cknna_equals_platonic_rep_unbiased(n):
    X, Y = _pair(n, 1)
    assert cknna(X, Y) == pytest.approx(ref_cknna(X, Y, 25, unbiased=True), abs=1e-6)
    assert cknna(X, Y, k=10) == pytest.approx(ref_cknna(X, Y, 10, unbiased=True), abs=1e-6)


@pytest.mark.parametrize("n", [300, 1600])
def test_biased_cknna_equals_platonic_rep_biased_with_self_pairs(n):
    X, Y = _pair(n, 2)
    got = cknna(X, Y, k=25, unbiased=False)
    assert got == pytest.approx(ref_cknna(X, Y, 25, unbiased=False), abs=1e-6)
    # and it is not the self-excluded biased form
    assert abs(got - cknna(X, Y, k=25, unbiased=False, self_pairs=False)) > 1e-3


@pytest.mark.parametrize("n,k", [(300, 25), (1600, 25), (300, 10)])
def test_default_mutual_knn_equals_platonic_rep(n, k):
    X, Y = _pair(n, 3)
    assert mutual_knn(X, Y, k=k) == pytest.approx(ref_mutual_knn(X, Y, k), abs=1e-12)


def test_align_defaults_equal_the_reference_on_the_same_embeddings():
    X, Y = _pair(240, 4)
    W = np.abs(_pair(240, 5)[0]) + 0.1  # rows of very different maxima: max-row scaling would matter
    ids = [f"s{i}" for i in range(240)]
    sec = align({"a": (ids, X), "b": (ids, Y), "c": (ids, W)}, n_boot=2, repeats=2, n_perm=2,
                drop_near_duplicates=False, reconstruction=False)
    assert sec["parameters"]["normalisation"] == "none"
    arrays = [X, Y, W]
    for i, j in ((0, 1), (0, 2), (1, 2)):
        A, B = arrays[i], arrays[j]
        assert sec["metrics"]["cknna"]["all"][i][j] == pytest.approx(ref_cknna(A, B, 25), abs=1e-6)
        assert sec["metrics"]["mutual_knn"]["all"][i][j] == pytest.approx(ref_mutual_knn(A, B, 25), abs=1e-12)
    assert sec["metrics"]["cknna"]["variant"] == "unbiased" and sec["metrics"]["mutual_knn"]["variant"] == "cosine"
    # the former default is still there by name, and differs
    old = align({"a": (ids, X), "b": (ids, Y)}, n_boot=2, repeats=2, n_perm=2, drop_near_duplicates=False,
                reconstruction=False, normalisation="max",
                variants={"cknna": "biased-no-self", "mutual_knn": "euclidean"})
    assert old["metrics"]["cknna"]["variant"] == "biased-no-self"
    assert old["metrics"]["cknna"]["all"][0][1] != sec["metrics"]["cknna"]["all"][0][1]
    assert old["metrics"]["mutual_knn"]["all"][0][1] != pytest.approx(sec["metrics"]["mutual_knn"]["all"][0][1],
                                                                      abs=1e-2)


def test_unknown_variant_is_a_clear_error():
    X, Y = _pair(60, 0)
    ids = [f"s{i}" for i in range(60)]
    with pytest.raises(ValueError, match="unknown variant 'exact' of cknna"):
        align({"a": (ids, X), "b": (ids, Y)}, variants={"cknna": "exact"})


# -- scikit-matter GFRE / LFRE, transcribed -----------------------------------------------------------------
SEED = 0x5F3759DF
ALPHAS = np.geomspace(1e-9, 0.9, 20)


def _flexible_scale(train, test):  # StandardFlexibleScaler(column_wise=False)
    mean = train.mean(axis=0)
    scale = np.sqrt(((train - mean) ** 2).mean(axis=0).sum())
    return (train - mean) / scale, (test - mean) / scale


def _ridge_2fold_cutoff(X, y):  # Ridge2FoldCV(alpha_type="relative", regularization_method="cutoff")
    f1, f2 = next(KFold(n_splits=2, shuffle=True, random_state=SEED).split(X))
    X1, X2, y1, y2 = X[f1], X[f2], y[f1], y[f2]
    U1, s1, V1t = np.linalg.svd(X1, full_matrices=False)
    U2, s2, V2t = np.linalg.svd(X2, full_matrices=False)
    rcond = max(X.shape) * np.spacing(1.0)
    n1, n2 = int(np.sum(s1 > rcond)), int(np.sum(s2 > rcond))
    scaled = ALPHAS * max(s1.max(), s2.max())
    scores = []
    for a in scaled:
        a1, a2 = min(n1, int(np.sum(s1 > a))), min(n2, int(np.sum(s2 > a)))
        p2 = (X2 @ V1t.T[:, :a1] / s1[:a1]) @ (U1.T[:a1] @ y1)
        p1 = (X1 @ V2t.T[:, :a2] / s2[:a2]) @ (U2.T[:a2] @ y2)
        scores.append((-root_mean_squared_error(y2, p2) - root_mean_squared_error(y1, p1)) / 2)
    best = scaled[int(np.argmax(scores))]
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    na = min(len(s), int(np.sum(s > best)))
    return (Vt.T[:, :na] / s[:na]) @ (U.T[:na] @ y)


def ref_gfre(X, Y):
    tr, te = train_test_split(np.arange(len(X)), test_size=0.5, train_size=0.5, random_state=SEED, shuffle=True)
    Xtr, Xte = _flexible_scale(X[tr], X[te])
    Ytr, Yte = _flexible_scale(Y[tr], Y[te])
    pointwise = np.linalg.norm(Yte - Xte @ _ridge_2fold_cutoff(Xtr, Ytr), axis=1)
    return np.linalg.norm(pointwise) / np.sqrt(len(pointwise))


def ref_lfre(X, Y, k):
    tr, te = train_test_split(np.arange(len(X)), test_size=0.5, train_size=0.5, random_state=SEED, shuffle=True)
    Xtr, Xte = _flexible_scale(X[tr], X[te])
    Ytr, Yte = _flexible_scale(Y[tr], Y[te])
    d2 = np.sum(Xtr**2, axis=1) + np.sum(Xte**2, axis=1)[:, None] - 2 * Xte @ Xtr.T
    pointwise = []
    for i in range(len(te)):
        idx = np.argsort(d2[i], kind="stable")[:k]
        mx, my = Xtr[idx].mean(axis=0), Ytr[idx].mean(axis=0)
        W = _ridge_2fold_cutoff(Xtr[idx] - mx, Ytr[idx] - my)
        pointwise.append(np.linalg.norm(Yte[i] - (my + (Xte[i] - mx) @ W)))
    return np.linalg.norm(pointwise) / np.sqrt(len(pointwise))


def test_gfre_lfre_equal_the_skmatter_procedure():
    X, Y = _pair(260, 6, d=(10, 14))
    for A, B in ((X, Y), (Y, X)):
        assert global_reconstruction_error(A, B) == pytest.approx(ref_gfre(A, B), rel=1e-9)
        assert local_reconstruction_error(A, B, 15) == pytest.approx(ref_lfre(A, B, 15), rel=1e-9)


def test_linear_transform_is_reconstructed_and_random_is_not():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((400, 8))
    T = X @ rng.standard_normal((8, 20)) + 3.0  # a linear (affine) transform of X, wider
    R = rng.standard_normal((400, 20))
    assert global_reconstruction_error(X, T) < 1e-8
    assert local_reconstruction_error(X, T, 15) < 1e-8
    assert global_reconstruction_error(X, R) > 0.95
    assert local_reconstruction_error(X, R, 15) > 0.95
    # not symmetric: 20 random columns cannot give back 8 ... but T (rank 8) gives back X exactly
    assert global_reconstruction_error(T, X) < 1e-8


def test_align_writes_gfre_lfre_matrices_in_both_directions():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((200, 6))
    ids = [f"s{i}" for i in range(200)]
    emb = {"a": (ids, X), "b": (ids, X @ rng.standard_normal((6, 12))), "c": (ids, rng.standard_normal((200, 12)))}
    sec = align(emb, ids[:100], ids[100:], n_boot=2, repeats=2, n_perm=2, drop_near_duplicates=False)
    for mt in ("gfre", "lfre"):
        for key in ("id", "ood"):
            M = np.array(sec["metrics"][mt][key], dtype=float)
            assert M.shape == (3, 3) and np.all(np.isnan(np.diag(M)))
            assert M[0, 1] < 1e-6 and M[1, 0] < 1e-6  # a and b are linear images of each other
            assert M[0, 2] > 0.9 and M[2, 0] > 0.9  # c is unrelated
        assert sec["metrics"][mt]["variant"] == "skmatter" and sec["metrics"][mt]["higher_is_more_aligned"] is False


def test_an_extreme_embedding_is_reported_as_an_outlier():
    X, Y = _pair(200, 9)
    Y = Y.copy()
    Y[17] *= 1000.0  # one structure whose embedding is 1000 times larger than the others
    ids = [f"s{i}" for i in range(200)]
    sec = align({"a": (ids, X), "b": (ids, Y)}, ids[:100], ids[100:], n_boot=2, repeats=2, n_perm=2,
                reconstruction=False)
    out = sec["embedding_outliers"]
    assert [o["id"] for o in out["models"]["b"]["id"]] == ["s17"] and "a" not in out["models"]
    assert any("s17" in w for w in sec["verdicts"]["global"]["warnings"])
