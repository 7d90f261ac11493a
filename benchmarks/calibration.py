"""Benchmark of the null-calibrated alignment scores (:mod:`monoculture.audit.alignment.calibration`).

Usage: ``python benchmarks/calibration.py [--n 10000] [--d 256] [--models 6] [--perms 200] [--repeat 2]
[--naive-calls 2] [--check-n 2000] [--check-perms 200] [--no-check] [--budget 60]``.

1. **Speed**: ``--models`` models (15 pairs for 6) of ``--n`` rows and ``--d`` features; every pair metric
   (CKNNA and mutual k-NN with k = 25, linear CKA, distance correlation, information imbalance with
   k = 50 on its 2,000-row subsample) calibrated with ``--perms`` permutations by
   :func:`~monoculture.audit.alignment.calibration.calibrate_pairs`, raw scores included: the fastest of
   ``--repeat`` runs (other work on shared cores only ever adds time), with the per-metric split of one run.
   Beside it the naive permutation loop (the metric function called on ``(X, Y[pi])`` for every
   permutation of every pair), timed in the same run on a subset: ``--naive-calls`` calls per metric on
   one pair, the fastest taken and multiplied by ``(P + 1) x pairs``. Ratio = naive / ours.
2. **Approximations**: at ``--check-n`` rows, for a related pair and an unrelated pair, every metric's
   calibration by the fast path as configured at ``--n`` (CKA and dCor from permutation moments,
   information imbalance on a subsample of ``--check-n / 2`` rows, the same share as 2,000 of 10,000)
   against the full permutation null (the plain loop with the metric functions, same permutations):
   null mean, tau, p and calibrated score of both, and the Monte Carlo s.e. of the loop's tau (bootstrap)
   to judge the differences by.

Data: a 16-d latent Gaussian through a random tanh layer and a random linear map per model, plus noise
(every pair related, partly); the unrelated pair swaps one model for an independent Gaussian matrix.
Exit status 1 if the calibrated total exceeds ``--budget`` seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from itertools import combinations

import numpy as np

# Running this file puts benchmarks/ first on sys.path, where benchmarks/coverage.py would shadow the
# `coverage` package that numba looks for.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

from monoculture.audit.alignment import calibration as C  # noqa: E402
from monoculture.audit.alignment.dependence import distance_correlation  # noqa: E402
from monoculture.audit.alignment.imbalance import information_imbalance  # noqa: E402
from monoculture.audit.alignment.metrics import cka, cknna, mutual_knn  # noqa: E402

GROUPS = (("cknna", "mutual_knn"), ("cka",), ("dcor",), ("information_imbalance",))


def models(n, d, count, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 16))
    out = []
    for _ in range(count):
        H = np.tanh(Z @ rng.standard_normal((16, 64)) + 0.8 * rng.standard_normal((n, 64)))
        out.append(H @ rng.standard_normal((64, d)) + 0.5 * rng.standard_normal((n, d)))
    return out


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def best_of(repeat, fn):
    best, out = float("inf"), None
    for _ in range(max(1, repeat)):
        t, out = timed(fn)
        best = min(best, t)
    return best, out


def metric_functions(k, ii_k):
    return {"cknna": partial(cknna, k=k), "mutual_knn": partial(mutual_knn, k=k), "cka": cka,
            "dcor": distance_correlation,
            "information_imbalance": partial(information_imbalance, k=ii_k)}


def speed(args):
    E = models(args.n, args.d, args.models)
    pairs = list(combinations(range(len(E)), 2))
    kw = dict(k=args.k, ii_k=args.ii_k, n_permutations=args.perms, ii_subsample=args.ii_subsample)
    C.calibrate_pairs([A[:300] for A in E[:2]], **kw)  # load the compiled kernels outside the timings
    total, out = best_of(args.repeat, lambda: C.calibrate_pairs(E, **kw))
    split = {g: best_of(args.repeat, lambda: C.calibrate_pairs(E, metrics=g, **kw))[0] for g in GROUPS}
    fns = metric_functions(args.k, args.ii_k)
    rng = np.random.default_rng(1)
    X, Y = E[0], E[1]
    naive = {}
    for name, fn in fns.items():
        naive[name] = best_of(args.naive_calls, lambda: fn(X, Y[rng.permutation(args.n)]))[0]
    naive_total = sum(naive.values()) * (args.perms + 1) * len(pairs)
    print(f"## Speed: {len(E)} models ({len(pairs)} pairs), n = {args.n:,}, d = {args.d}, "
          f"P = {args.perms} permutations, k = {args.k}, information imbalance k = {args.ii_k} "
          f"(subsample {args.ii_subsample:,} rows)\n")
    print("| metric(s) | calibrated, all pairs (s) | naive: one call (s) | naive: all pairs, extrapolated (s) |")
    print("|---|---|---|---|")
    for g in GROUPS:
        one = sum(naive[m] for m in g)
        print(f"| {' + '.join(g)} | {split[g]:.2f} | {one:.3f} | {one * (args.perms + 1) * len(pairs):,.0f} |")
    print(f"| **every pair metric** | **{total:.2f}** (fastest of {args.repeat}) | {sum(naive.values()):.3f} | "
          f"**{naive_total:,.0f}** |")
    print(f"\nnaive / calibrated = {naive_total / total:,.0f}x (naive timed on {args.naive_calls} call(s) per "
          f"metric on one pair, multiplied by (P + 1) x {len(pairs)} pairs)")
    methods = {m: next(iter(out[m].values())).method for m in out}
    for m, how in methods.items():
        print(f"  {m}: {how}")
    return total


def check(args):
    n = args.check_n
    E = models(n, args.d, 2, seed=3)
    unrelated = np.random.default_rng(4).standard_normal((n, args.d))
    fns = metric_functions(args.k, args.ii_k)
    print(f"\n## Approximation errors at n = {n:,} (P = {args.check_perms}; fast path as at n = {args.n:,} "
          f"against the full permutation null, same permutations)\n")
    print("| pair | metric | fast method | null mean fast / full | tau fast / full (MC s.e.) | "
          "p fast / full | calibrated fast / full | max abs null diff |")
    print("|---|---|---|---|---|---|---|---|")
    sub = n * args.ii_subsample // args.n  # the same share of rows (k scaled alike by calibrate_pairs)
    for label, arrays in (("related", [E[0], E[1]]), ("unrelated", [E[0], unrelated])):
        fast = C.calibrate_pairs(arrays, k=args.k, ii_k=args.ii_k, n_permutations=args.check_perms,
                                 cka_method="moments", dcor_method="moments", ii_subsample=sub)
        perms = C.permutations(n, args.check_perms, C._pair_seed(0, 0, 1))
        X, Y = arrays
        for name in C.PAIR_METRICS:
            fn = fns[name]
            if name == "information_imbalance":
                loop = [fn(X, Y[pi]) for pi in perms]
                raw = fn(X, Y)
                full = {(0, 1): (raw.x_to_y, np.array([r.x_to_y for r in loop])),
                        (1, 0): (raw.y_to_x, np.array([r.y_to_x for r in loop]))}
            else:
                full = {(0, 1): (fn(X, Y), np.array([fn(X, Y[pi]) for pi in perms]))}
            hi = C.PAIR_METRICS[name]
            for key, (raw, null) in full.items():
                ref = C.calibrate_scores(raw, null, higher_is_more_aligned=hi, s_max=1.0 if hi else 0.0)
                got = fast[name][key]
                boot = np.random.default_rng(0)
                q = 0.95 if hi else 0.05
                se = float(np.std([np.quantile(boot.choice(null, null.size), q) for _ in range(300)]))
                same_null = got.null.size == null.size and got.n_rows == n and "moments" not in got.method
                diff = f"{np.max(np.abs(got.null - null)):.1e}" if same_null else "n/a"
                short = got.method.split(" (")[0] + (" (subsample)" if got.n_rows < n else "")
                tag = name + (" A->B" if key == (0, 1) and name == "information_imbalance" else
                              " B->A" if name == "information_imbalance" else "")
                print(f"| {label} | {tag} | {short} | {got.null_mean:.4f} / {ref.null_mean:.4f} | "
                      f"{got.tau:.4f} / {ref.tau:.4f} ({se:.4f}) | {got.p_value:.3f} / {ref.p_value:.3f} | "
                      f"{got.calibrated:.4f} / {ref.calibrated:.4f} | {diff} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--models", type=int, default=6)
    ap.add_argument("--perms", type=int, default=200)
    ap.add_argument("--k", type=int, default=25)
    ap.add_argument("--ii-k", type=int, default=50)
    ap.add_argument("--ii-subsample", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--naive-calls", type=int, default=2)
    ap.add_argument("--check-n", type=int, default=2000)
    ap.add_argument("--check-perms", type=int, default=200)
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--budget", type=float, default=60.0)
    args = ap.parse_args(argv)
    total = 0.0 if args.no_speed else speed(args)
    if not args.no_check:
        check(args)
    if total > args.budget:
        print(f"\nover budget: {total:.1f} s > {args.budget:.0f} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
