"""Benchmark: exact (quests) vs approximate QUESTS entropy / differential entropy, and the approximate path at scale.

Usage::

    python benchmarks/environments.py                       # 50,000 exact vs approximate, then 10^6
    python benchmarks/environments.py --sizes 1000000 10000000 --skip-exact

Data:

* **50,000 environments**: real per-atom QUESTS descriptors (k = 32, 5 Å) of synthetic frames of MPTrj's
  size (``datasets.synth``, ``mean_atoms=31``, seed 0). Exact values by ``quests.entropy.entropy`` /
  ``delta_entropy`` (all pairs, numba threads = all cores); approximate by
  :func:`monoculture.audit.environments.environment_entropy` / ``differential_entropy``. The differential
  entropy is of the first 10,000 environments against the other 40,000.
* **10^6 and 10^7 environments**: synthetic descriptors of the right width (63) with realistic
  clustering: each row is one of the 50,000 real environments plus isotropic Gaussian noise of total size
  0, 0.3, 1, 3 or 10 bandwidths (one of the five at random: exact copies as symmetry-equivalent atoms,
  thermal near-copies, neighbours, distinct environments). Rows are written to a ``numpy.memmap`` on disk and
  the entropy is computed from it; each size runs in its own process so that its peak resident memory
  (``ru_maxrss``) is its own. The time excludes generating the data.

Prints one line per measurement and the approximate/exact time ratio measured in the same run, with the
load average (timings on a shared machine are noisy).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# benchmarks/coverage.py would shadow the `coverage` package that numba probes for: drop this folder from the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

H = 0.015


def real_environments(n: int, workdir: Path) -> np.ndarray:
    from monoculture.audit.environments.sets import read_environments
    from monoculture.datasets import open_dataset
    from monoculture.datasets.synth import synthesize

    path = workdir / "synthetic_mptrj.json"
    synthesize("mptrj", int(n / 30) + 50, path, seed=0, mean_atoms=31)
    X = read_environments(open_dataset(path)).X
    if X.shape[0] < n:
        raise RuntimeError(f"only {X.shape[0]} environments for {n}")
    return X[:n]


def exact_vs_approx(X: np.ndarray) -> dict:
    from monoculture.audit.environments import (differential_entropy, environment_entropy, exact_delta_entropy,
                                                exact_entropy)

    t0 = time.perf_counter()
    H_exact = exact_entropy(X)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    approx = environment_entropy(X, n_check=128)
    t_approx = time.perf_counter() - t0
    Y, R = X[:10_000], X[10_000:]
    t0 = time.perf_counter()
    dH_exact = exact_delta_entropy(Y, R)
    t_dexact = time.perf_counter() - t0
    t0 = time.perf_counter()
    dH, info = differential_entropy(Y, R, n_check=0)
    t_dapprox = time.perf_counter() - t0
    far = np.abs(dH_exact) > 1
    return {
        "n": int(X.shape[0]),
        "entropy_exact": H_exact, "entropy_approx": approx["entropy_nats"],
        "entropy_rel_error": abs(approx["entropy_nats"] - H_exact) / H_exact,
        "entropy_time_exact_s": t_exact, "entropy_time_approx_s": t_approx,
        "entropy_speedup": t_exact / t_approx,
        "measured_error": approx["measured_error"], "index": approx["approximation"]["index"],
        "mean_dH_exact": float(dH_exact.mean()), "mean_dH_approx": float(dH.mean()),
        "mean_dH_rel_error": float(abs(dH.mean() - dH_exact.mean()) / abs(dH_exact.mean())),
        "max_rel_error_dH_above_1": (float(np.max(np.abs(dH - dH_exact)[far] / np.abs(dH_exact[far])))
                                     if far.any() else 0.0),
        "overlap_exact": float(np.mean(dH_exact < 1e-5)), "overlap_approx": float(np.mean(dH < 1e-5)),
        "dH_time_exact_s": t_dexact, "dH_time_approx_s": t_dapprox, "dH_speedup": t_dexact / t_dapprox,
    }


def synthetic_memmap(base: np.ndarray, n: int, path: Path, seed: int = 0) -> np.memmap:
    rng = np.random.default_rng(seed)
    d = base.shape[1]
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for s in range(0, n, 1 << 20):
        m = min(1 << 20, n - s)
        j = rng.integers(0, len(base), m)
        scale = rng.choice([0.0, 0.3, 1.0, 3.0, 10.0], size=(m, 1)).astype(np.float32) * np.float32(H / np.sqrt(d))
        X[s : s + m] = base[j] + rng.standard_normal((m, d), dtype=np.float32) * scale
    X.flush()
    return X


def scale_child(base_path: str, n: int, workdir: str, n_queries: int) -> None:
    """Run in a subprocess: generate n rows, time the approximate entropy, print JSON with peak memory.

    ``n_queries`` 0: the kernel sum of every environment; otherwise the entropy from that many drawn ones.
    """
    from monoculture.audit.environments import environment_entropy

    base = np.load(base_path)
    t0 = time.perf_counter()
    synthetic_memmap(base, n, Path(workdir) / f"env_{n}.npy")
    t_gen = time.perf_counter() - t0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    res = environment_entropy(np.load(Path(workdir) / f"env_{n}.npy", mmap_mode="r"), n_check=64,
                              n_queries=n_queries or None)
    t = time.perf_counter() - t0
    print(json.dumps({"n": n, "n_queries": n_queries, "standard_error_nats": res["standard_error_nats"],
                      "time_s": t, "generate_s": t_gen, "entropy_nats": res["entropy_nats"],
                      "n_unique": res["approximation"]["n_unique"], "index": res["approximation"]["index"],
                      "measured_error": res["measured_error"],
                      "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                      "rss_before_GB": rss_before / 1e6}))
    os.unlink(Path(workdir) / f"env_{n}.npy")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000_000])
    ap.add_argument("--skip-exact", action="store_true")
    ap.add_argument("--queries", type=int, nargs="*", default=[0, 100_000],
                    help="per size: 0 = kernel sums of every environment, N = entropy from N drawn environments")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--child", nargs=3, metavar=("BASE", "N", "Q"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        scale_child(args.child[0], int(args.child[1]), args.workdir, int(args.child[2]))
        return 0
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_env_"))
    print(f"load average {open('/proc/loadavg').read().split()[:3]}; {os.cpu_count()} cores", flush=True)
    base_path = work / "base.npy"
    if not base_path.exists():
        t0 = time.perf_counter()
        np.save(base_path, real_environments(50_000, work))
        print(f"described 50,000 environments of synthetic MPTrj-size frames in {time.perf_counter() - t0:.1f} s",
              flush=True)
    X = np.load(base_path)
    if not args.skip_exact:
        r = exact_vs_approx(X)
        print(json.dumps(r, indent=1), flush=True)
        print(f"50,000: entropy exact {r['entropy_exact']:.4f} ({r['entropy_time_exact_s']:.1f} s) vs approximate "
              f"{r['entropy_approx']:.4f} ({r['entropy_time_approx_s']:.1f} s): rel. error "
              f"{r['entropy_rel_error']:.2e}, time ratio exact/approx {r['entropy_speedup']:.1f}", flush=True)
        print(f"50,000: mean dH exact {r['mean_dH_exact']:.3f} ({r['dH_time_exact_s']:.1f} s) vs approximate "
              f"{r['mean_dH_approx']:.3f} ({r['dH_time_approx_s']:.1f} s): rel. error {r['mean_dH_rel_error']:.2e}; "
              f"overlap {r['overlap_exact']:.4f} vs {r['overlap_approx']:.4f}", flush=True)
    for n in args.sizes:
        for nq in args.queries:
            out = subprocess.run([sys.executable, __file__, "--workdir", str(work), "--child", str(base_path), str(n),
                                  str(nq)], capture_output=True, text=True)
            if out.returncode:
                print(f"{n}: failed\n{out.stderr[-2000:]}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps(r), flush=True)
            mode = "every environment" if not nq else f"{nq:,} drawn environments (s.e. {r['standard_error_nats']:.4f})"
            print(f"{n:,} [{mode}]: approximate entropy {r['entropy_nats']:.4f} nats in {r['time_s']:.1f} s, peak RSS "
                  f"{r['peak_rss_GB']:.2f} GB; measured mean |log p error| "
                  f"{r['measured_error']['mean_abs_log_p_error']:.3g} on {r['measured_error']['n_checked']} queries; "
                  f"load {open('/proc/loadavg').read().split()[:3]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
