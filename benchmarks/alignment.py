"""Benchmark of monoculture.audit.alignment against naive baselines measured in the same run.

Usage: ``python benchmarks/alignment.py [--n 10000] [--d 256] [--repeat 3] [--budget 1.0]
[--no-baselines] [--baseline-max-n 10000] [--boot-n 5000] [--boot-r 200] [--before COMMIT]``.
Prints one row per metric: seconds for monoculture (the fastest of ``--repeat`` runs, since other work on
shared cores only ever adds time), seconds for the baseline (one run), and their ratio (baseline / ours:
> 1 means faster). Rows marked "(default)" are the variants ``monoculture align`` uses. Baselines are the
naive computations (dense n x n matrices, the reference code's formulas, sklearn's brute-force search, loop
transcriptions); above ``--baseline-max-n`` rows (dense n x n float64 matrices of 50,000 rows need 20 GB
each) a baseline is timed on the first ``--baseline-max-n`` rows and scaled by its cost exponent
(``(n / n_b)^2`` for the O(n^2) ones, ``n / n_b`` for the O(n) ones); such rows say "extrapolated". With
``--budget S`` the metrics slower than S seconds are listed at the end and the exit status is 1. Data: a
10-d latent Gaussian mapped linearly into d dimensions for X and, through another map plus noise, for Y.
With ``--before COMMIT`` the information imbalance and LFRE modules of that commit (read with ``git show``,
nothing checked out; the imbalance module with that commit's numba kernels, ``_rank_kernels.py``) are timed
too, on the same data in the same run, as rows marked "(before COMMIT)". Each "done" line also gives the
least process CPU time of the repeats (all threads; steadier than wall time on shared cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial

import numpy as np
from scipy.spatial.distance import cdist

# Running this file puts benchmarks/ first on sys.path, where benchmarks/coverage.py would shadow the
# `coverage` package that numba (imported by skdim) looks for.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


CPU_SECONDS: dict = {}  # name -> least process CPU time (all threads) over the repeats, printed on "done" lines


def best_of(repeat, fn, name=None):
    """(fastest wall time of ``repeat`` calls, value of the last call); the least CPU time goes to CPU_SECONDS."""
    best, out, cpu = float("inf"), None, float("inf")
    for _ in range(max(1, repeat)):
        c = time.process_time()
        t, out = timed(fn)
        cpu = min(cpu, time.process_time() - c)
        best = min(best, t)
    if name is not None:
        CPU_SECONDS[name] = cpu
    return best, out


def dense_hsic(K, L):
    K = K - K.mean(axis=0)
    K -= K.mean(axis=1, keepdims=True)
    return float(np.einsum("ij,ji->", K, L))  # tr(HKH L) = tr(K H L H)


def dense_cka_linear(X, Y):
    K, L = X @ X.T, Y @ Y.T
    return dense_hsic(K, L) / np.sqrt(dense_hsic(K, K) * dense_hsic(L, L))


def dense_cka_rbf(X, Y, sx, sy):
    K = np.exp(-cdist(X, X, "sqeuclidean") / (2 * sx**2))
    L = np.exp(-cdist(Y, Y, "sqeuclidean") / (2 * sy**2))
    return dense_hsic(K, L) / np.sqrt(dense_hsic(K, K) * dense_hsic(L, L))


def dense_hsic_unbiased(K, L):
    """platonic-rep's hsic_unbiased on dense matrices (sum(K~ L~) from row/column sums, not a GEMM)."""
    m = K.shape[0]
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0.0)
    np.fill_diagonal(L, 0.0)
    v = np.sum(K * L.T) + K.sum() * L.sum() / ((m - 1) * (m - 2)) - 2 * float(K.sum(axis=0) @ L.sum(axis=1)) / (m - 2)
    return v / (m * (m - 3))


def dense_cknna(X, Y, k, unbiased=True):
    """platonic-rep's cknna with dense n x n masks (unbiased: self excluded; biased: top-k with the diagonal)."""
    n = X.shape[0]
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Yn = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    K, L = Xn @ Xn.T, Yn @ Yn.T

    def mask(S):
        S = S.copy()
        if unbiased:
            np.fill_diagonal(S, -np.inf)
        M = np.zeros((n, n))
        np.put_along_axis(M, np.argpartition(-S, k, axis=1)[:, :k], 1.0, axis=1)
        return M

    hsic = dense_hsic_unbiased if unbiased else dense_hsic
    Mk, Ml = mask(K), mask(L)
    A, B = Mk * K, Ml * L
    return hsic(Mk * Ml * K, Mk * Ml * L) / (np.sqrt(hsic(A, A) * hsic(B, B)) + 1e-6)


def dense_dcor(X, Y):
    def centred(Z):
        D = cdist(Z, Z)
        D -= D.mean(axis=0)
        D -= D.mean(axis=1, keepdims=True)
        return D

    A, B = centred(X), centred(Y)
    return np.sqrt((A * B).sum() / np.sqrt((A * A).sum() * (B * B).sum()))


def dense_imbalance(X, Y):
    DA, DB = cdist(X, X), cdist(Y, Y)
    np.fill_diagonal(DA, np.inf)
    np.fill_diagonal(DB, np.inf)
    nn = DA.argmin(axis=1)
    t = DB[np.arange(len(X)), nn]
    return 2.0 / len(X) * float((1 + (DB < t[:, None]).sum(axis=1)).mean())


def dense_imbalance_k(X, Y, k):
    """Delta(X -> Y) for k neighbours from dense n x n distances: each Y row sorted once, mid-ranks by bisection."""
    DA, DB = cdist(X, X, "sqeuclidean"), cdist(Y, Y, "sqeuclidean")
    np.fill_diagonal(DA, np.inf)
    np.fill_diagonal(DB, np.inf)
    nn = np.argsort(DA, axis=1, kind="stable")[:, :k]
    del DA
    T = np.take_along_axis(DB, nn, axis=1)
    DB.sort(axis=1)
    total = 0.0
    for r in range(len(X)):
        lo = np.searchsorted(DB[r], T[r], side="left")
        total += float((1 + lo + 0.5 * (np.searchsorted(DB[r], T[r], side="right") - lo - 1)).sum())
    return 2.0 / len(X) * total / (len(X) * k)


def load_before(commit):
    """The imbalance and reconstruction modules of ``commit`` (``git show``), imported beside the current package.

    The numba kernels of the imbalance module (``_rank_kernels.py``, where the commit has it) are loaded from
    the same commit, compiled without numba's cache, so that the "before" rows time that commit's code."""
    import importlib
    import subprocess
    import tempfile

    root = os.path.join(_HERE, "..")

    def show(name):
        res = subprocess.run(["git", "-C", root, "show", f"{commit}:audit/alignment/{name}.py"],
                             capture_output=True, text=True)
        return res.stdout if res.returncode == 0 else None

    tmp = tempfile.mkdtemp(prefix="alignment_before_")
    sys.path.insert(0, tmp)
    tag = f"before_{commit}".replace("-", "_").replace("~", "_").replace("^", "_")
    out = {}
    for name in ("_rank_kernels", "imbalance", "reconstruction"):
        src = show(name)
        if src is None:
            continue
        src = src.replace("from ._rank_kernels import", f"from {tag}__rank_kernels import")
        src = src.replace("from .", "from monoculture.audit.alignment.").replace("cache=True", "cache=False")
        with open(os.path.join(tmp, f"{tag}_{name}.py"), "w") as fh:
            fh.write(src)
        out[name] = importlib.import_module(f"{tag}_{name}")
    return out


def sklearn_mutual_knn(X, Y, k, metric="euclidean"):
    from sklearn.neighbors import NearestNeighbors

    ix = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric=metric).fit(X).kneighbors(X)[1][:, 1:]
    iy = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric=metric).fit(Y).kneighbors(Y)[1][:, 1:]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ix, iy)]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--boot-n", type=int, default=5_000)
    ap.add_argument("--boot-r", type=int, default=200)
    ap.add_argument("--skip-slow-baselines", action="store_true", help="skip skdim TwoNN baseline")
    ap.add_argument("--no-baselines", action="store_true", help="time monoculture only (no baselines, no bootstrap row)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each monoculture metric; the fastest is reported")
    ap.add_argument("--budget", type=float, default=None, help="seconds; list metrics over it and exit 1")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only metrics whose name starts with one of these")
    ap.add_argument("--before", metavar="COMMIT", help="also time information imbalance k=50 and LFRE as of COMMIT")
    ap.add_argument("--baseline-max-n", type=int, default=10_000,
                    help="time baselines on at most this many rows and extrapolate (default 10,000)")
    args = ap.parse_args(argv)

    import skdim
    from sklearn.neighbors import NearestNeighbors

    from monoculture.audit import alignment as al

    rng = np.random.default_rng(0)
    n, d = args.n, args.d
    Z = rng.standard_normal((n, 10))
    X = Z @ rng.standard_normal((10, d)) + 0.1 * rng.standard_normal((n, d))
    Y = np.tanh(Z @ rng.standard_normal((10, d))) + 0.1 * rng.standard_normal((n, d))
    sx, sy = al.median_heuristic_sigma(X), al.median_heuristic_sigma(Y)

    rows = []

    nb_rows = min(n, args.baseline_max_n)
    Xs, Ys = X[:nb_rows], Y[:nb_rows]

    def bench(name, ours, base, base_label, n_=n, value=True, power=2):
        """``base(X, Y)`` is called on the first ``--baseline-max-n`` rows; ``power`` is its cost exponent in n."""
        if args.only and not any(name.startswith(o) for o in args.only):
            return
        t_ours, v_ours = best_of(args.repeat, ours, name)
        if base is None or args.no_baselines:
            t_base, v_base = float("nan"), None
        else:
            t_base, v_base = timed(base, Xs, Ys)
            if nb_rows < n:
                t_base *= (n / nb_rows) ** power
                base_label += f" (extrapolated x{(n / nb_rows) ** power:.0f} from n = {nb_rows})"
                v_base = None  # a value on other rows is not comparable
        rows.append((name, n_, d, t_ours, t_base, base_label, v_ours if value else None, v_base))
        print(f"  done {name}: {t_ours:.2f} s, CPU {CPU_SECONDS[name]:.2f} s (baseline {t_base:.2f} s)", flush=True)

    from monoculture.audit.alignment.reconstruction import global_reconstruction_error, local_reconstruction_error

    sys.path.insert(0, os.path.join(_HERE, "..", "tests", "audit", "alignment"))
    from test_alignment_reference import ref_gfre, ref_lfre  # loop transcriptions of scikit-matter's procedure

    def nn_brute(A, _B):
        return NearestNeighbors(n_neighbors=26, algorithm="brute").fit(A).kneighbors(A)[0][:, -1].mean()

    bench("knn k=25", lambda: al.knn(X, 25)[0][:, -1].mean(), nn_brute, "sklearn NearestNeighbors brute")
    bench("mutual_knn k=25 cosine (default)", lambda: al.mutual_knn(X, Y, 25),
          lambda A, B: sklearn_mutual_knn(A, B, 25, "cosine"), "sklearn NN cosine + python sets")
    bench("mutual_knn k=10 euclidean", lambda: al.mutual_knn(X, Y, 10, metric="euclidean"),
          lambda A, B: sklearn_mutual_knn(A, B, 10), "sklearn NN + python sets")
    bench("cka linear (default)", lambda: al.cka(X, Y), dense_cka_linear, "n x n Gram numpy")
    bench("cka rbf", lambda: al.cka(X, Y, "rbf"), lambda A, B: dense_cka_rbf(A, B, sx, sy), "n x n cdist numpy")
    bench("cknna k=25 unbiased (default)", lambda: al.cknna(X, Y, 25),
          lambda A, B: dense_cknna(A, B, 25, True), "dense n x n masks, platonic-rep formulas")
    bench("cknna k=25 biased", lambda: al.cknna(X, Y, 25, unbiased=False),
          lambda A, B: dense_cknna(A, B, 25, False), "dense n x n masks, platonic-rep formulas")
    bench("distance_correlation (default)", lambda: al.distance_correlation(X, Y), dense_dcor, "n x n cdist numpy")
    bench("information_imbalance k=1", lambda: al.information_imbalance(X, Y, 1).x_to_y, dense_imbalance,
          "n x n cdist numpy")
    bench("information_imbalance k=50 (align)", lambda: al.information_imbalance(X, Y, 50).x_to_y,
          lambda A, B: dense_imbalance_k(A, B, 50), "n x n cdist numpy, sorted rows")
    bench("twonn", lambda: al.twonn(X).dimension,
          None if args.skip_slow_baselines else (lambda A, B: skdim.id.TwoNN().fit(A).dimension_), "skdim TwoNN")
    bench("mle_id k=50", lambda: al.mle_id(X, 50).dimension,
          lambda A, B: skdim.id.MLE().fit(A, n_neighbors=50, comb="mle").dimension_, "skdim MLE")
    bench("id_vs_scale", lambda: float(al.id_vs_scale(X, n_min=100)["id"].iloc[-1]), None, "none")
    def nn1_zero(A, _B):
        return int((NearestNeighbors(n_neighbors=2, algorithm="brute").fit(A).kneighbors(A)[0][:, 1] == 0).sum())

    bench("find_near_duplicates", lambda: al.find_near_duplicates(X).n_dropped, nn1_zero, "sklearn 1-NN only")
    bench("gfre (default)", lambda: global_reconstruction_error(X, Y), ref_gfre,
          "loop transcription of skmatter", power=1)
    bench("lfre 15 points (default)", lambda: local_reconstruction_error(X, Y, 15),
          lambda A, B: ref_lfre(A, B, 15), "loop transcription of skmatter", power=1)
    if args.before:
        before = load_before(args.before)
        bench(f"information_imbalance k=50 (before {args.before})",
              lambda: before["imbalance"].information_imbalance(X, Y, 50).x_to_y, None, "none")
        bench(f"lfre 15 points (before {args.before})",
              lambda: before["reconstruction"].local_reconstruction_error(X, Y, 15), None, "none")

    nb, R = args.boot_n, args.boot_r
    if args.no_baselines or args.only:
        R = 0
    Xb, Yb = X[:nb], Y[:nb]
    if R > 0:
        f = partial(al.cknna, k=25)
        t_boot, ci = timed(al.bootstrap_ci, f, Xb, Yb, n_boot=R, seed=0)
        m = nb // 2
        sub = [np.sort(np.random.default_rng(s).choice(nb, m, replace=False)) for s in range(3)]
        t3, _ = timed(lambda: [dense_cknna(Xb[r], Yb[r], 25, True) for r in sub])
        rows.append((f"bootstrap_ci cknna R={R} (m={m})", nb, d, t_boot, t3 / 3 * (R + 1),
                     "dense CKNNA x (R+1), from 3 timed", (ci.low, ci.high), None))

    print()
    from threadpoolctl import threadpool_info

    blas = ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info())
    load = os.getloadavg()
    print(f"cores: {os.cpu_count()} ({blas}); load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min); "
          f"monoculture seconds = fastest of {args.repeat} run(s)")
    print("| metric | n | d | seconds | baseline s | ratio | baseline | value (ours / baseline) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n_, d_, t, tb, label, v, vb in rows:
        ratio = tb / t if np.isfinite(tb) else float("nan")
        vs = v if not isinstance(v, float) else f"{v:.6g}"
        vbs = "" if vb is None else (vb if not isinstance(vb, float) else f"{vb:.6g}")
        print(f"| {name} | {n_} | {d_} | {t:.3f} | {tb:.3f} | {ratio:.1f}x | {label} | {vs} / {vbs} |")
    if args.budget is not None:
        over = [(name, t) for name, _, _, t, *_ in rows
                if not name.startswith("bootstrap") and "(before" not in name and t > args.budget]
        for name, t in over:
            print(f"over budget ({args.budget:g} s): {name} {t:.3f} s")
        return 1 if over else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
