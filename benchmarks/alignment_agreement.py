"""Agreement of every default alignment metric with its reference implementation, measured.

Usage: ``python benchmarks/alignment_agreement.py [--embeddings DIR --pair A B] [--n 1600]``.
Prints a Markdown table: metric, default variant, reference, |ours - reference| on built data (a 6-d latent
mapped linearly / through tanh, n rows) and, with ``--embeddings``, on two real embedding files (their common
ids, as given). References: transcriptions of platonic-rep's formulas (CKNNA, mutual k-NN, CKA) in dense
numpy, the ``dcor`` package, ``skdim`` (TwoNN, MLE), a dense rank computation (information imbalance) and a
loop transcription of scikit-matter's default GFRE / LFRE procedure. ``docs/alignment_metrics.md`` quotes it.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from scipy.spatial.distance import cdist

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]  # benchmarks/coverage.py shadows coverage


def _normalize(F):
    return F / np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-12)


def _topk(S, k):
    order = np.lexsort((np.broadcast_to(np.arange(S.shape[0]), S.shape), -S), axis=1)
    return order[:, :k]


def _hsic_u(K, L):
    m = K.shape[0]
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    return (np.sum(K * L.T) + K.sum() * L.sum() / ((m - 1) * (m - 2)) - 2 * np.sum(K @ L) / (m - 2)) / (m * (m - 3))


def _hsic_b(K, L):
    K = K - K.mean(axis=0)
    K -= K.mean(axis=1, keepdims=True)
    return float(np.einsum("ij,ji->", K, L))  # tr(H K H L) = tr(K H L H)


def platonic_cknna(A, B, k, unbiased):
    A, B = _normalize(A), _normalize(B)
    n = len(A)
    K, L = A @ A.T, B @ B.T

    def sim(K, L):
        Kh, Lh = K.copy(), L.copy()
        if unbiased:
            np.fill_diagonal(Kh, -np.inf)
            np.fill_diagonal(Lh, -np.inf)
        mK, mL = np.zeros((n, n)), np.zeros((n, n))
        np.put_along_axis(mK, _topk(Kh, k), 1.0, axis=1)
        np.put_along_axis(mL, _topk(Lh, k), 1.0, axis=1)
        M = mK * mL
        return (_hsic_u if unbiased else _hsic_b)(M * K, M * L)

    return sim(K, L) / (np.sqrt(sim(K, K) * sim(L, L)) + 1e-6)


def platonic_mutual_knn(A, B, k):
    def nn(F):
        S = _normalize(F) @ _normalize(F).T
        np.fill_diagonal(S, -1e8)
        return _topk(S, k)

    ia, ib = nn(A), nn(B)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ia, ib)]))


def platonic_cka(A, B):  # kernel_metric="ip", unbiased=False: biased HSIC, denominator + 1e-6
    K, L = A @ A.T, B @ B.T
    return _hsic_b(K, L) / (np.sqrt(_hsic_b(K, K) * _hsic_b(L, L)) + 1e-6)


def dense_imbalance(A, B, k):
    DA, DB = cdist(A, A), cdist(B, B)
    n = len(A)
    np.fill_diagonal(DA, np.inf)
    np.fill_diagonal(DB, np.inf)
    nn = _topk(-DA, k)
    # rank of j in B's order of i (1 = nearest); mid-rank for ties
    t = np.take_along_axis(DB, nn, axis=1)
    below = (DB[:, None, :] < t[:, :, None]).sum(axis=2)
    equal = (DB[:, None, :] == t[:, :, None]).sum(axis=2)
    return 2.0 / n * float((1 + below + (equal - 1) / 2).mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1600)
    ap.add_argument("--embeddings", help="folder of embedding files (model zoo)")
    ap.add_argument("--pair", nargs=2, metavar="MODEL", help="two models of the zoo")
    args = ap.parse_args(argv)

    import skdim

    from monoculture.audit.alignment import (cka, cknna, distance_correlation, information_imbalance, mle_id, mutual_knn,
                                             twonn)
    from monoculture.audit.alignment.reconstruction import global_reconstruction_error, local_reconstruction_error
    from monoculture.audit.alignment.variants import DEFAULT_VARIANTS

    sys.path.insert(0, os.path.join(_HERE, "..", "tests", "audit", "alignment"))
    from test_alignment_reference import ref_gfre, ref_lfre  # the tests' loop transcription of skmatter

    import dcor

    rng = np.random.default_rng(0)
    Z = rng.standard_normal((args.n, 6))
    built = (Z @ rng.standard_normal((6, 64)) + 0.3 * rng.standard_normal((args.n, 64)) + 1.0,
             np.tanh(Z @ rng.standard_normal((6, 48))) + 0.3 * rng.standard_normal((args.n, 48)))
    data = {f"built n={args.n}": built}
    if args.embeddings:
        from monoculture.audit.alignment.embeddings_io import join_embeddings, read_model_zoo

        zoo = read_model_zoo(args.embeddings)
        j = join_embeddings({m: zoo[m] for m in args.pair})
        A, B = (j.arrays[m] for m in args.pair)
        # exact duplicate rows (the same structure twice) make TwoNN / MLE undefined: keep first occurrences
        keep = np.intersect1d(np.unique(A, axis=0, return_index=True)[1], np.unique(B, axis=0, return_index=True)[1])
        data[f"{args.pair[0]} vs {args.pair[1]} (n={keep.size}, distinct rows)"] = (A[keep], B[keep])

    rows = [
        ("cknna", "platonic-rep cknna(topk=25, unbiased=True)",
         lambda X, Y: cknna(X, Y, 25), lambda X, Y: platonic_cknna(X, Y, 25, True)),
        ("cknna (biased)", "platonic-rep cknna(topk=25, unbiased=False)",
         lambda X, Y: cknna(X, Y, 25, unbiased=False), lambda X, Y: platonic_cknna(X, Y, 25, False)),
        ("mutual_knn", "platonic-rep mutual_knn(topk=25)",
         lambda X, Y: mutual_knn(X, Y, 25), lambda X, Y: platonic_mutual_knn(X, Y, 25)),
        ("cka", "platonic-rep cka(kernel_metric='ip') (biased HSIC, + 1e-6)",
         lambda X, Y: cka(X, Y), platonic_cka),
        ("dcor", f"dcor {dcor.__version__} distance_correlation",
         lambda X, Y: distance_correlation(X, Y), lambda X, Y: float(dcor.distance_correlation(X, Y))),
        ("information_imbalance", "dense ranks, k = 50 (Glielmo et al. 2022)",
         lambda X, Y: information_imbalance(X, Y, 50).x_to_y, lambda X, Y: dense_imbalance(X, Y, 50)),
        ("twonn", f"skdim {skdim.__version__} TwoNN()", lambda X, Y: twonn(X).dimension,
         lambda X, Y: float(skdim.id.TwoNN().fit(X).dimension_)),
        ("mle_id", f"skdim {skdim.__version__} MLE(comb='mle'), k = 50", lambda X, Y: mle_id(X, 50).dimension,
         lambda X, Y: float(skdim.id.MLE().fit(X, n_neighbors=50, comb="mle").dimension_)),
        ("gfre", "scikit-matter global_reconstruction_error (loop transcription)",
         global_reconstruction_error, ref_gfre),
        ("lfre", "scikit-matter local_reconstruction_error, 15 points (loop transcription)",
         lambda X, Y: local_reconstruction_error(X, Y, 15), lambda X, Y: ref_lfre(X, Y, 15)),
    ]
    print("| metric | default variant | reference | " + " | ".join(f"{k}: ours / reference / abs. diff" for k in data)
          + " |")
    print("|---|---|---|" + "---|" * len(data))
    for name, ref, ours, theirs in rows:
        cells = []
        for X, Y in data.values():
            a, b = float(ours(X, Y)), float(theirs(X, Y))
            cells.append(f"{a:.6g} / {b:.6g} / {abs(a - b):.1e}")
        variant = "biased" if "biased" in name else DEFAULT_VARIANTS.get(name, "only")
        print(f"| {name} | {variant} | {ref} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
