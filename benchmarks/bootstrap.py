"""Cost of the alignment analysis (monoculture.audit.alignment.analysis.align) and of its interval engine.

Usage: ``python benchmarks/bootstrap.py [--n 300 600] [--models 4] [--d 64] [--n-boot 50] [--n-perm 20]``,
or ``python benchmarks/bootstrap.py --resample [--n 2000 4000] [--metrics cknna mutual_knn ...]``.

Prints, per set size n (rows per set, ID and OOD each):

* ``align``: seconds of one full :func:`align` call (all metrics, per-pair and ID - OOD intervals,
  equal-size repeats, permutation tests, intrinsic dimension with intervals, k sweeps);
* ``engine``: seconds for per-pair intervals of every metric on both sets plus every ID - OOD
  difference with the shared-subsample engine of ``align`` (one replicate pass per set), against
  ``naive``: the same intervals from separate :func:`bootstrap_ci` / :func:`bootstrap_diff_ci` calls per
  pair, metric and direction (what calling the primitives one by one costs). ``ratio`` = naive / engine.

With ``--resample``: :func:`~monoculture.audit.alignment.resampling.resample` of the given metrics (default
all of ``align``'s pair metrics) on one set, every subsample searched from scratch (``before``,
``reuse_neighbours=False``) against every subsample's k-NN read from one search of each full array
(``after``), back to back in the same process: wall and CPU seconds, the seconds of neighbour search and
their share of the total, the fallback rate (subsample rows the lists could not decide), and the largest
difference between the replicates of the two runs per metric. Prints the load average.

Data: every model embeds a 6-d latent through its own random tanh map into d dimensions plus noise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from itertools import combinations

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]  # benchmarks/coverage.py shadows coverage

from monoculture.audit.alignment import (  # noqa: E402
    bootstrap_ci, bootstrap_diff_ci, cka, cknna, distance_correlation, information_imbalance, mutual_knn, normalise)
from monoculture.audit.alignment import analysis as an  # noqa: E402
from monoculture.audit.alignment.resampling import resample  # noqa: E402


def zoo(n_per_set: int, n_models: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((2 * n_per_set, 6))
    ids = [f"s{i}" for i in range(2 * n_per_set)]
    return ids, {f"m{j}": (ids, np.tanh(Z @ rng.standard_normal((6, d))) + 0.05 * rng.standard_normal((2 * n_per_set, d)))
                 for j in range(n_models)}


def naive_intervals(sets, pairs, n_boot, k, ii_k):
    fns = {"cknna": lambda X, Y: cknna(X, Y, k=k), "mutual_knn": lambda X, Y: mutual_knn(X, Y, k=k), "cka": cka,
           "dcor": distance_correlation,
           "ii_xy": lambda X, Y: information_imbalance(X, Y, k=ii_k).x_to_y,
           "ii_yx": lambda X, Y: information_imbalance(X, Y, k=ii_k).y_to_x}
    for fn in fns.values():
        for i, j in pairs:
            for arrays in sets:
                bootstrap_ci(fn, arrays[i], arrays[j], n_boot, 0.95, 1)
            bootstrap_diff_ci(fn, (sets[0][i], sets[0][j]), (sets[1][i], sets[1][j]), n_boot, 0.95, 1)


def resample_reuse(n: int, args) -> None:
    """Before/after timing of the subsample neighbour reuse in :func:`resample` (one set of n rows)."""
    _, emb = zoo(n, args.models, args.d)
    arrays = [e[1][:n] for e in emb.values()]
    pairs = list(combinations(range(args.models), 2))
    metrics = tuple(args.metrics or an.METRICS)
    out = {}
    for reuse in (False, True):
        t, c = time.perf_counter(), time.process_time()
        res = resample(arrays, pairs, metrics, 25, 50, args.n_boot, 1, reuse_neighbours=reuse)
        out[reuse] = (time.perf_counter() - t, time.process_time() - c, res)
    print(f"n={n} models={args.models} d={args.d} n_boot={args.n_boot} m={out[True][2].m} "
          f"metrics={','.join(metrics)} load={' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'':>7} {'wall s':>8} {'search':>8} {'share':>6} {'cpu s':>8} {'search':>8} {'share':>6}  searches "
          "(cpu s)")
    for reuse, label in ((False, "before"), (True, "after")):
        wall, cpu, res = out[reuse]
        st = res.searches
        what = (f"{st.direct} direct" if not reuse else
                f"{st.direct} direct (full sets, {st.direct_cpu:.2f}) + {st.full_lists} full K-lists "
                f"({st.full_lists_cpu:.2f}) + {st.derived} derived ({st.derived_cpu:.2f}), "
                f"fallback rate {st.fallback_rate:.2e}")
        print(f"{label:>7} {wall:>8.2f} {st.seconds:>8.2f} {st.seconds / wall:>6.1%} {cpu:>8.2f} "
              f"{st.cpu_seconds:>8.2f} {st.cpu_seconds / cpu:>6.1%}  {what}")
    (w0, c0, r0), (w1, c1, r1) = out[False], out[True]
    print(f"{'ratio':>7} {w0 / w1:>8.2f} {r0.searches.seconds / r1.searches.seconds:>8.2f} {'':>6} "
          f"{c0 / c1:>8.2f} {r0.searches.cpu_seconds / r1.searches.cpu_seconds:>8.2f}")
    for mt in metrics:
        diff = max(float(np.max(np.abs(r0.reps[mt][p] - r1.reps[mt][p]))) for p in r0.reps[mt])
        print(f"  max |before - after| of the {mt} replicates: {diff:.1e}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[300, 600])
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--n-boot", type=int, default=50)
    ap.add_argument("--n-perm", type=int, default=20)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--resample", action="store_true",
                    help="time resample() with and without the subsample neighbour reuse")
    ap.add_argument("--metrics", nargs="+", default=None, help="metrics of --resample (default: align's)")
    args = ap.parse_args(argv)
    if args.resample:
        for n in args.n:
            resample_reuse(n, args)
        return
    print(f"models={args.models} d={args.d} n_boot={args.n_boot} n_perm={args.n_perm} cores={os.cpu_count()}")
    print(f"{'n/set':>6} {'align s':>9} {'engine s':>9} {'naive s':>9} {'ratio':>6}")
    for n in args.n:
        ids, emb = zoo(n, args.models, args.d)
        t = time.perf_counter()
        an.align(emb, ids[:n], ids[n:], n_boot=args.n_boot, repeats=10, n_perm=args.n_perm)
        t_align = time.perf_counter() - t
        sets = [[normalise(emb[m][1][sl], "max") for m in emb] for sl in (slice(0, n), slice(n, 2 * n))]
        pairs = list(combinations(range(args.models), 2))
        t = time.perf_counter()
        res = [resample(a, pairs, an.METRICS, 25, 50, args.n_boot, 1) for a in sets]
        for mt in an.METRICS:
            for p in res[0].estimate[mt]:
                for r in res:
                    an._interval(r.estimate[mt][p], r.reps[mt][p], r.n, r.m, 0.95)
                an._diff_interval(res[0].estimate[mt][p], res[0].reps[mt][p], res[0].n, res[0].m,
                                  res[1].estimate[mt][p], res[1].reps[mt][p], res[1].n, res[1].m, 0.95)
        t_engine = time.perf_counter() - t
        if args.skip_naive:
            print(f"{n:>6} {t_align:>9.1f} {t_engine:>9.1f} {'-':>9} {'-':>6}")
            continue
        t = time.perf_counter()
        naive_intervals(sets, pairs, args.n_boot, 25, 50)
        t_naive = time.perf_counter() - t
        print(f"{n:>6} {t_align:>9.1f} {t_engine:>9.1f} {t_naive:>9.1f} {t_naive / t_engine:>6.1f}")


if __name__ == "__main__":
    main()
